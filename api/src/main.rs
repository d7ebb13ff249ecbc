//! `shop`: the commerce backend's one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use api::config::{DatabaseSettings, LogFormat, ServeSettings};
use api::database::Database;
use api::startup::{self, AppState, Application};
use clap::{Parser, Subcommand};

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
    Serve(ServeSettings),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseSettings),
    /// Manage the private PostgreSQL cluster.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Stop the private cluster kept in the data folder, if it runs.
    Stop {
        #[arg(long, env = "SHOP_DATA_DIR", default_value = ".data")]
        data_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    api::telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Serve(settings) => serve(settings).await,
        Command::Migrate(settings) => migrate(settings).await,
        Command::Db {
            command: DbCommand::Stop { data_dir },
        } => api::postgres_cluster::stop(&data_dir)
            .await
            .map_err(anyhow::Error::from),
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
    let database = Database::resolve(&settings.database).await?;
    let result = serve_on(&settings, &database.url).await;
    database.shutdown().await;
    result
}

async fn serve_on(settings: &ServeSettings, url: &str) -> anyhow::Result<()> {
    let pool = startup::connect(url, settings.database.db_max_connections).await?;
    startup::migrate(&pool).await?;
    let app = Application::build(settings.listen, AppState { pool }).await?;
    tracing::info!(address = %app.local_addr()?, "listening");
    app.run_until_stopped(startup::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
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
    database.shutdown().await;
    result
}
