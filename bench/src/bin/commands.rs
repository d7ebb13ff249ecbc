//! Command throughput benchmark: how many add-to-cart commands per second the
//! real server takes over HTTP from many concurrent clients, next to what
//! PostgreSQL itself manages for the same database work, in one run.
//!
//! ```sh
//! cargo run --release -p bench --bin commands
//! ```
//!
//! 1. A fresh database as the listing benchmark (`DATABASE_URL`'s server or
//!    the private test cluster), the real server with its projectors
//!    (`spawn_app_on`), a catalog of products with stock (through the API)
//!    and customers registered through `POST /v1/register`. Their bearer
//!    tokens are issued with the server's own keys (what `POST /v1/login`
//!    answers; signing in is rate limited per address, and every client here
//!    is 127.0.0.1).
//! 2. HTTP: concurrent clients (one keep-alive connection each) send
//!    `POST /v1/cart/items` (quantity 1) for a random customer and a random
//!    product (seeded xorshift), first for a short warm-up, then for the
//!    timed window. Every 2xx answer counts; a 409 `concurrent_modification`
//!    (the server already decided again five times) is counted apart; any
//!    other answer is an error and is printed.
//! 3. PostgreSQL: `bench_events` is created `LIKE events INCLUDING ALL` (the
//!    same columns, defaults, identity, constraints and indexes, no
//!    triggers) and gets a copy of the carts the HTTP run wrote. Then as
//!    many connections as there were clients run, for as long, the database
//!    work of a command: `BEGIN`; select the events of a random one of those
//!    carts (the columns cqrs-es reads); insert one `CartItemAdded` at the
//!    next sequence; `COMMIT`. A unique violation (two connections on the
//!    same cart) is rolled back and counted apart.
//! 4. Prints both rates, their ratio, the latencies and the events written.
//!
//! The two parts run one after the other, never at once; the projectors
//! catch up between them. Knobs (environment): `BENCH_CLIENTS` (32),
//! `BENCH_CUSTOMERS` (200), `BENCH_PRODUCTS` (50), `BENCH_SECS` timed
//! seconds per part (15), `BENCH_WARMUP_SECS` (2), `BENCH_SEED` (1),
//! `BENCH_KEEP_DB` as in the listing benchmark.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bench::{Latency, XorShift};
use cqrs_es::{Aggregate, DomainEvent};
use domain::cart::{cart_id_for, Cart, CartEvent};
use domain::metadata::{Actor, CommandMetadata, Role};
use domain::values::{CustomerId, ProductId, Quantity};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use testkit::TestApp;
use uuid::Uuid;

struct Settings {
    clients: usize,
    customers: usize,
    products: usize,
    window: Duration,
    warmup: Duration,
    seed: u64,
}

/// One registered customer: its id (the cart's owner) and bearer token.
struct Customer {
    id: Uuid,
    token: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let settings = Settings {
        clients: bench::env_number("BENCH_CLIENTS", 32)?,
        customers: bench::env_number("BENCH_CUSTOMERS", 200)?,
        products: bench::env_number("BENCH_PRODUCTS", 50)?,
        window: Duration::from_secs_f64(bench::env_number("BENCH_SECS", 15.0)?),
        warmup: Duration::from_secs_f64(bench::env_number("BENCH_WARMUP_SECS", 2.0)?),
        seed: bench::env_number("BENCH_SEED", 1)?,
    };
    ensure!(settings.clients >= 1, "BENCH_CLIENTS must be >= 1");
    ensure!(settings.customers >= 1, "BENCH_CUSTOMERS must be >= 1");
    ensure!(settings.products >= 1, "BENCH_PRODUCTS must be >= 1");
    ensure!(
        settings.window >= Duration::from_secs(1),
        "BENCH_SECS must be >= 1"
    );

    bench::with_fresh_database("commands", |db| async move { run(&settings, db).await }).await
}

async fn run(settings: &Settings, db: testkit::TestDatabase) -> Result<()> {
    let app = testkit::spawn_app_on(db).await;

    // ---- setup through the API ----
    let started = Instant::now();
    let catalog: Vec<(i64, i64)> = (0..settings.products)
        .map(|i| (199 + 37 * i as i64, 1_000_000))
        .collect();
    let (_admin, products) = app.stocked_catalog(&catalog).await;
    let customers = register_customers(&app, settings.customers).await?;
    app.wait_for_read_models(app.latest_position().await).await;
    println!(
        "{} products with stock and {} registered customers in {:.1} s (through the API)",
        products.len(),
        customers.len(),
        started.elapsed().as_secs_f64()
    );

    // ---- HTTP ----
    let customers = Arc::new(customers);
    let products = Arc::new(products);
    let before: i64 = app.event_count_of(Cart::TYPE).await;
    http_phase(
        &app,
        settings,
        &customers,
        &products,
        settings.warmup,
        settings.seed,
    )
    .await?;
    let warmup_events = app.event_count_of(Cart::TYPE).await - before;
    let http = http_phase(
        &app,
        settings,
        &customers,
        &products,
        settings.window,
        settings.seed.wrapping_add(1_000_003),
    )
    .await?;
    // The projectors finish what the run gave them before PostgreSQL is
    // measured alone.
    let head = app.latest_position().await;
    let catching_up = Instant::now();
    app.wait_for_read_models(head).await;
    let catch_up = catching_up.elapsed();
    let (cart_events, carts): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = $1",
    )
    .bind(Cart::TYPE)
    .fetch_one(&app.db.pool)
    .await?;
    let timed_events = cart_events - before - warmup_events;

    // ---- PostgreSQL ----
    let (copied, indexes) = prepare_bench_events(&app.db.pool).await?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.clients as u32)
        .min_connections(settings.clients as u32)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(PgConnectOptions::from_str(&app.db.url)?.disable_statement_logging())
        .await?;
    let cart_ids: Vec<(String, Uuid)> = customers
        .iter()
        .map(|c| (cart_id_for(&CustomerId(c.id)).to_string(), c.id))
        .collect();
    let cart_ids = Arc::new(cart_ids);
    pg_phase(
        &pool,
        settings.clients,
        &cart_ids,
        &products,
        settings.warmup,
        settings.seed.wrapping_add(2),
    )
    .await?;
    let pg_before: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_events")
        .fetch_one(&pool)
        .await?;
    let pg = pg_phase(
        &pool,
        settings.clients,
        &cart_ids,
        &products,
        settings.window,
        settings.seed.wrapping_add(3),
    )
    .await?;
    let pg_after: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_events")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    ensure!(
        pg_after - pg_before == pg.ok as i64,
        "{} committed transactions but {} new rows in bench_events",
        pg.ok,
        pg_after - pg_before
    );
    ensure!(http.ok > 0, "no HTTP command succeeded: {:?}", http.errors);
    ensure!(
        pg.ok > 0,
        "no PostgreSQL transaction committed: {:?}",
        pg.errors
    );

    // ---- report ----
    let http_rate = http.ok as f64 / http.elapsed.as_secs_f64();
    let pg_rate = pg.ok as f64 / pg.elapsed.as_secs_f64();
    let http_latency = Latency::of(http.latencies.clone());
    let pg_latency = Latency::of(pg.latencies.clone());
    println!();
    println!(
        "{} clients, {} customers, {} products, {:.0} s timed after {:.0} s warm-up per part",
        settings.clients,
        settings.customers,
        settings.products,
        settings.window.as_secs_f64(),
        settings.warmup.as_secs_f64()
    );
    println!(
        "HTTP POST /v1/cart/items: {} x 2xx in {:.2} s = {:.0}/s (per second: min {}, median {}, max {}); \
         409 concurrent_modification: {}; errors: {}",
        http.ok,
        http.elapsed.as_secs_f64(),
        http_rate,
        http.per_second_min(),
        http.per_second_median(),
        http.per_second_max(),
        http.conflicts,
        http.errors.values().map(|(n, _)| n).sum::<usize>()
    );
    for (code, (n, example)) in &http.errors {
        println!("  error {code}: {n} x, e.g. {example}");
    }
    println!(
        "  latency of the 2xx commands: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        http_latency.p50, http_latency.p99, http_latency.max
    );
    println!(
        "  events written: {timed_events} in the timed window ({warmup_events} in the warm-up); \
         {cart_events} cart events in {carts} carts = {:.1} per cart; projectors caught up {:.1} s after the run",
        cart_events as f64 / carts.max(1) as f64,
        catch_up.as_secs_f64()
    );
    if timed_events != http.ok as i64 {
        println!(
            "  note: {} successful commands but {timed_events} new cart events",
            http.ok
        );
    }
    println!(
        "PostgreSQL (BEGIN; SELECT a cart's events; INSERT one; COMMIT) on bench_events \
         ({copied} copied cart events, {indexes} indexes, no triggers): {} transactions in {:.2} s = {:.0}/s \
         (per second: min {}, median {}, max {}); unique violations rolled back: {}",
        pg.ok,
        pg.elapsed.as_secs_f64(),
        pg_rate,
        pg.per_second_min(),
        pg.per_second_median(),
        pg.per_second_max(),
        pg.conflicts
    );
    for (code, (n, example)) in &pg.errors {
        println!("  error {code}: {n} x, e.g. {example}");
    }
    println!(
        "  latency of the transactions: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; events written: {}",
        pg_latency.p50, pg_latency.p99, pg_latency.max, pg.ok
    );
    println!(
        "HTTP / PostgreSQL: {:.3} ({:.0}/s of {:.0}/s; target at least 0.5)",
        http_rate / pg_rate,
        http_rate,
        pg_rate
    );
    Ok(())
}

/// Registers `n` customers through the API, a few at a time (each is an
/// argon2 hash); answers their ids and tokens.
async fn register_customers(app: &TestApp, n: usize) -> Result<Vec<Customer>> {
    let registered: Vec<Result<Customer>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let username = format!("bench_customer_{i:04}");
            let response = app.register(&testkit::customer_body(&username)).await;
            let status = response.status();
            let body = response.text().await?;
            ensure!(
                status == StatusCode::CREATED,
                "register {username}: {status}: {body}"
            );
            let body: Value = serde_json::from_str(&body)?;
            let id = testkit::uuid_field(&body, "customer_id");
            let (token, _) = app
                .state
                .tokens
                .issue(id, Role::Customer)
                .map_err(|e| anyhow::anyhow!("issue a token: {e:?}"))?;
            Ok(Customer { id, token })
        })
        .buffer_unordered(4)
        .collect()
        .await;
    registered.into_iter().collect()
}

/// What one phase of concurrent clients saw.
struct Phase {
    ok: usize,
    conflicts: usize,
    /// By error code: how many, and one example.
    errors: BTreeMap<String, (usize, String)>,
    /// Latency of each successful command.
    latencies: Vec<Duration>,
    /// Successful commands completed in each second of the phase.
    per_second: Vec<usize>,
    /// From the start until the last client finished.
    elapsed: Duration,
}

/// What one client saw.
#[derive(Default)]
struct ClientRecord {
    ok: usize,
    conflicts: usize,
    errors: BTreeMap<String, (usize, String)>,
    latencies: Vec<Duration>,
    /// Completion time of each success, from the phase's start.
    done_at: Vec<Duration>,
}

impl ClientRecord {
    fn error(&mut self, code: String, example: String) {
        let entry = self.errors.entry(code).or_insert((0, example));
        entry.0 += 1;
    }
}

impl Phase {
    fn collect(records: Vec<ClientRecord>, elapsed: Duration) -> Phase {
        let seconds = elapsed.as_secs_f64().ceil().max(1.0) as usize;
        let mut phase = Phase {
            ok: 0,
            conflicts: 0,
            errors: BTreeMap::new(),
            latencies: Vec::new(),
            per_second: vec![0; seconds],
            elapsed,
        };
        for record in records {
            phase.ok += record.ok;
            phase.conflicts += record.conflicts;
            for (code, (n, example)) in record.errors {
                phase.errors.entry(code).or_insert((0, example)).0 += n;
            }
            phase.latencies.extend(record.latencies);
            for at in record.done_at {
                let second = (at.as_secs_f64() as usize).min(seconds - 1);
                phase.per_second[second] += 1;
            }
        }
        phase
    }

    /// The whole seconds of the phase (the last, partial one left out).
    fn full_seconds(&self) -> Vec<usize> {
        let full = (self.elapsed.as_secs_f64().floor() as usize).max(1);
        let mut seconds: Vec<usize> = self.per_second.iter().take(full).copied().collect();
        seconds.sort_unstable();
        seconds
    }
    fn per_second_min(&self) -> usize {
        self.full_seconds().first().copied().unwrap_or(0)
    }
    fn per_second_max(&self) -> usize {
        self.full_seconds().last().copied().unwrap_or(0)
    }
    fn per_second_median(&self) -> usize {
        let seconds = self.full_seconds();
        seconds.get(seconds.len() / 2).copied().unwrap_or(0)
    }
}

/// `settings.clients` clients send add-to-cart commands for `duration`
/// (none is started after it); answers what they saw.
async fn http_phase(
    app: &TestApp,
    settings: &Settings,
    customers: &Arc<Vec<Customer>>,
    products: &Arc<Vec<Uuid>>,
    duration: Duration,
    seed: u64,
) -> Result<Phase> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for client in 0..settings.clients {
        let http = app.client.clone();
        let url = app.url("/v1/cart/items");
        let customers = customers.clone();
        let products = products.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift::new(seed.wrapping_mul(1_000_033).wrapping_add(client as u64));
            let mut record = ClientRecord::default();
            while Instant::now() < deadline {
                let customer = &customers[rng.below(customers.len())];
                let product = products[rng.below(products.len())];
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(&customer.token)
                    .json(&json!({"product_id": product, "quantity": 1}))
                    .send()
                    .await;
                let response = match response {
                    Ok(r) => r,
                    Err(e) => {
                        record.error("transport".into(), e.to_string());
                        continue;
                    }
                };
                let status = response.status();
                let body = response.bytes().await;
                let took = sent.elapsed();
                match body {
                    Ok(_) if status.is_success() => {
                        record.ok += 1;
                        record.latencies.push(took);
                        record.done_at.push(start.elapsed());
                    }
                    Ok(body) => {
                        let text = String::from_utf8_lossy(&body).to_string();
                        let code = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v["error"].as_str().map(str::to_string))
                            .unwrap_or_default();
                        if status == StatusCode::CONFLICT && code == "concurrent_modification" {
                            record.conflicts += 1;
                        } else {
                            record.error(format!("{} {code}", status.as_u16()), text);
                        }
                    }
                    Err(e) => record.error("transport".into(), e.to_string()),
                }
            }
            record
        }));
    }
    let mut records = Vec::new();
    for task in tasks {
        records.push(task.await.context("an HTTP client task failed")?);
    }
    Ok(Phase::collect(records, start.elapsed()))
}

/// Creates `bench_events` like `events` (without its triggers), checks that
/// it has the same indexes, identity column and defaults, and copies the
/// cart events into it. Answers the rows copied and the indexes.
async fn prepare_bench_events(pool: &PgPool) -> Result<(i64, i64)> {
    sqlx::query("CREATE TABLE bench_events (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    let (indexes, events_indexes, identity, xid_default, triggers): (
        i64,
        i64,
        String,
        Option<String>,
        i64,
    ) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_index WHERE indrelid = 'bench_events'::regclass),
                (SELECT count(*) FROM pg_index WHERE indrelid = 'events'::regclass),
                (SELECT attidentity::text FROM pg_attribute
                  WHERE attrelid = 'bench_events'::regclass AND attname = 'global_position'),
                (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
                   JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                  WHERE d.adrelid = 'bench_events'::regclass AND a.attname = 'transaction_id'),
                (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'bench_events'::regclass)",
    )
    .fetch_one(pool)
    .await?;
    ensure!(
        indexes == events_indexes,
        "bench_events has {indexes} indexes, events {events_indexes}"
    );
    ensure!(
        identity == "a",
        "bench_events.global_position is not GENERATED ALWAYS AS IDENTITY"
    );
    ensure!(
        xid_default.as_deref() == Some("pg_current_xact_id()"),
        "bench_events.transaction_id defaults to {xid_default:?}"
    );
    ensure!(triggers == 0, "bench_events has {triggers} triggers");
    let copied = sqlx::query(
        "INSERT INTO bench_events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
              metadata, recorded_at, hash)
         SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                metadata, recorded_at, hash
           FROM events WHERE aggregate_type = $1 ORDER BY global_position",
    )
    .bind(Cart::TYPE)
    .execute(pool)
    .await?
    .rows_affected();
    sqlx::query("ANALYZE bench_events").execute(pool).await?;
    Ok((copied as i64, indexes))
}

const SELECT_EVENTS: &str = "
SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
  FROM bench_events
 WHERE aggregate_type = $1 AND aggregate_id = $2
 ORDER BY sequence";

const INSERT_EVENT: &str = "
INSERT INTO bench_events
    (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, hash)
VALUES ($1, $2, $3, $4, $5, $6::text::json, $7::text::json, sha256(convert_to($6::text, 'UTF8')))";

/// One transaction of the PostgreSQL phase: the database work of an
/// add-to-cart command. `Ok(false)` when it lost the race for the sequence.
async fn pg_command(
    pool: &PgPool,
    cart_id: &str,
    customer: Uuid,
    product: Uuid,
    quantity: Quantity,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<(String, String, i64, String, String, Value, Value)> =
        sqlx::query_as(SELECT_EVENTS)
            .bind(Cart::TYPE)
            .bind(cart_id)
            .fetch_all(&mut *tx)
            .await?;
    let sequence = rows.last().map_or(1, |r| r.2 + 1);
    let event = CartEvent::CartItemAdded {
        cart_id: cart_id_for(&CustomerId(customer)),
        customer_id: CustomerId(customer),
        product_id: ProductId(product),
        quantity,
        line_quantity: quantity,
    };
    let metadata = CommandMetadata::new(
        Actor::User {
            id: customer,
            role: Role::Customer,
        },
        Uuid::new_v4().to_string(),
        "AddCartItem",
    );
    let payload = serde_json::to_string(&event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let metadata =
        serde_json::to_string(&metadata.to_map()).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let inserted = sqlx::query(INSERT_EVENT)
        .bind(Cart::TYPE)
        .bind(cart_id)
        .bind(sequence)
        .bind(event.event_type())
        .bind(event.event_version())
        .bind(payload)
        .bind(metadata)
        .execute(&mut *tx)
        .await;
    match inserted {
        Ok(_) => {
            tx.commit().await?;
            Ok(true)
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            tx.rollback().await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// `clients` connections run [`pg_command`] on random carts for `duration`.
async fn pg_phase(
    pool: &PgPool,
    clients: usize,
    carts: &Arc<Vec<(String, Uuid)>>,
    products: &Arc<Vec<Uuid>>,
    duration: Duration,
    seed: u64,
) -> Result<Phase> {
    let one = Quantity::new(1)?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let pool = pool.clone();
        let carts = carts.clone();
        let products = products.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift::new(seed.wrapping_mul(1_000_033).wrapping_add(client as u64));
            let mut record = ClientRecord::default();
            while Instant::now() < deadline {
                let (cart_id, customer) = &carts[rng.below(carts.len())];
                let product = products[rng.below(products.len())];
                let sent = Instant::now();
                match pg_command(&pool, cart_id, *customer, product, one).await {
                    Ok(true) => {
                        record.ok += 1;
                        record.latencies.push(sent.elapsed());
                        record.done_at.push(start.elapsed());
                    }
                    Ok(false) => record.conflicts += 1,
                    Err(e) => {
                        let code = match &e {
                            sqlx::Error::Database(d) => d.code().unwrap_or_default().to_string(),
                            _ => "client".to_string(),
                        };
                        record.error(code, e.to_string());
                    }
                }
            }
            record
        }));
    }
    let mut records = Vec::new();
    for task in tasks {
        records.push(task.await.context("a PostgreSQL client task failed")?);
    }
    Ok(Phase::collect(records, start.elapsed()))
}
