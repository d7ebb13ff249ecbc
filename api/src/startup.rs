//! Building and running the application: database pool, migrations, router,
//! listener, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::Router;
use domain::cart::CartServices;
use domain::category::CategoryServices;
use domain::product::ProductServices;
use domain::values::Currency;
use projections::audit::seal::AuditSeal;
use projections::event_store::CommandBus;
use projections::lookups::EventStoreLookups;
use projections::notifications::smtp::SmtpNotifier;
use projections::notifications::{Delivery, LogNotifier, NotificationsProjector, Notifier};
use projections::payments::SimulatedGateway;
use projections::projector::Projector;
use projections::runtime::RuntimeConfig;
pub use projections::secret::Secret;
use projections::shipping::SimulatedCarrier;
use projections::supervisor::ProjectorRuntime;
use projections::workflows::WorkflowSettings;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;

use crate::error;
use crate::limits::{FailureLimiter, Limiter};
use crate::routes;
use crate::tokens::TokenKeys;

pub use crate::app::state::{AppState, Seller};
pub use crate::limits::{CustomerLimits, EdgeLimits};

/// What the API needs beyond the database.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub jwt_secret: Secret,
    pub token_ttl: chrono::Duration,
    /// How long an account's role and token version are remembered when a
    /// token is checked: a revoked or demoted token works at most this
    /// long after the change.
    pub token_check_cache: Duration,
    pub currency: Currency,
    pub login_attempts_per_minute: u32,
    /// Failed sign-ins per account in a burst, then one a minute.
    pub login_failures_per_account: u32,
    /// The reverse proxies whose `Forwarded`/`X-Forwarded-For` name the
    /// client (see `crate::client`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The secret the payment gateway signs its callbacks with.
    pub payment_webhook_secret: Secret,
    pub seller: Seller,
    pub limits: EdgeLimits,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        use crate::config::*;
        Self {
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            password_hash_queue: DEFAULT_PASSWORD_HASH_QUEUE,
            register_attempts_per_minute: DEFAULT_REGISTER_ATTEMPTS_PER_MINUTE,
            coupon_attempts_per_minute: DEFAULT_COUPON_ATTEMPTS_PER_MINUTE,
            payment_attempts_per_minute: DEFAULT_PAYMENT_ATTEMPTS_PER_MINUTE,
            orders_per_minute: DEFAULT_ORDERS_PER_MINUTE,
        }
    }
}

/// The default of [`AppConfig::token_check_cache`].
pub const DEFAULT_TOKEN_CHECK_CACHE: Duration = Duration::from_secs(5);

impl AppConfig {
    /// Defaults with a fresh random secret (tests, tools).
    pub fn with_random_secret() -> Self {
        Self {
            jwt_secret: crate::secrets::random_secret().into(),
            token_ttl: chrono::Duration::seconds(i64::from(
                crate::config::DEFAULT_TOKEN_TTL_SECONDS,
            )),
            token_check_cache: DEFAULT_TOKEN_CHECK_CACHE,
            currency: Currency::usd(),
            login_attempts_per_minute: crate::config::DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE,
            login_failures_per_account: crate::config::DEFAULT_LOGIN_FAILURES_PER_ACCOUNT,
            trusted_proxies: Vec::new(),
            seller: Seller::default(),
            payment_webhook_secret: crate::secrets::random_secret().into(),
            limits: EdgeLimits::default(),
        }
    }
}

impl AppState {
    pub fn new(pool: PgPool, config: AppConfig) -> Self {
        crate::metrics::handle();
        let lookups = Arc::new(EventStoreLookups::new(pool.clone()));
        Self {
            tokens: Arc::new(TokenKeys::new(
                config.jwt_secret.expose().as_bytes(),
                config.token_ttl,
            )),
            standings: Arc::new(crate::app::token_standing::StandingCache::new(
                config.token_check_cache,
            )),
            account_ids: Arc::default(),
            login_limiter: Arc::new(Limiter::per_minute(config.login_attempts_per_minute)),
            login_failures: Arc::new(FailureLimiter::per_minute(
                config.login_failures_per_account,
            )),
            trusted_proxies: config.trusted_proxies.into(),
            register_limiter: Arc::new(Limiter::per_minute(
                config.limits.register_attempts_per_minute,
            )),
            hashing: Arc::new(crate::app::passwords::PasswordHashing::new(
                config.limits.password_hash_queue,
            )),
            customer_limits: Arc::new(CustomerLimits::new(&config.limits)),
            limits: config.limits,
            currency: config.currency,
            customers: CommandBus::new(pool.clone(), ()),
            categories: CommandBus::new(pool.clone(), CategoryServices::new(lookups.clone())),
            shops: CommandBus::new(pool.clone(), ()),
            products: CommandBus::new(pool.clone(), ProductServices::new(lookups.clone())),
            skus: CommandBus::new(pool.clone(), ()),
            inventory: CommandBus::new(pool.clone(), ()),
            carts: CommandBus::new(
                pool.clone(),
                CartServices {
                    catalog: lookups.clone(),
                    coupons: lookups.clone(),
                },
            ),
            coupons: CommandBus::new(pool.clone(), ()),
            orders: CommandBus::new(pool.clone(), ()),
            seller: config.seller,
            carrier: Arc::new(SimulatedCarrier),
            wallets: CommandBus::new(pool.clone(), ()),
            gateway: Arc::new(SimulatedGateway::new(pool.clone())),
            payment_webhook_secret: config.payment_webhook_secret.expose().into(),
            // For lookups by name only (e.g. rebuilds, which refuse workflows).
            projectors: projectors(&pool, &WorkflowSettings::default()).into(),
            background: CancellationToken::new(),
            pool,
        }
    }
}

/// Every projector a server runs: the read models, the notifications
/// outbox, the audit seal, the workflows, then (with NATS configured) the
/// integration event publisher.
pub fn projectors(pool: &PgPool, workflows: &WorkflowSettings) -> Vec<Arc<dyn Projector>> {
    let mut projectors = projections::read_models::all();
    projectors.push(Arc::new(NotificationsProjector));
    projectors.push(Arc::new(AuditSeal));
    projectors.extend(projections::workflows::all(pool, workflows));
    if let Some(nats) = &workflows.nats {
        projectors.push(Arc::new(
            projections::integration::publisher::Publisher::new(nats.clone()),
        ));
    }
    projectors
}

/// The projector runtime of `shop serve` and `shop projectors`: read models,
/// the notifications outbox, the audit seal and workflows, with the outbox's
/// delivery (to the log) and the workflows' deadline poller.
///
/// Fails when the SMTP settings are unusable.
pub fn projector_runtime(
    pool: PgPool,
    config: RuntimeConfig,
    workflows: &WorkflowSettings,
) -> Result<ProjectorRuntime, String> {
    let all = projectors(&pool, workflows);
    projector_runtime_of(pool, config, workflows, all)
}

/// [`projector_runtime`] running `projectors` (e.g. the workflows with
/// another payment gateway) instead of [`projectors`].
pub fn projector_runtime_of(
    pool: PgPool,
    config: RuntimeConfig,
    workflows: &WorkflowSettings,
    projectors: Vec<Arc<dyn Projector>>,
) -> Result<ProjectorRuntime, String> {
    let notifier: Arc<dyn Notifier> = match &workflows.smtp_url {
        Some(url) => Arc::new(SmtpNotifier::new(url, &workflows.mail_from)?),
        None => Arc::new(LogNotifier),
    };
    let delivery = Delivery {
        pool: pool.clone(),
        notifier,
        interval: config.poll_interval,
    };
    let mut runtime =
        ProjectorRuntime::new(pool.clone(), projectors, config).with_task(Arc::new(delivery));
    for task in projections::workflows::background(&pool, workflows) {
        runtime = runtime.with_task(task);
    }
    Ok(runtime)
}

/// Connects a pool to `url`. Connections are made lazily, so a server whose
/// database is down still starts and answers `/health/ready` with 503.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    connect_with_statement_timeout(url, max_connections, None).await
}

/// [`connect`], with PostgreSQL cancelling any statement of the pool's
/// connections that runs longer than `statement_timeout` (the HTTP API's
/// pool: a request's query cannot hold a connection for long).
pub async fn connect_with_statement_timeout(
    url: &str,
    max_connections: u32,
    statement_timeout: Option<Duration>,
) -> Result<PgPool, sqlx::Error> {
    let mut options = sqlx::postgres::PgConnectOptions::from_str(url)?;
    if let Some(timeout) = statement_timeout.filter(|t| !t.is_zero()) {
        options = options.options([("statement_timeout", timeout.as_millis().to_string())]);
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    projections::MIGRATOR.run(pool).await
}

/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let (routes, _) = routes::api().split_for_parts();
    let routes = routes
        .fallback(error::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        // The bounds of every request: past `max_concurrent_requests` at
        // once a request is shed at once (503 with `Retry-After`) rather
        // than queued, and one that takes longer than `request_timeout` (a
        // client that sends its body too slowly, or anything else) is
        // answered 408, both in the one error shape. The concurrency limit
        // is one for the whole server (axum applies a layer to each route).
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(edge_error))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    limits.max_concurrent_requests,
                ))
                .timeout(limits.request_timeout),
        )
        // One log line per answer (method, path, status, latency) in a span
        // that carries the request's correlation id (the server's, also in
        // the metadata of every event the request writes) and the client's
        // own `X-Request-Id`, if it sent one.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let ids = request.extensions().get::<crate::extract::RequestId>();
                    let id = ids.map_or("", |r| r.correlation_id.as_str());
                    let client = ids
                        .and_then(|r| r.client_request_id.as_deref())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %id,
                        client_request_id = %client,
                    )
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                ),
        )
        .layer(axum::middleware::from_fn(crate::extract::request_id));
    with_security_headers(routes).with_state(state)
}

/// The answer of a request the edge bounds stopped.
async fn edge_error(error: tower::BoxError) -> error::ApiError {
    use axum::http::StatusCode;
    if error.is::<tower::load_shed::error::Overloaded>() {
        error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error::codes::OVERLOADED,
            "The server is serving as many requests as it can; try again shortly.",
        )
    } else if error.is::<tower::timeout::error::Elapsed>() {
        error::ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            error::codes::REQUEST_TIMEOUT,
            "The request took too long; send it again.",
        )
    } else {
        error::ApiError::internal(error)
    }
}

/// What an answer may do in a browser when it sets nothing of its own: load
/// nothing, run nothing, be framed by no one. JSON needs nothing; the pages
/// (`/docs`, the printable invoice) set their own policy.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The security headers of every answer, errors included: `nosniff` always;
/// `Cache-Control: no-store` (most answers are someone's own data, and every
/// read may be newer a moment later), a content security policy and
/// `X-Frame-Options: DENY` unless the route sets its own (the Redoc bundle is
/// cached on purpose, the pages have their policies); no `Referer` leaves.
fn with_security_headers(router: Router<AppState>) -> Router<AppState> {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
}

impl Application {
    /// Binds `listen` (port 0 picks a free port) and builds the router.
    pub async fn build(listen: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let header_read_timeout = state.limits.header_read_timeout;
        Ok(Self {
            listener,
            router: router(state),
            header_read_timeout,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    ///
    /// Each connection is served by hyper (HTTP/1.1, as `axum::serve`
    /// would), and must send its request headers within
    /// `header_read_timeout` (the first request's, and each next one's on a
    /// kept-alive connection) or it is closed: idle or half-open connections
    /// cannot pile up.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use hyper_util::rt::{TokioIo, TokioTimer};
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: wait a moment
                        // rather than spin (as axum::serve does).
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let router = self.router.clone();
            let service = hyper::service::service_fn(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    tower::ServiceExt::oneshot(router.clone(), request)
                },
            );
            let connection =
                graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(self.listener);
        graceful.shutdown().await;
        Ok(())
    }
}

/// How long `serve` and `projectors` wait, after Ctrl-C or SIGTERM, for
/// in-flight requests and projector batches before they stop anyway
/// (nothing acknowledged is lost: a projector's unfinished batch rolls back
/// and is applied again at the next start).
pub const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(8);

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    #[test]
    fn printing_the_app_config_shows_no_secret() {
        let config = super::AppConfig::with_random_secret();
        let text = format!("{config:?}");
        assert!(!text.contains(config.jwt_secret.expose()), "{text}");
        assert!(
            !text.contains(config.payment_webhook_secret.expose()),
            "{text}"
        );
    }
}
