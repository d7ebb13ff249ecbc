//! Payments end to end: card tokens, the simulated gateway's signed
//! callbacks to the real server, the wallet, and money going back. The
//! real server and the workflows on a fresh database; tests wait by polling
//! (`wait_for_workflows`, which also waits for the gateway's callbacks),
//! never by a fixed sleep.

use projections::payments::{signature, GatewayCallback, SIGNATURE_HEADER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{
    assert_error_shape, expect_error, expect_json, shipping_address, spawn_app,
    spawn_app_without_payment_callbacks, test_workflow_settings, uuid_field, Session, TestApp,
};
use uuid::Uuid;
/// Places an order of `quantity` of `product` paid with `payment`; answers
/// its id and total.
async fn place(
    app: &TestApp,
    customer: &Session,
    product: Uuid,
    quantity: i64,
    payment: Value,
) -> (Uuid, i64) {
    let body = json!({
        "shipping_address": shipping_address(),
        "items": [{"product_id": product, "quantity": quantity}],
        "payment": payment,
    });
    let order = expect_json(
        app.place_order(&customer.token, &body, None).await,
        StatusCode::CREATED,
    )
    .await;
    (
        uuid_field(&order, "id"),
        order["total"].as_i64().expect("a total"),
    )
}

fn card(token: &str) -> Value {
    json!({"method": "card", "token": token})
}

fn wallet() -> Value {
    json!({"method": "wallet"})
}
async fn tokenize(app: &TestApp, customer: &Session, number: &str) -> Value {
    tokenize_expiring(app, customer, number, "12/39").await
}

async fn tokenize_expiring(app: &TestApp, customer: &Session, number: &str, expiry: &str) -> Value {
    let body = json!({"card_number": number, "expiry": expiry, "cvc": "123"});
    expect_json(
        app.post_json("/v1/payments/tokens", &body, Some(&customer.token))
            .await,
        StatusCode::CREATED,
    )
    .await
}

#[tokio::test]
async fn a_card_payment_is_captured_through_the_webhook_and_commits_the_stock() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;

    let (by_test_token, total) = place(&app, &alice, tea, 3, card("tok_visa")).await;
    let token = tokenize(&app, &alice, "4242 4242 4242 4242").await;
    assert_eq!(token["brand"], "visa", "{token}");
    assert_eq!(token["last4"], "4242", "{token}");
    let token = token["token"].as_str().expect("a token").to_string();
    let (by_card, _) = place(&app, &alice, tea, 2, card(&token)).await;

    for order_id in [by_test_token, by_card] {
        let order = app.settled_order(&alice, order_id).await;
        assert_eq!(order["status"], "paid", "{order}");
        assert_eq!(order["payment_status"], "captured", "{order}");
    }
    assert_eq!(app.stock(tea).await, (5, 0));
    assert_eq!(app.events_of_type("HoldCommitted").await, 2);
    // The gateway's own record: one charge per order, the order's total.
    let charges: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT reference, amount, outcome FROM gateway_charges ORDER BY amount DESC",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("read the charges");
    assert_eq!(
        charges[0],
        (
            format!("order:{by_test_token}"),
            total,
            "succeeded".to_string()
        )
    );
    assert_eq!(charges.len(), 2);
    // The capture carries the gateway's charge id and is the system's.
    let history = expect_json(
        app.get_as(
            &format!("/v1/orders/{by_test_token}/history"),
            Some(&alice.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let captured = history
        .as_array()
        .and_then(|events| events.iter().find(|e| e["event_type"] == "PaymentCaptured"))
        .cloned()
        .unwrap_or_else(|| panic!("no PaymentCaptured in {history}"));
    assert_eq!(captured["actor"], "system:payments", "{captured}");
    // In the order's conversation, caused by the gateway's callback.
    assert_eq!(captured["correlation_id"], history[0]["correlation_id"]);
    assert!(
        captured["causation_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("callback-evt_ch_")),
        "{captured}"
    );
    assert!(
        captured["payload"].to_string().contains("ch_"),
        "{captured}"
    );
}

#[tokio::test]
async fn a_declined_card_and_insufficient_funds_fail_the_payment_and_release_the_holds() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 12)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;

    let declined_card = tokenize(&app, &alice, "4000000000000002").await;
    let poor_card = tokenize(&app, &alice, "4000000000009995").await;
    // Well-formed, but the issuer refuses them when they are charged.
    let mistyped_card = tokenize(&app, &alice, "4242424242424241").await;
    let expired_card = tokenize_expiring(&app, &alice, "4242424242424242", "01/20").await;
    let mut orders = Vec::new();
    for token in [
        "tok_chargeDeclined",
        "tok_insufficientFunds",
        declined_card["token"].as_str().expect("a token"),
        poor_card["token"].as_str().expect("a token"),
        mistyped_card["token"].as_str().expect("a token"),
        expired_card["token"].as_str().expect("a token"),
    ] {
        orders.push(place(&app, &alice, tea, 2, card(token)).await.0);
    }
    for order_id in &orders {
        let order = app.settled_order(&alice, *order_id).await;
        assert_eq!(order["status"], "cancelled", "{order}");
        assert_eq!(order["cancellation_reason"], "payment_failed", "{order}");
    }
    assert_eq!(app.stock(tea).await, (12, 0));
    assert_eq!(app.events_of_type("PaymentFailed").await, 6);
    assert_eq!(app.events_of_type("HoldReleased").await, 6);
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'PaymentFailed'->>'reason' FROM events
          WHERE event_type = 'PaymentFailed' ORDER BY global_position",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("read the reasons");
    let mut reasons = reasons;
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            "card_declined",
            "card_declined",
            "expired_card",
            "incorrect_number",
            "insufficient_funds",
            "insufficient_funds"
        ]
    );
}

#[tokio::test]
async fn a_wallet_topped_up_by_card_pays_for_an_order_exactly() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1250, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;

    let empty = expect_json(
        app.get_as("/v1/wallet", Some(&alice.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(empty, json!({"balance": 0, "currency": "USD"}));

    app.top_up(&alice.token, 5000).await;
    let (order_id, total) = place(&app, &alice, tea, 2, wallet()).await;
    assert_eq!(total, 2500);
    let order = app.settled_order(&alice, order_id).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(app.wallet_balance(&alice.token).await, 2500);
    assert_eq!(app.stock(tea).await, (8, 0));

    // The rest pays for another order to the last cent.
    let (second, _) = place(&app, &alice, tea, 2, wallet()).await;
    assert_eq!(app.settled_order(&alice, second).await["status"], "paid");
    assert_eq!(app.wallet_balance(&alice.token).await, 0);

    // A declined top-up credits nothing.
    let body = json!({"amount": 1000, "payment": card("tok_chargeDeclined")});
    expect_json(
        app.post_json("/v1/wallet/top-up", &body, Some(&alice.token))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.wait_for_workflows().await;
    assert_eq!(app.wallet_balance(&alice.token).await, 0);
    // Another customer's wallet is their own.
    let bob = app.register_customer("bob").await;
    assert_eq!(app.wallet_balance(&bob.token).await, 0);
}

#[tokio::test]
async fn a_wallet_with_too_little_fails_the_payment_and_keeps_its_balance() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;

    app.top_up(&alice.token, 1500).await;
    let (order_id, _) = place(&app, &alice, tea, 2, wallet()).await;
    let order = app.settled_order(&alice, order_id).await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["cancellation_reason"], "payment_failed", "{order}");
    assert_eq!(app.wallet_balance(&alice.token).await, 1500);
    assert_eq!(app.stock(tea).await, (10, 0));
    assert_eq!(app.events_of_type("WalletDebited").await, 0);
}

#[tokio::test]
async fn a_customer_cancelling_a_paid_order_gets_the_money_back() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;

    // Paid from the wallet: the balance comes back.
    app.top_up(&alice.token, 5000).await;
    let (from_wallet, _) = place(&app, &alice, tea, 2, wallet()).await;
    assert_eq!(
        app.settled_order(&alice, from_wallet).await["status"],
        "paid"
    );
    assert_eq!(app.wallet_balance(&alice.token).await, 3000);
    // Paid by card: the gateway records the refund.
    let (by_card, card_total) = place(&app, &alice, tea, 3, card("tok_visa")).await;
    assert_eq!(app.settled_order(&alice, by_card).await["status"], "paid");
    assert_eq!(app.stock(tea).await, (5, 0));

    for order_id in [from_wallet, by_card] {
        expect_json(
            app.post_json(
                &format!("/v1/orders/{order_id}/cancel"),
                &json!({}),
                Some(&alice.token),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        let order = app.settled_order(&alice, order_id).await;
        assert_eq!(order["status"], "refunded", "{order}");
        assert_eq!(order["payment_status"], "refunded", "{order}");
        assert_eq!(order["cancellation_reason"], "customer_request", "{order}");
    }
    assert_eq!(app.wallet_balance(&alice.token).await, 5000);
    let refunds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT r.reference, r.amount FROM gateway_refunds r
           JOIN gateway_charges c ON c.id = r.charge_id
          WHERE c.reference = $1",
    )
    .bind(format!("order:{by_card}"))
    .fetch_all(&app.db.pool)
    .await
    .expect("read the refunds");
    assert_eq!(
        refunds,
        vec![(format!("refund:{by_card}:{card_total}"), card_total)]
    );
    // The stock both orders had taken is back on hand, once, and no hold
    // is left behind.
    assert_eq!(app.stock(tea).await, (10, 0));
    assert_eq!(app.events_of_type("OrderStockReturned").await, 2);
    assert_eq!(app.events_of_type("OrderRefunded").await, 2);
}

#[tokio::test]
async fn an_admin_refund_returns_the_money_once() {
    let app = spawn_app().await;
    let (admin, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;
    app.top_up(&alice.token, 5000).await;
    let (order_id, _) = place(&app, &alice, tea, 3, wallet()).await;
    assert_eq!(app.settled_order(&alice, order_id).await["status"], "paid");
    assert_eq!(app.wallet_balance(&alice.token).await, 2000);

    let refund = format!("/v1/orders/{order_id}/refund");
    for amount in [1000, 500] {
        let body = json!({"amount": amount, "reason": "damaged box"});
        expect_json(
            app.post_json(&refund, &body, Some(&admin.token)).await,
            StatusCode::OK,
        )
        .await;
    }
    app.wait_for_workflows().await;
    assert_eq!(app.wallet_balance(&alice.token).await, 3500);
    let order = app.settled_order(&alice, order_id).await;
    assert_eq!(order["payment_status"], "partially_refunded", "{order}");
}

/// A card order whose charge was made but not yet answered (the gateway
/// does not call back in these tests), and the callback the gateway would
/// send for it.
async fn unanswered_card_order(app: &TestApp) -> (Session, Uuid, GatewayCallback) {
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let alice = app.register_customer("alice").await;
    let (order_id, total) = place(app, &alice, products[0], 1, card("tok_visa")).await;
    app.wait_for_workflows().await;
    let charge_id: String =
        sqlx::query_scalar("SELECT id FROM gateway_charges WHERE reference = $1")
            .bind(format!("order:{order_id}"))
            .fetch_one(&app.db.pool)
            .await
            .expect("the order's charge");
    let callback = GatewayCallback {
        id: format!("evt_{charge_id}"),
        event_type: "charge.succeeded".to_string(),
        charge_id,
        reference: format!("order:{order_id}"),
        amount: total,
        currency: "USD".to_string(),
        failure_reason: None,
    };
    (alice, order_id, callback)
}

async fn post_webhook(app: &TestApp, body: &[u8], signature: Option<&str>) -> reqwest::Response {
    let mut request = app
        .request(Method::POST, "/v1/payments/webhook", None)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    request.send().await.expect("post the webhook")
}

#[tokio::test]
async fn a_webhook_with_a_bad_or_missing_signature_is_refused_and_changes_nothing() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (alice, order_id, callback) = unanswered_card_order(&app).await;
    let body = serde_json::to_vec(&callback).expect("json");
    let before = app.event_count().await;

    let forged = signature::sign("not-the-secret", &body);
    for header in [Some(forged.as_str()), Some("sha256=00"), Some(""), None] {
        let refused = expect_error(
            post_webhook(&app, &body, header).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_error_shape(&refused);
        assert_eq!(refused["error"], "invalid_signature", "{refused}");
    }
    // A good signature of another body does not sign this one.
    let other = signature::sign(&app.state.payment_webhook_secret, b"{}");
    expect_error(
        post_webhook(&app, &body, Some(&other)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    app.wait_for_workflows().await;
    assert_eq!(app.event_count().await, before);
    let handled: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_webhook_events")
        .fetch_one(&app.db.pool)
        .await
        .expect("count handled callbacks");
    assert_eq!(handled, 0);
    assert_eq!(
        app.settled_order(&alice, order_id).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_replayed_webhook_has_no_second_effect() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (alice, order_id, callback) = unanswered_card_order(&app).await;
    let body = serde_json::to_vec(&callback).expect("json");
    let signed = signature::sign(&app.state.payment_webhook_secret, &body);

    let first = expect_json(
        post_webhook(&app, &body, Some(&signed)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first, json!({"received": true, "duplicate": false}));
    let order = app.settled_order(&alice, order_id).await;
    assert_eq!(order["status"], "paid", "{order}");
    let after_first = app.event_count().await;

    for _ in 0..3 {
        let again = expect_json(
            post_webhook(&app, &body, Some(&signed)).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(again, json!({"received": true, "duplicate": true}));
    }
    app.wait_for_workflows().await;
    assert_eq!(app.event_count().await, after_first);
    assert_eq!(app.events_of_type("PaymentCaptured").await, 1);
    assert_eq!(app.events_of_type("HoldCommitted").await, 1);

    // A failure callback for the same charge under another id cannot undo
    // the payment either.
    let late = GatewayCallback {
        id: "evt_late".to_string(),
        event_type: "charge.failed".to_string(),
        failure_reason: Some("card_declined".to_string()),
        ..callback
    };
    let body = serde_json::to_vec(&late).expect("json");
    let signed = signature::sign(&app.state.payment_webhook_secret, &body);
    expect_json(
        post_webhook(&app, &body, Some(&signed)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.settled_order(&alice, order_id).await["status"], "paid");
}

#[tokio::test]
async fn tokenizing_checks_the_card_and_never_stores_its_number() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let alice = app.register_customer("alice").await;

    // A card that is only used here, so any trace of it is this test's.
    let number = "5555555555554444";
    let token = tokenize(&app, &alice, "5555 5555 5555 4444").await;
    assert_eq!(token["brand"], "mastercard", "{token}");
    assert_eq!(token["last4"], "4444", "{token}");
    let token = token["token"].as_str().expect("a token").to_string();
    assert!(
        token.starts_with("tok_") && !token.contains("5555"),
        "{token}"
    );
    let (order_id, _) = place(&app, &alice, products[0], 1, card(&token)).await;
    assert_eq!(app.settled_order(&alice, order_id).await["status"], "paid");

    // Nowhere: not in any event, not in the gateway's tables, not in any
    // other table of the database.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("list the tables");
    assert!(tables.iter().any(|t| t == "gateway_cards"), "{tables:?}");
    for table in &tables {
        let found: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{table}\" t WHERE t::text LIKE '%' || $1 || '%'"
        ))
        .bind(number)
        .fetch_one(&app.db.pool)
        .await
        .expect("search a table");
        assert_eq!(found, 0, "the card number is in {table}");
    }

    // Cards not written as cards: clear 422s in the one error shape.
    for (body, code) in [
        (
            json!({"card_number": "4242", "expiry": "12/39", "cvc": "123"}),
            "invalid_card_number",
        ),
        (
            json!({"card_number": "4242424242424242", "expiry": "13/39", "cvc": "123"}),
            "invalid_expiry",
        ),
        (
            json!({"card_number": "4242424242424242", "expiry": "12/39", "cvc": "12"}),
            "invalid_cvc",
        ),
    ] {
        let refused = expect_error(
            app.post_json("/v1/payments/tokens", &body, Some(&alice.token))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["error"], code, "{refused}");
        assert!(!refused.to_string().contains("424242424242"), "{refused}");
    }
    // Signed in only.
    let body = json!({"card_number": "4242424242424242", "expiry": "12/39", "cvc": "123"});
    expect_error(
        app.post_json("/v1/payments/tokens", &body, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn a_top_up_needs_a_positive_amount_and_a_card() {
    let app = spawn_app().await;
    let alice = app.register_customer("alice").await;
    for body in [
        json!({"amount": 0, "payment": card("tok_visa")}),
        json!({"amount": -5, "payment": card("tok_visa")}),
        json!({"amount": 100, "payment": {"method": "wallet"}}),
        json!({"amount": 100, "payment": card(" ")}),
    ] {
        let refused = expect_error(
            app.post_json("/v1/wallet/top-up", &body, Some(&alice.token))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_error_shape(&refused);
    }
    let admin = app.bootstrap_admin().await;
    expect_error(
        app.get_as("/v1/wallet", Some(&admin.token)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}
