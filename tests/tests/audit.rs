//! The audit trail of an order, read from the event store, and the tamper
//! evidence: the hash chain and the audit seal, each kind of tampering
//! named by `shop audit verify`.

use domain::metadata::Role;
use projections::audit::{BrokenSeal, SealBreak};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use testkit::{
    eventually, expect_error, expect_json, spawn_app, Session, TestApp, READ_MODEL_PATIENCE,
};
use uuid::Uuid;

#[tokio::test]
async fn an_orders_history_lists_its_events_with_metadata_for_the_owner_and_auditors_only() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Books", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Dune", "price": 1800, "sku": "BOOK-DUNE", "category_id": category}),
        )
        .await;
    expect_json(app.receive(&admin.token, product, 5).await, StatusCode::OK).await;
    let alice = app.register_customer("alice").await;
    let placed = app
        .place_order(
            &alice.token,
            &json!({
                "shipping_address": {"name": "Alice", "line1": "1 Main St", "city": "Springfield",
                                     "postal_code": "12345", "country": "US"},
                "items": [{"product_id": product, "quantity": 2}],
                "payment": {"method": "card", "token": "tok_visa"}
            }),
            None,
        )
        .await;
    let order = expect_json(placed, StatusCode::CREATED).await;
    let order_id = order["id"].as_str().unwrap().to_string();
    let path = format!("/v1/orders/{order_id}/history");
    // The fulfilment workflow reserves the stock and charges the card; the
    // gateway's callback captures the payment; the workflow then issues the
    // invoice.
    app.wait_for_workflows().await;

    let history = expect_json(app.get_as(&path, Some(&alice.token)).await, StatusCode::OK).await;
    let events = history.as_array().unwrap();
    assert_eq!(events.len(), 4, "{history}");
    let placed = &events[0];
    assert_eq!(placed["event_type"], "OrderPlaced");
    assert_eq!(placed["sequence"], 1);
    assert_eq!(placed["event_version"], "1.0");
    // The owner is told who acted by role alone.
    assert_eq!(placed["actor"], "customer");
    assert_eq!(placed["command"], "PlaceOrder");
    for field in [
        "position",
        "recorded_at",
        "correlation_id",
        "causation_id",
        "payload",
    ] {
        assert!(!placed[field].is_null(), "{field} missing: {placed}");
    }
    // The workflow's step: the system's, in the same request's correlation,
    // caused by the placed event.
    let reserved = &events[1];
    assert_eq!(reserved["event_type"], "StockReserved");
    assert_eq!(reserved["sequence"], 2);
    assert_eq!(reserved["actor"], "system:fulfilment");
    assert_eq!(reserved["command"], "ConfirmStockReserved");
    assert_eq!(reserved["correlation_id"], placed["correlation_id"]);
    assert_eq!(
        reserved["causation_id"],
        format!("event-{}", placed["position"])
    );
    let captured = &events[2];
    assert_eq!(captured["event_type"], "PaymentCaptured");
    assert_eq!(captured["actor"], "system:payments");
    assert_eq!(captured["command"], "CapturePayment");
    // All in the correlation of the customer's request.
    assert!(events
        .iter()
        .all(|e| e["correlation_id"] == placed["correlation_id"]));
    let invoiced = &events[3];
    assert_eq!(invoiced["event_type"], "InvoiceIssued");
    assert_eq!(invoiced["actor"], "system:fulfilment");
    assert_eq!(
        invoiced["causation_id"],
        format!("event-{}", captured["position"])
    );
    assert!(
        !history.to_string().contains("tok_visa"),
        "a payment token leaked: {history}"
    );

    let auditor = app.bootstrap_staff("auditor", Role::Auditor).await;
    let seen: Value = expect_json(
        app.get_as(&path, Some(&auditor.token)).await,
        StatusCode::OK,
    )
    .await;
    // The auditor sees the same events with the full actor.
    assert_eq!(seen[0]["actor"], format!("customer:{}", alice.id));
    let mut told_the_owner = seen.clone();
    told_the_owner[0]["actor"] = json!("customer");
    assert_eq!(told_the_owner, history);

    let bob = app.register_customer("bob").await;
    expect_error(
        app.get_as(&path, Some(&bob.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

/// Runs `statements` behind the events table's triggers, as someone with
/// the database's keys could.
async fn behind_the_triggers(pool: &PgPool, statements: &[String]) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    for statement in statements {
        let done = sqlx::raw_sql(statement).execute(&mut *tx).await.unwrap();
        assert!(done.rows_affected() > 0, "changed nothing: {statement}");
    }
    sqlx::query("ALTER TABLE events ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Waits until the workflows are done and the audit seal's checkpoint has
/// reached the head of the log; answers the stream's sealed sequence.
async fn sealed(app: &TestApp, aggregate_type: &str, aggregate_id: &str) -> i64 {
    app.wait_for_workflows().await;
    let head = app.head_position().await;
    let deadline = tokio::time::Instant::now() + READ_MODEL_PATIENCE;
    // `wait_for` itself waits (a few seconds at most) for the checkpoint.
    while api::read::wait_for(&app.db.pool, "audit_seal", Some(head))
        .await
        .unwrap()
        .stale
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the audit seal did not reach position {head}"
        );
    }
    let (sealed, last): (Option<i64>, i64) = sqlx::query_as(
        "SELECT (SELECT last_sequence FROM sealed_streams
                  WHERE aggregate_type = $1 AND aggregate_id = $2),
                (SELECT max(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        sealed,
        Some(last),
        "{aggregate_type} {aggregate_id} is sealed up to its last event"
    );
    last
}

/// The global position of one event.
async fn position_of(
    app: &TestApp,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> i64 {
    sqlx::query_scalar(
        "SELECT global_position FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// A category renamed twice by `admin`: a stream of three events. Answers
/// its id.
async fn category_with_three_events(app: &TestApp, admin: &Session) -> String {
    let tools = app.create_category(&admin.token, "Tools", None).await;
    for name in ["Hand tools", "Garden tools"] {
        let put = app
            .put_json(
                &format!("/v1/categories/{tools}"),
                &json!({"name": name}),
                Some(&admin.token),
            )
            .await;
        assert_eq!(put.status(), StatusCode::OK);
    }
    tools.to_string()
}

/// A product whose stock `admin` received three times; answers its id (the
/// id of its InventoryItem stream).
async fn product_received_three_times(app: &TestApp, admin: &Session) -> Uuid {
    let category = app.create_category(&admin.token, "Hardware", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Hammer", "price": 2500, "sku": "HW-HAMMER", "category_id": category}),
        )
        .await;
    for quantity in [5, 3, 2] {
        expect_json(
            app.receive(&admin.token, product, quantity).await,
            StatusCode::OK,
        )
        .await;
    }
    product
}

#[tokio::test]
async fn an_honest_store_passes_verification_with_every_stream_sealed() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let tools = category_with_three_events(&app, &admin).await;
    let product = product_received_three_times(&app, &admin).await;
    sealed(&app, "Category", &tools).await;
    sealed(&app, "InventoryItem", &product.to_string()).await;

    let honest = projections::audit::verify(&app.db.pool).await.unwrap();
    assert!(honest.holds(), "{honest:?}");
    assert!(honest.first_broken.is_none() && honest.broken_seals.is_empty());
    assert_eq!(honest.events_checked as i64, app.event_count().await);
    let streams: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT (aggregate_type, aggregate_id)) FROM events")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        honest.streams_sealed as i64, streams,
        "every stream is sealed"
    );
}

#[tokio::test]
async fn verification_names_an_event_whose_payload_was_changed() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let tools = category_with_three_events(&app, &admin).await;
    sealed(&app, "Category", &tools).await;
    let target = position_of(&app, "Category", &tools, 1).await;

    behind_the_triggers(
        &app.db.pool,
        &[format!(
            "UPDATE events SET payload = replace(payload::text, 'Tools', 'Toys')::json
              WHERE global_position = {target}"
        )],
    )
    .await;

    let report = projections::audit::verify(&app.db.pool).await.unwrap();
    let broken = report
        .first_broken
        .clone()
        .expect("the altered event is found");
    assert_eq!(broken.position, target);
    assert_eq!(broken.aggregate_type, "Category");
    assert_eq!(broken.aggregate_id, tools);
    assert_eq!(broken.sequence, 1);
    // Its hash column was left alone, so the seal still matches.
    assert!(report.broken_seals.is_empty(), "{report:?}");
}

#[tokio::test]
async fn verification_names_the_event_after_one_removed_from_the_middle_and_the_seal_the_missing_one(
) {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let tools = category_with_three_events(&app, &admin).await;
    assert_eq!(sealed(&app, "Category", &tools).await, 3);
    let third = position_of(&app, "Category", &tools, 3).await;

    behind_the_triggers(
        &app.db.pool,
        &[format!(
            "DELETE FROM events
              WHERE aggregate_type = 'Category' AND aggregate_id = '{tools}' AND sequence = 2"
        )],
    )
    .await;

    let report = projections::audit::verify(&app.db.pool).await.unwrap();
    let broken = report.first_broken.clone().expect("the gap is found");
    assert_eq!(
        (broken.aggregate_type.as_str(), broken.aggregate_id.as_str()),
        ("Category", tools.as_str())
    );
    assert_eq!(
        broken.sequence, 3,
        "the event after the gap no longer links"
    );
    assert_eq!(broken.position, third);
    assert_eq!(
        report.broken_seals,
        [BrokenSeal {
            aggregate_type: "Category".to_string(),
            aggregate_id: tools.clone(),
            sequence: 2,
            sealed_sequence: 3,
            kind: SealBreak::Gap,
        }]
    );
}

#[tokio::test]
async fn verification_names_the_first_of_two_events_swapped() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let tools = category_with_three_events(&app, &admin).await;
    sealed(&app, "Category", &tools).await;
    let third = position_of(&app, "Category", &tools, 3).await;

    // Events 2 and 3 trade places (by way of a free sequence: the primary
    // key is checked row by row).
    let stream = format!("aggregate_type = 'Category' AND aggregate_id = '{tools}'");
    behind_the_triggers(
        &app.db.pool,
        &[
            format!("UPDATE events SET sequence = 1000 WHERE {stream} AND sequence = 2"),
            format!("UPDATE events SET sequence = 2 WHERE {stream} AND sequence = 3"),
            format!("UPDATE events SET sequence = 3 WHERE {stream} AND sequence = 1000"),
        ],
    )
    .await;

    let report = projections::audit::verify(&app.db.pool).await.unwrap();
    let broken = report.first_broken.clone().expect("the swap is found");
    assert_eq!(broken.aggregate_type, "Category");
    assert_eq!(broken.aggregate_id, tools);
    assert_eq!(broken.sequence, 2);
    assert_eq!(
        broken.position, third,
        "the old third event now stands second"
    );
    // The event now at the sealed sequence is another one.
    assert_eq!(
        report
            .broken_seals
            .iter()
            .map(|b| (b.aggregate_id.as_str(), b.sequence, b.kind))
            .collect::<Vec<_>>(),
        [(tools.as_str(), 3, SealBreak::Replaced)]
    );
}

#[tokio::test]
async fn verification_and_the_cli_name_a_sealed_last_event_that_was_removed() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let product = product_received_three_times(&app, &admin).await;
    let id = product.to_string();
    let last = sealed(&app, "InventoryItem", &id).await;
    assert!(last >= 3);

    behind_the_triggers(
        &app.db.pool,
        &[format!(
            "DELETE FROM events
              WHERE aggregate_type = 'InventoryItem' AND aggregate_id = '{id}' AND sequence = {last}"
        )],
    )
    .await;

    // The shorter chain still holds; the seal shows the cut.
    let report = projections::audit::verify(&app.db.pool).await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert_eq!(
        report.broken_seals,
        [BrokenSeal {
            aggregate_type: "InventoryItem".to_string(),
            aggregate_id: id.clone(),
            sequence: last,
            sealed_sequence: last,
            kind: SealBreak::Cut,
        }]
    );
    assert!(!report.holds());

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_shop-under-test"))
        .args(["audit", "verify", "--database-url", &app.db.url])
        .env_remove("DATABASE_URL")
        .output()
        .await
        .expect("run shop audit verify");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let sentence =
        format!("InventoryItem {id}: its event {last} (sealed) is missing: the log was cut");
    assert!(stderr.contains(&sentence), "{stderr}");
}

#[tokio::test]
async fn a_cut_stream_appended_to_again_halts_the_seal_and_readiness_names_it() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let product = product_received_three_times(&app, &admin).await;
    let id = product.to_string();
    let last = sealed(&app, "InventoryItem", &id).await;
    behind_the_triggers(
        &app.db.pool,
        &[format!(
            "DELETE FROM events
              WHERE aggregate_type = 'InventoryItem' AND aggregate_id = '{id}' AND sequence = {last}"
        )],
    )
    .await;
    // The next command writes a new event with the removed one's sequence.
    expect_json(app.receive(&admin.token, product, 1).await, StatusCode::OK).await;

    let (sequence, error) = eventually(
        "the seal to refuse the new event",
        READ_MODEL_PATIENCE,
        async || -> Option<(i64, String)> {
            sqlx::query_as(
                "SELECT sequence, error FROM projector_dead_letters
                  WHERE projector = 'audit_seal' AND resolution IS NULL",
            )
            .fetch_optional(&app.db.pool)
            .await
            .unwrap()
        },
    )
    .await;
    assert_eq!(sequence, last);
    assert!(error.contains(&id), "{error}");
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"], "projector_halted");
    assert!(
        body["message"].as_str().unwrap().contains("audit_seal"),
        "{body}"
    );

    // The seal stayed where it was: the event there now is another one.
    let report = projections::audit::verify(&app.db.pool).await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert_eq!(
        report
            .broken_seals
            .iter()
            .map(|b| (b.aggregate_id.as_str(), b.sequence, b.kind))
            .collect::<Vec<_>>(),
        [(id.as_str(), last, SealBreak::Replaced)]
    );
}

#[tokio::test]
async fn a_delivered_orders_history_shows_every_step_and_as_of_answers_the_past() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Books", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Emma", "price": 1200, "sku": "BOOK-EMMA", "category_id": category}),
        )
        .await;
    expect_json(app.receive(&admin.token, product, 5).await, StatusCode::OK).await;
    let alice = app.register_customer("alice").await;
    app.top_up(&alice.token, 1200).await;
    let placed = app
        .place_order(
            &alice.token,
            &json!({
                "shipping_address": {"name": "Alice", "line1": "1 Main St", "city": "Springfield",
                                     "postal_code": "12345", "country": "US"},
                "items": [{"product_id": product, "quantity": 1}],
                "payment": {"method": "wallet"}
            }),
            None,
        )
        .await;
    let order = expect_json(placed, StatusCode::CREATED).await;
    let order_id: uuid::Uuid = order["id"].as_str().unwrap().parse().unwrap();
    // The fulfilment workflow reserves the stock, pays from the wallet and
    // issues the invoice.
    app.wait_for_workflows().await;
    for body in [
        json!({"status": "processing"}),
        json!({"status": "shipped", "tracking_number": "TRACK-1"}),
        json!({"status": "delivered"}),
    ] {
        let moved = app.set_order_status(&admin.token, order_id, &body).await;
        assert_eq!(moved.status(), StatusCode::OK, "{body}");
    }

    let path = format!("/v1/orders/{order_id}/history");
    let history = expect_json(app.get_as(&path, Some(&admin.token)).await, StatusCode::OK).await;
    let events = history.as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "StockReserved",
            "PaymentCaptured",
            "InvoiceIssued",
            "OrderProcessingStarted",
            "OrderShipped",
            "OrderDelivered"
        ]
    );
    let actors: Vec<&str> = events
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors[0], format!("customer:{}", alice.id));
    assert_eq!(
        actors[1..4],
        [
            "system:fulfilment",
            "system:fulfilment",
            "system:fulfilment"
        ]
    );
    assert!(actors[4..]
        .iter()
        .all(|a| *a == format!("admin:{}", admin.id)));
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence"], n as i64 + 1);
        assert!(event["correlation_id"].is_string() && event["causation_id"].is_string());
        if n > 0 {
            assert!(event["position"].as_i64() > events[n - 1]["position"].as_i64());
        }
    }

    // As of the moment the order started processing (before shipping).
    let before_shipping = events[4]["recorded_at"].as_str().unwrap().to_string();
    let then = expect_json(
        app.order(&admin.token, order_id, &[("as_of", before_shipping)])
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(then["status"], "processing");
    assert_eq!(then["tracking_number"], Value::Null);
    let now = expect_json(app.order(&admin.token, order_id, &[]).await, StatusCode::OK).await;
    assert_eq!(now["status"], "delivered");
    assert_eq!(now["tracking_number"], "TRACK-1");
}
