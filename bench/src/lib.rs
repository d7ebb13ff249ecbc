//! What the benchmarks share: knobs from the environment, and a fresh
//! database for the run (dropped at the end, or kept for inspection).
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

/// Runs `run` on a fresh, migrated database: on `DATABASE_URL`'s server, or
/// on the private test cluster in `.data/test` (started when it is not
/// running, and then stopped again at the end). The database is dropped at
/// the end; with `BENCH_KEEP_DB` set it is kept, renamed `bench_<kind>_*`.
pub async fn with_fresh_database<F, Fut>(kind: &str, run: F) -> Result<()>
where
    F: FnOnce(TestDatabase) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    // Whether the private test cluster is ours to stop at the end.
    let pid_file = testkit::test_data_dir()
        .join("postgres")
        .join("postmaster.pid");
    let private_cluster = std::env::var_os("DATABASE_URL").is_none();
    let cluster_was_running = pid_file.exists();

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
    if private_cluster && !cluster_was_running && pid_file.exists() {
        api::postgres_cluster::stop(&testkit::test_data_dir())
            .await
            .context("stop the private test cluster")?;
        println!("stopped the private test cluster this run started");
    }
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
