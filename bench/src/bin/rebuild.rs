//! Rebuild benchmark: seeds about 1,000,000 events straight into the event
//! store, then times, in one run, a plain sequential read of those events
//! (`COPY (SELECT ... FROM events ...) TO STDOUT`) and a full rebuild of the
//! `catalog` read model from them, and prints both rates and their ratio.
//!
//! ```sh
//! cargo run --release -p bench --bin rebuild
//! ```
//!
//! A fresh database on `DATABASE_URL`'s server or on the private test
//! cluster, as the listing benchmark. Knobs (environment): `BENCH_PRODUCTS`
//! (default 200000; every other one gets `BENCH_RESTOCKS` stock events,
//! default 8, so 1,000,110 events by default), `BENCH_BATCH` events per
//! rebuild transaction (default the rebuild's own), `BENCH_ORDER_EVENTS`
//! (default 200000: order events added after the catalog's for the second
//! part), `BENCH_KEEP_DB` as in the listing benchmark.
//!
//! Second part: `seed::orders` adds `BENCH_ORDER_EVENTS` order events, and
//! `catalog` and `orders` are rebuilt together, reading the log once
//! (`rebuild::run_together`), against a plain read of the whole log again.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use futures::StreamExt;
use projections::read_models::catalog::CatalogProjector;
use projections::read_models::orders::OrdersProjector;
use projections::rebuild::{self, Rebuild};
use testkit::seed;
use tokio_util::sync::CancellationToken;

/// The read a rebuild cannot beat: every column it uses, in commit order.
const COPY_SQL: &str = "COPY (
    SELECT global_position, transaction_id, aggregate_type, aggregate_id, sequence,
           event_type, event_version, payload, metadata, recorded_at
      FROM events ORDER BY transaction_id, global_position) TO STDOUT";

#[tokio::main]
async fn main() -> Result<()> {
    let products: i64 = bench::env_number("BENCH_PRODUCTS", 200_000)?;
    let restocks: i64 = bench::env_number("BENCH_RESTOCKS", 8)?;
    let batch: i64 = bench::env_number("BENCH_BATCH", rebuild::DEFAULT_BATCH_SIZE)?;
    let order_events: i64 = bench::env_number("BENCH_ORDER_EVENTS", 200_000)?;
    ensure!(products >= 1_000, "BENCH_PRODUCTS must be >= 1000");
    ensure!(restocks >= 0, "BENCH_RESTOCKS must be >= 0");
    bench::with_fresh_database("rebuild", |db| async move {
        let started = Instant::now();
        seed::catalog(&db.pool, products, restocks).await?;
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&db.pool)
            .await?;
        println!(
            "seeded {events} events in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        sqlx::query("VACUUM ANALYZE events")
            .execute(&db.pool)
            .await?;

        let (copy, bytes) = plain_read(&db.pool).await?;

        // The rebuild: every event from position zero into new tables, then
        // the switch.
        let started = Instant::now();
        let job = Rebuild::start(&db.pool, Arc::new(CatalogProjector), batch, "bench").await?;
        let done = job.run(|_| {}, &CancellationToken::new()).await?;
        let took = started.elapsed();
        ensure!(
            done.processed == events,
            "the rebuild read {} events of {events}",
            done.processed
        );
        let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_products")
            .fetch_one(&db.pool)
            .await?;
        ensure!(
            listed == products,
            "{listed} products in the rebuilt listing"
        );

        let copy_rate = events as f64 / copy.as_secs_f64();
        let rebuild_rate = events as f64 / took.as_secs_f64();
        println!();
        println!("| {events} events | time (s) | events/s |");
        println!("|---|---:|---:|");
        println!(
            "| sequential read (COPY ... TO STDOUT, {:.0} MiB) | {:.2} | {:.0} |",
            bytes as f64 / (1024.0 * 1024.0),
            copy.as_secs_f64(),
            copy_rate
        );
        println!(
            "| rebuild of `catalog` (batch {batch}, switch included) | {:.2} | {:.0} |",
            took.as_secs_f64(),
            rebuild_rate
        );
        println!(
            "\nrebuild / sequential read: {:.1}x the time ({:.1}% of the read's rate)",
            took.as_secs_f64() / copy.as_secs_f64(),
            100.0 * rebuild_rate / copy_rate
        );

        // Second part: orders too, and both read models from one read.
        if order_events > 0 {
            let started = Instant::now();
            seed::orders(&db.pool, order_events).await?;
            let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                .fetch_one(&db.pool)
                .await?;
            println!(
                "\nadded order events up to {events} events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            sqlx::query("VACUUM ANALYZE events")
                .execute(&db.pool)
                .await?;
            let (copy, _) = plain_read(&db.pool).await?;
            let started = Instant::now();
            let jobs = vec![
                Rebuild::start(&db.pool, Arc::new(CatalogProjector), batch, "bench").await?,
                Rebuild::start(&db.pool, Arc::new(OrdersProjector), batch, "bench").await?,
            ];
            let done = rebuild::run_together(jobs, |_| {}, &CancellationToken::new()).await?;
            let took = started.elapsed();
            ensure!(done.len() == 2, "{} rebuilds switched in", done.len());
            for status in &done {
                ensure!(
                    status.processed == events,
                    "the rebuild of {} read {} events of {events}",
                    status.name,
                    status.processed
                );
            }
            println!();
            println!("| {events} events | time (s) | events/s |");
            println!("|---|---:|---:|");
            println!(
                "| sequential read (COPY ... TO STDOUT) | {:.2} | {:.0} |",
                copy.as_secs_f64(),
                events as f64 / copy.as_secs_f64()
            );
            println!(
                "| rebuild of `catalog` and `orders` in one pass (batch {batch}, switches included) | {:.2} | {:.0} |",
                took.as_secs_f64(),
                events as f64 / took.as_secs_f64()
            );
            println!(
                "\nrebuild of both / sequential read: {:.1}x the time",
                took.as_secs_f64() / copy.as_secs_f64()
            );
        }
        Ok(())
    })
    .await
}

/// The plain read, three times (the first warms the cache): the best time
/// and the bytes read.
async fn plain_read(pool: &sqlx::PgPool) -> Result<(Duration, usize)> {
    let mut copy = Duration::MAX;
    let mut bytes = 0_usize;
    for _ in 0..3 {
        let mut conn = pool.acquire().await?;
        let started = Instant::now();
        let mut stream = conn.copy_out_raw(COPY_SQL).await?;
        let mut read = 0_usize;
        while let Some(chunk) = stream.next().await {
            read += chunk?.len();
        }
        copy = copy.min(started.elapsed());
        bytes = read;
    }
    Ok((copy, bytes))
}
