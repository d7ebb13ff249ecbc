//! What the benchmarks share: knobs from the environment, a fresh database
//! for the run (dropped at the end, or kept for inspection), a small seeded
//! random number generator and latency percentiles.
#![forbid(unsafe_code)]

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use testkit::TestDatabase;

/// The number in the environment variable `name`, or `default`.
pub fn env_number<T: FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name} must be a number, got {raw:?}")),
        Err(_) => Ok(default),
    }
}

/// A small, fast pseudo-random generator (xorshift64*): the same seed gives
/// the same sequence on every run. Not for anything secret.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value; mixed by splitmix64 so that nearby
    /// seeds give unrelated sequences).
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 1 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` at least 1 and below 2^32).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Latency figures of a set of timings, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub count: usize,
    /// The median (mean of the middle two for an even count).
    pub p50: f64,
    /// Nearest-rank 99th percentile.
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// The figures of `samples` (at least one).
    pub fn of(mut samples: Vec<Duration>) -> Latency {
        assert!(!samples.is_empty(), "no timings");
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let n = samples.len();
        let p50 = if n.is_multiple_of(2) {
            (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0
        } else {
            ms(samples[n / 2])
        };
        let rank = ((n as f64) * 0.99).ceil() as usize;
        Latency {
            count: n,
            p50,
            p99: ms(samples[rank.clamp(1, n) - 1]),
            max: ms(samples[n - 1]),
        }
    }
}

/// Runs `run` on a fresh, migrated database: on `DATABASE_URL`'s server, or
/// on the private test cluster in `.data/test` (started when it is not
/// running, and then stopped again at the end). The database is dropped at
/// the end; with `BENCH_KEEP_DB` set it is kept, renamed `bench_<kind>_*`.
pub async fn with_fresh_database<F, Fut>(kind: &str, run: F) -> Result<()>
where
    F: FnOnce(TestDatabase) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let cluster = ClusterAtStart::note();
    let outcome = on_fresh_database(kind, run).await;
    cluster.stop_if_started_here().await?;
    outcome
}

/// Whether the private test cluster was running when a benchmark started,
/// so that a run that takes several fresh databases in a row (each with
/// [`on_fresh_database`]) stops it once at the end if the run started it.
#[derive(Debug)]
pub struct ClusterAtStart {
    pid_file: std::path::PathBuf,
    private_cluster: bool,
    was_running: bool,
}

impl ClusterAtStart {
    pub fn note() -> Self {
        let pid_file = testkit::test_data_dir()
            .join("postgres")
            .join("postmaster.pid");
        Self {
            private_cluster: std::env::var_os("DATABASE_URL").is_none(),
            was_running: pid_file.exists(),
            pid_file,
        }
    }

    /// Stops the private test cluster if this run started it (not when
    /// `BENCH_KEEP_DB` keeps a database on it).
    pub async fn stop_if_started_here(&self) -> Result<()> {
        if self.private_cluster
            && !self.was_running
            && self.pid_file.exists()
            && std::env::var_os("BENCH_KEEP_DB").is_none()
        {
            api::postgres_cluster::stop(&testkit::test_data_dir())
                .await
                .context("stop the private test cluster")?;
            println!("stopped the private test cluster this run started");
        }
        Ok(())
    }
}

/// Runs `run` on a fresh, migrated database as [`with_fresh_database`] does,
/// but leaves the private test cluster running (see [`ClusterAtStart`]).
pub async fn on_fresh_database<F, Fut>(kind: &str, run: F) -> Result<()>
where
    F: FnOnce(TestDatabase) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let db = testkit::fresh_database().await;
    println!("database {} (fresh, migrated)", db.name);

    let outcome = run(db.clone()).await;

    if std::env::var_os("BENCH_KEEP_DB").is_some() {
        // Renamed: the test kit drops `shop_test_<pid>_*` databases of
        // processes that have ended.
        match keep_database(&db, kind).await {
            Ok(name) => println!("kept the database for inspection as {name}"),
            Err(e) => eprintln!("could not keep the benchmark database {}: {e}", db.name),
        }
        return outcome;
    }
    drop_database(&db).await;
    outcome
}

async fn admin_connection(db: &TestDatabase) -> Result<PgConnection, sqlx::Error> {
    let options = PgConnectOptions::from_str(&db.url)?
        .database("postgres")
        .disable_statement_logging();
    PgConnection::connect_with(&options).await
}

/// Renames the database out of the test kit's reach; answers the new name.
async fn keep_database(db: &TestDatabase, kind: &str) -> Result<String> {
    db.pool.close().await;
    let kept = db.name.replacen("shop_test_", &format!("bench_{kind}_"), 1);
    let mut conn = admin_connection(db).await?;
    let mut attempt = 0;
    loop {
        // The projectors reconnect after a back-off: end their sessions and
        // rename before they are back.
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db.name)
        .execute(&mut conn)
        .await?;
        let renamed = sqlx::query(&format!(
            "ALTER DATABASE \"{}\" RENAME TO \"{kept}\"",
            db.name
        ))
        .execute(&mut conn)
        .await;
        match renamed {
            Ok(_) => return Ok(kept),
            Err(_) if attempt < 50 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn drop_database(db: &TestDatabase) {
    db.pool.close().await;
    let dropped = async {
        let mut conn = admin_connection(db).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            db.name
        ))
        .execute(&mut conn)
        .await?;
        Ok::<(), sqlx::Error>(())
    };
    if let Err(e) = dropped.await {
        eprintln!("could not drop the benchmark database {}: {e}", db.name);
    }
}
