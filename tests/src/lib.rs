//! The test kit shared by every end-to-end test.
//!
//! Every test gets its own fresh, migrated database: on the server of
//! `DATABASE_URL` when it is set, otherwise on a private cluster (in
//! `.data/test`) started once per test run by the same code `shop serve`
//! uses. `spawn_app()` starts the real server on port 0 against it.
//!
//! Log output appears only when `TEST_LOG` is set.
#![forbid(unsafe_code)]

pub mod eventually;
pub mod nats;
pub mod seed;
pub mod server_process;

pub use eventually::{eventually, eventually_every};

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use api::config::LogFormat;
use api::staff::{StaffAccount, StaffOutcome};
use api::startup::{AppConfig, AppState, Application};
use domain::metadata::Role;
use projections::runtime::RuntimeConfig;
use projections::workflows::WorkflowSettings;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A URL for the server's maintenance database, found once per process.
static ADMIN_URL: OnceCell<String> = OnceCell::const_new();

/// Where the private test cluster lives.
pub fn test_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".data")
        .join("test")
}

async fn admin_url() -> &'static str {
    ADMIN_URL
        .get_or_init(|| async {
            if std::env::var_os("TEST_LOG").is_some() {
                api::telemetry::init(LogFormat::Text);
            }
            let url = match std::env::var("DATABASE_URL") {
                Ok(url) => url,
                Err(_) => start_private_cluster().await,
            };
            drop_abandoned_databases(&url).await;
            url
        })
        .await
}

/// Starts the test cluster, or adopts it when another test process already
/// did. A file lock keeps two processes from initialising it at once.
async fn start_private_cluster() -> String {
    let dir = test_data_dir();
    std::fs::create_dir_all(&dir).expect("create .data/test");
    let lock = std::fs::File::create(dir.join("start.lock")).expect("create the start lock");
    tokio::task::spawn_blocking({
        let lock = lock.try_clone().expect("clone the lock file");
        move || lock.lock()
    })
    .await
    .expect("join")
    .expect("lock .data/test/start.lock");
    let cluster = api::postgres_cluster::PrivateCluster::start(&dir)
        .await
        .unwrap_or_else(|e| panic!("cannot start the private test cluster: {e}"));
    drop(lock);
    // Left running on purpose: later test processes of this run adopt it,
    // and `scripts/test` stops it at the end.
    cluster.url("postgres")
}

/// Databases `shop_test_<pid>_...` of test processes that have ended.
async fn drop_abandoned_databases(admin_url: &str) {
    let Ok(mut conn) = connect_admin(admin_url).await else {
        return;
    };
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'shop\\_test\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    for (name,) in names {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<i32>().ok());
        let alive = pid.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        });
        if !alive {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

async fn connect_admin(url: &str) -> Result<PgConnection, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?
        .database("postgres")
        .disable_statement_logging();
    PgConnection::connect_with(&options).await
}

/// A fresh, migrated database for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

/// The master key of every server the kit starts, in this process (it is
/// installed here on first use) and in `shop serve` processes
/// ([`server_process`] passes it as `SHOP_MASTER_KEY`), so both read what
/// the other encrypted.
pub fn master_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let text = projections::keys::MasterKey::generate_text();
        let key = projections::keys::MasterKey::parse(&text).expect("a generated master key");
        projections::keys::install(key);
        text
    })
}

/// Creates and migrates a new database on the test server.
pub async fn fresh_database() -> TestDatabase {
    master_key();
    let admin = admin_url().await;
    let name = format!(
        "shop_test_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let mut conn = connect_admin(admin)
        .await
        .expect("connect to the test server");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    let options = PgConnectOptions::from_str(admin)
        .expect("parse the test server URL")
        .database(&name);
    let url = options.to_url_lossy().to_string();
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.disable_statement_logging())
        .await
        .expect("connect to the test database");
    api::startup::migrate(&pool)
        .await
        .expect("migrate the test database");
    TestDatabase { name, url, pool }
}

/// The real server, on a fresh database, on a free port.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    /// The server's own state, for what tests do as an operator would from
    /// the command line (e.g. `shop users create`).
    pub state: AppState,
    /// Whether the simulated gateway calls the server back (see
    /// [`spawn_app_without_payment_callbacks`]).
    pub payment_callbacks: bool,
}

/// Starts the server on port 0 against a fresh database.
pub async fn spawn_app() -> TestApp {
    let db = fresh_database().await;
    spawn_app_on(db).await
}

/// Starts the server on a fresh database with these workflow settings (e.g.
/// a short payment timeout).
pub async fn spawn_app_with(workflows: WorkflowSettings) -> TestApp {
    let db = fresh_database().await;
    spawn_app_on_with(db, workflows).await
}

/// Starts the server on a fresh database with a payment gateway that never
/// answers: card charges are accepted but no callback comes, so card orders
/// stay `pending` (until their payment timeout) unless a test captures
/// them itself.
pub async fn spawn_app_without_payment_callbacks(workflows: WorkflowSettings) -> TestApp {
    let db = fresh_database().await;
    spawn(db, workflows, false).await
}

/// The workflow settings of [`spawn_app`]: the default timeouts, deadlines
/// polled often.
pub fn test_workflow_settings() -> WorkflowSettings {
    WorkflowSettings {
        deadline_poll: Duration::from_millis(50),
        ..Default::default()
    }
}

/// Starts the server against an existing test database.
pub async fn spawn_app_on(db: TestDatabase) -> TestApp {
    spawn_app_on_with(db, test_workflow_settings()).await
}

async fn spawn_app_on_with(db: TestDatabase, workflows: WorkflowSettings) -> TestApp {
    spawn(db, workflows, true).await
}

/// Starts the server against an existing test database with these
/// workflow settings (e.g. NATS to publish integration events to).
pub async fn spawn_app_on_with_settings(db: TestDatabase, workflows: WorkflowSettings) -> TestApp {
    spawn_app_on_with(db, workflows).await
}

async fn spawn(db: TestDatabase, workflows: WorkflowSettings, callbacks: bool) -> TestApp {
    let (app, workflows) = serve(db, workflows, callbacks).await;
    let projectors = api::startup::projectors(&app.db.pool, &workflows);
    let runtime = projector_runtime(&app.db.pool, &workflows, projectors);
    tokio::spawn(runtime.run(CancellationToken::new()));
    app
}

/// Starts the HTTP server on `db`; answers it and `workflows` completed for
/// it (the simulated gateway calls this server back, signing with its
/// secret, when `callbacks`).
async fn serve(
    db: TestDatabase,
    mut workflows: WorkflowSettings,
    callbacks: bool,
) -> (TestApp, WorkflowSettings) {
    let mut config = AppConfig::with_random_secret();
    // Tests register many customers from one address, and a customer may
    // place many orders and payments in a test.
    config.limits.register_attempts_per_minute = 10_000;
    config.limits.coupon_attempts_per_minute = 10_000;
    config.limits.payment_attempts_per_minute = 10_000;
    config.limits.orders_per_minute = 10_000;
    let state = AppState::new(db.pool.clone(), config.clone());
    let app = Application::build("127.0.0.1:0".parse().expect("address"), state.clone())
        .await
        .expect("bind the test server");
    let address = format!("http://{}", app.local_addr().expect("local address"));
    workflows.payment_webhook_secret = config.payment_webhook_secret;
    workflows.payment_callback_url = callbacks.then(|| format!("{address}/v1/payments/webhook"));
    workflows.payment_callback_poll = Duration::from_millis(50);
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let app = TestApp {
        state,
        payment_callbacks: callbacks,
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        db,
    };
    (app, workflows)
}

/// The projectors and workflows as in `shop serve`, polling often so tests
/// that wait for a read model (with `min_position`) are quick.
fn projector_runtime(
    pool: &PgPool,
    workflows: &WorkflowSettings,
    projectors: Vec<std::sync::Arc<dyn projections::projector::Projector>>,
) -> projections::supervisor::ProjectorRuntime {
    api::startup::projector_runtime_of(
        pool.clone(),
        RuntimeConfig {
            poll_interval: Duration::from_millis(50),
            lock_retry: Duration::from_millis(100),
            ..Default::default()
        },
        workflows,
        projectors,
    )
    .expect("the projector runtime")
}

/// The server on a fresh database, its fulfilment workflow paying through
/// `gateway` (e.g. one that holds charges back), and its projectors under
/// the test's control (see [`Projectors`]).
pub async fn spawn_app_with_gateway<G: domain::payment::PaymentGateway + 'static>(
    workflows: WorkflowSettings,
    gateway: impl FnOnce(PgPool) -> std::sync::Arc<G>,
) -> (TestApp, Projectors, std::sync::Arc<G>) {
    let (app, workflows) = serve(fresh_database().await, workflows, true).await;
    let gateway = gateway(app.db.pool.clone());
    let mut projectors = Projectors {
        pool: app.db.pool.clone(),
        workflows,
        gateway: gateway.clone(),
        running: None,
    };
    projectors.start();
    (app, projectors, gateway)
}

/// The projectors and workflows of a test server, which a test can kill (as
/// a crash would) and start again.
pub struct Projectors {
    pool: PgPool,
    workflows: WorkflowSettings,
    gateway: std::sync::Arc<dyn domain::payment::PaymentGateway>,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Projectors {
    /// Starts them (again), on a new connection and lock each.
    pub fn start(&mut self) {
        let fulfilment = projections::workflows::fulfilment::NAME;
        let projectors = api::startup::projectors(&self.pool, &self.workflows)
            .into_iter()
            .map(|projector| {
                if projector.name() == fulfilment {
                    std::sync::Arc::new(
                        projections::workflows::fulfilment::Fulfilment::with_gateway(
                            self.pool.clone(),
                            self.workflows.clone(),
                            self.gateway.clone(),
                        ),
                    ) as std::sync::Arc<dyn projections::projector::Projector>
                } else {
                    projector
                }
            })
            .collect();
        let runtime = projector_runtime(&self.pool, &self.workflows, projectors);
        self.running = Some(tokio::spawn(runtime.run(CancellationToken::new())));
    }

    /// Stops them at once, as a crash would: nothing in progress finishes
    /// and no checkpoint is written; their connections close, which frees
    /// their locks.
    pub async fn kill(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
            let _ = running.await;
        }
    }
}

/// A signed-in account: its bearer token and id.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub token: String,
    pub username: String,
    pub password: String,
}

/// How long a test waits for the read models before it fails: far beyond the
/// server's own bound, for slow and loaded machines.
pub const READ_MODEL_PATIENCE: Duration = Duration::from_secs(60);

/// The password every account made by the helpers below uses.
pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request to `path`, with `Authorization: Bearer <token>` when given;
    /// for tests that need headers of their own.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.get_as(path, None).await
    }

    pub async fn get_as(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::GET, path, token)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        send(self.request(Method::POST, path, token).json(body)).await
    }

    pub async fn put_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        send(self.request(Method::PUT, path, token).json(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::DELETE, path, token)).await
    }

    // ---- accounts ----

    /// POST /v1/register.
    pub async fn register(&self, body: &Value) -> Response {
        self.post_json("/v1/register", body, None).await
    }

    /// POST /v1/login.
    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/v1/login",
            &json!({"username": username, "password": password}),
            None,
        )
        .await
    }

    /// Signs in and returns the session; panics unless the login is 200.
    pub async fn sign_in(&self, username: &str, password: &str) -> Session {
        let response = self.login(username, password).await;
        let body = expect_json(response, StatusCode::OK).await;
        Session {
            id: uuid_field(&body, "customer_id"),
            token: body["token"]
                .as_str()
                .expect("login answers a token")
                .to_string(),
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// GET /v1/me.
    pub async fn me(&self, token: Option<&str>) -> Response {
        self.get_as("/v1/me", token).await
    }

    /// Creates an admin exactly as `shop users create --role admin` does and
    /// signs it in.
    pub async fn bootstrap_admin(&self) -> Session {
        self.bootstrap_staff("admin", Role::Admin).await
    }

    /// Creates a staff account with `role` as `shop users create` does and
    /// signs it in.
    pub async fn bootstrap_staff(&self, username: &str, role: Role) -> Session {
        let outcome = api::staff::create_staff(
            &self.state,
            StaffAccount {
                role,
                username: username.to_string(),
                password: PASSWORD.to_string(),
                fullname: None,
                email: None,
                phone: None,
                promote: false,
            },
        )
        .await
        .expect("create the staff account");
        assert!(
            matches!(outcome, StaffOutcome::Created(_)),
            "a new staff account, got {outcome:?}"
        );
        self.sign_in(username, PASSWORD).await
    }

    /// Registers a customer through POST /v1/register and signs it in.
    pub async fn register_customer(&self, username: &str) -> Session {
        let response = self.register(&customer_body(username)).await;
        expect_json(response, StatusCode::CREATED).await;
        self.sign_in(username, PASSWORD).await
    }

    /// `count` customers (`customer0`, `customer1`, ...), registered at once
    /// through POST /v1/register. Their tokens are issued as a sign-in would
    /// issue them: signing in many times from one address would meet the
    /// sign-in rate limit.
    pub async fn register_customers(&self, count: usize) -> Vec<Session> {
        let register = |i: usize| async move {
            let username = format!("customer{i}");
            let body = expect_json(
                self.register(&customer_body(&username)).await,
                StatusCode::CREATED,
            )
            .await;
            let id = uuid_field(&body, "customer_id");
            let (token, _) = self
                .state
                .tokens
                .issue(id, Role::Customer)
                .expect("issue a token");
            Session {
                id,
                token,
                username,
                password: PASSWORD.to_string(),
            }
        };
        futures::future::join_all((0..count).map(register)).await
    }

    // ---- catalog ----

    /// POST /v1/categories; answers the new id.
    pub async fn create_category(&self, token: &str, name: &str, parent: Option<Uuid>) -> Uuid {
        let body = json!({"name": name, "parent_category_id": parent});
        let response = self.post_json("/v1/categories", &body, Some(token)).await;
        uuid_field(&expect_json(response, StatusCode::CREATED).await, "id")
    }

    /// POST /v1/shops; answers the new id.
    pub async fn create_shop(&self, token: &str, name: &str) -> Uuid {
        let body = json!({"name": name});
        let response = self.post_json("/v1/shops", &body, Some(token)).await;
        uuid_field(&expect_json(response, StatusCode::CREATED).await, "id")
    }

    /// POST /v1/products with `body`; answers the new id.
    pub async fn create_product(&self, token: &str, body: &Value) -> Uuid {
        let response = self.post_json("/v1/products", body, Some(token)).await;
        uuid_field(&expect_json(response, StatusCode::CREATED).await, "id")
    }

    // ---- inventory ----

    /// POST /v1/inventory/{id}/receive.
    pub async fn receive(&self, token: &str, product: Uuid, quantity: i64) -> Response {
        let path = format!("/v1/inventory/{product}/receive");
        self.post_json(&path, &json!({"quantity": quantity}), Some(token))
            .await
    }

    /// GET /v1/inventory/{id}/availability as `(on_hand, held, available)`,
    /// once the read model has every event stored so far.
    pub async fn availability(&self, product: Uuid) -> (i64, i64, i64) {
        let response = self
            .get_fresh(&format!("/v1/inventory/{product}/availability"))
            .await;
        let body = expect_json(response, StatusCode::OK).await;
        let n = |field: &str| {
            body[field]
                .as_i64()
                .unwrap_or_else(|| panic!("availability has no {field}: {body}"))
        };
        (n("on_hand"), n("held"), n("available"))
    }

    // ---- the event store and the read models ----

    /// The global position of the newest stored event (0 when there is none).
    pub async fn latest_position(&self) -> i64 {
        sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .expect("read the latest position")
    }

    /// GET `path` with `min_position` set to [`TestApp::latest_position`]: the
    /// answer reflects every event stored so far (the server waits for its
    /// read model, no sleeping here). Panics if the server gave up waiting.
    pub async fn get_fresh(&self, path: &str) -> Response {
        self.get_at(path, self.latest_position().await).await
    }

    /// Waits until every read model has applied the event at `position` (and
    /// so everything committed before it), asking the server's own check
    /// again while it answers "not yet"; panics after [`READ_MODEL_PATIENCE`].
    /// The server gives up after a few seconds, which a loaded test machine
    /// can exceed; a query that then misses a row would answer 404 without
    /// saying it was stale.
    pub async fn wait_for_read_models(&self, position: i64) {
        let deadline = tokio::time::Instant::now() + READ_MODEL_PATIENCE;
        for projector in api::startup::projectors(&self.db.pool, &WorkflowSettings::default()) {
            loop {
                let freshness =
                    api::read::wait_for(&self.db.pool, projector.name(), Some(position))
                        .await
                        .expect("read the projector checkpoints");
                if !freshness.stale {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "read model {} did not reach position {position} in {READ_MODEL_PATIENCE:?}",
                    projector.name()
                );
            }
        }
    }

    /// Waits until the workflows have acted on every event stored so far,
    /// and on the events they wrote themselves, and the read models show it:
    /// the log stops growing. Panics after [`READ_MODEL_PATIENCE`]. (Pending
    /// deadlines, e.g. payment timeouts, are not waited for.)
    pub async fn wait_for_workflows(&self) {
        let deadline = tokio::time::Instant::now() + READ_MODEL_PATIENCE;
        let names: Vec<&'static str> =
            api::startup::projectors(&self.db.pool, &WorkflowSettings::default())
                .iter()
                .map(|p| p.name())
                .collect();
        loop {
            let head = self.latest_position().await;
            for name in &names {
                loop {
                    let freshness = api::read::wait_for(&self.db.pool, name, Some(head))
                        .await
                        .expect("read the projector checkpoints");
                    if !freshness.stale {
                        break;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{name} did not reach position {head} in {READ_MODEL_PATIENCE:?}"
                    );
                }
            }
            // A card charge whose callback is still on its way will write
            // more events.
            if self.payment_callbacks && self.undelivered_payment_callbacks().await > 0 {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                eventually("the payment callbacks to be delivered", left, async || {
                    self.undelivered_payment_callbacks().await == 0
                })
                .await;
                continue;
            }
            if self.latest_position().await == head {
                return;
            }
        }
    }

    /// How many charges of the simulated gateway have an answer on its way:
    /// not delivered yet, and not held back for ever (see
    /// [`TestApp::withhold_payment_answer`]).
    pub async fn undelivered_payment_callbacks(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM gateway_charges
              WHERE callback_delivered_at IS NULL AND callback_next_at < 'infinity'",
        )
        .fetch_one(&self.db.pool)
        .await
        .expect("count undelivered payment callbacks")
    }

    /// Makes the simulated gateway accept the card charge of `order` (for
    /// `amount`, minor units) but never answer it, as a provider that goes
    /// quiet: the charge is recorded under the order's reference with its
    /// callback due at `infinity`, so the workflow's charge finds it made
    /// and no callback is ever sent. Call it before the workflow charges
    /// the order (e.g. while it is paused).
    pub async fn withhold_payment_answer(&self, order: Uuid, amount: i64) {
        sqlx::query(
            "INSERT INTO gateway_charges
                 (id, reference, token, amount, currency, outcome, callback_next_at)
             VALUES ($1, $2, 'tok_visa', $3, 'USD', 'succeeded', 'infinity')",
        )
        .bind(format!("ch_withheld_{}", order.simple()))
        .bind(format!("order:{order}"))
        .bind(amount)
        .execute(&self.db.pool)
        .await
        .expect("record a charge the gateway will not answer");
    }

    /// The customer's wallet balance (`GET /v1/wallet`).
    pub async fn wallet_balance(&self, token: &str) -> i64 {
        let response = self.get_as("/v1/wallet", Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("a wallet");
        body["balance"].as_i64().expect("a balance")
    }

    /// Tops the customer's wallet up by `amount` with the test card
    /// `tok_visa` and waits until the balance shows it.
    pub async fn top_up(&self, token: &str, amount: i64) {
        let before = self.wallet_balance(token).await;
        let body = json!({"amount": amount, "payment": {"method": "card", "token": "tok_visa"}});
        let response = self
            .post_json("/v1/wallet/top-up", &body, Some(token))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "top-up refused");
        self.wait_for_workflows().await;
        assert_eq!(
            self.wallet_balance(token).await,
            before + amount,
            "top-up not credited"
        );
    }

    /// GET `path` with `min_position=position` (a command's answer), so it
    /// reads that command's effect. Panics if the server gave up waiting.
    pub async fn get_at(&self, path: &str, position: i64) -> Response {
        self.wait_for_read_models(position).await;
        let response = send(
            self.request(Method::GET, path, None)
                .query(&[("min_position", position)]),
        )
        .await;
        assert!(
            !response.headers().contains_key("x-read-model-stale"),
            "GET {path}: the read model did not reach position {position} in time"
        );
        response
    }

    /// How many events are stored.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }

    /// How many events of aggregates of `aggregate_type` are stored.
    pub async fn event_count_of(&self, aggregate_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = $1")
            .bind(aggregate_type)
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }
}

/// A valid registration body for `username`, with [`PASSWORD`].
/// A shipping address that passes every rule.
pub fn shipping_address() -> Value {
    json!({
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "gb",
    })
}

pub fn customer_body(username: &str) -> Value {
    json!({
        "username": username,
        "password": PASSWORD,
        "fullname": "Ada Lovelace",
        "email": format!("{username}@example.com"),
        "phone": "+44 20 7946 0000",
    })
}

async fn send(builder: RequestBuilder) -> Response {
    builder.send().await.expect("send request")
}

/// The JSON body of `response`, after checking its status (the body is in the
/// panic message when the status is wrong).
pub async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("read the body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Checks that `response` has `status` and a body in the one error shape
/// (`{"error": "<snake_case>", "message": "<non-empty>"}`); answers the body.
pub async fn expect_error(response: Response, status: StatusCode) -> Value {
    let body = expect_json(response, status).await;
    assert_error_shape(&body);
    body
}

/// Checks the one error shape.
pub fn assert_error_shape(body: &Value) {
    let code = body["error"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "`error` must be a snake_case code: {body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "`message` must be a sentence: {body}"
    );
}

/// A UUID field of a JSON answer.
pub fn uuid_field(body: &Value, field: &str) -> Uuid {
    body[field]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("`{field}` is not a UUID: {body}"))
}

// ---- carts, coupons and orders ----

/// Helpers for carts, coupons and orders (`tests/tests/cart_orders.rs`).
impl TestApp {
    /// The order as `customer` reads it once the workflows (and the payment
    /// gateway's callbacks) have acted on everything so far.
    pub async fn settled_order(&self, customer: &Session, order: Uuid) -> Value {
        self.wait_for_workflows().await;
        expect_json(
            self.order(&customer.token, order, &[]).await,
            StatusCode::OK,
        )
        .await
    }

    /// `(on_hand, held)` of a product, as its availability reads now.
    pub async fn stock(&self, product: Uuid) -> (i64, i64) {
        let (on_hand, held, _) = self.availability(product).await;
        (on_hand, held)
    }

    /// How many events of `event_type` the aggregate `id` has.
    pub async fn events_of(&self, id: Uuid, event_type: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2",
        )
        .bind(id.to_string())
        .bind(event_type)
        .fetch_one(&self.db.pool)
        .await
        .expect("count events")
    }

    /// How many events of `event_type` are stored.
    pub async fn events_of_type(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
            .bind(event_type)
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }

    /// Moves projector `name`'s checkpoint back to the start, so it reads the
    /// whole log again (as after a crash before its checkpoint moved).
    pub async fn replay_from_start(&self, name: &str) {
        let reset = sqlx::query(
            "UPDATE projector_checkpoints SET transaction_id = '0', global_position = 0
              WHERE name = $1",
        )
        .bind(name)
        .execute(&self.db.pool)
        .await
        .expect("reset the checkpoint");
        assert_eq!(reset.rows_affected(), 1, "no projector {name}");
    }

    /// A bootstrapped admin, a category and one product per `(price, stock)`
    /// (minor units; a stock of 0 is never received).
    pub async fn stocked_catalog(&self, products: &[(i64, i64)]) -> (Session, Vec<Uuid>) {
        let admin = self.bootstrap_admin().await;
        let category = self.create_category(&admin.token, "Tea", None).await;
        let mut ids = Vec::new();
        for (i, (price, stock)) in products.iter().enumerate() {
            let body = json!({
                "name": format!("Tea no. {i}"),
                "description": "Loose leaf",
                "price": price,
                "sku": format!("TEA-{i}"),
                "image_url": "https://img.example.com/tea.png",
                "category_id": category,
            });
            let id = self.create_product(&admin.token, &body).await;
            if *stock > 0 {
                expect_json(self.receive(&admin.token, id, *stock).await, StatusCode::OK).await;
            }
            ids.push(id);
        }
        (admin, ids)
    }

    /// GET /v1/cart as `token`; panics unless 200.
    pub async fn cart(&self, token: &str) -> Value {
        expect_json(self.get_as("/v1/cart", Some(token)).await, StatusCode::OK).await
    }

    /// POST /v1/cart/items.
    pub async fn add_to_cart(&self, token: &str, product: Uuid, quantity: i64) -> Response {
        let body = json!({"product_id": product, "quantity": quantity});
        self.post_json("/v1/cart/items", &body, Some(token)).await
    }

    /// POST /v1/coupons.
    pub async fn create_coupon(&self, token: &str, body: &Value) -> Response {
        self.post_json("/v1/coupons", body, Some(token)).await
    }

    /// POST /v1/orders, with `Idempotency-Key: key` when given.
    pub async fn place_order(&self, token: &str, body: &Value, key: Option<&str>) -> Response {
        let mut request = self
            .request(Method::POST, "/v1/orders", Some(token))
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        send(request).await
    }

    /// GET /v1/orders/{id} with the query parameters `query`.
    /// GET /v1/orders/{id}, once the order history has caught up with
    /// everything written so far (unless the query says otherwise).
    pub async fn order(&self, token: &str, id: Uuid, query: &[(&str, String)]) -> Response {
        let path = format!("/v1/orders/{id}");
        let mut query = query.to_vec();
        if !query.iter().any(|(k, _)| *k == "min_position") {
            query.push(("min_position", self.head_position().await.to_string()));
        }
        send(self.request(Method::GET, &path, Some(token)).query(&query)).await
    }

    /// The newest global position in the event store.
    pub async fn head_position(&self) -> i64 {
        projections::event_store::log::head_position(&self.db.pool)
            .await
            .expect("read the head position")
    }

    /// PUT /v1/orders/{id}/status.
    pub async fn set_order_status(&self, token: &str, id: Uuid, body: &Value) -> Response {
        self.put_json(&format!("/v1/orders/{id}/status"), body, Some(token))
            .await
    }

    /// How many Order aggregates the event store holds.
    pub async fn order_count(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'Order'",
        )
        .fetch_one(&self.db.pool)
        .await
        .expect("count orders")
    }

    /// Captures an order's total as the fulfilment workflow will: a command
    /// of the system, straight on the aggregate.
    pub async fn capture_payment(&self, order: Uuid, total: i64) {
        let meta = domain::metadata::CommandMetadata::new(
            domain::metadata::Actor::System("fulfilment".to_string()),
            Uuid::new_v4().to_string(),
            "CapturePayment",
        );
        let command = domain::order::OrderCommand::CapturePayment {
            payment_id: format!("pay_{order}"),
            amount: domain::values::Money::new(total, domain::values::Currency::usd())
                .expect("money"),
            now: chrono::Utc::now(),
        };
        self.state
            .orders
            .execute(&order.to_string(), command, &meta)
            .await
            .expect("capture the payment");
    }
}
