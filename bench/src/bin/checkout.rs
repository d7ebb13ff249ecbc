//! Checkout benchmark: how fast card orders go from placed to invoiced when
//! many customers check out at once, spread over many products or all on
//! one, and how long each order takes from `OrderPlaced` to
//! `InvoiceIssued`.
//!
//! ```sh
//! cargo run --release -p bench --bin checkout
//! ```
//!
//! Four scenarios, each on a fresh database (`DATABASE_URL`'s server or the
//! private test cluster, as the listing benchmark) with a real server of its
//! own and its projectors and workflows (`spawn_app_on`, in this process).
//! The simulated gateway calls the server's webhook back over HTTP, as in
//! production.
//!
//! 1. Setup, not timed: products with a stock of 1,000,000 each (through
//!    the API) and one registered customer per client, whose bearer token is
//!    issued with the server's keys (sign-in is rate limited per address).
//! 2. Every client (a tokio task) places orders one after the other: one
//!    line of quantity 1 of a random product (seeded xorshift), paid by card
//!    with `tok_visa` (`POST /v1/orders`). Each 201 counts; any other answer
//!    is an error and is printed. No order is started after the window.
//! 3. After placing stops, it waits until every placed order is invoiced
//!    (`BENCH_DRAIN_SECS` at most, and says so if not), then reads each
//!    order's `OrderPlaced` and `InvoiceIssued` from the event store
//!    (`recorded_at`).
//! 4. Prints the placements per second (201 answers over the placing
//!    window), the sustained rate (invoices from the first placement to the
//!    last invoice) and its ratio to the placement rate, and the latency
//!    from `OrderPlaced` to `InvoiceIssued` (median, nearest-rank p99, max).
//!
//! The scenarios: as fast as the clients are answered over
//! `BENCH_PRODUCTS` products, then all on one product; then both again with
//! the clients paced (a fixed schedule per client) to half the placement
//! rate each of them measured. Targets: sustained rate at least 0.9 of the
//! placement rate over many products and at least 0.5 on one product; p99
//! from placement to invoice under 1 s at half load.
//!
//! Knobs (environment): `BENCH_SECONDS` placing window per scenario (20),
//! `BENCH_CLIENTS` (16), `BENCH_PRODUCTS` (50), `BENCH_DRAIN_SECS` how long
//! to wait for the invoices after placing (300), `BENCH_SEED` (1),
//! `BENCH_KEEP_DB` as in the listing benchmark (keeps every scenario's
//! database).
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bench::{Latency, XorShift};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::order::Order;
use projections::event_store::lookups::{self, EventFilter};
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{Session, TestApp, TestDatabase};
use tokio::time::Instant;
use uuid::Uuid;

/// Stock received for each product: more than any run can order.
const STOCK: i64 = 1_000_000;

struct Settings {
    window: Duration,
    clients: usize,
    products: usize,
    drain: Duration,
    seed: u64,
}

/// One scenario: how many products, and the total placement rate the
/// clients are paced to (`None`: as fast as they are answered).
struct Scenario {
    name: String,
    products: usize,
    pace: Option<f64>,
}

/// What one scenario measured.
struct Report {
    name: String,
    placed: usize,
    placement_rate: f64,
    sustained_rate: f64,
    latency: Option<Latency>,
    /// Every placed order was invoiced before the deadline.
    complete: bool,
}

fn main() -> Result<()> {
    let settings = Settings {
        window: Duration::from_secs_f64(bench::env_number("BENCH_SECONDS", 20.0)?),
        clients: bench::env_number("BENCH_CLIENTS", 16)?,
        products: bench::env_number("BENCH_PRODUCTS", 50)?,
        drain: Duration::from_secs_f64(bench::env_number("BENCH_DRAIN_SECS", 300.0)?),
        seed: bench::env_number("BENCH_SEED", 1)?,
    };
    ensure!(settings.clients >= 1, "BENCH_CLIENTS must be >= 1");
    ensure!(settings.products >= 1, "BENCH_PRODUCTS must be >= 1");
    ensure!(
        settings.window >= Duration::from_secs(1),
        "BENCH_SECONDS must be >= 1"
    );
    let cluster = bench::ClusterAtStart::note();
    println!(
        "{} clients, {:.0} s of placing per scenario, one-line card orders (tok_visa)",
        settings.clients,
        settings.window.as_secs_f64()
    );

    let many = format!("{} products", settings.products);
    let full_many = run(
        &settings,
        Scenario {
            name: many.clone(),
            products: settings.products,
            pace: None,
        },
    )?;
    let full_one = run(
        &settings,
        Scenario {
            name: "1 product".to_string(),
            products: 1,
            pace: None,
        },
    )?;
    let half_many = run(
        &settings,
        Scenario {
            name: format!("{many}, half load"),
            products: settings.products,
            pace: Some(full_many.placement_rate / 2.0),
        },
    )?;
    let half_one = run(
        &settings,
        Scenario {
            name: "1 product, half load".to_string(),
            products: 1,
            pace: Some(full_one.placement_rate / 2.0),
        },
    )?;

    println!();
    println!("| scenario | placed | placements/s | sustained invoiced/s | sustained / placement | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for report in [&full_many, &full_one, &half_many, &half_one] {
        let (p50, p99, max) = report
            .latency
            .map(|l| {
                (
                    format!("{:.1}", l.p50),
                    format!("{:.1}", l.p99),
                    format!("{:.1}", l.max),
                )
            })
            .unwrap_or_default();
        println!(
            "| {}{} | {} | {:.1} | {:.1} | {:.3} | {p50} | {p99} | {max} |",
            report.name,
            if report.complete {
                ""
            } else {
                " (not all invoiced)"
            },
            report.placed,
            report.placement_rate,
            report.sustained_rate,
            report.ratio()
        );
    }
    println!();
    for (report, target) in [(&full_many, 0.9), (&full_one, 0.5)] {
        println!(
            "{}: sustained / placement = {:.3} ({:.1}/s of {:.1}/s; target at least {target}): {}",
            report.name,
            report.ratio(),
            report.sustained_rate,
            report.placement_rate,
            met(report.complete && report.ratio() >= target)
        );
    }
    for report in [&half_many, &half_one] {
        let p99 = report.latency.map_or(f64::NAN, |l| l.p99);
        println!(
            "{}: p99 placement to invoice = {p99:.1} ms (target under 1000 ms): {}",
            report.name,
            met(report.complete && p99 < 1000.0)
        );
    }

    tokio::runtime::Runtime::new()?.block_on(cluster.stop_if_started_here())
}

fn met(yes: bool) -> &'static str {
    if yes {
        "met"
    } else {
        "not met"
    }
}

impl Report {
    fn ratio(&self) -> f64 {
        if self.placement_rate > 0.0 {
            self.sustained_rate / self.placement_rate
        } else {
            0.0
        }
    }
}

/// Runs one scenario on a fresh database, in a runtime of its own, so that
/// nothing of its server (projectors, workflows, callback delivery) is left
/// running in the next.
fn run(settings: &Settings, scenario: Scenario) -> Result<Report> {
    println!();
    match scenario.pace {
        Some(rate) => println!(
            "== {}: the clients paced to {rate:.1} placements/s in all",
            scenario.name
        ),
        None => println!("== {}: as fast as the clients are answered", scenario.name),
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let mut report = None;
    let (slot, scenario) = (&mut report, &scenario);
    runtime.block_on(bench::on_fresh_database("checkout", move |db| async move {
        *slot = Some(measure(settings, scenario, db).await?);
        Ok(())
    }))?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    report.context("the scenario gave no report")
}

async fn measure(settings: &Settings, scenario: &Scenario, db: TestDatabase) -> Result<Report> {
    let app = testkit::spawn_app_on(db).await;

    // ---- setup, not timed ----
    let started = Instant::now();
    let catalog: Vec<(i64, i64)> = (0..scenario.products)
        .map(|i| (199 + 37 * i as i64, STOCK))
        .collect();
    let (_admin, products) = app.stocked_catalog(&catalog).await;
    let customers = app.register_customers(settings.clients).await;
    app.wait_for_workflows().await;
    println!(
        "{} products with {STOCK} each and {} registered customers in {:.1} s (through the API)",
        products.len(),
        customers.len(),
        started.elapsed().as_secs_f64()
    );

    // ---- placing ----
    let placing = place(&app, settings, scenario, customers, products).await?;
    let placed = placing.ok;
    ensure!(placed > 0, "no order was placed: {:?}", placing.errors);
    let placement_rate = placed as f64 / placing.elapsed.as_secs_f64();
    let http = Latency::of(placing.latencies.clone());
    println!(
        "placed: {placed} x 201 in {:.2} s = {placement_rate:.1}/s; errors: {}; \
         POST /v1/orders p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        placing.elapsed.as_secs_f64(),
        placing.errors.values().map(|(n, _)| n).sum::<usize>(),
        http.p50,
        http.p99,
        http.max
    );
    for (code, (n, example)) in &placing.errors {
        println!("  error {code}: {n} x, e.g. {example}");
    }

    // ---- until every placed order is invoiced ----
    let placing_ended = Instant::now();
    let deadline = placing_ended + settings.drain;
    let complete = loop {
        let invoiced = app.events_of_type("InvoiceIssued").await;
        if invoiced >= placed as i64 {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let orders = order_times(&app).await?;
    let stored = orders.values().filter(|o| o.placed.is_some()).count();
    if stored != placed {
        println!("  note: {placed} answered 201 but {stored} orders are stored");
    }
    let latencies: Vec<Duration> = orders
        .values()
        .filter_map(|o| (o.invoiced? - o.placed?).to_std().ok())
        .collect();
    let invoiced = latencies.len();
    if !complete {
        let mut last_events: BTreeMap<&str, usize> = BTreeMap::new();
        for order in orders.values().filter(|o| o.invoiced.is_none()) {
            *last_events.entry(order.last_event.as_str()).or_default() += 1;
        }
        println!(
            "NOT DONE: {invoiced} of {placed} orders invoiced {:.0} s after placing stopped; \
             the others' last events: {last_events:?}",
            settings.drain.as_secs_f64()
        );
    }
    let first_placed = orders.values().filter_map(|o| o.placed).min();
    let last_placed = orders.values().filter_map(|o| o.placed).max();
    let last_invoiced = orders.values().filter_map(|o| o.invoiced).max();
    let (sustained_rate, latency) = match (first_placed, last_placed, last_invoiced) {
        (Some(first), Some(last_placed), Some(last_invoice)) if invoiced > 0 => {
            let span = (last_invoice - first).to_std().unwrap_or_default();
            let sustained = invoiced as f64 / span.as_secs_f64().max(f64::EPSILON);
            let latency = Latency::of(latencies);
            println!(
                "invoiced: {invoiced} of {placed}, the last {:.2} s after the last placement; \
                 {invoiced} invoices in {:.2} s from the first placement to the last invoice = {sustained:.1}/s \
                 = {:.3} of the placement rate",
                (last_invoice - last_placed).num_milliseconds() as f64 / 1000.0,
                span.as_secs_f64(),
                sustained / placement_rate
            );
            println!(
                "OrderPlaced to InvoiceIssued (recorded_at): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                latency.p50, latency.p99, latency.max
            );
            (sustained, Some(latency))
        }
        _ => {
            println!("no order was invoiced");
            (0.0, None)
        }
    };
    Ok(Report {
        name: scenario.name.clone(),
        placed,
        placement_rate,
        sustained_rate,
        latency,
        complete,
    })
}

/// What the clients saw.
#[derive(Default)]
struct Placing {
    ok: usize,
    /// By status and error code: how many, and one example.
    errors: BTreeMap<String, (usize, String)>,
    /// Of each 201.
    latencies: Vec<Duration>,
    /// From the start until the last client's last answer.
    elapsed: Duration,
}

impl Placing {
    fn error(&mut self, code: String, example: String) {
        self.errors.entry(code).or_insert((0, example)).0 += 1;
    }
}

/// The clients place orders for the window (none started after it), paced
/// to `scenario.pace` in all when it is set.
async fn place(
    app: &TestApp,
    settings: &Settings,
    scenario: &Scenario,
    customers: Vec<Session>,
    products: Vec<Uuid>,
) -> Result<Placing> {
    let products = Arc::new(products);
    // Each client's time between two placements, and its first at a share
    // of that, so that the clients do not send together.
    let interval = scenario
        .pace
        .map(|rate| Duration::from_secs_f64(settings.clients as f64 / rate.max(f64::EPSILON)));
    let start = Instant::now();
    let stop = start + settings.window;
    let mut tasks = Vec::new();
    for (client, customer) in customers.into_iter().enumerate() {
        let http = app.client.clone();
        let url = app.url("/v1/orders");
        let products = products.clone();
        let seed = settings
            .seed
            .wrapping_mul(1_000_033)
            .wrapping_add(client as u64);
        let clients = settings.clients;
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift::new(seed);
            let mut record = Placing::default();
            let mut next =
                start + interval.map_or(Duration::ZERO, |i| i * client as u32 / clients as u32);
            loop {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next).await;
                    next += interval;
                }
                if Instant::now() >= stop {
                    break;
                }
                let product = products[rng.below(products.len())];
                let body = json!({
                    "shipping_address": testkit::shipping_address(),
                    "items": [{"product_id": product, "quantity": 1}],
                    "payment": {"method": "card", "token": "tok_visa"},
                });
                let sent = Instant::now();
                let response = match http
                    .post(&url)
                    .bearer_auth(&customer.token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => response,
                    Err(e) => {
                        record.error("transport".into(), e.to_string());
                        continue;
                    }
                };
                let status = response.status();
                match response.bytes().await {
                    Ok(_) if status == StatusCode::CREATED => {
                        record.ok += 1;
                        record.latencies.push(sent.elapsed());
                    }
                    Ok(body) => {
                        let text = String::from_utf8_lossy(&body).to_string();
                        let code = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v["error"].as_str().map(str::to_string))
                            .unwrap_or_default();
                        record.error(format!("{} {code}", status.as_u16()), text);
                    }
                    Err(e) => record.error("transport".into(), e.to_string()),
                }
            }
            record
        }));
    }
    let mut placing = Placing::default();
    for task in tasks {
        let record = task.await.context("a client task failed")?;
        placing.ok += record.ok;
        placing.latencies.extend(record.latencies);
        for (code, (n, example)) in record.errors {
            placing.errors.entry(code).or_insert((0, example)).0 += n;
        }
    }
    placing.elapsed = start.elapsed();
    Ok(placing)
}

/// When an order was placed and invoiced, as its events were recorded.
#[derive(Default)]
struct OrderTimes {
    placed: Option<DateTime<Utc>>,
    invoiced: Option<DateTime<Utc>>,
    last_event: String,
}

/// Every order's `OrderPlaced` and `InvoiceIssued` times, from the event
/// store.
async fn order_times(app: &TestApp) -> Result<HashMap<String, OrderTimes>> {
    let mut orders: HashMap<String, OrderTimes> = HashMap::new();
    let mut filter = EventFilter {
        aggregate_type: Some(<Order as Aggregate>::TYPE.to_string()),
        ..Default::default()
    };
    loop {
        let page = lookups::matching(&app.db.pool, &filter, 10_000).await?;
        let Some(last) = page.last() else {
            return Ok(orders);
        };
        filter.after_position = last.position;
        for event in page {
            let order = orders.entry(event.aggregate_id).or_default();
            match event.event_type.as_str() {
                "OrderPlaced" => order.placed = Some(event.recorded_at),
                "InvoiceIssued" => order.invoiced = Some(event.recorded_at),
                _ => {}
            }
            order.last_event = event.event_type;
        }
    }
}
