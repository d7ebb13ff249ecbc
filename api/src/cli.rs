//! The `shop` command line: parsing, and one function per command. The
//! binary's `main` only calls [`main`].

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{DatabaseSettings, LogFormat, ProjectorSettings, ServeSettings};
use crate::database::Database;
use crate::error::ApiError;
use crate::staff::{create_staff, StaffAccount, StaffOutcome};
use crate::startup::{self, AppConfig, AppState, Application};
use anyhow::Context;
use clap::{Parser, Subcommand};
use domain::metadata::Role;
use domain::values::Currency;
use projections::admin;
use projections::secret::Secret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "shop", version, about = "An event-sourced commerce backend")]
struct Cli {
    /// Log format.
    #[arg(long, env = "SHOP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve the HTTP API.
    Serve(Box<ServeSettings>),
    /// Run the projectors (read models and workflows) without HTTP.
    Projectors {
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(flatten)]
        projectors: ProjectorSettings,
    },
    /// Operate the projectors: status, dead letters, pause and resume.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Check the event store's tamper evidence.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Apply pending database migrations and exit.
    Migrate(DatabaseSettings),
    /// Manage accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage the private PostgreSQL cluster.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Customers' personal data.
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// The master key of the personal data keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

#[derive(Subcommand)]
enum CustomersCommand {
    /// Forget a customer: delete their personal data key and record
    /// `CustomerForgotten` (as POST /v1/admin/customers/{id}/forget).
    Forget {
        /// The customer's id.
        id: uuid::Uuid,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rewrap every personal data key with a new master key, without
    /// touching the events. Afterwards start every process with the new
    /// key (a key kept in the data folder is replaced there).
    Rotate {
        /// The new master key: 32 bytes as 64 hex digits or base64.
        #[arg(long, env = "SHOP_NEW_MASTER_KEY", hide_env_values = true)]
        new_master_key: Secret,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Every projector: version, checkpoint, lag, state, dead letters.
    List,
    /// Apply the events behind a projector's dead letters again.
    Retry { name: String },
    /// Skip the event a projector halted on.
    Skip { name: String },
    /// Rebuild projectors' read models from the whole log into new tables
    /// while the live ones keep answering, then switch atomically. Several
    /// projectors named together read the log once. An interrupted rebuild
    /// resumes where it stopped when started again.
    Rebuild {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Events per transaction.
        #[arg(long, default_value_t = projections::rebuild::DEFAULT_BATCH_SIZE)]
        batch_size: i64,
    },
    /// Hold a projector still.
    Pause { name: String },
    /// Let a paused projector run again.
    Resume { name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every event's hash link and name the first broken one;
    /// name every sealed stream that no longer reaches its seal (cut).
    Verify,
    /// An order's timeline: every event, who caused it, in which request.
    Order {
        /// The order's id.
        id: uuid::Uuid,
        /// Print JSON (the same as GET /v1/orders/{id}/history).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a staff account. An existing username is refused unless
    /// `--promote` is given.
    Create {
        /// customer, admin, operator, auditor or integration.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        username: String,
        /// The password; read from standard input when not given.
        #[arg(long, env = "SHOP_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long)]
        fullname: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        /// When the username exists: give that account the role and set its
        /// password to the one given (its old password stops working).
        #[arg(long)]
        promote: bool,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// End every token of an account: servers refuse them within their
    /// token check cache time (SHOP_TOKEN_CHECK_CACHE_SECONDS); signing in
    /// again gives a new one.
    Revoke {
        username: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| "one of customer, admin, operator, auditor, integration".to_string())
}

#[derive(Subcommand)]
enum DbCommand {
    /// Stop the private cluster kept in the data folder, if it runs.
    Stop {
        #[arg(long, env = "SHOP_DATA_DIR", default_value = ".data")]
        data_dir: PathBuf,
    },
}

/// Runs the `shop` command line with the process's arguments.
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shop: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(Cli::parse()))
}

async fn run(cli: Cli) -> ExitCode {
    let filter = match cli.command {
        Command::Serve(_) | Command::Projectors { .. } => crate::telemetry::SERVICE_FILTER,
        _ => crate::telemetry::COMMAND_FILTER,
    };
    crate::telemetry::init_with(cli.log_format, filter);
    let result = match cli.command {
        Command::Serve(settings) => serve(*settings).await,
        Command::Migrate(settings) => migrate(settings).await,
        Command::Projectors {
            database,
            projectors,
        } => run_projectors(database, projectors).await,
        Command::Users {
            command:
                UsersCommand::Create {
                    role,
                    username,
                    password,
                    fullname,
                    email,
                    phone,
                    promote,
                    database,
                },
        } => {
            let account = StaffAccount {
                role,
                username,
                password: password.unwrap_or_default(),
                fullname,
                email,
                phone,
                promote,
            };
            create_user(account, database).await
        }
        Command::Users {
            command: UsersCommand::Revoke { username, database },
        } => revoke_user(username, database).await,
        Command::Audit {
            command: AuditCommand::Verify,
            database,
        } => audit_verify(database).await,
        Command::Audit {
            command: AuditCommand::Order { id, json },
            database,
        } => audit_order(id, json, database).await,
        Command::Projections { command, database } => projections_command(command, database).await,
        Command::Db {
            command: DbCommand::Stop { data_dir },
        } => crate::postgres_cluster::stop(&data_dir)
            .await
            .map_err(anyhow::Error::from),
        Command::Customers {
            command: CustomersCommand::Forget { id },
            database,
        } => forget_customer(id, database).await,
        Command::Keys {
            command: KeysCommand::Rotate { new_master_key },
            database,
        } => rotate_keys(new_master_key, database).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    settings
        .projectors
        .payment_gateway()
        .map_err(anyhow::Error::msg)?;
    let database = Database::resolve(&settings.database).await?;
    let result = serve_on(&settings, &database.url).await;
    database.shutdown(true).await;
    result
}

async fn serve_on(settings: &ServeSettings, url: &str) -> anyhow::Result<()> {
    let config = app_config(settings)?;
    // The process opens at most `db_max_connections` in all: the projectors'
    // share (all the migrations need without projectors), the rest for the
    // HTTP API.
    let total = settings.database.db_max_connections.max(2);
    let projector_connections = if settings.no_projectors { 1 } else { total / 2 };
    let pool = startup::connect(url, projector_connections).await?;
    startup::migrate(&pool).await?;
    crate::master_key::open(&pool, &settings.database).await?;
    // The HTTP API's own pool, whose statements PostgreSQL cancels past the
    // statement timeout; the projectors' batches keep theirs.
    let api_pool = startup::connect_with_statement_timeout(
        url,
        total - projector_connections,
        Some(std::time::Duration::from_millis(
            settings.database.db_statement_timeout_ms,
        )),
    )
    .await?;
    let state = AppState::new(api_pool, config.clone());
    let background = state.background.clone();
    let app = Application::build(settings.listen, state.clone()).await?;
    tracing::info!(address = %app.local_addr()?, "listening");
    let stop_projectors = CancellationToken::new();
    let workflows = settings.projectors.workflow_settings(
        config.payment_webhook_secret.clone(),
        Some(own_webhook_url(app.local_addr()?)),
    );
    let runtime = if settings.no_projectors {
        None
    } else {
        Some(
            startup::projector_runtime(pool, settings.projectors.runtime_config(), &workflows)
                .map_err(anyhow::Error::msg)?,
        )
    };
    let projectors = runtime.map(|runtime| tokio::spawn(runtime.run(stop_projectors.clone())));
    // Other services' facts, from NATS when it is configured.
    if let Some(nats) = settings.projectors.nats.settings() {
        tokio::spawn(crate::inbound::run(
            state.clone(),
            nats,
            stop_projectors.clone(),
        ));
    }
    // One signal stops everything at once: HTTP stops accepting and lets
    // in-flight requests finish while the projectors stop at a batch
    // boundary, all within SHUTDOWN_DEADLINE.
    tokio::spawn({
        let stop = stop_projectors.clone();
        async move {
            startup::shutdown_signal().await;
            stop.cancel();
        }
    });
    let stopping = stop_projectors.clone();
    let serving = tokio::spawn(app.run_until_stopped(async move { stopping.cancelled().await }));
    stop_projectors.cancelled().await;
    background.cancel();
    let stopped = tokio::time::timeout(startup::SHUTDOWN_DEADLINE, async {
        if let Some(projectors) = projectors {
            let _ = projectors.await;
        }
        serving.await
    })
    .await;
    match stopped {
        Ok(Ok(served)) => served?,
        Ok(Err(e)) => return Err(anyhow::anyhow!("the HTTP server failed: {e}")),
        Err(_) => tracing::warn!(
            deadline = ?startup::SHUTDOWN_DEADLINE,
            "stopping without waiting longer for in-flight work"
        ),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The server's own webhook, where the simulated gateway calls back by
/// default (an unspecified listen address is reached on loopback).
fn own_webhook_url(listen: std::net::SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!(
        "http://{}/v1/payments/webhook",
        std::net::SocketAddr::new(host, listen.port())
    )
}

/// The payment webhook secret: configured, or generated once and kept in
/// the data folder (like the token secret).
fn webhook_secret(
    projectors: &ProjectorSettings,
    database: &DatabaseSettings,
) -> anyhow::Result<Secret> {
    configured_or_kept(
        projectors.payment_webhook_secret.as_ref(),
        "SHOP_PAYMENT_WEBHOOK_SECRET",
        &database.data_dir.join("payment-webhook-secret"),
    )
}

/// A secret as configured in `variable` (at least
/// [`crate::secrets::MIN_SECRET_LEN`] characters), or, without one, the one
/// kept at `path` (generated on first use).
fn configured_or_kept(
    configured: Option<&Secret>,
    variable: &str,
    path: &std::path::Path,
) -> anyhow::Result<Secret> {
    match configured {
        Some(secret) if secret.expose().len() >= crate::secrets::MIN_SECRET_LEN => {
            Ok(secret.clone())
        }
        Some(_) => anyhow::bail!(
            "{variable} must be at least {} characters long",
            crate::secrets::MIN_SECRET_LEN
        ),
        None => crate::secrets::load_or_create(path)
            .map(Secret::from)
            .with_context(|| format!("cannot keep the secret of {variable} in the data folder")),
    }
}

fn app_config(settings: &ServeSettings) -> anyhow::Result<AppConfig> {
    let jwt_secret = configured_or_kept(
        settings.api.jwt_secret.as_ref(),
        "SHOP_JWT_SECRET",
        &settings.database.data_dir.join("jwt-secret"),
    )?;
    Ok(AppConfig {
        jwt_secret,
        token_ttl: chrono::Duration::seconds(i64::from(settings.api.token_ttl_seconds.max(1))),
        token_check_cache: std::time::Duration::from_secs(u64::from(
            settings.api.token_check_cache_seconds,
        )),
        currency: Currency::parse(&settings.currency)
            .map_err(|e| anyhow::anyhow!("SHOP_CURRENCY: {e}"))?,
        login_attempts_per_minute: settings.api.login_attempts_per_minute,
        login_failures_per_account: settings.api.login_failures_per_account,
        trusted_proxies: settings.api.trusted_proxies.clone(),
        seller: startup::Seller {
            name: settings.api.seller_name.clone(),
            address: settings.api.seller_address.clone(),
        },
        payment_webhook_secret: webhook_secret(&settings.projectors, &settings.database)?,
        limits: settings.api.limits.edge_limits(),
    })
}

/// Runs `work` with the application's state on the database that `settings`
/// name (migrated, the master key checked), then lets the database go.
async fn with_app_state<F, Fut>(settings: &DatabaseSettings, work: F) -> anyhow::Result<()>
where
    F: FnOnce(AppState) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let database = Database::resolve(settings).await?;
    let result = async {
        let pool = startup::connect(&database.url, 2).await?;
        startup::migrate(&pool).await?;
        crate::master_key::open(&pool, settings).await?;
        work(AppState::new(pool, AppConfig::with_random_secret())).await
    }
    .await;
    database.shutdown(false).await;
    result
}

async fn create_user(mut account: StaffAccount, settings: DatabaseSettings) -> anyhow::Result<()> {
    if account.password.is_empty() {
        eprint!("Password for {}: ", account.username);
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        account.password = line.trim_end_matches(['\r', '\n']).to_string();
    }
    with_app_state(&settings, |state| async move {
        let username = account.username.clone();
        let role = account.role;
        match create_staff(&state, account).await {
            Ok(StaffOutcome::Created(id)) => println!("created {role} {username} ({id})"),
            Ok(StaffOutcome::Promoted(id)) => {
                println!("promoted {username} ({id}) to {role}; its password is the one given")
            }
            Err(e) => anyhow::bail!("{}", ApiError::from(e).message),
        }
        anyhow::Ok(())
    })
    .await
}

async fn revoke_user(username: String, settings: DatabaseSettings) -> anyhow::Result<()> {
    with_app_state(&settings, |state| async move {
        match crate::app::revoke_tokens::revoke_tokens(&state, &username).await {
            Ok(id) => println!(
                "revoked the tokens of {username} ({id}); servers refuse them within their token check cache time"
            ),
            Err(e) => anyhow::bail!("{}", ApiError::from(e).message),
        }
        anyhow::Ok(())
    })
    .await
}

async fn forget_customer(id: uuid::Uuid, settings: DatabaseSettings) -> anyhow::Result<()> {
    with_app_state(&settings, |state| async move {
        let caller = crate::app::Caller::new(
            domain::metadata::Actor::System("cli".to_string()),
            uuid::Uuid::new_v4().to_string(),
        );
        let customer = domain::values::CustomerId(id);
        match crate::app::forget_customer::forget_customer(&state, &caller, customer).await {
            Ok(committed) => println!(
                "forgot customer {id} (position {}); their personal data now reads [erased]",
                committed.position
            ),
            Err(e) => anyhow::bail!("{}", ApiError::from(e).message),
        }
        anyhow::Ok(())
    })
    .await
}

async fn rotate_keys(new_master_key: Secret, settings: DatabaseSettings) -> anyhow::Result<()> {
    let database = Database::resolve(&settings).await?;
    let result = async {
        let pool = startup::connect(&database.url, 2).await?;
        startup::migrate(&pool).await?;
        let count = crate::master_key::rotate(&pool, &settings, new_master_key.expose()).await?;
        println!("rewrapped {count} personal data key(s) with the new master key; start every process with it");
        anyhow::Ok(())
    }
    .await;
    database.shutdown(false).await;
    result
}

async fn run_projectors(
    settings: DatabaseSettings,
    projectors: ProjectorSettings,
) -> anyhow::Result<()> {
    projectors.payment_gateway().map_err(anyhow::Error::msg)?;
    let database = Database::resolve(&settings).await?;
    let result = async {
        let pool = startup::connect(&database.url, settings.db_max_connections).await?;
        startup::migrate(&pool).await?;
        crate::master_key::open(&pool, &settings).await?;
        let stop = CancellationToken::new();
        // Without a callback URL nothing is signed: no secret is needed (nor
        // kept in the data folder).
        let secret = match &projectors.payment_callback_url {
            Some(_) => webhook_secret(&projectors, &settings)?,
            None => crate::secrets::random_secret().into(),
        };
        let runtime = startup::projector_runtime(
            pool,
            projectors.runtime_config(),
            &projectors.workflow_settings(secret, None),
        )
        .map_err(anyhow::Error::msg)?;
        let running = tokio::spawn(runtime.run(stop.clone()));
        tracing::info!("projectors running");
        startup::shutdown_signal().await;
        stop.cancel();
        if tokio::time::timeout(startup::SHUTDOWN_DEADLINE, running)
            .await
            .is_err()
        {
            tracing::warn!("stopping without waiting longer for the projectors");
        }
        anyhow::Ok(())
    }
    .await;
    database.shutdown(true).await;
    result
}

async fn projections_command(
    command: ProjectionsCommand,
    settings: DatabaseSettings,
) -> anyhow::Result<()> {
    let database = Database::resolve(&settings).await?;
    let result = async {
        let pool = startup::connect(&database.url, 2).await?;
        startup::migrate(&pool).await?;
        crate::master_key::open(&pool, &settings).await?;
        match command {
            ProjectionsCommand::List => {
                println!(
                    "{:<12} {:>7} {:>12} {:>10} {:>10} {:<8} {:>12}",
                    "NAME", "VERSION", "POSITION", "LAG", "LAG (s)", "STATE", "DEAD LETTERS"
                );
                for p in admin::status(&pool).await? {
                    println!(
                        "{:<12} {:>7} {:>12} {:>10} {:>10.1} {:<8} {:>12}",
                        p.name,
                        p.version,
                        p.position,
                        p.lag_events,
                        p.lag_seconds,
                        p.state,
                        p.dead_letters
                    );
                }
            }
            ProjectionsCommand::Retry { name } => {
                let n = admin::retry(&pool, &name).await?;
                println!("{name}: {n} dead letter(s) will be retried");
            }
            ProjectionsCommand::Skip { name } => {
                let position = admin::skip(&pool, &name).await?;
                println!("{name}: skipped the event at position {position}");
            }
            ProjectionsCommand::Rebuild { names, batch_size } => {
                rebuild_with_progress(&pool, &names, batch_size).await?;
            }
            ProjectionsCommand::Pause { name } => {
                admin::pause(&pool, &name).await?;
                println!("{name}: paused");
            }
            ProjectionsCommand::Resume { name } => {
                admin::resume(&pool, &name).await?;
                println!("{name}: running");
            }
        }
        anyhow::Ok(())
    }
    .await;
    database.shutdown(false).await;
    result
}

/// Runs rebuilds in this process with a progress bar each; Ctrl-C stops
/// them between batches, to be resumed by the same command.
async fn rebuild_with_progress(
    pool: &PgPool,
    names: &[String],
    batch_size: i64,
) -> anyhow::Result<()> {
    use projections::rebuild::{self, Rebuild};
    let workflows = projections::workflows::WorkflowSettings::default();
    let projectors = startup::projectors(pool, &workflows);
    let instance = format!("cli-{}", std::process::id());
    let bars = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>14} {wide_bar} {human_pos}/{human_len} events  {msg}  {eta} left",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let mut jobs = Vec::new();
    let mut progress = std::collections::HashMap::new();
    for name in names {
        let projector = rebuild::find(&projectors, name)?;
        let job = Rebuild::start(pool, projector, batch_size, &instance).await?;
        let status = job.status();
        if job.resumed() {
            println!(
                "{name}: resuming the rebuild of version {} after {} events",
                status.version, status.processed
            );
        } else {
            println!(
                "{name}: rebuilding version {} from the start",
                status.version
            );
        }
        let bar = bars.add(indicatif::ProgressBar::new(status.total.max(0) as u64));
        bar.set_style(style.clone());
        bar.set_prefix(name.clone());
        bar.set_position(status.processed.max(0) as u64);
        progress.insert(name.clone(), bar);
        jobs.push(job);
    }
    let cancel = CancellationToken::new();
    let on_signal = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    let started = std::time::Instant::now();
    let outcome = rebuild::run_together(
        jobs,
        |s| {
            if let Some(bar) = progress.get(&s.name) {
                bar.set_length(s.total.max(0) as u64);
                bar.set_position(s.processed.max(0) as u64);
                bar.set_message(format!("{:.0} events/s", s.events_per_second));
            }
        },
        &cancel,
    )
    .await;
    on_signal.abort();
    for bar in progress.values() {
        bar.finish_and_clear();
    }
    for done in outcome? {
        println!(
            "{}: version {} switched in after {} events in {:.1} s, {:.0} events/s",
            done.name,
            done.version,
            done.processed,
            started.elapsed().as_secs_f64(),
            done.events_per_second
        );
    }
    Ok(())
}

async fn audit_verify(settings: DatabaseSettings) -> anyhow::Result<()> {
    let database = Database::resolve(&settings).await?;
    let result = async {
        let pool = startup::connect(&database.url, 2).await?;
        startup::migrate(&pool).await?;
        let report = projections::audit::verify(&pool).await?;
        if report.holds() {
            println!(
                "ok: {} events, every hash link holds; {} sealed streams reach their seals",
                report.events_checked, report.streams_sealed
            );
            return anyhow::Ok(());
        }
        let mut findings = Vec::new();
        if let Some(b) = &report.first_broken {
            findings.push(format!(
                "broken: {b}; {} events before it hold",
                report.events_checked
            ));
        }
        findings.extend(report.broken_seals.iter().map(ToString::to_string));
        anyhow::bail!("{}", findings.join("\n"))
    }
    .await;
    database.shutdown(false).await;
    result
}

async fn audit_order(id: uuid::Uuid, json: bool, settings: DatabaseSettings) -> anyhow::Result<()> {
    let database = Database::resolve(&settings).await?;
    let result = async {
        let pool = startup::connect(&database.url, 2).await?;
        startup::migrate(&pool).await?;
        crate::master_key::open(&pool, &settings).await?;
        let events = projections::audit::history(&pool, "Order", &id.to_string()).await?;
        if events.is_empty() {
            anyhow::bail!("there is no order {id}");
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&events)?);
            return Ok(());
        }
        println!("order {id}: {} events", events.len());
        for e in &events {
            println!(
                "{}  #{:<3} {:<24} by {}  (command {}, request {}, position {})",
                e.recorded_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                e.sequence,
                e.event_type,
                e.actor.as_deref().unwrap_or("?"),
                e.command.as_deref().unwrap_or("?"),
                e.correlation_id.as_deref().unwrap_or("?"),
                e.position,
            );
        }
        anyhow::Ok(())
    }
    .await;
    database.shutdown(false).await;
    result
}

async fn migrate(settings: DatabaseSettings) -> anyhow::Result<()> {
    let database = Database::resolve(&settings).await?;
    let result = async {
        let pool = startup::connect(&database.url, 2).await?;
        startup::migrate(&pool).await?;
        tracing::info!("migrations applied");
        anyhow::Ok(())
    }
    .await;
    database.shutdown(false).await;
    result
}
