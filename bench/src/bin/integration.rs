//! Integration events benchmark: how fast the publisher empties a backlog
//! into NATS JetStream, and how long a fact takes from its commit to
//! JetStream's acknowledgement under a steady command load.
//!
//! ```sh
//! cargo run --release -p bench --bin integration
//! ```
//!
//! NATS: `NATS_URL` (a stream and subjects of the run's own) or a private
//! `nats-server -js`, as the tests. A fresh database as the listing
//! benchmark.
//!
//! 1. **Backlog.** Seeds orders straight into the event store
//!    (`seed::orders`: placed, reserved, paid, invoiced, shipped, delivered,
//!    some cancelled or refunded) until the log holds at least
//!    `BENCH_BACKLOG` (100,000) integration events, then runs the publisher
//!    alone (`ProjectorRuntime` with only it, as `shop serve` runs it) from
//!    checkpoint zero until its checkpoint reaches the head, and prints the
//!    integration events published per second.
//! 2. **Latency.** On another fresh database, the real server in this
//!    process with every projector and workflow and the publisher; 16
//!    clients place card orders paced to `BENCH_RATE` orders/s in all
//!    (default 240: half the placement rate of the checkout benchmark's
//!    run at the same commit, BENCHMARKS.md) for `BENCH_SECONDS` (10). Once
//!    every event is in the stream it takes, for each integration event
//!    committed meanwhile, the time from its `recorded_at` to the time
//!    JetStream stored it (the acknowledgement follows that store), and
//!    prints p50, p99 and max.
//!
//! Knobs (environment): `BENCH_BACKLOG`, `BENCH_RATE`, `BENCH_SECONDS`,
//! `BENCH_CLIENTS` (16), `BENCH_KEEP_DB`.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bench::Latency;
use chrono::{DateTime, Utc};
use projections::event_store::log::{head_position, read_after, Checkpoint};
use projections::integration::contract::integration_event;
use projections::integration::nats::NatsSettings;
use projections::integration::publisher::{Publisher, NAME};
use projections::runtime::RuntimeConfig;
use projections::supervisor::ProjectorRuntime;
use reqwest::StatusCode;
use serde_json::json;
use testkit::nats::TestNats;
use testkit::{seed, TestApp};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn settings_of(nats: &TestNats) -> NatsSettings {
    NatsSettings {
        url: nats.url.clone().into(),
        stream: nats.stream.clone(),
        prefix: nats.prefix.clone(),
    }
}

/// The integration events of the log: `(id, recorded_at)` of each.
async fn integration_events(pool: &sqlx::PgPool) -> Result<Vec<(String, DateTime<Utc>)>> {
    let mut out = Vec::new();
    let mut from = Checkpoint::START;
    loop {
        let events = read_after(pool, from, 10_000).await?;
        let Some(last) = events.last() else {
            return Ok(out);
        };
        from = last.checkpoint();
        for event in &events {
            if let Some(cloud_event) = integration_event(event)? {
                out.push((cloud_event.id, event.recorded_at));
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let backlog: usize = bench::env_number("BENCH_BACKLOG", 100_000)?;
    let rate: f64 = bench::env_number("BENCH_RATE", 240.0)?;
    let seconds: u64 = bench::env_number("BENCH_SECONDS", 10)?;
    let clients: usize = bench::env_number("BENCH_CLIENTS", 16)?;
    ensure!(backlog >= 100, "BENCH_BACKLOG must be >= 100");
    ensure!(
        rate > 0.0 && clients > 0,
        "BENCH_RATE and BENCH_CLIENTS must be > 0"
    );

    // ---- 1. the backlog ----
    let nats = TestNats::new().await;
    let published_rate = Arc::new(std::sync::Mutex::new(0.0_f64));
    let rate_out = published_rate.clone();
    let nats_settings = settings_of(&nats);
    bench::with_fresh_database("integration-backlog", |db| async move {
        let pool = &db.pool;
        let started = std::time::Instant::now();
        seed::catalog(pool, 50, 2).await?;
        let mut count = integration_events(pool).await?.len();
        while count < backlog {
            // About 6 integration events in 10 order events.
            seed::orders(pool, ((backlog - count) as i64 * 10 / 6).max(1_000)).await?;
            count = integration_events(pool).await?.len();
        }
        let head = head_position(pool).await?;
        println!(
            "seeded {count} integration events (log head {head}) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        sqlx::query("VACUUM ANALYZE events").execute(pool).await?;
        let runtime = ProjectorRuntime::new(
            pool.clone(),
            vec![Arc::new(Publisher::new(nats_settings))],
            RuntimeConfig::default(),
        );
        let stop = CancellationToken::new();
        let started = std::time::Instant::now();
        let running = tokio::spawn(runtime.run(stop.clone()));
        seed::wait_for_projector(pool, NAME, head).await?;
        let took = started.elapsed().as_secs_f64();
        stop.cancel();
        running.await?;
        let per_second = count as f64 / took;
        println!("backlog: {count} integration events published in {took:.2} s = {per_second:.0} events/s");
        *rate_out.lock().unwrap() = per_second;
        Ok(())
    })
    .await?;
    let js = nats.jetstream().await;
    let stream = js
        .get_stream(&nats.stream)
        .await
        .context("the outbound stream")?;
    let stored = stream.get_info().await?.state.messages;
    println!("the stream holds {stored} messages");
    drop(stream);

    // ---- 2. latency at a steady command rate ----
    let nats = TestNats::new().await;
    let backlog_rate = *published_rate.lock().unwrap();
    bench::with_fresh_database("integration-latency", |db| {
        steady(db, nats, backlog_rate, rate, seconds, clients)
    })
    .await
}

async fn steady(
    db: testkit::TestDatabase,
    nats: TestNats,
    backlog_rate: f64,
    rate: f64,
    seconds: u64,
    clients: usize,
) -> Result<()> {
    let workflows = projections::workflows::WorkflowSettings {
        nats: Some(settings_of(&nats)),
        ..testkit::test_workflow_settings()
    };
    let app = testkit::spawn_app_on_with_settings(db, workflows).await;
    let (_admin, products) = app.stocked_catalog(&[(450, 1_000_000); 50]).await;
    let customers = app.register_customers(clients).await;
    app.wait_for_workflows().await;
    let window_start = Utc::now();
    let placed = place_paced(
        &app,
        &customers,
        &products,
        rate,
        Duration::from_secs(seconds),
    )
    .await;
    app.wait_for_workflows().await;
    let expected = integration_events(&app.db.pool).await?;
    let js = nats.jetstream().await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let messages = loop {
        let messages = nats.outbound_messages(&js).await;
        if messages.len() >= expected.len() || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stored_at: HashMap<String, DateTime<Utc>> = messages
        .iter()
        .filter_map(|m| Some((m.body["id"].as_str()?.to_string(), m.stored_at)))
        .collect();
    let samples: Vec<Duration> = expected
        .iter()
        .filter(|(_, recorded_at)| *recorded_at >= window_start)
        .filter_map(|(id, recorded_at)| (*stored_at.get(id)? - *recorded_at).to_std().ok())
        .collect();
    ensure!(!samples.is_empty(), "no integration event was published");
    let latency = Latency::of(samples);
    println!(
        "steady load: {placed} orders in {seconds} s ({:.1}/s asked {rate:.0}/s), {} integration events; \
         commit to JetStream: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        placed as f64 / seconds as f64,
        latency.count,
        latency.p50,
        latency.p99,
        latency.max
    );
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| backlog publish rate (events/s) | {backlog_rate:.0} |");
    println!(
        "| steady load (orders/s) | {:.1} |",
        placed as f64 / seconds as f64
    );
    println!("| commit to JetStream p50 (ms) | {:.1} |", latency.p50);
    println!("| commit to JetStream p99 (ms) | {:.1} |", latency.p99);
    println!("| commit to JetStream max (ms) | {:.1} |", latency.max);
    Ok(())
}

/// Card orders from `customers` paced to `rate` per second in all, for
/// `window`; answers how many were placed (201).
async fn place_paced(
    app: &TestApp,
    customers: &[testkit::Session],
    products: &[uuid::Uuid],
    rate: f64,
    window: Duration,
) -> usize {
    let clients = customers.len();
    let interval = Duration::from_secs_f64(clients as f64 / rate);
    let start = Instant::now();
    let stop = start + window;
    let tasks = customers.iter().enumerate().map(|(client, customer)| {
        let url = app.url("/v1/orders");
        let http = app.client.clone();
        async move {
            let mut placed = 0;
            let mut next = start + interval * client as u32 / clients as u32;
            let mut n = client;
            loop {
                tokio::time::sleep_until(next).await;
                next += interval;
                if Instant::now() >= stop {
                    return placed;
                }
                n += 1;
                let body = json!({
                    "shipping_address": testkit::shipping_address(),
                    "items": [{"product_id": products[n % products.len()], "quantity": 1}],
                    "payment": {"method": "card", "token": "tok_visa"},
                });
                let sent = http
                    .post(&url)
                    .bearer_auth(&customer.token)
                    .json(&body)
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status() == StatusCode::CREATED) {
                    placed += 1;
                }
            }
        }
    });
    futures::future::join_all(tasks).await.into_iter().sum()
}
