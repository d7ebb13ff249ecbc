//! Carts, coupons and orders end to end: the real server on a fresh database,
//! and SQL on what it wrote.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use domain::metadata::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{
    expect_error, expect_json, shipping_address, spawn_app, spawn_app_without_payment_callbacks,
    test_workflow_settings, uuid_field, Session, TestApp,
};
use uuid::Uuid;
/// An order of the cart, paid by card.
fn cart_order(expected_total: Option<i64>) -> Value {
    json!({
        "shipping_address": shipping_address(),
        "payment": {"method": "card", "token": "tok_visa"},
        "expected_total": expected_total,
    })
}

/// An order of explicit lines, paid from the wallet.
fn items_order(items: Value) -> Value {
    json!({
        "shipping_address": shipping_address(),
        "items": items,
        "payment": {"method": "wallet"},
    })
}
fn coupon_body(code: &str, percent_off: i64, usage_limit: Option<i64>) -> Value {
    json!({
        "code": code,
        "percent_off": percent_off,
        "valid_until": (Utc::now() + Duration::days(1)).to_rfc3339(),
        "usage_limit": usage_limit,
    })
}

async fn ok(response: reqwest::Response) -> Value {
    expect_json(response, StatusCode::OK).await
}

async fn status_of(app: &TestApp, token: &str, order: Uuid) -> Value {
    ok(app.order(token, order, &[]).await).await
}

fn assert_code(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
}

/// An admin and one product per price, 100 of each in stock.
async fn catalog(app: &TestApp, prices: &[i64]) -> (Session, Vec<Uuid>) {
    let products: Vec<(i64, i64)> = prices.iter().map(|p| (*p, 100)).collect();
    app.stocked_catalog(&products).await
}

#[tokio::test]
async fn a_customer_orders_the_cart_with_a_coupon_at_the_prices_of_the_moment_and_the_admin_ships_it(
) {
    // The card charge is accepted but the gateway does not answer: the order
    // stays pending (for the transitions checked below) until the test
    // captures the payment as the workflow would.
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (admin, products) = catalog(&app, &[1999, 550]).await;
    let (tea, biscuits) = (products[0], products[1]);
    let admin_token = admin.token.as_str();

    // A coupon: 10 % off, five uses; its code is unique.
    let created = app
        .create_coupon(admin_token, &coupon_body("save10", 10, Some(5)))
        .await;
    let coupon_id = uuid_field(&expect_json(created, StatusCode::CREATED).await, "id");
    let again = app
        .create_coupon(admin_token, &coupon_body("SAVE10", 20, None))
        .await;
    assert_code(
        &expect_error(again, StatusCode::CONFLICT).await,
        "coupon_already_exists",
    );
    let coupon = ok(app.get_as("/v1/coupons/Save10", Some(admin_token)).await).await;
    assert_eq!(uuid_field(&coupon, "id"), coupon_id);
    assert_eq!(coupon["code"], "SAVE10");
    assert_eq!(coupon["percent_off"], 10);
    assert_eq!(coupon["times_used"], 0);
    let missing = app.get_as("/v1/coupons/NOPE", Some(admin_token)).await;
    assert_code(
        &expect_error(missing, StatusCode::NOT_FOUND).await,
        "coupon_not_found",
    );
    // A retried create under its Idempotency-Key answers the same, once.
    let keyed = coupon_body("WELCOME", 5, None);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let request = app
            .request(Method::POST, "/v1/coupons", Some(admin_token))
            .header("Idempotency-Key", "welcome-1")
            .json(&keyed);
        let response = request.send().await.expect("send");
        answers.push(expect_json(response, StatusCode::CREATED).await);
    }
    assert_eq!(answers[0], answers[1]);
    for bad in [
        json!({"code": "BOTH", "percent_off": 5, "amount_off": 100, "valid_until": "2100-01-01T00:00:00Z"}),
        json!({"code": "NONE", "valid_until": "2100-01-01T00:00:00Z"}),
        json!({"code": "BIG", "percent_off": 101, "valid_until": "2100-01-01T00:00:00Z"}),
        json!({"code": "x", "percent_off": 5, "valid_until": "2100-01-01T00:00:00Z"}),
        json!({"code": "ZERO", "amount_off": 100, "usage_limit": 0, "valid_until": "2100-01-01T00:00:00Z"}),
    ] {
        let refused = app.create_coupon(admin_token, &bad).await;
        expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    // A window that ends before it starts is kept, like one already over: a
    // coupon no one can redeem.
    let empty = json!({"code": "NEVER", "percent_off": 5, "valid_from": "2100-01-02T00:00:00Z", "valid_until": "2100-01-01T00:00:00Z"});
    expect_json(
        app.create_coupon(admin_token, &empty).await,
        StatusCode::CREATED,
    )
    .await;

    let alice = app.register_customer("alice").await;
    let token = alice.token.as_str();
    let forbidden = app.get_as("/v1/coupons/SAVE10", Some(token)).await;
    expect_error(forbidden, StatusCode::FORBIDDEN).await;

    // An empty cart: no lines, zeros; ordering it is refused.
    let cart = app.cart(token).await;
    assert_eq!(cart["items"], json!([]));
    for field in ["subtotal", "discount", "total"] {
        assert_eq!(cart[field], 0, "{field}: {cart}");
    }
    assert_eq!(cart["currency"], "USD");
    assert_eq!(cart["coupon_code"], Value::Null);
    let refused = app.place_order(token, &cart_order(None), None).await;
    assert_code(
        &expect_error(refused, StatusCode::CONFLICT).await,
        "empty_cart",
    );

    // Fill it: 2 teas and a packet of biscuits, then 3 packets; a coupon.
    ok(app.add_to_cart(token, tea, 2).await).await;
    ok(app.add_to_cart(token, biscuits, 1).await).await;
    let path = format!("/v1/cart/items/{biscuits}");
    ok(app
        .put_json(&path, &json!({"quantity": 3}), Some(token))
        .await)
    .await;
    let applied = app
        .post_json("/v1/cart/coupon", &json!({"code": " save10 "}), Some(token))
        .await;
    ok(applied).await;
    let cart = app.cart(token).await;
    assert_eq!(cart["items"][0]["product_id"], json!(tea));
    assert_eq!(cart["items"][0]["name"], "Tea no. 0");
    assert_eq!(cart["items"][0]["unit_price"], 1999);
    assert_eq!(cart["items"][0]["line_total"], 3998);
    assert_eq!(cart["items"][1]["quantity"], 3);
    assert_eq!(cart["items"][1]["line_total"], 1650);
    // 3998 + 1650 = 5648; 10 % of it rounds down to 564.
    assert_eq!(cart["subtotal"], 5648);
    assert_eq!(cart["discount"], 564);
    assert_eq!(cart["total"], 5084);
    assert_eq!(cart["coupon_code"], "SAVE10");

    // Refusals write nothing: a total the client did not see, a client
    // price on a line (one that differs from the catalog's).
    let events = app.event_count().await;
    let wrong = app.place_order(token, &cart_order(Some(5000)), None).await;
    assert_code(
        &expect_error(wrong, StatusCode::CONFLICT).await,
        "total_mismatch",
    );
    let priced = items_order(json!([{"product_id": tea, "quantity": 1, "unit_price": 1}]));
    let priced = app.place_order(token, &priced, None).await;
    expect_error(priced, StatusCode::UNPROCESSABLE_ENTITY).await;
    // An older client's line price is checked, never taken: 409.
    let priced = items_order(json!([{"product_id": tea, "quantity": 1, "price": 1}]));
    let priced = app.place_order(token, &priced, None).await;
    assert_code(
        &expect_error(priced, StatusCode::CONFLICT).await,
        "price_mismatch",
    );
    assert_eq!(app.event_count().await, events);

    // The order: catalog prices, exact totals, the coupon redeemed, the cart
    // checked out.
    let placed = app.place_order(token, &cart_order(Some(5084)), None).await;
    let order = expect_json(placed, StatusCode::CREATED).await;
    let order_id = uuid_field(&order, "id");
    assert!(order["position"].as_i64().is_some_and(|p| p > 0), "{order}");
    assert_eq!(uuid_field(&order, "customer_id"), alice.id);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment_status"], "pending");
    assert_eq!(order["subtotal"], 5648);
    assert_eq!(order["discount"], 564);
    assert_eq!(order["total"], 5084);
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["coupon_code"], "SAVE10");
    assert_eq!(order["shipping_address"]["country"], "GB");
    assert_eq!(order["items"][0]["unit_price"], 1999);
    assert_eq!(order["items"][1]["unit_price"], 550);
    assert!(order.get("warnings").is_none(), "{order}");
    assert!(!order.to_string().contains("tok_visa"), "{order}");

    let cart = app.cart(token).await;
    assert_eq!(cart["items"], json!([]));
    assert_eq!(cart["total"], 0);
    assert_eq!(cart["coupon_code"], Value::Null);
    let coupon = ok(app.get_as("/v1/coupons/SAVE10", Some(admin_token)).await).await;
    assert_eq!(coupon["times_used"], 1);

    // A new price changes the catalog, not the order; a new order pays it.
    let path = format!("/v1/products/{tea}");
    ok(app
        .put_json(&path, &json!({"price": 2500}), Some(admin_token))
        .await)
    .await;
    let read = status_of(&app, token, order_id).await;
    assert_eq!(read["items"][0]["unit_price"], 1999);
    assert_eq!(read["items"][0]["line_total"], 3998);
    assert_eq!(read["total"], 5084);
    let second = items_order(json!([{"product_id": tea, "quantity": 2}]));
    let second = app.place_order(token, &second, None).await;
    let second = expect_json(second, StatusCode::CREATED).await;
    assert_eq!(second["items"][0]["unit_price"], 2500);
    assert_eq!(second["total"], 5000);
    assert_eq!(second["discount"], 0);

    // Only admins move orders, and only along the state machine.
    let by_customer = app
        .set_order_status(token, order_id, &json!({"status": "processing"}))
        .await;
    expect_error(by_customer, StatusCode::FORBIDDEN).await;
    let early = app
        .set_order_status(admin_token, order_id, &json!({"status": "processing"}))
        .await;
    assert_code(
        &expect_error(early, StatusCode::CONFLICT).await,
        "illegal_transition_pending_to_processing",
    );
    let shipped = app
        .set_order_status(
            admin_token,
            order_id,
            &json!({"status": "shipped", "tracking_number": "1Z999"}),
        )
        .await;
    assert_code(
        &expect_error(shipped, StatusCode::CONFLICT).await,
        "illegal_transition_pending_to_shipped",
    );
    let unknown = app
        .set_order_status(admin_token, order_id, &json!({"status": "teleported"}))
        .await;
    expect_error(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;

    // The fulfilment workflow reserves the stock, then takes the payment.
    app.wait_for_workflows().await;
    app.capture_payment(order_id, 5084).await;
    // ... and issues the invoice.
    app.wait_for_workflows().await;
    let read = status_of(&app, token, order_id).await;
    assert_eq!(read["status"], "paid");
    assert_eq!(read["payment_status"], "captured");

    let processing = app
        .set_order_status(admin_token, order_id, &json!({"status": "processing"}))
        .await;
    let answer = ok(processing).await;
    assert_eq!(uuid_field(&answer, "id"), order_id);
    assert!(answer["position"].as_i64().is_some_and(|p| p > 0));
    // A tracking number the admin gives is recorded as it is (without one
    // the carrier issues one: see tests/invoices.rs).
    let shipped = app
        .set_order_status(
            admin_token,
            order_id,
            &json!({"status": "shipped", "tracking_number": "1Z999AA10123456784"}),
        )
        .await;
    ok(shipped).await;
    let read = status_of(&app, token, order_id).await;
    assert_eq!(read["status"], "shipped");
    assert_eq!(read["tracking_number"], "1Z999AA10123456784");

    // Too late to cancel.
    let cancel = app
        .post_json(
            &format!("/v1/orders/{order_id}/cancel"),
            &json!({}),
            Some(token),
        )
        .await;
    assert_code(
        &expect_error(cancel, StatusCode::CONFLICT).await,
        "illegal_transition_shipped_to_cancelled",
    );

    // The older clients' form delivers it.
    let delivered = app
        .put_json(
            "/v1/orders",
            &json!({"order_id": order_id, "status": "delivered"}),
            Some(admin_token),
        )
        .await;
    ok(delivered).await;
    let read = status_of(&app, token, order_id).await;
    assert_eq!(read["status"], "delivered");
    let back = app
        .set_order_status(admin_token, order_id, &json!({"status": "processing"}))
        .await;
    assert_code(
        &expect_error(back, StatusCode::CONFLICT).await,
        "illegal_transition_delivered_to_processing",
    );

    // A partial refund keeps the status; the rest refunds it.
    let refund_path = format!("/v1/orders/{order_id}/refund");
    let refund = json!({"amount": 1000, "reason": "a dented tin"});
    ok(app
        .post_json(&refund_path, &refund, Some(admin_token))
        .await)
    .await;
    let read = status_of(&app, token, order_id).await;
    assert_eq!(read["status"], "delivered");
    assert_eq!(read["payment_status"], "partially_refunded");
    assert_eq!(read["refunded"], 1000);
    let too_much = json!({"amount": 5000, "reason": "everything"});
    let too_much = app
        .post_json(&refund_path, &too_much, Some(admin_token))
        .await;
    assert_code(
        &expect_error(too_much, StatusCode::CONFLICT).await,
        "refund_exceeds_paid",
    );
    let rest = json!({"reason": "customer unhappy"});
    ok(app.post_json(&refund_path, &rest, Some(admin_token)).await).await;
    let read = status_of(&app, token, order_id).await;
    assert_eq!(read["status"], "refunded");
    assert_eq!(read["refunded"], 5084);

    // There is no way to delete an order.
    let deleted = app
        .delete(&format!("/v1/orders/{order_id}"), Some(admin_token))
        .await;
    assert_eq!(deleted.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Every order event names who caused it.
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT metadata::jsonb->>'actor' FROM events
          WHERE aggregate_type = 'Order' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(order_id.to_string())
    .fetch_all(&app.db.pool)
    .await
    .expect("read the order's events");
    assert_eq!(actors[0], format!("customer:{}", alice.id));
    // Stock reserved, paid, invoice issued.
    assert_eq!(
        actors[1..4],
        [
            "system:fulfilment",
            "system:fulfilment",
            "system:fulfilment"
        ]
    );
    assert_eq!(actors[4], format!("admin:{}", admin.id));
}

#[tokio::test]
async fn a_customer_sees_neither_the_order_nor_the_cart_of_another() {
    // A card the gateway does not answer: the order stays pending until its
    // owner cancels it.
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (admin, products) = catalog(&app, &[1200]).await;
    let alice = app.register_customer("alice").await;
    let bob = app.register_customer("bob").await;

    ok(app.add_to_cart(&alice.token, products[0], 4).await).await;
    let mut order = items_order(json!([{"product_id": products[0], "quantity": 1}]));
    order["payment"] = json!({"method": "card", "token": "tok_visa"});
    let order = app.place_order(&alice.token, &order, None).await;
    let order_id = uuid_field(&expect_json(order, StatusCode::CREATED).await, "id");

    // Bob: 404, never 403, for reading or cancelling Alice's order.
    let read = app.order(&bob.token, order_id, &[]).await;
    assert_code(
        &expect_error(read, StatusCode::NOT_FOUND).await,
        "order_not_found",
    );
    let cancel_path = format!("/v1/orders/{order_id}/cancel");
    let cancel = app
        .post_json(&cancel_path, &json!({}), Some(&bob.token))
        .await;
    expect_error(cancel, StatusCode::NOT_FOUND).await;
    let old = app
        .order(&bob.token, order_id, &[("version", "1".to_string())])
        .await;
    expect_error(old, StatusCode::NOT_FOUND).await;
    let list = ok(app.get_as("/v1/orders", Some(&bob.token)).await).await;
    assert_eq!(list["orders"], json!([]));

    // Bob's cart is his own (empty); Alice's still holds her line.
    let bobs = app.cart(&bob.token).await;
    let alices = app.cart(&alice.token).await;
    assert_eq!(bobs["items"], json!([]));
    assert_ne!(bobs["id"], alices["id"]);
    assert_eq!(alices["items"][0]["quantity"], 4);
    // Bob cannot touch Alice's line through his own cart.
    let path = format!("/v1/cart/items/{}", products[0]);
    let removed = app.delete(&path, Some(&bob.token)).await;
    expect_error(removed, StatusCode::NOT_FOUND).await;
    assert_eq!(app.cart(&alice.token).await["items"][0]["quantity"], 4);

    // An auditor reads it but cannot cancel it; staff have no cart.
    let auditor = app.bootstrap_staff("auditor", Role::Auditor).await;
    let read = ok(app.order(&auditor.token, order_id, &[]).await).await;
    assert_eq!(uuid_field(&read, "customer_id"), alice.id);
    let cancel = app
        .post_json(&cancel_path, &json!({}), Some(&auditor.token))
        .await;
    expect_error(cancel, StatusCode::FORBIDDEN).await;
    let cart = app.get_as("/v1/cart", Some(&admin.token)).await;
    expect_error(cart, StatusCode::FORBIDDEN).await;
    let anonymous = app.get("/v1/cart").await;
    expect_error(anonymous, StatusCode::UNAUTHORIZED).await;

    // The owner lists and cancels it; the admin finds it by customer.
    let list = ok(app.get_as("/v1/orders", Some(&alice.token)).await).await;
    assert_eq!(list["orders"][0]["id"], json!(order_id));
    assert_eq!(list["next_cursor"], Value::Null);
    ok(app
        .post_json(&cancel_path, &json!({}), Some(&alice.token))
        .await)
    .await;
    let read = ok(app.order(&alice.token, order_id, &[]).await).await;
    assert_eq!(read["status"], "cancelled");
    assert_eq!(read["cancellation_reason"], "customer_request");
    let path = format!("/v1/orders?customer_id={}&status=cancelled", alice.id);
    let list = ok(app.get_as(&path, Some(&admin.token)).await).await;
    assert_eq!(list["orders"].as_array().map(Vec::len), Some(1));
    let path = format!("/v1/orders?customer_id={}&status=paid", alice.id);
    let list = ok(app.get_as(&path, Some(&admin.token)).await).await;
    assert_eq!(list["orders"], json!([]));
}

#[tokio::test]
async fn ten_racing_orders_under_one_idempotency_key_make_one_order() {
    let app = spawn_app().await;
    let (admin, products) = catalog(&app, &[1000, 250]).await;
    // One use only: redeeming it twice would be refused.
    let coupon = app
        .create_coupon(&admin.token, &coupon_body("ONCE", 50, Some(1)))
        .await;
    expect_json(coupon, StatusCode::CREATED).await;
    let alice = app.register_customer("alice").await;
    let token = alice.token.as_str();
    ok(app.add_to_cart(token, products[0], 1).await).await;
    ok(app.add_to_cart(token, products[1], 2).await).await;
    let applied = app
        .post_json("/v1/cart/coupon", &json!({"code": "ONCE"}), Some(token))
        .await;
    ok(applied).await;

    let body = cart_order(Some(750));
    let key = "checkout-7f3a";
    let answers = futures::future::join_all(
        (0..10).map(|_| async { app.place_order(token, &body, Some(key)).await }),
    )
    .await;
    let mut ids = Vec::new();
    for answer in answers {
        let order = expect_json(answer, StatusCode::CREATED).await;
        assert_eq!(order["total"], 750, "{order}");
        assert!(order.get("warnings").is_none(), "{order}");
        ids.push(uuid_field(&order, "id"));
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(app.order_count().await, 1);
    let placed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Order' AND event_type = 'OrderPlaced'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("count");
    assert_eq!(placed, 1);
    let coupon = ok(app.get_as("/v1/coupons/ONCE", Some(&admin.token)).await).await;
    assert_eq!(coupon["times_used"], 1);
    assert_eq!(app.cart(token).await["items"], json!([]));

    // A later repeat answers the same and writes nothing (once the
    // workflow has reserved the order's stock).
    app.wait_for_workflows().await;
    let events = app.event_count().await;
    let again = app.place_order(token, &body, Some(key)).await;
    let again = expect_json(again, StatusCode::CREATED).await;
    assert_eq!(uuid_field(&again, "id"), ids[0]);
    assert_eq!(again["status"], "pending");
    assert_eq!(app.event_count().await, events);

    // Another body under the key is refused.
    let mut changed = body.clone();
    changed["shipping_address"]["name"] = json!("Charles Babbage");
    let reused = app.place_order(token, &changed, Some(key)).await;
    assert_code(
        &expect_error(reused, StatusCode::UNPROCESSABLE_ENTITY).await,
        "idempotency_key_reused",
    );
    assert_eq!(app.event_count().await, events);

    // Keys are per customer: Bob's order under the same key is his own.
    let bob = app.register_customer("bob").await;
    let bobs = items_order(json!([{"product_id": products[0], "quantity": 1}]));
    let bobs = app.place_order(&bob.token, &bobs, Some(key)).await;
    let bobs = expect_json(bobs, StatusCode::CREATED).await;
    assert_ne!(uuid_field(&bobs, "id"), ids[0]);
    assert_eq!(app.order_count().await, 2);
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn an_order_is_answered_as_it_was_at_a_version_or_a_moment() {
    let app = spawn_app().await;
    let (admin, products) = catalog(&app, &[700]).await;
    let alice = app.register_customer("alice").await;
    let token = alice.token.as_str();
    app.top_up(token, 2100).await;
    let order = items_order(json!([{"product_id": products[0], "quantity": 3}]));
    let order = expect_json(
        app.place_order(token, &order, None).await,
        StatusCode::CREATED,
    )
    .await;
    let order_id = uuid_field(&order, "id");
    // Versions: 1 placed, 2 stock reserved, 3 paid from the wallet, 4 invoice
    // issued (all three by the workflow), 5 processing.
    app.wait_for_workflows().await;
    let started = app
        .set_order_status(&admin.token, order_id, &json!({"status": "processing"}))
        .await;
    ok(started).await;

    let now = ok(app.order(token, order_id, &[]).await).await;
    assert_eq!(now["status"], "processing");
    assert_eq!(now["version"], 5);

    let v1 = ok(app.order(token, order_id, &[("version", "1".into())]).await).await;
    assert_eq!(v1["status"], "pending");
    assert_eq!(v1["payment_status"], "pending");
    assert_eq!(v1["version"], 1);
    let v2 = ok(app.order(token, order_id, &[("version", "2".into())]).await).await;
    assert_eq!(v2["status"], "pending");
    assert_eq!(v2["version"], 2);
    let v3 = ok(app.order(token, order_id, &[("version", "3".into())]).await).await;
    assert_eq!(v3["status"], "paid");
    assert_eq!(v3["payment_status"], "captured");
    let v9 = ok(app.order(token, order_id, &[("version", "9".into())]).await).await;
    assert_eq!(v9["status"], "processing");

    let recorded: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT recorded_at FROM events
          WHERE aggregate_type = 'Order' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(order_id.to_string())
    .fetch_all(&app.db.pool)
    .await
    .expect("read recorded_at");
    assert_eq!(recorded.len(), 5);
    let at = |t: DateTime<Utc>| vec![("as_of", rfc3339(t))];
    let then = ok(app.order(token, order_id, &at(recorded[0])).await).await;
    assert_eq!(then["status"], "pending");
    assert_eq!(then["version"], 1);
    let then = ok(app.order(token, order_id, &at(recorded[2])).await).await;
    assert_eq!(then["status"], "paid");
    let then = ok(app.order(token, order_id, &at(recorded[3])).await).await;
    assert_eq!(then["status"], "paid");
    assert!(then["invoice_number"].is_string(), "{then}");
    let then = ok(app.order(token, order_id, &at(recorded[4])).await).await;
    assert_eq!(then["status"], "processing");
    // With an offset instead of `Z`, too.
    let offset = recorded[2]
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("offset"))
        .to_rfc3339();
    let then = ok(app.order(token, order_id, &[("as_of", offset)]).await).await;
    assert_eq!(then["status"], "paid");
    // Both at once: the earlier wins.
    let mut both = at(recorded[4]);
    both.push(("version", "1".into()));
    assert_eq!(
        ok(app.order(token, order_id, &both).await).await["status"],
        "pending"
    );

    // Before it was placed there was no order.
    let before = app
        .order(token, order_id, &at(recorded[0] - Duration::seconds(1)))
        .await;
    expect_error(before, StatusCode::NOT_FOUND).await;

    // Bad parameters are 400 in the one error shape.
    for query in [
        vec![("version", "0".to_string())],
        vec![("version", "many".to_string())],
        vec![("as_of", "yesterday".to_string())],
    ] {
        let bad = app.order(token, order_id, &query).await;
        expect_error(bad, StatusCode::BAD_REQUEST).await;
    }
    let bad = app.request(Method::GET, "/v1/orders/not-a-uuid", Some(token));
    let bad = bad.send().await.expect("send");
    expect_error(bad, StatusCode::BAD_REQUEST).await;
}

/// Sends each `(method, path, body, status)` with `token` and expects that
/// status in the one error shape; then that nothing was written.
async fn refused_and_nothing_written(
    app: &testkit::TestApp,
    token: Option<&str>,
    cases: Vec<(Method, String, Value, StatusCode)>,
) {
    let events = app.event_count().await;
    for (method, path, body, status) in cases {
        let mut request = app.request(method.clone(), &path, token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let actual = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(actual, status, "{method} {path} {body}: {text}");
        let parsed: Value = serde_json::from_str(&text).expect("JSON");
        testkit::assert_error_shape(&parsed);
    }
    assert_eq!(app.event_count().await, events, "nothing was written");
}

#[tokio::test]
async fn bad_input_to_the_cart_is_a_4xx_that_writes_nothing() {
    let app = spawn_app().await;
    let (_admin, products) = catalog(&app, &[300]).await;
    let alice = app.register_customer("alice").await;
    let product = products[0];
    let nobody = Uuid::new_v4();
    let cases: Vec<(Method, String, Value, StatusCode)> = vec![
        (
            Method::POST,
            "/v1/cart/items".into(),
            json!({"product_id": product, "quantity": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/cart/items".into(),
            json!({"product_id": product, "quantity": -3}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/cart/items".into(),
            json!({"product_id": product, "quantity": 1e30}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/cart/items".into(),
            json!({"product_id": product, "quantity": 1, "price": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/cart/items".into(),
            json!({"product_id": "nope", "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/cart/items".into(),
            json!({"product_id": nobody, "quantity": 1}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            format!("/v1/cart/items/{product}"),
            json!({"quantity": 2}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            format!("/v1/cart/items/{product}"),
            json!({"quantity": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PUT,
            "/v1/cart/items/not-a-uuid".into(),
            json!({"quantity": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/cart/coupon".into(),
            json!({"code": "NOSUCH"}),
            StatusCode::CONFLICT,
        ),
    ];
    refused_and_nothing_written(&app, Some(alice.token.as_str()), cases).await;
}

#[tokio::test]
async fn bad_input_to_placing_or_cancelling_an_order_is_a_4xx_that_writes_nothing() {
    let app = spawn_app().await;
    let (_admin, products) = catalog(&app, &[300]).await;
    let alice = app.register_customer("alice").await;
    let token = Some(alice.token.as_str());
    let product = products[0];
    let nobody = Uuid::new_v4();
    let events = app.event_count().await;
    let item = |p: Uuid, q: Value| json!([{"product_id": p, "quantity": q}]);
    let cases: Vec<(Method, String, Value, StatusCode)> = vec![
        (
            Method::POST,
            "/v1/orders".into(),
            items_order(json!([])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            items_order(item(nobody, json!(1))),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            items_order(item(product, json!(0))),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            items_order(
                json!([{"product_id": product, "quantity": 1}, {"product_id": product, "quantity": 2}]),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            json!({"shipping_address": shipping_address(), "items": item(product, json!(1)), "payment": {"method": "card", "token": " "}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            json!({"shipping_address": shipping_address(), "items": item(product, json!(1)), "payment": {"method": "cash"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            json!({"shipping_address": shipping_address(), "items": item(product, json!(1)), "payment": {"method": "card", "token": "t", "card_number": "4242424242424242"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            json!({"shipping_address": {"name": " ", "line1": "x", "city": "y", "postal_code": "z", "country": "GB"}, "items": item(product, json!(1)), "payment": {"method": "wallet"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            json!({"shipping_address": {"name": "A", "line1": "x", "city": "y", "postal_code": "z", "country": "Britain"}, "items": item(product, json!(1)), "payment": {"method": "wallet"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            json!({"shipping_address": shipping_address(), "items": item(product, json!(1)), "payment": {"method": "wallet"}, "expected_total": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/v1/orders".into(),
            json!({"shipping_address": shipping_address(), "items": item(product, json!(1)), "payment": {"method": "wallet"}, "total": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            format!("/v1/orders/{nobody}/cancel"),
            json!({}),
            StatusCode::NOT_FOUND,
        ),
    ];
    refused_and_nothing_written(&app, token, cases).await;
    let bad_json = app
        .request(Method::POST, "/v1/orders", token)
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .expect("send");
    expect_error(bad_json, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.event_count().await, events, "nothing was written");
}

#[tokio::test]
async fn bad_input_to_an_admins_order_actions_is_a_4xx_that_writes_nothing() {
    let app = spawn_app().await;
    let (admin, _products) = catalog(&app, &[300]).await;
    let nobody = Uuid::new_v4();
    let cases: Vec<(Method, String, Value, StatusCode)> = vec![
        (
            Method::PUT,
            format!("/v1/orders/{nobody}/status"),
            json!({"status": "processing"}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/v1/orders".to_string(),
            json!({"order_id": nobody, "status": "shipped", "tracking_number": "1Z"}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/v1/orders".to_string(),
            json!({"status": "shipped"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            format!("/v1/orders/{nobody}/refund"),
            json!({"reason": "x"}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            format!("/v1/orders/{nobody}/refund"),
            json!({"amount": -5, "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::GET,
            "/v1/orders?limit=0".to_string(),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/v1/orders?cursor=abc".to_string(),
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/v1/orders?status=lost".to_string(),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("/v1/orders/{nobody}"),
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
    ];
    refused_and_nothing_written(&app, Some(admin.token.as_str()), cases).await;
}

/// An admin and `count` products at 1.00, none in stock.
async fn many_products(app: &TestApp, count: usize) -> Vec<Uuid> {
    let (_, products) = app.stocked_catalog(&vec![(100, 0); count]).await;
    products
}

/// Writes one line of each product into the customer's cart straight into
/// the event store, past the cart's own rules (as carts made before the cart
/// had its line cap may hold).
async fn write_cart_lines(app: &TestApp, customer: Uuid, products: &[Uuid]) {
    use cqrs_es::Aggregate;
    use domain::cart::{cart_id_for, Cart, CartEvent};
    use domain::values::{CustomerId, ProductId, Quantity};
    use projections::event_store::streams::{append, load, NewEvents};

    let customer_id = CustomerId(customer);
    let cart_id = cart_id_for(&customer_id);
    let id = cart_id.to_string();
    let loaded = load::<Cart>(&app.db.pool, &id, &[])
        .await
        .expect("load the cart");
    let one = Quantity::try_from(1).unwrap();
    let events: Vec<CartEvent> = products
        .iter()
        .map(|product| CartEvent::CartItemAdded {
            cart_id,
            customer_id,
            product_id: ProductId(*product),
            quantity: one,
            line_quantity: one,
        })
        .collect();
    let mut cart = loaded.aggregate.clone();
    for event in &events {
        cart.apply(event.clone());
    }
    let metadata = std::collections::BTreeMap::from([
        ("actor".to_string(), format!("customer:{customer}")),
        ("command".to_string(), "AddCartItem".to_string()),
    ]);
    let new = NewEvents::of(&id, &loaded, &cart, &events, &metadata).expect("serialize");
    append(&app.db.pool, &[new])
        .await
        .expect("append the cart lines");
}

#[tokio::test]
async fn a_cart_refuses_a_line_past_the_hundredth() {
    let app = spawn_app().await;
    let products = many_products(&app, 101).await;
    let alice = app.register_customer("alice").await;
    for product in &products[..100] {
        ok(app.add_to_cart(&alice.token, *product, 1).await).await;
    }
    let events = app.event_count().await;

    let refused = expect_error(
        app.add_to_cart(&alice.token, products[100], 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_code(&refused, "too_many_lines");
    assert_eq!(app.event_count().await, events);
    assert_eq!(
        app.cart(&alice.token).await["items"]
            .as_array()
            .unwrap()
            .len(),
        100
    );

    // More of a product the cart holds is still a hundred lines.
    ok(app.add_to_cart(&alice.token, products[0], 2).await).await;
    let cart = app.cart(&alice.token).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 100);
    assert_eq!(cart["items"][0]["quantity"], 3, "{cart}");

    // An explicit list is held to the same cap, with the same answer.
    let items: Vec<Value> = products
        .iter()
        .map(|p| json!({"product_id": p, "quantity": 1}))
        .collect();
    let refused = expect_error(
        app.place_order(&alice.token, &items_order(json!(items)), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_code(&refused, "too_many_lines");

    // A full cart can be ordered.
    let placed = expect_json(
        app.place_order(&alice.token, &cart_order(None), None).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(placed["items"].as_array().unwrap().len(), 100, "{placed}");
}

#[tokio::test]
async fn an_order_placed_from_a_cart_of_more_than_a_hundred_lines_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let products = many_products(&app, 101).await;
    let alice = app.register_customer("alice").await;
    write_cart_lines(&app, alice.id, &products).await;
    assert_eq!(
        app.cart(&alice.token).await["items"]
            .as_array()
            .unwrap()
            .len(),
        101
    );
    let events = app.event_count().await;

    let refused = expect_error(
        app.place_order(&alice.token, &cart_order(None), Some("big-cart"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_code(&refused, "too_many_lines");
    assert_eq!(app.event_count().await, events, "something was written");
    assert_eq!(app.order_count().await, 0);
    assert_eq!(
        app.cart(&alice.token).await["items"]
            .as_array()
            .unwrap()
            .len(),
        101
    );

    // Removing a line makes it an order.
    let path = format!("/v1/cart/items/{}", products[100]);
    ok(app.delete(&path, Some(&alice.token)).await).await;
    let placed = expect_json(
        app.place_order(&alice.token, &cart_order(None), None).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(placed["items"].as_array().unwrap().len(), 100, "{placed}");
}
