//! The real `shop serve` process on a test database, for the tests that
//! kill it (-9) or stop it and start it again on the same database.
//!
//! Cargo names the binary only to integration tests, so they pass it in:
//! `ServerProcess::start(env!("CARGO_BIN_EXE_shop-under-test"), &db.url)`.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::{TestApp, TestDatabase};

/// A `shop serve` process on a fixed port of the test database, started
/// again after a kill with the same secrets and settings.
pub struct ServerProcess {
    /// The database it serves.
    pub url: String,
    pub port: u16,
    pub jwt_secret: String,
    pub webhook_secret: String,
    /// Its `SHOP_DATA_DIR` (removed when this is dropped).
    pub data_dir: PathBuf,
    program: PathBuf,
    /// Settings of its own (`SHOP_*` variables), on top of the defaults
    /// below.
    env: Vec<(String, String)>,
    child: Option<tokio::process::Child>,
}

impl ServerProcess {
    /// Starts `program serve` on a free port against the database at `url`,
    /// projectors and deadlines polled every 50 ms.
    pub fn start(program: impl AsRef<Path>, url: &str) -> Self {
        Self::start_with(program, url, &[])
    }

    /// [`ServerProcess::start`] with more environment variables, e.g.
    /// `("SHOP_PAYMENT_TIMEOUT_SECS", "30")`; kept for every restart.
    pub fn start_with(program: impl AsRef<Path>, url: &str, env: &[(&str, &str)]) -> Self {
        // A free port below the ephemeral range, so that no outgoing
        // connection takes it while the server is down between restarts.
        let port = (0..1000)
            .map(|_| 20_000 + random_below(12_000) as u16)
            .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
            .expect("a free port");
        let data_dir = std::env::temp_dir().join(format!("shop-crash-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir).expect("a data folder");
        let mut server = Self {
            url: url.to_string(),
            port,
            jwt_secret: format!("jwt-{}", Uuid::new_v4().simple()),
            webhook_secret: format!("webhook-{}", Uuid::new_v4().simple()),
            data_dir,
            program: program.as_ref().to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        server.child = Some(server.spawn_child());
        server
    }

    fn spawn_child(&self) -> tokio::process::Child {
        tokio::process::Command::new(&self.program)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env("DATABASE_URL", &self.url)
            .env("SHOP_DATA_DIR", &self.data_dir)
            .env("SHOP_JWT_SECRET", &self.jwt_secret)
            .env("SHOP_MASTER_KEY", crate::master_key())
            .env("SHOP_PAYMENT_WEBHOOK_SECRET", &self.webhook_secret)
            .env("SHOP_PROJECTOR_POLL_MS", "50")
            .env("SHOP_DEADLINE_POLL_MS", "50")
            .env("RUST_LOG", "warn")
            // Tests register many customers from one address, and a
            // customer may place many orders and payments in a test.
            .env("SHOP_REGISTER_ATTEMPTS_PER_MINUTE", "10000")
            .env("SHOP_COUPON_ATTEMPTS_PER_MINUTE", "10000")
            .env("SHOP_PAYMENT_ATTEMPTS_PER_MINUTE", "10000")
            .env("SHOP_ORDERS_PER_MINUTE", "10000")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start shop serve")
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// kill -9, and wait until the process is gone; it stays down until
    /// [`ServerProcess::restart`].
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("a running server");
        child.start_kill().expect("kill -9 shop serve");
        let status = child.wait().await.expect("reap shop serve");
        assert!(!status.success(), "shop serve was killed: {status:?}");
    }

    /// Starts it again after it was killed or stopped.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.child = Some(self.spawn_child());
    }

    /// kill -9, then start it again at once.
    pub async fn kill_and_restart(&mut self) {
        self.kill().await;
        self.restart();
    }

    /// SIGTERM, as an orchestrator stops a container; answers the exit
    /// status and how long the process took to stop.
    pub async fn terminate(&mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("a running server");
        let pid = child.id().expect("shop serve is running");
        let asked = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("send SIGTERM");
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("shop serve stops at all")
            .expect("reap shop serve");
        (status, asked.elapsed())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The test kit's view of `server` (its secrets, the test database), once
/// it answers.
pub async fn app_of(server: &ServerProcess, db: TestDatabase) -> TestApp {
    let mut config = api::startup::AppConfig::with_random_secret();
    config.jwt_secret = server.jwt_secret.clone().into();
    config.payment_webhook_secret = server.webhook_secret.clone().into();
    let app = TestApp {
        address: server.address(),
        client: reqwest::Client::new(),
        state: api::startup::AppState::new(db.pool.clone(), config),
        // `shop serve` calls its own webhook back.
        payment_callbacks: true,
        db,
    };
    until_live(&app.client, &app.address).await;
    app
}

/// Waits (polling, with a deadline) until the server at `address` answers
/// `/health/live`.
pub async fn until_live(client: &reqwest::Client, address: &str) {
    crate::eventually_every(
        Duration::from_millis(25),
        "shop serve to come up",
        Duration::from_secs(60),
        async || {
            client
                .get(format!("{address}/health/live"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
}

/// A number below `n`, at random.
fn random_below(n: u64) -> u64 {
    (Uuid::new_v4().as_u128() % u128::from(n.max(1))) as u64
}
