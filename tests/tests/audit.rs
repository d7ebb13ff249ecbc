//! The audit trail of an order, read from the event store.

use domain::metadata::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{expect_error, expect_json, spawn_app};

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
    assert_eq!(placed["actor"], format!("customer:{}", alice.id));
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
    assert_eq!(seen, history);

    let bob = app.register_customer("bob").await;
    expect_error(
        app.get_as(&path, Some(&bob.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn verification_passes_on_an_honest_store_and_names_an_altered_event() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let tools = app.create_category(&admin.token, "Tools", None).await;
    app.create_category(&admin.token, "Saws", Some(tools)).await;
    let put = app
        .put_json(
            &format!("/v1/categories/{tools}"),
            &json!({"name": "Hand tools"}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(put.status(), StatusCode::OK);

    let honest = projections::audit::verify(&app.db.pool).await.unwrap();
    assert!(honest.first_broken.is_none(), "{honest:?}");
    assert!(honest.events_checked >= 4);

    // Someone with the database's keys rewrites history behind the triggers.
    let (target,): (i64,) = sqlx::query_as(
        "SELECT global_position FROM events WHERE aggregate_type = 'Category' AND sequence = 1
          AND aggregate_id = $1",
    )
    .bind(tools.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let mut tx = app.db.pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET payload = replace(payload::text, 'Tools', 'Toys')::json
          WHERE global_position = $1",
    )
    .bind(target)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE events ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let report = projections::audit::verify(&app.db.pool).await.unwrap();
    let broken = report.first_broken.expect("the altered event is found");
    assert_eq!(broken.position, target);
    assert_eq!(broken.aggregate_type, "Category");
    assert_eq!(broken.sequence, 1);
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
