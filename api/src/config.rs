//! Typed configuration: flags, with environment variables as their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where the database is. The flags are global, so they may also follow a
/// subcommand (`shop audit verify --database-url ...`).
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL. Without it, a private cluster is started in
    /// the data folder from the installed PostgreSQL binaries.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Folder for the private PostgreSQL cluster and local secrets.
    #[arg(long, env = "SHOP_DATA_DIR", default_value = ".data", global = true)]
    pub data_dir: PathBuf,

    /// Most connections the pool opens.
    #[arg(
        long,
        env = "SHOP_DB_MAX_CONNECTIONS",
        default_value_t = 20,
        global = true
    )]
    pub db_max_connections: u32,
}

/// Settings of `shop serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,

    /// Address to listen on.
    #[arg(long, env = "SHOP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The shop's currency (ISO-4217).
    #[arg(long, env = "SHOP_CURRENCY", default_value = "USD")]
    pub currency: String,

    #[command(flatten)]
    pub api: ApiSettings,

    /// Serve HTTP only; run the projectors elsewhere (`shop projectors`).
    #[arg(long, env = "SHOP_NO_PROJECTORS")]
    pub no_projectors: bool,

    #[command(flatten)]
    pub projectors: ProjectorSettings,
}

/// Settings of the HTTP API itself (beyond where it listens).
#[derive(Debug, Clone, Args)]
pub struct ApiSettings {
    /// Secret for signing tokens (at least 32 bytes). Without it, a random
    /// secret is generated once and kept in the data folder (`jwt-secret`).
    #[arg(long, env = "SHOP_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// How long a sign-in token is valid, in seconds.
    #[arg(long, env = "SHOP_TOKEN_TTL_SECONDS", default_value_t = 900)]
    pub token_ttl_seconds: u32,

    /// How long an account's role and token version are remembered when a
    /// token is checked, in seconds: a token of a demoted account, or one
    /// revoked with `shop users revoke`, works at most this long after.
    /// 0 reads the account on every request.
    #[arg(long, env = "SHOP_TOKEN_CHECK_CACHE_SECONDS", default_value_t = 5)]
    pub token_check_cache_seconds: u32,

    /// Sign-in attempts allowed per client address per minute.
    #[arg(long, env = "SHOP_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 20)]
    pub login_attempts_per_minute: u32,

    /// The seller's name printed on invoices.
    #[arg(long, env = "SHOP_SELLER_NAME", default_value = "Shop")]
    pub seller_name: String,

    /// The seller's address printed on invoices (one line).
    #[arg(long, env = "SHOP_SELLER_ADDRESS", default_value = "")]
    pub seller_address: String,
}

/// Settings of the projector runtime.
#[derive(Debug, Clone, Args)]
pub struct ProjectorSettings {
    /// How long an idle projector waits for a notification before it reads
    /// the log anyway, in milliseconds.
    #[arg(long, env = "SHOP_PROJECTOR_POLL_MS", default_value_t = 1000)]
    pub projector_poll_ms: u64,

    /// Events a projector applies per transaction.
    #[arg(long, env = "SHOP_PROJECTOR_BATCH", default_value_t = 2_000)]
    pub projector_batch: i64,

    /// How long a placed order may stay unpaid before the fulfilment
    /// workflow cancels it (`payment_timeout`) and releases its stock, in
    /// seconds.
    #[arg(long, env = "SHOP_PAYMENT_TIMEOUT_SECS", default_value_t = 900)]
    pub payment_timeout_secs: u64,

    /// How often the workflows look for due deadlines, in milliseconds.
    #[arg(long, env = "SHOP_DEADLINE_POLL_MS", default_value_t = 1000)]
    pub deadline_poll_ms: u64,

    /// Where the simulated payment gateway posts its callbacks. Default for
    /// `shop serve`: its own `/v1/payments/webhook` on the listen address;
    /// `shop projectors` sends none without it.
    #[arg(long, env = "SHOP_PAYMENT_CALLBACK_URL")]
    pub payment_callback_url: Option<String>,

    /// Secret that signs and verifies payment gateway callbacks
    /// (HMAC-SHA256, at least 32 characters). Without it, a random secret
    /// is generated once and kept in the data folder
    /// (`payment-webhook-secret`).
    #[arg(long, env = "SHOP_PAYMENT_WEBHOOK_SECRET", hide_env_values = true)]
    pub payment_webhook_secret: Option<String>,

    /// SMTP relay for the notification emails, e.g.
    /// `smtp://user:password@mail.example.com:587?tls=required`. Without it,
    /// notifications are written to the log.
    #[arg(long, env = "SHOP_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of the notification emails.
    #[arg(long, env = "SHOP_MAIL_FROM", default_value = "Shop <shop@localhost>")]
    pub mail_from: String,

    /// Orders the fulfilment workflow acts on at once (each order's events
    /// stay in order).
    #[arg(long, env = "SHOP_WORKFLOW_LANES", default_value_t = 32)]
    pub workflow_lanes: usize,
}

impl ProjectorSettings {
    pub fn runtime_config(&self) -> projections::runtime::RuntimeConfig {
        projections::runtime::RuntimeConfig {
            batch_size: self.projector_batch.clamp(1, 10_000),
            poll_interval: std::time::Duration::from_millis(self.projector_poll_ms.max(10)),
            ..Default::default()
        }
    }

    /// The workflows' settings, with the webhook secret resolved (see
    /// `cli::webhook_secret`) and the callback URL (`default_callback` when
    /// none is configured).
    pub fn workflow_settings(
        &self,
        payment_webhook_secret: String,
        default_callback: Option<String>,
    ) -> projections::workflows::WorkflowSettings {
        projections::workflows::WorkflowSettings {
            payment_timeout: std::time::Duration::from_secs(self.payment_timeout_secs.max(1)),
            deadline_poll: std::time::Duration::from_millis(self.deadline_poll_ms.max(10)),
            payment_callback_url: self.payment_callback_url.clone().or(default_callback),
            payment_webhook_secret,
            smtp_url: self.smtp_url.clone(),
            mail_from: self.mail_from.clone(),
            lanes: self.workflow_lanes.clamp(1, 1024),
            ..Default::default()
        }
    }
}
