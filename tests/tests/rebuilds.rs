//! Zero-downtime projection rebuilds: the live read models keep answering
//! while new ones are built from the whole log, the switch is atomic, an
//! interrupted rebuild resumes, and a raised version rebuilds by itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::metadata::Role;
use projections::event_store::log::StoredEvent;
use projections::projector::{ApplyError, Projector};
use projections::read_models::{self, catalog::CatalogProjector};
use projections::runtime::RuntimeConfig;
use projections::supervisor::ProjectorRuntime;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use testkit::{
    eventually, eventually_every, expect_json, fresh_database, seed, spawn_app, uuid_field, TestApp,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Every read-model table with its key, for comparing whole models.
const TABLES: [(&str, &str); 5] = [
    ("rm_categories", "id"),
    ("rm_shops", "id"),
    ("rm_products", "id"),
    ("rm_availability", "product_id"),
    ("rm_orders", "id"),
];

/// Every row of every read model, in key order.
async fn dump(pool: &PgPool) -> Vec<(String, Value)> {
    let mut tables = Vec::new();
    for (table, key) in TABLES {
        let rows: Value = sqlx::query_scalar(&format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.{key}), '[]') FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .expect("dump a read model");
        tables.push((table.to_string(), rows));
    }
    tables
}

fn assert_same_models(before: &[(String, Value)], after: &[(String, Value)]) {
    for ((table, old), (_, new)) in before.iter().zip(after) {
        let count = old.as_array().map_or(0, Vec::len);
        assert!(
            old == new,
            "{table} differs after the rebuild ({count} rows before, {} after)",
            new.as_array().map_or(0, Vec::len)
        );
    }
}

/// Schemas a rebuild leaves behind while it runs.
async fn rebuild_schemas(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace
          WHERE nspname LIKE 'shop\\_rebuild\\_%' OR nspname LIKE 'shop\\_retired\\_%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("list schemas")
}

async fn live_version(pool: &PgPool, name: &str) -> i32 {
    sqlx::query_scalar("SELECT version FROM projector_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("read the checkpoint")
}

/// A seeded catalog of 50,110 events, a customer's orders on top, and the
/// read models caught up with all of it.
async fn seeded(app: &TestApp) -> i64 {
    seed::catalog(&app.db.pool, 10_000, 8)
        .await
        .expect("seed the catalog");
    let products: Vec<Uuid> =
        sqlx::query_scalar("SELECT aggregate_id::uuid FROM events WHERE aggregate_type = 'Product' ORDER BY global_position LIMIT 5")
            .fetch_all(&app.db.pool)
            .await
            .expect("seeded products");
    let customer = app.register_customer("reader").await;
    for product in &products {
        let body = json!({
            "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square",
                                 "city": "London", "postal_code": "SW1Y 4JH", "country": "gb"},
            "items": [{"product_id": product, "quantity": 2}],
            "payment": {"method": "wallet"},
        });
        let placed = app.place_order(&customer.token, &body, None).await;
        expect_json(placed, StatusCode::CREATED).await;
    }
    // The fulfilment workflow acts on the orders (no stock: cancelled) before
    // anything is measured.
    app.wait_for_workflows().await;
    let head = app.head_position().await;
    assert!(app.event_count().await >= 50_000);
    for projector in read_models::all() {
        seed::wait_for_projector(&app.db.pool, projector.name(), head)
            .await
            .expect("the read models catch up");
    }
    head
}

/// The queries that run all through the rebuild, with the number of rows
/// each answered before it began.
const QUERIES: [&str; 4] = [
    "/v1/products?limit=100&sort=price",
    "/v1/products/search?q=steel&limit=50",
    "/v1/categories",
    "/v1/orders?limit=100",
];

fn rows_of(body: &Value) -> usize {
    ["products", "categories", "orders", "items"]
        .iter()
        .find_map(|k| body[k].as_array())
        .or_else(|| body.as_array())
        .map_or(0, Vec::len)
}

async fn wait_until_done(app: &TestApp, token: &str, name: &str) -> Value {
    let path = format!("/v1/admin/projections/{name}/rebuild");
    eventually_every(
        Duration::from_millis(100),
        format!("the rebuild of {name} to finish"),
        Duration::from_secs(600),
        async || {
            let progress = expect_json(app.get_as(&path, Some(token)).await, StatusCode::OK).await;
            match progress["state"].as_str() {
                Some("done") => Ok(progress),
                Some("building") => Err(progress),
                other => panic!("rebuild of {name} is {other:?}: {progress}"),
            }
        },
    )
    .await
}

#[tokio::test]
async fn queries_keep_answering_in_full_while_projectors_are_rebuilt_and_the_switch_changes_nothing(
) {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let operator = app.bootstrap_staff("operator", Role::Operator).await;
    seeded(&app).await;
    let before = dump(&app.db.pool).await;

    let mut baseline = Vec::new();
    for path in QUERIES {
        let body = expect_json(app.get_as(path, Some(&admin.token)).await, StatusCode::OK).await;
        let rows = rows_of(&body);
        assert!(rows > 0, "{path} answers rows before the rebuild: {body}");
        baseline.push((path, rows));
    }

    // Readers: every answer a 200 with at least the rows of before.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    for reader in 0..3 {
        let (client, base, token) = (app.client.clone(), app.address.clone(), admin.token.clone());
        let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
        let baseline = baseline.clone();
        readers.push(tokio::spawn(async move {
            let mut i = reader;
            while !stop.load(Ordering::Relaxed) {
                let (path, expected) = baseline[i % baseline.len()];
                i += 1;
                let outcome = async {
                    let response = client
                        .get(format!("{base}{path}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = response.status();
                    let body: Value = response.json().await.map_err(|e| e.to_string())?;
                    if status != StatusCode::OK {
                        return Err(format!("{status}: {body}"));
                    }
                    let rows = rows_of(&body);
                    if rows < expected {
                        return Err(format!("{rows} rows, {expected} before the rebuild"));
                    }
                    Ok(())
                }
                .await;
                match outcome {
                    Ok(()) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().unwrap().push(format!("GET {path}: {e}")),
                }
            }
        }));
    }

    for name in ["catalog", "orders"] {
        let path = format!("/v1/admin/projections/{name}/rebuild");
        let at_start = answered.load(Ordering::Relaxed);
        let started = app
            .post_json(&path, &json!({}), Some(&operator.token))
            .await;
        let started = expect_json(started, StatusCode::ACCEPTED).await;
        let job = uuid_field(&started, "job_id");
        // A second rebuild of the same projector while this one runs.
        let again = app
            .post_json(&path, &json!({}), Some(&operator.token))
            .await;
        let again = expect_json(again, StatusCode::CONFLICT).await;
        assert_eq!(again["error"], "rebuild_running");

        let done = wait_until_done(&app, &operator.token, name).await;
        assert_eq!(uuid_field(&done, "job_id"), job);
        assert!(done["processed"].as_i64().unwrap() >= 50_000, "{done}");
        assert!(done["events_per_second"].as_f64().unwrap() > 0.0, "{done}");
        assert!(
            answered.load(Ordering::Relaxed) > at_start,
            "queries ran during the rebuild of {name}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed queries: {failures:?}");

    // The rebuilt models equal the incrementally built ones, the shadow and
    // retired tables are gone, and the live projector goes on from the
    // rebuild's checkpoint on the new tables.
    assert_same_models(&before, &dump(&app.db.pool).await);
    assert_eq!(rebuild_schemas(&app.db.pool).await, Vec::<String>::new());
    let category: Uuid =
        sqlx::query_scalar("SELECT id FROM rm_categories WHERE parent_id IS NOT NULL LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Brass kettle after the switch", "description": "Whistles",
                    "price": 4500, "sku": "AFTER-1", "category_id": category}),
        )
        .await;
    let read = app
        .get_at(
            &format!("/v1/products/{product}"),
            app.head_position().await,
        )
        .await;
    let read = expect_json(read, StatusCode::OK).await;
    assert_eq!(read["name"], "Brass kettle after the switch");

    // Operators only.
    let denied = app
        .post_json(
            "/v1/admin/projections/catalog/rebuild",
            &json!({}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let unknown = app
        .post_json(
            "/v1/admin/projections/nope/rebuild",
            &json!({}),
            Some(&operator.token),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// `shop projections rebuild NAME` as a real process.
fn rebuild_process(url: &str, name: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shop-under-test"));
    command
        .args(["projections", "rebuild", name, "--batch-size", "1000"])
        .env("DATABASE_URL", url)
        // The in-process server's master key: the rebuild decrypts what it wrote.
        .env("SHOP_MASTER_KEY", testkit::master_key())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn a_rebuild_killed_midway_resumes_where_it_stopped_and_ends_equal() {
    let app = spawn_app().await;
    let operator = app.bootstrap_staff("operator", Role::Operator).await;
    seeded(&app).await;
    let before = dump(&app.db.pool).await;

    let mut first = rebuild_process(&app.db.url, "catalog")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the rebuild");
    let processed_at_kill = eventually_every(
        Duration::from_millis(10),
        "the rebuild to get going",
        Duration::from_secs(300),
        async || {
            let processed: Option<i64> = sqlx::query_scalar(
                "SELECT processed FROM projector_rebuilds WHERE name = 'catalog' AND state = 'building'",
            )
            .fetch_optional(&app.db.pool)
            .await
            .unwrap();
            processed.filter(|p| *p >= 10_000)
        },
    )
    .await;
    first.start_kill().expect("kill -9 the rebuild");
    first.wait().await.unwrap();

    // Interrupted as soon as the killed process's database session ends (its
    // server process notices the closed connection when it next waits on it).
    let progress = eventually(
        "the killed rebuild to be interrupted",
        Duration::from_secs(30),
        async || {
            let progress = app
                .get_as(
                    "/v1/admin/projections/catalog/rebuild",
                    Some(&operator.token),
                )
                .await;
            let progress = expect_json(progress, StatusCode::OK).await;
            if progress["state"] == "interrupted" {
                return Ok(progress);
            }
            assert_eq!(progress["state"], "building", "{progress}");
            Err(progress)
        },
    )
    .await;

    // Killed midway: the live model is untouched and still version 1; the
    // shadow tables and the rebuild's checkpoint wait for a resume.
    let (state, processed): (String, i64) =
        sqlx::query_as("SELECT state, processed FROM projector_rebuilds WHERE name = 'catalog'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(state, "building");
    assert!(
        processed >= processed_at_kill && processed < 50_000,
        "{processed}"
    );
    assert_eq!(
        rebuild_schemas(&app.db.pool).await,
        ["shop_rebuild_catalog"]
    );
    assert_same_models(&before, &dump(&app.db.pool).await);
    assert_eq!(progress["processed"], processed);

    let second = rebuild_process(&app.db.url, "catalog")
        .output()
        .await
        .expect("run the rebuild again");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "resuming the rebuild of version 1 after {processed} events"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("switched in"), "{stdout}");
    let (state, resumes, total): (String, i32, i64) = sqlx::query_as(
        "SELECT state, resumes, processed FROM projector_rebuilds WHERE name = 'catalog'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), resumes), ("done", 1));
    assert_eq!(
        total,
        app.event_count().await,
        "every event read exactly once"
    );
    assert_same_models(&before, &dump(&app.db.pool).await);
    assert_eq!(rebuild_schemas(&app.db.pool).await, Vec::<String>::new());
}

/// The catalog projector with its version raised, as a new release would
/// ship it.
struct CatalogV2;

#[async_trait]
impl Projector for CatalogV2 {
    fn name(&self) -> &'static str {
        CatalogProjector.name()
    }
    fn version(&self) -> i32 {
        2
    }
    fn tables(&self) -> &'static [&'static str] {
        CatalogProjector.tables()
    }
    fn handles(&self, aggregate_type: &str) -> bool {
        CatalogProjector.handles(aggregate_type)
    }
    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        CatalogProjector.apply(conn, event).await
    }
}

fn runtime(pool: &PgPool, projectors: Vec<Arc<dyn Projector>>) -> ProjectorRuntime {
    ProjectorRuntime::new(
        pool.clone(),
        projectors,
        RuntimeConfig {
            poll_interval: Duration::from_millis(50),
            lock_retry: Duration::from_millis(100),
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn a_raised_projector_version_is_built_in_the_background_and_switched_in() {
    let db = fresh_database().await;
    seed::catalog(&db.pool, 2_000, 2).await.unwrap();
    let head = projections::event_store::log::head_position(&db.pool)
        .await
        .unwrap();

    let stop = CancellationToken::new();
    let v1 = tokio::spawn(runtime(&db.pool, read_models::all()).run(stop.clone()));
    seed::wait_for_projector(&db.pool, "catalog", head)
        .await
        .unwrap();
    stop.cancel();
    v1.await.unwrap();
    let before = dump(&db.pool).await;
    assert_eq!(live_version(&db.pool, "catalog").await, 1);

    // The new release starts: it builds version 2 beside version 1 and
    // switches when caught up, with no operator involved.
    let stop = CancellationToken::new();
    let v2 = tokio::spawn(runtime(&db.pool, vec![Arc::new(CatalogV2)]).run(stop.clone()));
    eventually(
        "version 2 to be switched in",
        Duration::from_secs(120),
        async || live_version(&db.pool, "catalog").await == 2,
    )
    .await;
    let (state, version): (String, i32) =
        sqlx::query_as("SELECT state, version FROM projector_rebuilds WHERE name = 'catalog'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), version), ("done", 2));
    assert_same_models(&before, &dump(&db.pool).await);
    stop.cancel();
    v2.await.unwrap();
}

#[tokio::test]
async fn a_query_holding_a_live_table_during_the_switch_neither_fails_nor_blocks_it_for_good() {
    let app = spawn_app().await;
    let operator = app.bootstrap_staff("operator", Role::Operator).await;
    seed::catalog(&app.db.pool, 1_000, 1).await.unwrap();
    let head = app.head_position().await;
    seed::wait_for_projector(&app.db.pool, "catalog", head)
        .await
        .unwrap();
    let before = dump(&app.db.pool).await;

    // A reader's transaction holds the last table the switch locks...
    let mut reader = app.db.pool.begin().await.unwrap();
    let available: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_availability")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    let started = app
        .post_json(
            "/v1/admin/projections/catalog/rebuild",
            &json!({}),
            Some(&operator.token),
        )
        .await;
    expect_json(started, StatusCode::ACCEPTED).await;

    // ...until the switch, holding the others, waits for it.
    eventually_every(
        Duration::from_millis(5),
        "the switch to wait for the reader",
        Duration::from_secs(60),
        async || -> bool {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                 WHERE application_name LIKE 'shop rebuild catalog %'
                                   AND wait_event_type = 'Lock')",
            )
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
        },
    )
    .await;
    // The reader now needs a table the switch holds: a lock cycle, which
    // the switch breaks by giving way, so the reader's query answers.
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_products")
        .fetch_one(&mut *reader)
        .await
        .expect("the reader's second query answers");
    assert_eq!((available, products), (500, 1_000));
    reader.commit().await.unwrap();

    let done = wait_until_done(&app, &operator.token, "catalog").await;
    assert_eq!(done["state"], "done");
    assert_same_models(&before, &dump(&app.db.pool).await);
    assert_eq!(rebuild_schemas(&app.db.pool).await, Vec::<String>::new());
}
