//! Building and running the application: database pool, migrations, router,
//! listener, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::Router;
use domain::cart::{Cart, CartServices};
use domain::category::{Category, CategoryServices};
use domain::coupon::Coupon;
use domain::customer::Customer;
use domain::inventory::InventoryItem;
use domain::order::Order;
use domain::payment::PaymentGateway;
use domain::product::{Product, ProductServices};
use domain::shipping::Carrier;
use domain::shop::Shop;
use domain::sku::SkuClaim;
use domain::values::Currency;
use domain::wallet::Wallet;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use projections::audit::seal::AuditSeal;
use projections::event_store::CommandBus;
use projections::lookups::EventStoreLookups;
use projections::notifications::smtp::SmtpNotifier;
use projections::notifications::{Delivery, LogNotifier, NotificationsProjector, Notifier};
use projections::payments::SimulatedGateway;
use projections::projector::Projector;
use projections::runtime::RuntimeConfig;
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

use crate::auth::{TokenKeys, Tokens};
use crate::error;
use crate::routes;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub tokens: Tokens,
    /// Accounts' current roles and token versions, remembered briefly, that
    /// every token is checked against.
    pub standings: Arc<crate::app::token_standing::StandingCache>,
    /// Derives new accounts' ids from usernames with the installation's key.
    pub account_ids: Arc<crate::app::account_ids::AccountIds>,
    pub login_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    pub currency: Currency,
    pub customers: CommandBus<Customer>,
    pub categories: CommandBus<Category>,
    pub shops: CommandBus<Shop>,
    pub products: CommandBus<Product>,
    pub skus: CommandBus<SkuClaim>,
    pub inventory: CommandBus<InventoryItem>,
    pub carts: CommandBus<Cart>,
    pub coupons: CommandBus<Coupon>,
    pub orders: CommandBus<Order>,
    /// Who issues the invoices.
    pub seller: Seller,
    /// Books shipments when an admin marks an order shipped.
    pub carrier: Arc<dyn Carrier>,
    pub wallets: CommandBus<Wallet>,
    /// The payment gateway (the simulated one by default).
    pub gateway: Arc<dyn PaymentGateway>,
    /// Verifies the gateway's callbacks (HMAC-SHA256).
    pub payment_webhook_secret: Arc<str>,
    /// The projectors this server knows (rebuilds look them up by name).
    pub projectors: Arc<[Arc<dyn Projector>]>,
    /// Cancelled at shutdown: background work (rebuilds) stops between
    /// batches and resumes at the next start.
    pub background: CancellationToken,
}

/// What the API needs beyond the database.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub jwt_secret: String,
    pub token_ttl: chrono::Duration,
    /// How long an account's role and token version are remembered when a
    /// token is checked: a revoked or demoted token works at most this
    /// long after the change.
    pub token_check_cache: Duration,
    pub currency: Currency,
    pub login_attempts_per_minute: u32,
    /// The secret the payment gateway signs its callbacks with.
    pub payment_webhook_secret: String,
    pub seller: Seller,
}

/// The seller named on invoices.
#[derive(Debug, Clone)]
pub struct Seller {
    pub name: String,
    pub address: String,
}

impl Default for Seller {
    fn default() -> Self {
        Self {
            name: "Shop".to_string(),
            address: String::new(),
        }
    }
}

/// The default of [`AppConfig::token_check_cache`].
pub const DEFAULT_TOKEN_CHECK_CACHE: Duration = Duration::from_secs(5);

impl AppConfig {
    /// Defaults with a fresh random secret (tests, tools).
    pub fn with_random_secret() -> Self {
        Self {
            jwt_secret: crate::secrets::random_secret(),
            token_ttl: chrono::Duration::minutes(15),
            token_check_cache: DEFAULT_TOKEN_CHECK_CACHE,
            currency: Currency::usd(),
            login_attempts_per_minute: 20,
            seller: Seller::default(),
            payment_webhook_secret: crate::secrets::random_secret(),
        }
    }
}

impl AppState {
    pub fn new(pool: PgPool, config: AppConfig) -> Self {
        crate::metrics::handle();
        let lookups = Arc::new(EventStoreLookups::new(pool.clone()));
        let per_minute =
            NonZeroU32::new(config.login_attempts_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            tokens: Arc::new(TokenKeys::new(
                config.jwt_secret.as_bytes(),
                config.token_ttl,
            )),
            standings: Arc::new(crate::app::token_standing::StandingCache::new(
                config.token_check_cache,
            )),
            account_ids: Arc::default(),
            // A burst of `per_minute` attempts, then one a minute: at most
            // per_minute + 1 in any minute (Quota::per_minute would refill
            // one every 60/n seconds and let twice as many through).
            login_limiter: Arc::new(RateLimiter::keyed(
                Quota::with_period(std::time::Duration::from_secs(60))
                    .unwrap_or_else(|| Quota::per_minute(per_minute))
                    .allow_burst(per_minute),
            )),
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
            payment_webhook_secret: config.payment_webhook_secret.into(),
            // For lookups by name only (e.g. rebuilds, which refuse workflows).
            projectors: projectors(&pool, &WorkflowSettings::default()).into(),
            background: CancellationToken::new(),
            pool,
        }
    }
}

/// Every projector a server runs: the read models, the notifications
/// outbox, the audit seal, then the workflows.
pub fn projectors(pool: &PgPool, workflows: &WorkflowSettings) -> Vec<Arc<dyn Projector>> {
    let mut projectors = projections::read_models::all();
    projectors.push(Arc::new(NotificationsProjector));
    projectors.push(Arc::new(AuditSeal));
    projectors.extend(projections::workflows::all(pool, workflows));
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
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    projections::MIGRATOR.run(pool).await
}

/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(routes::health::router())
        .merge(routes::accounts::router())
        .merge(routes::catalog::router())
        .merge(routes::inventory::router())
        .merge(routes::listings::router())
        .merge(routes::admin::router())
        .merge(routes::rebuilds::router())
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .merge(routes::cart::router())
        .merge(routes::coupons::router())
        .merge(routes::orders::router())
        .merge(routes::invoices::router())
        .merge(routes::notifications::router())
        .merge(routes::payments::router())
        .merge(crate::openapi::router())
        .fallback(error::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::metrics::track))
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
}

impl Application {
    /// Binds `listen` (port 0 picks a free port) and builds the router.
    pub async fn build(listen: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        Ok(Self {
            listener,
            router: router(state),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
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
