//! The fulfilment workflow end to end, first part (stock): the real server
//! and the workflows on a fresh database. Tests wait for the workflows by
//! polling (`wait_for_workflows`, or a condition with a deadline), never by a
//! fixed sleep.
//!
//! Orders here are paid by card through a gateway that never answers
//! (`spawn_app_without_payment_callbacks`), so they stay `pending` until a
//! test captures the payment itself; the payment steps are in `payments.rs`.

use std::time::Duration;

use projections::workflows::WorkflowSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{
    eventually, expect_json, shipping_address, spawn_app, spawn_app_without_payment_callbacks,
    test_workflow_settings, uuid_field, Session, TestApp, READ_MODEL_PATIENCE,
};
use uuid::Uuid;
/// The server with a payment gateway that accepts charges but never
/// answers them.
async fn unanswered_gateway() -> TestApp {
    spawn_app_without_payment_callbacks(test_workflow_settings()).await
}

/// Places an order of `(product, quantity)` lines paid by card; answers its
/// id and total.
async fn place(app: &TestApp, customer: &Session, lines: &[(Uuid, i64)]) -> (Uuid, i64) {
    let items: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
        .collect();
    let body = json!({
        "shipping_address": shipping_address(),
        "items": items,
        "payment": {"method": "card", "token": "tok_visa"},
    });
    let placed = app.place_order(&customer.token, &body, None).await;
    let order = expect_json(placed, StatusCode::CREATED).await;
    let total = order["total"].as_i64().expect("a total");
    (uuid_field(&order, "id"), total)
}
#[tokio::test]
async fn a_placed_order_holds_stock_on_every_line_and_capturing_the_payment_commits_it() {
    let app = unanswered_gateway().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10), (250, 5)]).await;
    let (tea, biscuits) = (products[0], products[1]);
    let alice = app.register_customer("alice").await;

    let (order_id, total) = place(&app, &alice, &[(tea, 3), (biscuits, 2)]).await;
    let order = app.settled_order(&alice, order_id).await;
    assert_eq!(order["status"], "pending", "{order}");
    assert_eq!(order["cancellation_reason"], Value::Null, "{order}");
    assert_eq!(app.stock(tea).await, (10, 3));
    assert_eq!(app.stock(biscuits).await, (5, 2));
    assert_eq!(app.events_of_type("StockReserved").await, 1);
    assert_eq!(app.events_of_type("HoldPlaced").await, 2);
    // The payment timeout is scheduled (far ahead with the default setting).
    let (due, done): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE done_at IS NULL), count(*) FILTER (WHERE done_at IS NOT NULL)
           FROM deadlines WHERE kind = 'payment_timeout' AND aggregate_id = $1",
    )
    .bind(order_id.to_string())
    .fetch_one(&app.db.pool)
    .await
    .expect("read the deadlines");
    assert_eq!((due, done), (1, 0));

    // The workflow's steps are in the order's timeline as the system's.
    let history = expect_json(
        app.get_as(
            &format!("/v1/orders/{order_id}/history"),
            Some(&alice.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let reserved = history
        .as_array()
        .and_then(|events| events.iter().find(|e| e["event_type"] == "StockReserved"))
        .cloned()
        .unwrap_or_else(|| panic!("no StockReserved in {history}"));
    assert_eq!(reserved["actor"], "system:fulfilment", "{reserved}");

    app.capture_payment(order_id, total).await;
    let order = app.settled_order(&alice, order_id).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(app.stock(tea).await, (7, 0));
    assert_eq!(app.stock(biscuits).await, (3, 0));
    assert_eq!(app.events_of_type("HoldCommitted").await, 2);
}

#[tokio::test]
async fn an_order_with_a_line_out_of_stock_is_cancelled_and_leaves_no_hold() {
    let app = unanswered_gateway().await;
    // Enough tea, too few biscuits, and jam never received.
    let (_, products) = app.stocked_catalog(&[(1000, 10), (250, 1), (400, 0)]).await;
    let (tea, biscuits, jam) = (products[0], products[1], products[2]);
    let alice = app.register_customer("alice").await;

    let (short, _) = place(&app, &alice, &[(tea, 2), (biscuits, 2)]).await;
    let (unstocked, _) = place(&app, &alice, &[(tea, 1), (jam, 1)]).await;
    for order_id in [short, unstocked] {
        let order = app.settled_order(&alice, order_id).await;
        assert_eq!(order["status"], "cancelled", "{order}");
        assert_eq!(order["cancellation_reason"], "out_of_stock", "{order}");
    }
    assert_eq!(app.stock(tea).await, (10, 0));
    assert_eq!(app.stock(biscuits).await, (1, 0));
    // All lines or none is decided before any stock is held: the tea was
    // never held for orders that could not be held in full.
    assert_eq!(app.events_of_type("HoldPlaced").await, 0);
    assert_eq!(app.events_of_type("HoldReleased").await, 0);
    assert_eq!(app.events_of_type("StockReserved").await, 0);

    // The stock is free for the next order.
    let (fits, _) = place(&app, &alice, &[(tea, 10), (biscuits, 1)]).await;
    let order = app.settled_order(&alice, fits).await;
    assert_eq!(order["status"], "pending", "{order}");
    assert_eq!(app.stock(tea).await, (10, 10));
    assert_eq!(app.stock(biscuits).await, (1, 1));
}

#[tokio::test]
async fn an_unpaid_order_is_cancelled_after_the_payment_timeout_and_its_stock_released() {
    let app = spawn_app_without_payment_callbacks(WorkflowSettings {
        payment_timeout: Duration::from_secs(1),
        ..test_workflow_settings()
    })
    .await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;
    let bob = app.register_customer("bob").await;

    let (unpaid, _) = place(&app, &alice, &[(tea, 4)]).await;
    let (paid, total) = place(&app, &bob, &[(tea, 1)]).await;
    app.wait_for_workflows().await;
    app.capture_payment(paid, total).await;

    let order = eventually(
        "the unpaid order to leave pending",
        READ_MODEL_PATIENCE,
        async || {
            let order = app.settled_order(&alice, unpaid).await;
            if order["status"] == "pending" {
                Err(order)
            } else {
                Ok(order)
            }
        },
    )
    .await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["cancellation_reason"], "payment_timeout", "{order}");
    // Wait for the paid order's deadline too: it is done and changes nothing.
    eventually(
        "every deadline to be done",
        READ_MODEL_PATIENCE,
        async || {
            let open: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deadlines WHERE done_at IS NULL")
                    .fetch_one(&app.db.pool)
                    .await
                    .expect("read the deadlines");
            if open == 0 {
                Ok(())
            } else {
                Err(format!("{open} deadlines still open"))
            }
        },
    )
    .await;
    app.wait_for_workflows().await;
    assert_eq!(app.stock(tea).await, (9, 0));
    let order = app.settled_order(&bob, paid).await;
    assert_eq!(order["status"], "paid", "{order}");
}

#[tokio::test]
async fn a_customer_cancelling_a_reserved_order_releases_its_stock() {
    let app = unanswered_gateway().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10), (250, 5)]).await;
    let (tea, biscuits) = (products[0], products[1]);
    let alice = app.register_customer("alice").await;

    let (order_id, _) = place(&app, &alice, &[(tea, 3), (biscuits, 5)]).await;
    app.settled_order(&alice, order_id).await;
    assert_eq!(app.stock(tea).await, (10, 3));
    assert_eq!(app.stock(biscuits).await, (5, 5));

    let cancel = format!("/v1/orders/{order_id}/cancel");
    expect_json(
        app.post_json(&cancel, &json!({}), Some(&alice.token)).await,
        StatusCode::OK,
    )
    .await;
    let order = app.settled_order(&alice, order_id).await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["cancellation_reason"], "customer_request", "{order}");
    assert_eq!(app.stock(tea).await, (10, 0));
    assert_eq!(app.stock(biscuits).await, (5, 0));
}

#[tokio::test]
async fn events_delivered_to_the_workflow_again_change_nothing() {
    let app = unanswered_gateway().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10), (250, 1)]).await;
    let (tea, biscuits) = (products[0], products[1]);
    let alice = app.register_customer("alice").await;

    // One order reserved, one paid, one out of stock, one cancelled.
    let (reserved, _) = place(&app, &alice, &[(tea, 2)]).await;
    let (paid, total) = place(&app, &alice, &[(tea, 1), (biscuits, 1)]).await;
    app.wait_for_workflows().await;
    app.capture_payment(paid, total).await;
    let (short, _) = place(&app, &alice, &[(tea, 1), (biscuits, 1)]).await;
    let (cancelled, _) = place(&app, &alice, &[(tea, 3)]).await;
    app.wait_for_workflows().await;
    let cancel = format!("/v1/orders/{cancelled}/cancel");
    expect_json(
        app.post_json(&cancel, &json!({}), Some(&alice.token)).await,
        StatusCode::OK,
    )
    .await;
    app.wait_for_workflows().await;

    let before_events = app.event_count().await;
    let charges = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM gateway_charges")
            .fetch_one(&app.db.pool)
            .await
            .expect("count the charges")
    };
    // One charge per reserved order (the short one never got that far).
    assert_eq!(charges().await, 3);
    let before_stock = (app.stock(tea).await, app.stock(biscuits).await);
    assert_eq!(before_stock, ((9, 2), (0, 0)));
    let mut before_orders = Vec::new();
    for id in [reserved, paid, short, cancelled] {
        before_orders.push(app.settled_order(&alice, id).await["status"].clone());
    }
    assert_eq!(
        before_orders,
        vec![
            json!("pending"),
            json!("paid"),
            json!("cancelled"),
            json!("cancelled")
        ]
    );

    // The workflow reads the whole log again, as after a crash before its
    // checkpoint moved.
    let applied = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT events_applied FROM projector_checkpoints WHERE name = 'fulfilment'",
        )
        .fetch_one(&app.db.pool)
        .await
        .expect("read the workflow's checkpoint")
    };
    let applied_before = applied().await;
    app.replay_from_start("fulfilment").await;
    app.wait_for_workflows().await;
    assert!(
        applied().await >= 2 * applied_before,
        "the workflow applied every event again"
    );

    assert_eq!(app.event_count().await, before_events);
    assert_eq!(
        (app.stock(tea).await, app.stock(biscuits).await),
        before_stock
    );
    let deadlines: i64 = sqlx::query_scalar("SELECT count(*) FROM deadlines")
        .fetch_one(&app.db.pool)
        .await
        .expect("count the deadlines");
    assert_eq!(deadlines, 4);
    // Charging again was the same charge.
    assert_eq!(charges().await, 3);
}

#[tokio::test]
async fn the_workflow_runs_as_a_projector_but_cannot_be_rebuilt() {
    let app = spawn_app().await;
    let operator = app
        .bootstrap_staff("operator", domain::metadata::Role::Operator)
        .await;
    let refused = app
        .post_json(
            "/v1/admin/projections/fulfilment/rebuild",
            &json!({}),
            Some(&operator.token),
        )
        .await;
    let body = expect_json(refused, StatusCode::CONFLICT).await;
    assert_eq!(body["error"], "not_rebuildable", "{body}");
    // Its checkpoint is listed with the read models'.
    app.wait_for_workflows().await;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM projector_checkpoints ORDER BY name")
            .fetch_all(&app.db.pool)
            .await
            .expect("list the checkpoints");
    assert!(names.iter().any(|n| n == "fulfilment"), "{names:?}");
}
