//! Listing benchmark: seeds a catalog of 100,000 products straight into the
//! event store, lets the real `catalog` projector build the read model, then
//! times the product listing queries over HTTP against the real server.
//!
//! ```sh
//! cargo run --release -p bench --bin listings
//! ```
//!
//! It uses the test kit: a fresh database on `DATABASE_URL`'s server, or on
//! the private test cluster in `.data/test` (started here when it is not
//! running, and then stopped again at the end). The database is dropped at
//! the end.
//!
//! Knobs (environment): `BENCH_PRODUCTS` (default 100000), `BENCH_REQUESTS`
//! timed requests per scenario (default 200), `BENCH_WARMUP` (default 20),
//! `BENCH_DEEP_PAGES` (default 50); `BENCH_KEEP_DB` set: keep the database,
//! renamed `bench_listings_*` (and the private cluster running), for
//! inspection instead of dropping it.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use serde_json::Value;
use testkit::{seed, TestApp};

struct Settings {
    products: i64,
    requests: usize,
    warmup: usize,
    deep_pages: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let settings = Settings {
        products: bench::env_number("BENCH_PRODUCTS", 100_000)?,
        requests: bench::env_number("BENCH_REQUESTS", 200)?,
        warmup: bench::env_number("BENCH_WARMUP", 20)?,
        deep_pages: bench::env_number("BENCH_DEEP_PAGES", 50)?,
    };
    ensure!(settings.products >= 1_000, "BENCH_PRODUCTS must be >= 1000");
    ensure!(settings.requests >= 1, "BENCH_REQUESTS must be >= 1");

    bench::with_fresh_database("listings", |db| async move { run(&settings, db).await }).await
}

async fn run(settings: &Settings, db: testkit::TestDatabase) -> Result<()> {
    // ---- seed ----
    let started = Instant::now();
    let roots = seed::catalog(&db.pool, settings.products, 1).await?;
    let (head, events): (i64, i64) =
        sqlx::query_as("SELECT max(global_position), count(*) FROM events")
            .fetch_one(&db.pool)
            .await?;
    println!(
        "seeded {events} events ({} products, {} with stock, {} categories) in {:.1} s",
        settings.products,
        settings.products / 2,
        roots.len() * (seed::CHILDREN + 1),
        started.elapsed().as_secs_f64()
    );

    // ---- project ----
    let started = Instant::now();
    let app = testkit::spawn_app_on(db).await;
    let applied = seed::wait_for_projector(&app.db.pool, "catalog", head).await?;
    let took = started.elapsed().as_secs_f64();
    println!(
        "catalog projector: {applied} events in {took:.1} s = {:.0} events/s ({:.0} products/s incl. their stock events)",
        applied as f64 / took,
        settings.products as f64 / took
    );
    let response = app
        .get(&format!("/v1/products?limit=1&min_position={head}"))
        .await;
    ensure!(
        response.status() == reqwest::StatusCode::OK
            && response.headers().get(api::read::STALE_HEADER).is_none(),
        "the read model is not fresh at the head position {head}: {:?}",
        response.headers()
    );
    // Steady state: the planner sees statistics of the full tables (otherwise
    // it depends on when autovacuum last analysed them mid-projection).
    sqlx::query("ANALYZE rm_products, rm_availability, rm_categories")
        .execute(&app.db.pool)
        .await?;

    let (in_root, matching, common): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rm_products p JOIN rm_categories c ON c.id = p.category_id
                  WHERE $1 = ANY(c.path)),
                (SELECT count(*) FROM rm_products WHERE search @@ websearch_to_tsquery('english', $2)),
                (SELECT count(*) FROM rm_products WHERE search @@ websearch_to_tsquery('english', $3))",
    )
    .bind(roots[0])
    .bind(seed::RARE_WORD)
    .bind(seed::COMMON_WORD)
    .fetch_one(&app.db.pool)
    .await?;

    let sample = fetch_json(&app, "/v1/products?limit=1&sort=newest").await?;
    println!(
        "sample product: {} | {} | {} cents",
        sample["products"][0]["name"],
        sample["products"][0]["description"],
        sample["products"][0]["price"]
    );

    // ---- scenarios ----
    let deep = deep_cursor(&app, settings.deep_pages).await?;
    let root = roots[0];
    let scenarios: Vec<(String, String)> = vec![
        (
            "listing page (limit=20)".into(),
            "/v1/products?limit=20".into(),
        ),
        (
            format!("category filter (root, {in_root} products)"),
            format!("/v1/products?limit=20&category_id={root}"),
        ),
        (
            format!("text search q={} ({matching} hits)", seed::RARE_WORD),
            format!("/v1/products/search?q={}&limit=20", seed::RARE_WORD),
        ),
        (
            format!("deep cursor (page {})", settings.deep_pages + 1),
            format!("/v1/products?limit=20&cursor={deep}"),
        ),
        // Not asked for, but cheap and telling for the indexes:
        (
            format!("extra: text search q={} ({common} hits)", seed::COMMON_WORD),
            format!("/v1/products/search?q={}&limit=20", seed::COMMON_WORD),
        ),
        (
            "extra: sort=-price".into(),
            "/v1/products?limit=20&sort=-price".into(),
        ),
        (
            "extra: sort=newest".into(),
            "/v1/products?limit=20&sort=newest".into(),
        ),
        (
            "extra: in_stock=true".into(),
            "/v1/products?limit=20&in_stock=true".into(),
        ),
        (
            "extra: price 100.00-200.00, sort=price".into(),
            "/v1/products?limit=20&min_price=10000&max_price=20000&sort=price".into(),
        ),
        (
            "extra: category+in_stock+sort=price".into(),
            format!("/v1/products?limit=20&category_id={root}&in_stock=true&sort=price"),
        ),
    ];

    let mut rows = Vec::new();
    for (name, path) in &scenarios {
        let samples = measure(&app, path, settings.warmup, settings.requests).await?;
        rows.push((name.clone(), Stats::of(samples)));
    }

    println!();
    println!(
        "{} timed requests per scenario after {} warm-up, one at a time, HTTP/1.1 keep-alive on 127.0.0.1",
        settings.requests, settings.warmup
    );
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(8).max(8);
    println!(
        "| {:<width$} | {:>9} | {:>9} | {:>9} |",
        "scenario", "median ms", "p99 ms", "max ms"
    );
    println!(
        "|{:-<w$}|{:->11}|{:->11}|{:->11}|",
        "",
        "",
        "",
        "",
        w = width + 2
    );
    for (name, stats) in &rows {
        println!(
            "| {:<width$} | {:>9.2} | {:>9.2} | {:>9.2} |",
            name, stats.median, stats.p99, stats.max
        );
    }
    Ok(())
}

// ---- measuring ----

/// GETs `path`, checks the answer, answers the body.
async fn fetch(app: &TestApp, path: &str) -> Result<String> {
    let response = app.client.get(app.url(path)).send().await?;
    let status = response.status();
    let stale = response.headers().get(api::read::STALE_HEADER).is_some();
    let body = response.text().await?;
    ensure!(
        status == reqwest::StatusCode::OK,
        "GET {path}: {status}: {body}"
    );
    ensure!(!stale, "GET {path} answered from a stale read model");
    Ok(body)
}

async fn fetch_json(app: &TestApp, path: &str) -> Result<Value> {
    Ok(serde_json::from_str(&fetch(app, path).await?)?)
}

/// Follows `next_cursor` from the first page `pages` times; answers the
/// cursor of the page after that.
async fn deep_cursor(app: &TestApp, pages: usize) -> Result<String> {
    let mut path = "/v1/products?limit=20".to_string();
    let mut cursor = String::new();
    for page in 0..pages {
        let body = fetch_json(app, &path).await?;
        cursor = body["next_cursor"]
            .as_str()
            .ok_or_else(|| anyhow!("page {} has no next_cursor", page + 1))?
            .to_string();
        path = format!("/v1/products?limit=20&cursor={cursor}");
    }
    Ok(cursor)
}

async fn measure(app: &TestApp, path: &str, warmup: usize, n: usize) -> Result<Vec<Duration>> {
    let first = fetch_json(app, path).await?;
    let shown = first["products"].as_array().map_or(0, Vec::len);
    ensure!(shown > 0, "GET {path} found no products: {first}");
    for _ in 0..warmup {
        fetch(app, path).await?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let body = fetch(app, path).await?;
        samples.push(start.elapsed());
        drop(body);
    }
    Ok(samples)
}

struct Stats {
    median: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    /// Median (mean of the middle two for an even count) and nearest-rank
    /// p99, in milliseconds.
    fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let n = samples.len();
        let median = if n.is_multiple_of(2) {
            (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0
        } else {
            ms(samples[n / 2])
        };
        let rank = ((n as f64) * 0.99).ceil() as usize;
        Stats {
            median,
            p99: ms(samples[rank.clamp(1, n) - 1]),
            max: ms(samples[n - 1]),
        }
    }
}

// ---- cleanup ----
