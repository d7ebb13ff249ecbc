//! An order's whole journey with every workflow running and nothing done by
//! hand but what people do: the customer orders and pays by card, the
//! gateway calls back, the invoice is issued, an admin ships (the carrier
//! books the parcel) and marks it delivered, refunds part of it, and the
//! customer hears about every stage once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{eventually, expect_json, spawn_app, uuid_field, TestApp};
use uuid::Uuid;

async fn ok(response: reqwest::Response) -> Value {
    expect_json(response, StatusCode::OK).await
}

/// The order once the workflows are quiet.
async fn settled(app: &TestApp, token: &str, order: Uuid) -> Value {
    app.wait_for_workflows().await;
    ok(app.order(token, order, &[]).await).await
}

#[tokio::test]
async fn a_card_order_goes_from_placed_to_delivered_with_invoice_tracking_and_one_message_per_stage(
) {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tea", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Darjeeling", "description": "First flush", "price": 1450,
                    "sku": "TEA-DARJ", "category_id": category}),
        )
        .await;
    ok(app.receive(&admin.token, product, 10).await).await;
    let ada = app.register_customer("ada").await;

    // The customer tokenizes a test card and orders with it.
    let card = json!({"card_number": "4242424242424242", "expiry": "12/2099", "cvc": "123"});
    let token = expect_json(
        app.post_json("/v1/payments/tokens", &card, Some(&ada.token))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(token["last4"], "4242");
    let order = json!({
        "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square",
                             "city": "London", "postal_code": "SW1Y 4JH", "country": "gb"},
        "items": [{"product_id": product, "quantity": 2}],
        "payment": {"method": "card", "token": token["token"]},
    });
    let placed = app.place_order(&ada.token, &order, None).await;
    let order_id = uuid_field(&expect_json(placed, StatusCode::CREATED).await, "id");

    // Stock held, card charged, the gateway's callback captured the payment,
    // the stock was committed and the invoice issued: all by the workflows.
    let paid = settled(&app, &ada.token, order_id).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_eq!(paid["payment_status"], "captured", "{paid}");
    let invoice_number = paid["invoice_number"].as_str().expect("an invoice number");
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(invoice_number, format!("{year}-000001"));
    let invoice = ok(app
        .get_as(&format!("/v1/orders/{order_id}/invoice"), Some(&ada.token))
        .await)
    .await;
    assert_eq!(invoice["invoice_number"], invoice_number);
    assert_eq!(invoice["total"], 2900);
    let (on_hand, held, _) = app.availability(product).await;
    assert_eq!((on_hand, held), (8, 0));

    // The admin ships it (the carrier books the parcel) and it arrives.
    for body in [
        json!({"status": "processing"}),
        json!({"status": "shipped"}),
        json!({"status": "delivered"}),
    ] {
        ok(app.set_order_status(&admin.token, order_id, &body).await).await;
    }
    let delivered = settled(&app, &ada.token, order_id).await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    let tracking = delivered["tracking_number"]
        .as_str()
        .expect("a tracking number");
    assert!(tracking.starts_with("SIM-"), "{tracking}");

    // A refund after delivery: the money goes back to the card, once.
    let refund = json!({"amount": 1450, "reason": "one tin arrived dented"});
    ok(app
        .post_json(
            &format!("/v1/orders/{order_id}/refund"),
            &refund,
            Some(&admin.token),
        )
        .await)
    .await;
    let refunded = settled(&app, &ada.token, order_id).await;
    assert_eq!(refunded["status"], "delivered", "{refunded}");
    assert_eq!(
        refunded["payment_status"], "partially_refunded",
        "{refunded}"
    );
    let at_gateway: Vec<(i64,)> = sqlx::query_as(
        "SELECT r.amount FROM gateway_refunds r JOIN gateway_charges c ON c.id = r.charge_id
          WHERE c.reference = $1",
    )
    .bind(format!("order:{order_id}"))
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(at_gateway, vec![(1450,)]);

    // One message per stage, all sent.
    let head = app.head_position().await;
    let messages = eventually(
        "every message to be sent",
        Duration::from_secs(30),
        async || {
            let list = ok(app
                .get_as(
                    &format!("/v1/notifications?min_position={head}"),
                    Some(&ada.token),
                )
                .await)
            .await;
            let items = list["notifications"].as_array().unwrap().clone();
            if items.iter().all(|n| n["status"] == "sent") {
                Ok(items)
            } else {
                Err(list)
            }
        },
    )
    .await;
    let stages: Vec<&str> = messages
        .iter()
        .map(|n| n["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["refunded", "delivered", "shipped", "paid", "placed"]
    );
    let shipped = &messages[2];
    assert!(
        shipped["body"].as_str().unwrap().contains(tracking),
        "{shipped}"
    );
}
