//! The projector runtime on a real database: commit-order gaps, poison
//! events, read-your-writes, failover between instances, and crashes.

use std::sync::Arc;
use std::time::Duration;

use api::staff::{create_staff, StaffAccount, StaffOutcome};
use async_trait::async_trait;
use domain::category::CategoryCommand;
use domain::inventory::InventoryCommand;
use domain::metadata::{Actor, CommandMetadata, Role};
use domain::product::ProductCommand;
use domain::values::{CategoryId, Currency, Money, ProductId, Quantity, Sku};
use projections::admin;
use projections::event_store::log::StoredEvent;
use projections::projector::{ApplyError, Projector};
use projections::read_models;
use projections::runtime::{step, RuntimeConfig};
use projections::supervisor::ProjectorRuntime;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use testkit::{eventually, fresh_database, spawn_app, TestApp};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Counts how often each event was applied.
struct Probe;

#[async_trait]
impl Projector for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["probe_applied"]
    }

    fn handles(&self, aggregate_type: &str) -> bool {
        aggregate_type == "Probe"
    }
    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        sqlx::query(
            "INSERT INTO probe_applied (global_position, applied) VALUES ($1, 1)
             ON CONFLICT (global_position) DO UPDATE SET applied = probe_applied.applied + 1",
        )
        .bind(event.global_position)
        .execute(conn)
        .await?;
        Ok(())
    }
}

async fn insert_probe(conn: &mut PgConnection, id: &str) -> i64 {
    let (position,): (i64,) = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Probe', $1, 1, 'Probed', '1.0', '{}', '{}') RETURNING global_position",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .expect("insert a probe event");
    position
}

async fn checkpoint(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_as::<_, (i64,)>("SELECT global_position FROM projector_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .unwrap()
        .map(|(p,)| p)
        .unwrap_or(0)
}

/// Runs every projector's steps until `done` holds or a minute passes.
/// (The snapshot horizon is cluster-wide, so another test's open transaction
/// may hold a step back for a moment.)
async fn steps_until(
    conn: &mut PgConnection,
    projectors: &[Arc<dyn Projector>],
    pool: &PgPool,
    batch: i64,
    done: impl AsyncFn(&PgPool) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        for p in projectors {
            while step(conn, p.as_ref(), batch).await.expect("step") > 0 {}
        }
        if done(pool).await || tokio::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn applied(pool: &PgPool) -> Vec<(i64, i32)> {
    sqlx::query_as("SELECT global_position, applied FROM probe_applied ORDER BY global_position")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_open_transaction_holds_every_checkpoint_back_and_no_event_is_skipped_or_applied_twice()
{
    let db = fresh_database().await;
    sqlx::query(
        "CREATE TABLE probe_applied (global_position bigint PRIMARY KEY, applied int NOT NULL)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let mut projectors: Vec<Arc<dyn Projector>> = read_models::all();
    projectors.push(Arc::new(Probe));
    let mut runner = PgConnection::connect(&db.url).await.unwrap();
    let mut writer = PgConnection::connect(&db.url).await.unwrap();

    let first = insert_probe(&mut writer, "first").await;
    steps_until(
        &mut runner,
        &projectors,
        &db.pool,
        2,
        async |pool: &PgPool| applied(pool).await.len() == 1,
    )
    .await;
    assert_eq!(applied(&db.pool).await, vec![(first, 1)]);

    // A transaction takes a position and stays open while later ones commit.
    let mut open = PgConnection::connect(&db.url).await.unwrap();
    let mut open_tx = open.begin().await.unwrap();
    let late = insert_probe(&mut open_tx, "late").await;
    let after_1 = insert_probe(&mut writer, "after-1").await;
    let after_2 = insert_probe(&mut writer, "after-2").await;
    assert!(late < after_1);

    for p in &projectors {
        while step(&mut runner, p.as_ref(), 2).await.unwrap() > 0 {}
        let position = checkpoint(&db.pool, p.name()).await;
        assert!(
            position < late,
            "{} moved to {position}, past the open transaction's event {late}",
            p.name()
        );
    }
    assert_eq!(applied(&db.pool).await, vec![(first, 1)]);

    open_tx.commit().await.unwrap();
    steps_until(
        &mut runner,
        &projectors,
        &db.pool,
        2,
        async |pool: &PgPool| applied(pool).await.len() == 4,
    )
    .await;
    assert_eq!(
        applied(&db.pool).await,
        vec![(first, 1), (late, 1), (after_1, 1), (after_2, 1)]
    );

    // A rolled-back transaction leaves a hole the projectors move past.
    let mut doomed = PgConnection::connect(&db.url).await.unwrap();
    let mut doomed_tx = doomed.begin().await.unwrap();
    insert_probe(&mut doomed_tx, "doomed").await;
    let last = insert_probe(&mut writer, "last").await;
    doomed_tx.rollback().await.unwrap();
    steps_until(
        &mut runner,
        &projectors,
        &db.pool,
        2,
        async |pool: &PgPool| applied(pool).await.len() == 5,
    )
    .await;
    assert_eq!(
        applied(&db.pool).await,
        vec![(first, 1), (late, 1), (after_1, 1), (after_2, 1), (last, 1)]
    );
    for p in &projectors {
        assert_eq!(checkpoint(&db.pool, p.name()).await, last, "{}", p.name());
    }
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_halts_its_projector_and_the_others_keep_up() {
    let app = spawn_app().await;
    let pool = &app.db.pool;
    let (poison,): (i64,) = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Product', $1, 1, 'ProductCreated', '1.0', '{\"ProductCreated\": {\"no\": \"fields\"}}', '{}')
         RETURNING global_position",
    )
    .bind(Uuid::new_v4().to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    let mut conn = PgConnection::connect(&app.db.url).await.unwrap();
    let after = insert_probe(&mut conn, "after-the-poison").await;

    eventually(
        "a dead letter, with orders keeping up",
        Duration::from_secs(15),
        async || {
            let dead: Option<(String, i64)> = sqlx::query_as(
                "SELECT projector, global_position FROM projector_dead_letters WHERE resolution IS NULL",
            )
            .fetch_optional(pool)
            .await
            .unwrap();
            let orders = checkpoint(pool, read_models::orders::NAME).await;
            if dead.is_some() && orders >= after {
                assert_eq!(dead, Some(("catalog".to_string(), poison)));
                return true;
            }
            false
        },
    )
    .await;
    let (state,): (String,) =
        sqlx::query_as("SELECT state FROM projector_checkpoints WHERE name = 'catalog'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(state, "stopped");
    assert!(checkpoint(pool, "catalog").await < poison);

    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"], "projector_halted");
    assert!(
        body["message"].as_str().unwrap().contains("catalog"),
        "{body}"
    );

    // Retrying a poison event halts the projector on it again...
    admin::retry(pool, "catalog").await.unwrap();
    eventually(
        "catalog to stop on the poison event again",
        Duration::from_secs(15),
        async || {
            let status = admin::status(pool).await.unwrap();
            let catalog = status.iter().find(|p| p.name == "catalog").unwrap();
            if catalog.state == "stopped" && catalog.dead_letters == 1 {
                Ok(())
            } else {
                Err(format!("{catalog:?}"))
            }
        },
    )
    .await;
    // ...skipping it lets the projector go on, and the server is ready again.
    assert_eq!(admin::skip(pool, "catalog").await.unwrap(), poison);
    eventually("catalog to resume", Duration::from_secs(15), async || {
        checkpoint(pool, "catalog").await >= after
    })
    .await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

async fn admin_token(app: &TestApp) -> String {
    let outcome = create_staff(
        &app.state,
        StaffAccount {
            role: Role::Admin,
            username: "boss".to_string(),
            password: "correct horse battery".to_string(),
            fullname: None,
            email: None,
            phone: None,
            promote: false,
        },
    )
    .await
    .expect("create an admin");
    let StaffOutcome::Created(id) = outcome else {
        panic!("the admin existed already");
    };
    app.state.tokens.issue(id.as_uuid(), Role::Admin).unwrap().0
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_query_with_the_commands_position_sees_its_effect_every_time() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let category = post(
        &app,
        &token,
        "/v1/categories",
        serde_json::json!({"name": "Tools"}),
    )
    .await;
    let product = post(
        &app,
        &token,
        "/v1/products",
        serde_json::json!({"name": "Hammer", "price": 1299, "sku": "HAM-1", "category_id": category["id"]}),
    )
    .await;
    let product_id = product["id"].as_str().unwrap().to_string();
    for i in 1..=200_i64 {
        let answer = post(
            &app,
            &token,
            &format!("/v1/inventory/{product_id}/receive"),
            serde_json::json!({"quantity": 1}),
        )
        .await;
        let position = answer["position"].as_i64().unwrap();
        let response = app
            .get(&format!(
                "/v1/inventory/{product_id}/availability?min_position={position}"
            ))
            .await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers().get("x-read-model-stale").is_none(),
            "round {i} was stale"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["on_hand"], i, "round {i}");
    }
}

fn system(command: &str) -> CommandMetadata {
    CommandMetadata::new(
        Actor::System("test".to_string()),
        Uuid::new_v4().to_string(),
        command,
    )
}

/// Which instance's connection holds each projector's lock.
async fn lock_holders(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT split_part(a.application_name, ' ', 3) AS projector,
                split_part(a.application_name, ' ', 4) AS instance
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND a.application_name LIKE 'shop projector %'
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn runtime(pool: &PgPool, instance: &str) -> ProjectorRuntime {
    ProjectorRuntime::new(
        pool.clone(),
        read_models::all(),
        RuntimeConfig {
            poll_interval: Duration::from_millis(50),
            lock_retry: Duration::from_millis(200),
            instance: instance.to_string(),
            ..Default::default()
        },
    )
}

/// A `shop projectors` process on the test database.
fn projector_process(url: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_shop-under-test"))
        .arg("projectors")
        .env("DATABASE_URL", url)
        // The in-process server's master key: the projectors decrypt what it wrote.
        .env("SHOP_MASTER_KEY", testkit::master_key())
        .env("SHOP_PROJECTOR_POLL_MS", "50")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start shop projectors")
}

#[tokio::test]
async fn two_shop_processes_run_each_projector_once_and_the_survivor_takes_over_after_a_kill() {
    let db = fresh_database().await;
    // Read models and workflows alike: one lock each.
    let projector_count = api::startup::projectors(
        &db.pool,
        &projections::workflows::WorkflowSettings::default(),
    )
    .len();
    let mut first = projector_process(&db.url);
    let mut second = projector_process(&db.url);
    let pid = |child: &tokio::process::Child| format!("pid-{}", child.id().unwrap_or_default());
    let (first_pid, second_pid) = (pid(&first), pid(&second));

    let holders = eventually(
        "every projector's lock to be taken",
        Duration::from_secs(30),
        async || {
            let holders = lock_holders(&db.pool).await;
            if holders.len() == projector_count {
                Ok(holders)
            } else {
                Err(format!("locks: {holders:?}"))
            }
        },
    )
    .await;
    let mut names: Vec<&str> = holders.iter().map(|(p, _)| p.as_str()).collect();
    names.dedup();
    assert_eq!(
        names.len(),
        projector_count,
        "one holder per projector: {holders:?}"
    );
    assert!(holders
        .iter()
        .all(|(_, i)| *i == first_pid || *i == second_pid));

    // Kill -9 whichever process runs the catalog; the other takes over.
    let catalog_holder = holders
        .iter()
        .find(|(p, _)| p == "catalog")
        .map(|(_, i)| i.clone())
        .unwrap();
    let (victim, survivor) = if catalog_holder == first_pid {
        (&mut first, second_pid)
    } else {
        (&mut second, first_pid)
    };
    victim.kill().await.expect("kill -9 the process");
    eventually(
        "the survivor to take over every lock",
        Duration::from_secs(5),
        async || {
            let holders = lock_holders(&db.pool).await;
            if holders.len() == projector_count && holders.iter().all(|(_, i)| *i == survivor) {
                Ok(())
            } else {
                Err(format!("{holders:?}"))
            }
        },
    )
    .await;

    // And the survivor projects what is written after the takeover.
    let state = api::startup::AppState::new(
        db.pool.clone(),
        api::startup::AppConfig::with_random_secret(),
    );
    let id = CategoryId::new();
    state
        .categories
        .execute(
            &id.to_string(),
            CategoryCommand::Create {
                category_id: id,
                name: "Garden".into(),
                parent: None,
            },
            &system("CreateCategory"),
        )
        .await
        .unwrap();
    eventually(
        "the survivor to project",
        Duration::from_secs(10),
        async || {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT name FROM rm_categories WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(&db.pool)
                    .await
                    .unwrap();
            found.is_some()
        },
    )
    .await;
}

/// Every read-model table's rows, as JSON text, in a stable order.
async fn read_models_snapshot(pool: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "rm_categories",
        "rm_shops",
        "rm_products",
        "rm_availability",
        "rm_orders",
    ] {
        let sql = format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY 1");
        let part: Vec<(String,)> = sqlx::query_as(&sql).fetch_all(pool).await.unwrap();
        rows.extend(part.into_iter().map(|(r,)| format!("{table}: {r}")));
    }
    rows
}

/// A cheap pseudo-random number from a fresh UUID.
fn random_below(n: u64) -> u64 {
    (Uuid::new_v4().as_u128() % u128::from(n)) as u64
}

#[tokio::test]
async fn projectors_killed_at_random_moments_end_equal_to_a_fresh_run() {
    let db = fresh_database().await;
    let state = api::startup::AppState::new(
        db.pool.clone(),
        api::startup::AppConfig::with_random_secret(),
    );

    // The writer: 5,000 events (categories, products, stock movements).
    let writer = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut written = 0;
            let mut categories = Vec::new();
            while written < 5_000 {
                let category = CategoryId::new();
                let parent = categories
                    .last()
                    .copied()
                    .filter(|_| categories.len() % 3 != 0);
                state
                    .categories
                    .execute(
                        &category.to_string(),
                        CategoryCommand::Create {
                            category_id: category,
                            name: format!("Category {written}"),
                            parent,
                        },
                        &system("CreateCategory"),
                    )
                    .await
                    .unwrap();
                categories.push(category);
                written += 1;
                for n in 0..9 {
                    let product = ProductId::new();
                    let price = Money::new(100 + (written as i64 % 977), Currency::usd()).unwrap();
                    state
                        .products
                        .execute(
                            &product.to_string(),
                            ProductCommand::Create {
                                product_id: product,
                                name: format!("Product {written}-{n}"),
                                description: "sturdy and useful".to_string(),
                                price,
                                sku: Sku::parse(&format!("SKU-{written}-{n}")).unwrap(),
                                image_url: None,
                                category_id: category,
                                shop_id: None,
                            },
                            &system("CreateProduct"),
                        )
                        .await
                        .unwrap();
                    let receive = InventoryCommand::Receive {
                        product_id: product,
                        quantity: Quantity::new(5).unwrap(),
                        reason: None,
                    };
                    state
                        .inventory
                        .execute(&product.to_string(), receive, &system("ReceiveStock"))
                        .await
                        .unwrap();
                    written += 2;
                }
            }
        })
    };

    // Kill the projectors at random moments while the writer runs.
    let mut kills = 0;
    while kills < 5 || !writer.is_finished() {
        let running = tokio::spawn(runtime(&db.pool, "crashy").run(CancellationToken::new()));
        tokio::time::sleep(Duration::from_millis(50 + random_below(400))).await;
        running.abort();
        let _ = running.await;
        kills += 1;
    }
    writer.await.unwrap();
    let (head,): (i64,) = sqlx::query_as("SELECT max(global_position) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(head >= 5_000);

    // Let a last instance catch up.
    let stop = CancellationToken::new();
    let last = tokio::spawn(runtime(&db.pool, "last").run(stop.clone()));
    eventually(
        "a last instance to catch up",
        Duration::from_secs(60),
        async || {
            checkpoint(&db.pool, "catalog").await >= head
                && checkpoint(&db.pool, "orders").await >= head
        },
    )
    .await;
    stop.cancel();
    last.await.unwrap();
    let survived = read_models_snapshot(&db.pool).await;

    // A fresh run from position zero.
    sqlx::query("TRUNCATE rm_categories, rm_shops, rm_products, rm_availability, rm_orders, projector_checkpoints")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let projectors = read_models::all();
    steps_until(
        &mut conn,
        &projectors,
        &db.pool,
        500,
        async |pool: &PgPool| {
            checkpoint(pool, "catalog").await >= head && checkpoint(pool, "orders").await >= head
        },
    )
    .await;
    let fresh = read_models_snapshot(&db.pool).await;
    assert!(kills >= 5);
    assert_eq!(survived.len(), fresh.len());
    assert!(survived == fresh, "read models differ after {kills} kills");
}
