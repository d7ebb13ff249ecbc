//! The test kit shared by every end-to-end test.
//!
//! Every test gets its own fresh, migrated database: on the server of
//! `DATABASE_URL` when it is set, otherwise on a private cluster (in
//! `.data/test`) started once per test run by the same code `shop serve`
//! uses. `spawn_app()` starts the real server on port 0 against it.
//!
//! Log output appears only when `TEST_LOG` is set.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use api::config::LogFormat;
use api::startup::{AppConfig, AppState, Application};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;

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

/// Creates and migrates a new database on the test server.
pub async fn fresh_database() -> TestDatabase {
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
}

/// Starts the server on port 0 against a fresh database.
pub async fn spawn_app() -> TestApp {
    let db = fresh_database().await;
    spawn_app_on(db).await
}

/// Starts the server against an existing test database.
pub async fn spawn_app_on(db: TestDatabase) -> TestApp {
    let state = AppState::new(db.pool.clone(), AppConfig::with_random_secret());
    let app = Application::build("127.0.0.1:0".parse().expect("address"), state.clone())
        .await
        .expect("bind the test server");
    let address = format!("http://{}", app.local_addr().expect("local address"));
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        state,
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("send request")
    }
}
