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

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use cqrs_es::{Aggregate, DomainEvent};
use domain::category::{Category, CategoryEvent};
use domain::inventory::{InventoryEvent, InventoryItem};
use domain::product::{Product, ProductEvent};
use domain::values::{CategoryId, Currency, Money, ProductId, Quantity, Sku};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use testkit::TestApp;
use uuid::Uuid;

/// Root categories; each gets [`CHILDREN`] sub-categories, and every product
/// sits in one of the sub-categories.
const ROOTS: [&str; 10] = [
    "Home",
    "Kitchen",
    "Garden",
    "Outdoors",
    "Sports",
    "Electronics",
    "Fashion",
    "Toys",
    "Books",
    "Office",
];
const CHILDREN: usize = 10;

const ADJECTIVES: [&str; 17] = [
    "Classic", "Modern", "Rustic", "Compact", "Deluxe", "Vintage", "Sleek", "Sturdy", "Premium",
    "Handmade", "Portable", "Elegant", "Minimal", "Bold", "Cozy", "Smart", "Gentle",
];
const COLOURS: [&str; 11] = [
    "Red", "Blue", "Green", "Black", "White", "Grey", "Teal", "Amber", "Olive", "Navy", "Ivory",
];
const NOUNS: [&str; 25] = [
    "Lamp",
    "Chair",
    "Table",
    "Mug",
    "Kettle",
    "Backpack",
    "Jacket",
    "Sneaker",
    "Watch",
    "Headphones",
    "Blender",
    "Notebook",
    "Pen",
    "Sofa",
    "Rug",
    "Mirror",
    "Vase",
    "Bottle",
    "Tent",
    "Bicycle",
    "Helmet",
    "Camera",
    "Speaker",
    "Keyboard",
    "Monitor",
];
const MATERIALS: [&str; 12] = [
    "oak",
    "steel",
    "bamboo",
    "leather",
    "cotton",
    "wool",
    "glass",
    "ceramic",
    "aluminium",
    "linen",
    "walnut",
    "copper",
];
/// The word that about 1% of the descriptions carry (and nothing else).
const RARE_WORD: &str = "aurora";
/// A material: in about 1 in 12 descriptions.
const COMMON_WORD: &str = "steel";

struct Settings {
    products: i64,
    requests: usize,
    warmup: usize,
    deep_pages: usize,
}

fn env_number<T: FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name} must be a number, got {raw:?}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let settings = Settings {
        products: env_number("BENCH_PRODUCTS", 100_000)?,
        requests: env_number("BENCH_REQUESTS", 200)?,
        warmup: env_number("BENCH_WARMUP", 20)?,
        deep_pages: env_number("BENCH_DEEP_PAGES", 50)?,
    };
    ensure!(settings.products >= 1_000, "BENCH_PRODUCTS must be >= 1000");
    ensure!(settings.requests >= 1, "BENCH_REQUESTS must be >= 1");

    // Whether the private test cluster is ours to stop at the end.
    let pid_file = testkit::test_data_dir()
        .join("postgres")
        .join("postmaster.pid");
    let private_cluster = std::env::var_os("DATABASE_URL").is_none();
    let cluster_was_running = pid_file.exists();

    let db = testkit::fresh_database().await;
    println!("database {} (fresh, migrated)", db.name);

    let outcome = run(&settings, db.clone()).await;

    if std::env::var_os("BENCH_KEEP_DB").is_some() {
        // Renamed: the test kit drops `shop_test_<pid>_*` databases of
        // processes that have ended.
        match keep_database(&db).await {
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

async fn run(settings: &Settings, db: testkit::TestDatabase) -> Result<()> {
    // ---- seed ----
    let started = Instant::now();
    let roots = seed(&db.pool, settings.products).await?;
    let (head, events): (i64, i64) =
        sqlx::query_as("SELECT max(global_position), count(*) FROM events")
            .fetch_one(&db.pool)
            .await?;
    println!(
        "seeded {events} events ({} products, {} with stock, {} categories) in {:.1} s",
        settings.products,
        settings.products / 2,
        roots.len() * (CHILDREN + 1),
        started.elapsed().as_secs_f64()
    );

    // ---- project ----
    let started = Instant::now();
    let app = testkit::spawn_app_on(db).await;
    let applied = wait_for_catalog(&app.db.pool, head).await?;
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
    .bind(RARE_WORD)
    .bind(COMMON_WORD)
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
            format!("text search q={RARE_WORD} ({matching} hits)"),
            format!("/v1/products/search?q={RARE_WORD}&limit=20"),
        ),
        (
            format!("deep cursor (page {})", settings.deep_pages + 1),
            format!("/v1/products?limit=20&cursor={deep}"),
        ),
        // Not asked for, but cheap and telling for the indexes:
        (
            format!("extra: text search q={COMMON_WORD} ({common} hits)"),
            format!("/v1/products/search?q={COMMON_WORD}&limit=20"),
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

// ---- seeding ----

/// Inserts the catalog's events in one transaction; answers the root
/// category ids.
async fn seed(pool: &PgPool, products: i64) -> Result<Vec<Uuid>> {
    let currency = Currency::usd();
    let mut tx = pool.begin().await?;

    // Categories: few, so written one by one with the real event type.
    let mut roots = Vec::new();
    let mut leaves = Vec::new();
    for (r, root_name) in ROOTS.iter().enumerate() {
        let root = Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("bench-category-{r}").as_bytes(),
        );
        roots.push(root);
        insert_category(&mut tx, root, root_name.to_string(), None).await?;
        for c in 0..CHILDREN {
            let child = Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("bench-category-{r}-{c}").as_bytes(),
            );
            leaves.push(child);
            insert_category(&mut tx, child, format!("{root_name} aisle {c}"), Some(root)).await?;
        }
    }

    // The shape of the events comes from the real types: a product and a
    // stock event serialized by serde, whose tag and field names the SQL
    // below must (and at the end is checked to) reproduce.
    let product_template = ProductEvent::ProductCreated {
        product_id: ProductId(Uuid::nil()),
        name: "n".into(),
        description: "d".into(),
        price: Money::new(1, currency.clone())?,
        sku: Sku::parse("S-1")?,
        image_url: None,
        category_id: CategoryId(Uuid::nil()),
        shop_id: None,
    };
    let stock_template = InventoryEvent::StockReceived {
        product_id: ProductId(Uuid::nil()),
        quantity: Quantity::new(1)?,
        reason: None,
        on_hand_after: 1,
        held_after: 0,
    };
    let (product_tag, product_fields) = shape(&product_template)?;
    let (stock_tag, stock_fields) = shape(&stock_template)?;
    const PRODUCT_FIELDS: [&str; 8] = [
        "product_id",
        "name",
        "description",
        "price",
        "sku",
        "image_url",
        "category_id",
        "shop_id",
    ];
    const STOCK_FIELDS: [&str; 5] = [
        "product_id",
        "quantity",
        "reason",
        "on_hand_after",
        "held_after",
    ];
    ensure!(
        product_fields
            == PRODUCT_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>(),
        "ProductCreated changed shape: {product_fields:?}; update the seeding SQL"
    );
    ensure!(
        stock_fields
            == STOCK_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>(),
        "StockReceived changed shape: {stock_fields:?}; update the seeding SQL"
    );

    // One md5 per product gives four independent pseudo-random numbers
    // (r1..r4, 0..2^32), so the data is varied yet the same on every run.
    const PRODUCTS_CTE: &str = "
        WITH raw AS (
            SELECT i, md5('bench-product-' || i) AS h FROM generate_series(1, $1::bigint) AS i
        ), p AS (
            SELECT i, h::uuid AS id,
                   ('x' || lpad(substr(md5(h), 1, 8), 16, '0'))::bit(64)::bigint AS r1,
                   ('x' || lpad(substr(md5(h), 9, 8), 16, '0'))::bit(64)::bigint AS r2,
                   ('x' || lpad(substr(md5(h), 17, 8), 16, '0'))::bit(64)::bigint AS r3,
                   ('x' || lpad(substr(md5(h), 25, 8), 16, '0'))::bit(64)::bigint AS r4
              FROM raw
        )";
    let adjectives: Vec<&str> = ADJECTIVES.to_vec();
    let colours: Vec<&str> = COLOURS.to_vec();
    let nouns: Vec<&str> = NOUNS.to_vec();
    let materials: Vec<&str> = MATERIALS.to_vec();
    let product_sql = format!(
        "{PRODUCTS_CTE}
        INSERT INTO events
            (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
        SELECT $2, p.id::text, 1, $3, $4,
               json_build_object($5::text, json_build_object(
                   'product_id', p.id,
                   'name', ($7::text[])[1 + r4 % 17] || ' ' || ($8::text[])[1 + (r4 / 17) % 11] || ' '
                           || ($9::text[])[1 + (r4 / 187) % 25] || ' ' || (100 + r1 % 9900),
                   'description',
                       'A ' || lower(($7::text[])[1 + r4 % 17]) || ' ' || lower(($9::text[])[1 + (r4 / 187) % 25])
                       || ' in ' || lower(($8::text[])[1 + (r4 / 17) % 11]) || ', made of '
                       || ($10::text[])[1 + (r2 / 7) % 12] || '. '
                       || CASE WHEN r3 % 100 = 0 THEN 'Part of the limited ' || $12::text || ' collection. ' ELSE '' END
                       || 'Ships in ' || (1 + r1 % 7) || ' days.',
                   'price', json_build_object('minor', 99 + r2 % 100000, 'currency', $6::text),
                   'sku', 'BENCH-' || lpad(i::text, 7, '0'),
                   'image_url', CASE WHEN i % 3 = 0 THEN NULL
                                     ELSE 'https://img.example.com/p/' || i || '.jpg' END,
                   'category_id', ($11::uuid[])[1 + r1 % 100],
                   'shop_id', NULL)),
               '{{}}'::json
          FROM p ORDER BY i"
    );
    sqlx::query(&product_sql)
        .bind(products)
        .bind(Product::TYPE)
        .bind(product_template.event_type())
        .bind(product_template.event_version())
        .bind(&product_tag)
        .bind(currency.as_str())
        .bind(&adjectives)
        .bind(&colours)
        .bind(&nouns)
        .bind(&materials)
        .bind(&leaves)
        .bind(capitalized(RARE_WORD))
        .execute(&mut *tx)
        .await
        .context("insert the ProductCreated events")?;

    // Stock for every other product.
    let stock_sql = format!(
        "{PRODUCTS_CTE}
        INSERT INTO events
            (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
        SELECT $2, p.id::text, 1, $3, $4,
               json_build_object($5::text, json_build_object(
                   'product_id', p.id,
                   'quantity', 1 + r2 % 50,
                   'reason', NULL,
                   'on_hand_after', 1 + r2 % 50,
                   'held_after', 0)),
               '{{}}'::json
          FROM p WHERE i % 2 = 0 ORDER BY i"
    );
    sqlx::query(&stock_sql)
        .bind(products)
        .bind(InventoryItem::TYPE)
        .bind(stock_template.event_type())
        .bind(stock_template.event_version())
        .bind(&stock_tag)
        .execute(&mut *tx)
        .await
        .context("insert the StockReceived events")?;
    tx.commit().await?;

    // Every kind of seeded event decodes into the real type and serializes
    // back to exactly what is stored: the shape is the domain's.
    check_round_trip::<CategoryEvent>(pool, Category::TYPE).await?;
    check_round_trip::<ProductEvent>(pool, Product::TYPE).await?;
    check_round_trip::<InventoryEvent>(pool, InventoryItem::TYPE).await?;
    Ok(roots)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The enum tag and the field names of a serialized event.
fn shape<E: DomainEvent>(event: &E) -> Result<(String, BTreeSet<String>)> {
    let value = serde_json::to_value(event)?;
    let (tag, fields) = value
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or_else(|| anyhow!("not an externally tagged enum: {value}"))?;
    let fields = fields
        .as_object()
        .ok_or_else(|| anyhow!("not a struct variant: {value}"))?
        .keys()
        .cloned()
        .collect();
    Ok((tag.clone(), fields))
}

async fn insert_category(
    conn: &mut PgConnection,
    id: Uuid,
    name: String,
    parent: Option<Uuid>,
) -> Result<()> {
    let event = CategoryEvent::CategoryCreated {
        category_id: CategoryId(id),
        name,
        parent: parent.map(CategoryId),
    };
    sqlx::query(
        "INSERT INTO events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($1, $2, 1, $3, $4, $5::json, '{}')",
    )
    .bind(Category::TYPE)
    .bind(id.to_string())
    .bind(event.event_type())
    .bind(event.event_version())
    .bind(serde_json::to_string(&event)?)
    .execute(conn)
    .await?;
    Ok(())
}

async fn check_round_trip<E>(pool: &PgPool, aggregate_type: &str) -> Result<()>
where
    E: DomainEvent,
{
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT event_type, event_version, payload::jsonb FROM events
          WHERE aggregate_type = $1 ORDER BY global_position LIMIT 50",
    )
    .bind(aggregate_type)
    .fetch_all(pool)
    .await?;
    ensure!(!rows.is_empty(), "no {aggregate_type} events were seeded");
    for (event_type, version, stored) in rows {
        let event: E = serde_json::from_value(stored.clone()).with_context(|| {
            format!("a seeded {aggregate_type} event does not decode: {stored}")
        })?;
        ensure!(
            serde_json::to_value(&event)? == stored
                && event.event_type() == event_type
                && event.event_version() == version,
            "a seeded {aggregate_type} event is not in the domain's shape: {stored}"
        );
    }
    Ok(())
}

// ---- projection ----

/// Waits until the catalog checkpoint reaches `head`; answers how many
/// events it applied.
async fn wait_for_catalog(pool: &PgPool, head: i64) -> Result<i64> {
    let started = Instant::now();
    let mut reported = Instant::now();
    loop {
        let row: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT global_position, events_applied, state FROM projector_checkpoints WHERE name = 'catalog'",
        )
        .fetch_optional(pool)
        .await?;
        if let Some((position, applied, state)) = row {
            if position >= head {
                return Ok(applied);
            }
            if state != "running" {
                let errors: Vec<(String,)> = sqlx::query_as(
                    "SELECT error FROM projector_dead_letters WHERE projector = 'catalog' LIMIT 3",
                )
                .fetch_all(pool)
                .await?;
                bail!("the catalog projector is {state} at position {position}: {errors:?}");
            }
            if reported.elapsed() >= Duration::from_secs(10) {
                println!(
                    "  projecting: {applied} events applied after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                reported = Instant::now();
            }
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the catalog projector did not reach position {head} in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

async fn admin_connection(db: &testkit::TestDatabase) -> Result<PgConnection, sqlx::Error> {
    let options = PgConnectOptions::from_str(&db.url)?
        .database("postgres")
        .disable_statement_logging();
    PgConnection::connect_with(&options).await
}

/// Renames the database out of the test kit's reach; answers the new name.
async fn keep_database(db: &testkit::TestDatabase) -> Result<String> {
    db.pool.close().await;
    let kept = db.name.replacen("shop_test_", "bench_listings_", 1);
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

async fn drop_database(db: &testkit::TestDatabase) {
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
