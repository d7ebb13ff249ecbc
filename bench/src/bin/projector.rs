//! Projector catch-up benchmark: seeds a backlog of about 1,000,000 events
//! straight into the event store, half catalog and half orders, then times
//! each read model's live catch-up from checkpoint zero to the head of the
//! log, with the projector runtime exactly as `shop serve` runs it, and
//! prints its rate. Target: at least 50,000 events/s per read model.
//!
//! ```sh
//! cargo run --release -p bench --bin projector
//! ```
//!
//! A fresh database on `DATABASE_URL`'s server or on the private test
//! cluster, as the listing benchmark. The backlog: `seed::catalog` (110
//! categories, products, and `BENCH_RESTOCKS` stock events for every other
//! product) for the catalog's share, then `seed::orders` (orders placed and
//! moved through their life: stock reserved, paid, invoiced, processing,
//! shipped, delivered, some cancelled, refunded or failed) for the rest.
//! Each projector then runs alone (`ProjectorRuntime` with only that
//! projector, `RuntimeConfig::default()` but for the batch size) from
//! checkpoint zero until its checkpoint reaches the last event; it reads
//! every event of the log and applies those of its aggregate types.
//!
//! Knobs (environment): `BENCH_EVENTS` (1000000) events in the backlog,
//! `BENCH_ORDER_SHARE` (50) percent of them order events, `BENCH_RESTOCKS`
//! (8), `BENCH_BATCH` events per batch (the runtime's default),
//! `BENCH_KEEP_DB` as in the listing benchmark.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{ensure, Result};
use projections::event_store::log::head_position;
use projections::read_models;
use projections::runtime::RuntimeConfig;
use projections::supervisor::ProjectorRuntime;
use testkit::seed;
use tokio_util::sync::CancellationToken;

/// The rate each read model must reach, in events of the log per second.
const TARGET: f64 = 50_000.0;

#[tokio::main]
async fn main() -> Result<()> {
    let events: i64 = bench::env_number("BENCH_EVENTS", 1_000_000)?;
    let order_share: i64 = bench::env_number("BENCH_ORDER_SHARE", 50)?;
    let restocks: i64 = bench::env_number("BENCH_RESTOCKS", 8)?;
    let batch: i64 = bench::env_number("BENCH_BATCH", RuntimeConfig::default().batch_size)?;
    ensure!(events >= 1_000, "BENCH_EVENTS must be >= 1000");
    ensure!(
        (0..100).contains(&order_share),
        "BENCH_ORDER_SHARE must be 0 to 99"
    );
    ensure!(restocks >= 0, "BENCH_RESTOCKS must be >= 0");
    ensure!(batch >= 1, "BENCH_BATCH must be >= 1");
    bench::with_fresh_database("projector", |db| async move {
        let pool = &db.pool;
        let started = Instant::now();
        // seed::catalog writes 110 + products + products / 2 * restocks.
        let catalog_share = events * (100 - order_share) / 100;
        let products = ((catalog_share - 110) * 2 / (2 + restocks)).max(1);
        seed::catalog(pool, products, restocks).await?;
        let catalog_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await?;
        let orders = seed::orders(pool, events - catalog_events).await?;
        let by_type: BTreeMap<String, i64> = sqlx::query_as(
            "SELECT aggregate_type, count(*) FROM events GROUP BY aggregate_type",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
        let total: i64 = by_type.values().sum();
        println!(
            "seeded {total} events in {:.1} s: {catalog_events} of the catalog \
             ({products} products, {restocks} stock events for every other one, 110 categories), \
             {} of {} orders",
            started.elapsed().as_secs_f64(),
            orders.events,
            orders.orders
        );
        println!("events by aggregate type: {by_type:?}");
        sqlx::query("VACUUM ANALYZE events").execute(pool).await?;
        let head = head_position(pool).await?;

        let mut rows = Vec::new();
        for projector in read_models::all() {
            let name = projector.name();
            let handled: i64 = by_type
                .iter()
                .filter(|(aggregate_type, _)| projector.handles(aggregate_type))
                .map(|(_, count)| count)
                .sum();
            let runtime = ProjectorRuntime::new(
                pool.clone(),
                vec![projector.clone()],
                RuntimeConfig {
                    batch_size: batch,
                    ..Default::default()
                },
            );
            let stop = CancellationToken::new();
            let started = Instant::now();
            let running = tokio::spawn(runtime.run(stop.clone()));
            let applied = seed::wait_for_projector(pool, name, head).await?;
            let took = started.elapsed().as_secs_f64();
            stop.cancel();
            running.await?;
            ensure!(
                applied == handled,
                "{name} applied {applied} events, the log holds {handled} of its aggregates"
            );
            println!("{name}: caught up in {took:.2} s");
            rows.push((name, handled, took));
        }

        println!();
        println!(
            "| read model (batch {batch}) | events read | events handled | time (s) | events/s | handled events/s |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, handled, took) in &rows {
            println!(
                "| `{name}` | {total} | {handled} | {took:.2} | {:.0} | {:.0} |",
                total as f64 / took,
                *handled as f64 / took
            );
        }
        println!();
        for (name, _, took) in &rows {
            let rate = total as f64 / took;
            let verdict = if rate >= TARGET { "met" } else { "not met" };
            println!(
                "{name}: {rate:.0} events/s (target at least {TARGET:.0}: {verdict})"
            );
        }
        Ok(())
    })
    .await
}
