//! Typed configuration: flags, with environment variables as their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use projections::secret::Secret;
use projections::{runtime, workflows};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where the shop runs. Production refuses what is only fit for trying it
/// out (the simulated payment gateway) unless told explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Environment {
    #[default]
    Development,
    Production,
}

/// Which payment gateway charges cards. The simulated one is the only
/// implementation today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PaymentGatewayKind {
    /// Approves every card but the contract's test cards (`tok_visa`
    /// always approves); nothing is really charged.
    #[default]
    Simulated,
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

    /// The master key that wraps the personal data keys: 32 bytes as 64 hex
    /// digits or base64. Without it, the key kept in the data folder
    /// (`master-key`) is used, made on first start when the database has no
    /// personal data keys yet. Every process on one database needs the same
    /// key; see docs/personal-data.md.
    #[arg(long, env = "SHOP_MASTER_KEY", hide_env_values = true, global = true)]
    pub master_key: Option<Secret>,

    /// Most connections the pool opens.
    #[arg(
        long,
        env = "SHOP_DB_MAX_CONNECTIONS",
        default_value_t = 20,
        global = true
    )]
    pub db_max_connections: u32,

    /// Longest a single SQL statement of the HTTP API may run before
    /// PostgreSQL cancels it, in milliseconds (0: no limit).
    #[arg(
        long,
        env = "SHOP_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = DEFAULT_DB_STATEMENT_TIMEOUT_MS,
        global = true
    )]
    pub db_statement_timeout_ms: u64,
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
    pub jwt_secret: Option<Secret>,

    /// How long a sign-in token is valid, in seconds.
    #[arg(long, env = "SHOP_TOKEN_TTL_SECONDS", default_value_t = DEFAULT_TOKEN_TTL_SECONDS)]
    pub token_ttl_seconds: u32,

    /// How long an account's role and token version are remembered when a
    /// token is checked, in seconds: a token of a demoted account, or one
    /// revoked with `shop users revoke`, works at most this long after.
    /// 0 reads the account on every request.
    #[arg(long, env = "SHOP_TOKEN_CHECK_CACHE_SECONDS", default_value_t = 5)]
    pub token_check_cache_seconds: u32,

    /// Sign-in attempts allowed per client address per minute.
    #[arg(long, env = "SHOP_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE)]
    pub login_attempts_per_minute: u32,

    /// Failed sign-ins allowed per account (from any address) in a burst,
    /// then one a minute.
    #[arg(long, env = "SHOP_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = DEFAULT_LOGIN_FAILURES_PER_ACCOUNT)]
    pub login_failures_per_account: u32,

    /// Reverse proxies (addresses or networks, comma-separated) whose
    /// `Forwarded` or `X-Forwarded-For` header names the client; the
    /// right-most address there that is not one of them is the client's.
    /// Without any, the client is the TCP peer.
    #[arg(long, env = "SHOP_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The seller's name printed on invoices.
    #[arg(long, env = "SHOP_SELLER_NAME", default_value = DEFAULT_SELLER_NAME)]
    pub seller_name: String,

    /// The seller's address printed on invoices (one line).
    #[arg(long, env = "SHOP_SELLER_ADDRESS", default_value = "")]
    pub seller_address: String,

    #[command(flatten)]
    pub limits: LimitSettings,
}

/// Default of `--seller-name`.
pub const DEFAULT_SELLER_NAME: &str = "Shop";
/// Default of `--token-ttl-seconds`.
pub const DEFAULT_TOKEN_TTL_SECONDS: u32 = 900;
/// Default of `--login-attempts-per-minute`.
pub const DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE: u32 = 20;
/// Default of `--login-failures-per-account`: above what one address may
/// try (`--login-attempts-per-minute`), so bad attempts from one address
/// alone never lock the account for its owner elsewhere; guessing from
/// many addresses is what it stops.
pub const DEFAULT_LOGIN_FAILURES_PER_ACCOUNT: u32 = 30;
/// Default of `--request-timeout-secs`.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Default of `--max-concurrent-requests`.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 512;
/// Default of `--header-read-timeout-secs`.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default of `--password-hash-queue`.
pub const DEFAULT_PASSWORD_HASH_QUEUE: usize = 64;
/// Default of `--register-attempts-per-minute`.
pub const DEFAULT_REGISTER_ATTEMPTS_PER_MINUTE: u32 = 10;
/// Default of `--coupon-attempts-per-minute`.
pub const DEFAULT_COUPON_ATTEMPTS_PER_MINUTE: u32 = 10;
/// Default of `--payment-attempts-per-minute`.
pub const DEFAULT_PAYMENT_ATTEMPTS_PER_MINUTE: u32 = 20;
/// Default of `--orders-per-minute`.
pub const DEFAULT_ORDERS_PER_MINUTE: u32 = 30;
/// Default of `--db-statement-timeout-ms`.
pub const DEFAULT_DB_STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// Bounds at the edge of the HTTP server: how long and how many requests
/// may take, and how much password hashing a burst may ask for.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Longest a request may take, from its headers to its answer (beyond:
    /// 408), in seconds.
    #[arg(long, env = "SHOP_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS)]
    pub request_timeout_secs: u64,

    /// Requests served at once; more are shed with 503 and `Retry-After`.
    #[arg(long, env = "SHOP_MAX_CONCURRENT_REQUESTS", default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,

    /// How long a connection may take to send a request's headers (an idle
    /// or half-sent one is closed after it), in seconds.
    #[arg(long, env = "SHOP_HEADER_READ_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS)]
    pub header_read_timeout_secs: u64,

    /// Sign-ups and sign-ins that may wait for a password hashing slot;
    /// beyond, they are answered 503 with `Retry-After`.
    #[arg(long, env = "SHOP_PASSWORD_HASH_QUEUE", default_value_t = DEFAULT_PASSWORD_HASH_QUEUE)]
    pub password_hash_queue: usize,

    /// Sign-ups allowed per client address in a burst, then one a minute
    /// (beyond: 429).
    #[arg(long, env = "SHOP_REGISTER_ATTEMPTS_PER_MINUTE", default_value_t = DEFAULT_REGISTER_ATTEMPTS_PER_MINUTE)]
    pub register_attempts_per_minute: u32,

    /// Coupons a customer may try to apply in a burst, then one a minute
    /// (beyond: 429), so codes cannot be guessed.
    #[arg(long, env = "SHOP_COUPON_ATTEMPTS_PER_MINUTE", default_value_t = DEFAULT_COUPON_ATTEMPTS_PER_MINUTE)]
    pub coupon_attempts_per_minute: u32,

    /// Card tokenizations and wallet top-ups a customer may ask for in a
    /// burst, then one a minute (beyond: 429).
    #[arg(long, env = "SHOP_PAYMENT_ATTEMPTS_PER_MINUTE", default_value_t = DEFAULT_PAYMENT_ATTEMPTS_PER_MINUTE)]
    pub payment_attempts_per_minute: u32,

    /// Orders a customer may place in a burst, then one a minute (beyond:
    /// 429).
    #[arg(long, env = "SHOP_ORDERS_PER_MINUTE", default_value_t = DEFAULT_ORDERS_PER_MINUTE)]
    pub orders_per_minute: u32,
}

impl LimitSettings {
    pub fn edge_limits(&self) -> crate::limits::EdgeLimits {
        crate::limits::EdgeLimits {
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs.max(1)),
            max_concurrent_requests: self.max_concurrent_requests.max(1),
            header_read_timeout: std::time::Duration::from_secs(
                self.header_read_timeout_secs.max(1),
            ),
            password_hash_queue: self.password_hash_queue,
            register_attempts_per_minute: self.register_attempts_per_minute,
            coupon_attempts_per_minute: self.coupon_attempts_per_minute,
            payment_attempts_per_minute: self.payment_attempts_per_minute,
            orders_per_minute: self.orders_per_minute,
        }
    }
}

/// Settings of the projector runtime.
#[derive(Debug, Clone, Args)]
pub struct ProjectorSettings {
    /// How long an idle projector waits for a notification before it reads
    /// the log anyway, in milliseconds.
    #[arg(long, env = "SHOP_PROJECTOR_POLL_MS", default_value_t = runtime::DEFAULT_POLL_INTERVAL_MS)]
    pub projector_poll_ms: u64,

    /// Events a projector applies per transaction.
    #[arg(long, env = "SHOP_PROJECTOR_BATCH", default_value_t = runtime::DEFAULT_BATCH_SIZE)]
    pub projector_batch: i64,

    /// How long a placed order may stay unpaid before the fulfilment
    /// workflow cancels it (`payment_timeout`) and releases its stock, in
    /// seconds.
    #[arg(long, env = "SHOP_PAYMENT_TIMEOUT_SECS", default_value_t = workflows::DEFAULT_PAYMENT_TIMEOUT_SECS)]
    pub payment_timeout_secs: u64,

    /// How often the workflows look for due deadlines, in milliseconds.
    #[arg(long, env = "SHOP_DEADLINE_POLL_MS", default_value_t = workflows::DEFAULT_DEADLINE_POLL_MS)]
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
    pub payment_webhook_secret: Option<Secret>,

    /// SMTP relay for the notification emails, e.g.
    /// `smtp://user:password@mail.example.com:587?tls=required`. Without it,
    /// notifications are written to the log.
    #[arg(long, env = "SHOP_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Sender of the notification emails.
    #[arg(long, env = "SHOP_MAIL_FROM", default_value = workflows::DEFAULT_MAIL_FROM)]
    pub mail_from: String,

    /// Orders the fulfilment workflow acts on at once (each order's events
    /// stay in order).
    #[arg(long, env = "SHOP_WORKFLOW_LANES", default_value_t = projections::projector::DEFAULT_LANES)]
    pub workflow_lanes: usize,

    /// Where the shop runs: `development` or `production`.
    #[arg(long, env = "SHOP_ENVIRONMENT", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,

    /// The payment gateway that charges cards (the HTTP API's top-ups and
    /// the fulfilment workflow's order payments).
    #[arg(long, env = "SHOP_PAYMENT_GATEWAY", value_enum, default_value_t = PaymentGatewayKind::Simulated)]
    pub payment_gateway: PaymentGatewayKind,

    /// Allow the simulated payment gateway in production (a staging
    /// deployment, a demo): every card "pays" without money moving.
    #[arg(long, env = "SHOP_ALLOW_SIMULATED_GATEWAY")]
    pub allow_simulated_gateway: bool,

    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Where integration events go and other services' facts come from.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server with JetStream, e.g. `nats://127.0.0.1:4222`. Without
    /// it, no integration event is published and no inbound fact consumed
    /// (the HTTP feed `/v1/events/feed` still works).
    #[arg(long, env = "SHOP_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<Secret>,

    /// The JetStream stream of the shop's facts (created or updated at
    /// start); other services' facts go to `<stream>_INBOUND`.
    #[arg(long, env = "SHOP_NATS_STREAM", default_value = projections::integration::nats::DEFAULT_STREAM)]
    pub nats_stream: String,

    /// The first token of every subject: `<prefix>.order.placed`,
    /// `<prefix>.inbound.carrier.delivered`.
    #[arg(long, env = "SHOP_NATS_PREFIX", default_value = projections::integration::nats::DEFAULT_PREFIX)]
    pub nats_prefix: String,
}

impl NatsArgs {
    /// The NATS settings, `None` without a URL.
    pub fn settings(&self) -> Option<projections::integration::nats::NatsSettings> {
        let url = self.nats_url.as_ref()?;
        Some(projections::integration::nats::NatsSettings {
            url: url.clone(),
            stream: self.nats_stream.clone(),
            prefix: self.nats_prefix.clone(),
        })
    }
}

/// The sentence a production start with the simulated gateway fails with.
pub const SIMULATED_GATEWAY_IN_PRODUCTION: &str = "SHOP_ENVIRONMENT=production refuses the simulated payment gateway (SHOP_PAYMENT_GATEWAY=simulated): with it every card pays without money moving, and the test token tok_visa tops up any wallet. Configure a real gateway, or set SHOP_ALLOW_SIMULATED_GATEWAY=true to run with the simulator on purpose";

impl ProjectorSettings {
    /// The payment gateway to use, or why this deployment may not start
    /// with it.
    pub fn payment_gateway(&self) -> Result<PaymentGatewayKind, &'static str> {
        match (self.payment_gateway, self.environment) {
            (PaymentGatewayKind::Simulated, Environment::Production)
                if !self.allow_simulated_gateway =>
            {
                Err(SIMULATED_GATEWAY_IN_PRODUCTION)
            }
            (gateway, _) => Ok(gateway),
        }
    }

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
        payment_webhook_secret: Secret,
        default_callback: Option<String>,
    ) -> projections::workflows::WorkflowSettings {
        projections::workflows::WorkflowSettings {
            payment_timeout: std::time::Duration::from_secs(self.payment_timeout_secs.max(1)),
            deadline_poll: std::time::Duration::from_millis(self.deadline_poll_ms.max(10)),
            payment_callback_url: self.payment_callback_url.clone().or(default_callback),
            payment_webhook_secret,
            smtp_url: self.smtp_url.as_ref().map(|url| url.expose().to_string()),
            mail_from: self.mail_from.clone(),
            lanes: self.workflow_lanes.clamp(1, 1024),
            nats: self.nats.settings(),
            ..Default::default()
        }
    }
}

/// A trusted proxy's address or network, e.g. `10.0.0.5` or `172.16.0.0/12`.
pub fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a network (`10.0.0.0/8`)"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        settings: ServeSettings,
    }

    const JWT: &str = "jwt-secret-that-is-long-enough-0123456789";
    const HOOK: &str = "webhook-secret-that-is-long-enough-012345";
    const SMTP: &str = "smtp://mailer:mail-password-42@mail.example.com:587";
    const NATS: &str = "nats://shop:nats-password-77@nats.example.com:4222";

    #[test]
    fn printing_the_settings_shows_no_secret() {
        let parsed = Serve::try_parse_from([
            "shop",
            "--jwt-secret",
            JWT,
            "--payment-webhook-secret",
            HOOK,
            "--smtp-url",
            SMTP,
            "--nats-url",
            NATS,
        ])
        .expect("the flags parse");
        let text = format!("{parsed:?}");
        for secret in [JWT, HOOK, "mail-password-42", "nats-password-77"] {
            assert!(!text.contains(secret), "{secret} is printed: {text}");
        }
        assert!(text.contains("[redacted]"));
        let settings = &parsed.settings;
        assert_eq!(
            settings.api.jwt_secret.as_ref().map(Secret::expose),
            Some(JWT)
        );

        let workflows = settings.projectors.workflow_settings(HOOK.into(), None);
        let text = format!("{workflows:?}");
        assert!(workflows.nats.is_some());
        for secret in [HOOK, "mail-password-42", "nats-password-77"] {
            assert!(!text.contains(secret), "{secret} is printed: {text}");
        }
    }
}
