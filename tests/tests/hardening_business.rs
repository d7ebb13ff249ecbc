//! Business rules that must hold under pressure and against clients that
//! cheat or are old: coupons under concurrent checkouts, card tokens bound
//! to their owner, holds that expire on time, the order forms of older
//! clients, and a deployment that refuses the simulated payment gateway.
//! The real server on a fresh database each.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::server_process::{until_live, ServerProcess};
use testkit::{
    eventually, expect_error, expect_json, shipping_address, spawn_app, uuid_field, TestApp,
};

fn coupon_body(code: &str, percent_off: i64, usage_limit: Option<i64>) -> Value {
    json!({
        "code": code,
        "percent_off": percent_off,
        "valid_until": (Utc::now() + Duration::days(1)).to_rfc3339(),
        "usage_limit": usage_limit,
    })
}

/// An order of the cart, paid with the shared test card.
fn cart_order() -> Value {
    json!({
        "shipping_address": shipping_address(),
        "payment": {"method": "card", "token": "tok_visa"},
    })
}

async fn ok(response: reqwest::Response) -> Value {
    expect_json(response, StatusCode::OK).await
}

async fn coupon_times_used(app: &TestApp, admin: &str, code: &str) -> i64 {
    let coupon = ok(app
        .get_as(&format!("/v1/coupons/{code}"), Some(admin))
        .await)
    .await;
    coupon["times_used"].as_i64().expect("times_used")
}

// ---- coupons: the usage limit under concurrent checkouts ----

#[tokio::test]
async fn only_the_allowed_number_of_orders_get_a_single_use_coupon_when_placed_at_once() {
    let app = spawn_app().await;
    let (admin, products) = app.stocked_catalog(&[(1000, 100)]).await;
    let coupon = app
        .create_coupon(&admin.token, &coupon_body("ONLYONE", 50, Some(1)))
        .await;
    expect_json(coupon, StatusCode::CREATED).await;

    // Twenty customers, each with the product and the coupon in the cart.
    let customers = app.register_customers(20).await;
    for customer in &customers {
        ok(app.add_to_cart(&customer.token, products[0], 1).await).await;
        let applied = app
            .post_json(
                "/v1/cart/coupon",
                &json!({"code": "ONLYONE"}),
                Some(&customer.token),
            )
            .await;
        ok(applied).await;
    }

    // All of them check out at the same moment.
    let body = cart_order();
    let answers = futures::future::join_all(
        customers
            .iter()
            .map(|c| async { app.place_order(&c.token, &body, None).await }),
    )
    .await;
    let mut discounted = 0;
    let mut placed = 0;
    for answer in answers {
        let status = answer.status();
        let text = answer.text().await.expect("read the body");
        let body: Value = serde_json::from_str(&text).expect("a JSON answer");
        match status {
            StatusCode::CREATED => {
                placed += 1;
                assert!(body.get("warnings").is_none(), "{body}");
                if body["discount"].as_i64() == Some(500) {
                    discounted += 1;
                    assert_eq!(body["total"], 500, "{body}");
                    assert_eq!(body["coupon_code"], "ONLYONE", "{body}");
                } else {
                    assert_eq!(body["discount"], 0, "{body}");
                    assert_eq!(body["total"], 1000, "{body}");
                }
            }
            StatusCode::CONFLICT => {
                testkit::assert_error_shape(&body);
                assert_eq!(body["error"], "coupon_used_up", "{body}");
            }
            other => panic!("unexpected answer {other}: {text}"),
        }
    }
    assert_eq!(discounted, 1, "exactly one order may have the coupon");
    assert_eq!(app.order_count().await, placed);
    assert_eq!(coupon_times_used(&app, &admin.token, "ONLYONE").await, 1);
    let redeemed = app.events_of_type("CouponRedeemed").await;
    let released = app.events_of_type("CouponRedemptionReleased").await;
    assert_eq!(redeemed - released, 1);
}

// ---- card tokens belong to the customer they were made for ----

/// Tokenizes the test card that approves, as `token`'s account.
async fn tokenize(app: &TestApp, token: &str) -> String {
    let card = json!({"card_number": "4242424242424242", "expiry": "12/40", "cvc": "123"});
    let made = app
        .post_json("/v1/payments/tokens", &card, Some(token))
        .await;
    let made = expect_json(made, StatusCode::CREATED).await;
    made["token"].as_str().expect("a token").to_string()
}

async fn charges_with(app: &TestApp, card_token: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM gateway_charges WHERE token = $1")
        .bind(card_token)
        .fetch_one(&app.db.pool)
        .await
        .expect("count charges")
}

fn card_items_order(product: uuid::Uuid, card_token: &str) -> Value {
    json!({
        "shipping_address": shipping_address(),
        "items": [{"product_id": product, "quantity": 1}],
        "payment": {"method": "card", "token": card_token},
    })
}

#[tokio::test]
async fn a_card_token_made_by_one_customer_cannot_pay_for_another_customers_order() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let alice = app.register_customer("alice").await;
    let mallory = app.register_customer("mallory").await;
    let alices_card = tokenize(&app, &alice.token).await;

    // Mallory's order with Alice's card is refused before anything is
    // placed or charged.
    app.wait_for_workflows().await;
    let events = app.event_count().await;
    let refused = app
        .place_order(
            &mallory.token,
            &card_items_order(products[0], &alices_card),
            None,
        )
        .await;
    let refused = expect_error(refused, StatusCode::CONFLICT).await;
    assert_eq!(refused["error"], "card_token_not_owned", "{refused}");
    assert_eq!(app.event_count().await, events);
    assert_eq!(app.order_count().await, 0);

    // So is a top-up of Mallory's wallet with it.
    let top_up = json!({"amount": 5000, "payment": {"method": "card", "token": alices_card}});
    let refused = app
        .post_json("/v1/wallet/top-up", &top_up, Some(&mallory.token))
        .await;
    let refused = expect_error(refused, StatusCode::CONFLICT).await;
    assert_eq!(refused["error"], "card_token_not_owned", "{refused}");
    assert_eq!(charges_with(&app, &alices_card).await, 0);
    app.wait_for_workflows().await;
    assert_eq!(app.wallet_balance(&mallory.token).await, 0);

    // Alice pays with her own card.
    let placed = app
        .place_order(
            &alice.token,
            &card_items_order(products[0], &alices_card),
            None,
        )
        .await;
    let placed = expect_json(placed, StatusCode::CREATED).await;
    let order = app.settled_order(&alice, uuid_field(&placed, "id")).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(charges_with(&app, &alices_card).await, 1);
}

#[tokio::test]
async fn a_charge_with_another_customers_card_token_is_declined_by_the_gateway() {
    let app = spawn_app().await;
    let alice = app.register_customer("alice").await;
    let mallory = app.register_customer("mallory").await;
    let alices_card = tokenize(&app, &alice.token).await;

    // Should a charge get past the shop's own check, the gateway declines
    // it: nothing is taken.
    let request = domain::payment::ChargeRequest {
        reference: format!("order:{}", uuid::Uuid::new_v4()),
        customer_id: domain::values::CustomerId(mallory.id),
        token: alices_card.clone(),
        amount: domain::values::Money::new(1000, domain::values::Currency::usd()).expect("money"),
    };
    let charge = app.state.gateway.charge(request).await.expect("a charge");
    let (outcome, reason): (String, Option<String>) =
        sqlx::query_as("SELECT outcome, failure_reason FROM gateway_charges WHERE id = $1")
            .bind(&charge)
            .fetch_one(&app.db.pool)
            .await
            .expect("the charge");
    assert_eq!(outcome, "failed");
    assert_eq!(reason.as_deref(), Some("card_token_not_owned"));
}

// ---- the order forms of older clients ----

fn items_with_price(product: uuid::Uuid, price: Option<i64>) -> Value {
    json!({
        "shipping_address": shipping_address(),
        "items": [{"product_id": product, "quantity": 2, "price": price}],
        "payment": {"method": "card", "token": "tok_visa"},
    })
}

#[tokio::test]
async fn an_order_with_a_one_line_string_address_is_placed() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let alice = app.register_customer("alice").await;
    let one_line = "Ada Lovelace, 12 St James's Square, London SW1Y 4JH, GB";
    let body = json!({
        "shipping_address": format!("  {one_line} "),
        "items": [{"product_id": products[0], "quantity": 1}],
        "payment": {"method": "card", "token": "tok_visa"},
    });
    let placed = app.place_order(&alice.token, &body, None).await;
    let placed = expect_json(placed, StatusCode::CREATED).await;
    let address = &placed["shipping_address"];
    assert_eq!(address["line1"], one_line, "{placed}");
    for field in ["name", "city", "postal_code", "country"] {
        assert_eq!(address[field], "", "{placed}");
    }
    let read = ok(app
        .order(&alice.token, uuid_field(&placed, "id"), &[])
        .await)
    .await;
    assert_eq!(read["shipping_address"]["line1"], one_line);

    // A blank line, or one too long, is refused and writes nothing (once
    // the workflow is done with the order above).
    app.wait_for_workflows().await;
    let events = app.event_count().await;
    for address in [json!("   "), json!("x".repeat(201)), json!(42)] {
        let mut bad = body.clone();
        bad["shipping_address"] = address;
        let refused = app.place_order(&alice.token, &bad, None).await;
        let refused = expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            ["invalid_shipping_address", "invalid_body"]
                .contains(&refused["error"].as_str().unwrap_or_default()),
            "{refused}"
        );
    }
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn an_item_price_that_differs_from_the_catalog_is_409_price_mismatch_and_places_nothing() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let alice = app.register_customer("alice").await;
    app.wait_for_workflows().await;
    let events = app.event_count().await;
    for price in [999, 1001, 0, -5] {
        let refused = app
            .place_order(
                &alice.token,
                &items_with_price(products[0], Some(price)),
                None,
            )
            .await;
        let refused = expect_error(refused, StatusCode::CONFLICT).await;
        assert_eq!(refused["error"], "price_mismatch", "{refused}");
    }
    assert_eq!(app.event_count().await, events);
    assert_eq!(app.order_count().await, 0);
}

#[tokio::test]
async fn an_item_price_that_equals_the_catalog_s_places_the_order_at_that_price() {
    let app = spawn_app().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let alice = app.register_customer("alice").await;
    let placed = app
        .place_order(
            &alice.token,
            &items_with_price(products[0], Some(1000)),
            None,
        )
        .await;
    let placed = expect_json(placed, StatusCode::CREATED).await;
    assert_eq!(placed["items"][0]["unit_price"], 1000, "{placed}");
    assert_eq!(placed["total"], 2000, "{placed}");
    // `null` is no price, as without the field.
    let placed = app
        .place_order(&alice.token, &items_with_price(products[0], None), None)
        .await;
    expect_json(placed, StatusCode::CREATED).await;
}

#[tokio::test]
async fn the_api_document_describes_the_one_line_address_and_the_item_price() {
    let app = spawn_app().await;
    let document = ok(app.get("/openapi.json").await).await;
    let schemas = &document["components"]["schemas"];
    let item = &schemas["ItemBody"];
    assert_eq!(
        item["properties"]["price"]["type"],
        json!(["integer", "null"]),
        "{item}"
    );
    let address = serde_json::to_string(&schemas["NewOrder"]["properties"]["shipping_address"])
        .expect("JSON");
    let resolved = if address.contains("$ref") {
        let name = schemas["NewOrder"]["properties"]["shipping_address"]["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .expect("a reference");
        serde_json::to_string(&schemas[name]).expect("JSON")
    } else {
        address
    };
    assert!(resolved.contains("\"string\""), "{resolved}");
    assert!(resolved.contains("AddressBody"), "{resolved}");
}

// ---- holds expire on time ----

#[tokio::test]
async fn a_hold_with_a_ttl_is_released_on_time_without_anyone_touching_the_stock() {
    let app = spawn_app().await;
    let (admin, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let product = products[0];
    let hold = json!({"quantity": 3, "owner_id": uuid::Uuid::new_v4(), "ttl_seconds": 1});
    let held = app
        .put_json(
            &format!("/v1/inventory/{product}/hold"),
            &hold,
            Some(&admin.token),
        )
        .await;
    let held = expect_json(held, StatusCode::OK).await;
    let expires_at: chrono::DateTime<Utc> = held["expires_at"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .unwrap_or_else(|| panic!("an expiry: {held}"));
    assert_eq!(app.events_of(product, "HoldPlaced").await, 1);

    // Nobody asks for that stock again (these are reads): the hold's
    // deadline expires it.
    eventually(
        "the hold to expire",
        std::time::Duration::from_secs(60),
        async || {
            let now = app.availability(product).await;
            if now == (10, 0, 10) {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
    assert_eq!(app.events_of(product, "HoldExpired").await, 1);
    // On time: not before its expiry, and not long after it.
    let expired_at: chrono::DateTime<Utc> = sqlx::query_scalar(
        "SELECT recorded_at FROM events WHERE aggregate_id = $1 AND event_type = 'HoldExpired'",
    )
    .bind(product.to_string())
    .fetch_one(&app.db.pool)
    .await
    .expect("the expiry");
    assert!(expired_at >= expires_at, "{expired_at} < {expires_at}");
    assert!(
        expired_at - expires_at < Duration::seconds(30),
        "expired at {expired_at}, due at {expires_at}"
    );
}

// ---- the payment gateway of a production deployment ----

#[tokio::test]
async fn a_production_server_refuses_to_start_with_the_simulated_gateway_unless_allowed() {
    let db = testkit::fresh_database().await;
    let data_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".data")
        .join(format!("serve-{}", uuid::Uuid::new_v4().simple()));
    let started = tokio::process::Command::new(env!("CARGO_BIN_EXE_shop-under-test"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db.url)
        .env("SHOP_DATA_DIR", &data_dir)
        .env("SHOP_ENVIRONMENT", "production")
        .env("SHOP_PAYMENT_GATEWAY", "simulated")
        .env_remove("SHOP_ALLOW_SIMULATED_GATEWAY")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), started)
        .await
        .expect("shop serve exits by itself instead of serving")
        .expect("run shop serve");
    let _ = std::fs::remove_dir_all(&data_dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("simulated payment gateway")
            && stderr.contains("SHOP_ALLOW_SIMULATED_GATEWAY=true"),
        "{stderr}"
    );
    // It refused before it touched the database.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .expect("count events");
    assert_eq!(events, 0);

    // Told explicitly, it serves.
    let server = ServerProcess::start_with(
        env!("CARGO_BIN_EXE_shop-under-test"),
        &db.url,
        &[
            ("SHOP_ENVIRONMENT", "production"),
            ("SHOP_ALLOW_SIMULATED_GATEWAY", "true"),
        ],
    );
    until_live(&reqwest::Client::new(), &server.address()).await;
}
