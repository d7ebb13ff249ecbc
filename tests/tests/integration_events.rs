//! Integration events on a real NATS JetStream and a real database, with
//! the real `shop serve` process: what is published and how, what survives
//! a crash and an outage of NATS, other services' facts consumed back, and
//! the HTTP feed of the same events.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain::metadata::Role;
use projections::event_store::log::{read_after, Checkpoint};
use projections::integration::contract::integration_event;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::nats::{StreamedMessage, TestNats};
use testkit::server_process::{app_of, until_live, ServerProcess};
use testkit::{eventually, expect_error, expect_json, shipping_address, uuid_field, Session};
use testkit::{spawn_app, TestApp};
use uuid::Uuid;

const SHOP: &str = env!("CARGO_BIN_EXE_shop-under-test");
/// How long a test waits for events to arrive: far beyond what they need,
/// for slow and loaded machines.
const PATIENCE: Duration = Duration::from_secs(120);

/// A `shop serve` process publishing to `nats`.
struct Shop {
    app: TestApp,
    server: ServerProcess,
    nats: TestNats,
}

async fn shop_on(nats: TestNats) -> Shop {
    let db = testkit::fresh_database().await;
    let env = nats.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = ServerProcess::start_with(SHOP, &db.url, &env);
    let app = app_of(&server, db).await;
    Shop { app, server, nats }
}

/// An admin, one product with `stock` on hand.
async fn catalog(app: &TestApp, stock: i64) -> (Session, Uuid) {
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tea", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Darjeeling", "description": "First flush", "price": 1450,
                    "sku": "TEA-DARJ", "category_id": category}),
        )
        .await;
    expect_json(
        app.receive(&admin.token, product, stock).await,
        StatusCode::OK,
    )
    .await;
    (admin, product)
}

fn order_body(product: Uuid, quantity: i64) -> Value {
    json!({
        "shipping_address": shipping_address(),
        "items": [{"product_id": product, "quantity": quantity}],
        "payment": {"method": "card", "token": "tok_visa"},
    })
}

/// Places an order and answers its id.
async fn place(app: &TestApp, customer: &Session, product: Uuid, quantity: i64) -> Uuid {
    let placed = app
        .place_order(&customer.token, &order_body(product, quantity), None)
        .await;
    uuid_field(&expect_json(placed, StatusCode::CREATED).await, "id")
}

/// The integration event ids the log's events should give, in commit order.
async fn expected_ids(app: &TestApp) -> Vec<String> {
    let events = read_after(&app.db.pool, Checkpoint::START, 10_000_000)
        .await
        .expect("read the log");
    events
        .iter()
        .filter_map(|event| integration_event(event).expect("every event maps"))
        .map(|event| event.id)
        .collect()
}

/// Waits until the stream holds exactly the integration events of the log,
/// each once; answers the messages.
async fn until_stream_holds_every_event(shop: &Shop) -> Vec<StreamedMessage> {
    let js = shop.nats.jetstream().await;
    shop.app.wait_for_workflows().await;
    let expected = expected_ids(&shop.app).await;
    let expected_set: HashSet<&String> = expected.iter().collect();
    assert_eq!(
        expected_set.len(),
        expected.len(),
        "ids are unique in the log"
    );
    eventually(
        "every integration event to be in the stream",
        PATIENCE,
        async || {
            let messages = shop.nats.outbound_messages(&js).await;
            let got: HashSet<String> = messages
                .iter()
                .filter_map(|m| m.body["id"].as_str().map(str::to_string))
                .collect();
            if got.len() == expected.len() && expected.iter().all(|id| got.contains(id)) {
                Ok(messages)
            } else {
                Err(format!(
                    "{} of {} events in the stream",
                    got.len(),
                    expected.len()
                ))
            }
        },
    )
    .await
}

/// Each CloudEvents id once in the stream, and as the message's `Nats-Msg-Id`.
fn assert_once_per_id(messages: &[StreamedMessage]) {
    let mut seen = HashMap::new();
    for message in messages {
        let id = message.body["id"].as_str().expect("an id").to_string();
        assert_eq!(
            message.message_id.as_deref(),
            Some(id.as_str()),
            "Nats-Msg-Id is the id"
        );
        *seen.entry(id).or_insert(0) += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "events published twice: {repeated:?}");
}

/// Ships an order (the carrier books the parcel) and answers its tracking number.
async fn ship(app: &TestApp, admin: &Session, customer: &Session, order: Uuid) -> String {
    for status in ["processing", "shipped"] {
        expect_json(
            app.set_order_status(&admin.token, order, &json!({"status": status}))
                .await,
            StatusCode::OK,
        )
        .await;
    }
    let shipped = app.settled_order(customer, order).await;
    shipped["tracking_number"]
        .as_str()
        .expect("a tracking number")
        .to_string()
}

#[tokio::test]
async fn every_stage_of_an_orders_journey_arrives_on_its_subject_once_in_order_with_the_documented_fields(
) {
    let shop = shop_on(TestNats::new().await).await;
    let app = &shop.app;
    let (admin, product) = catalog(app, 10).await;
    let ada = app.register_customer("ada").await;
    let order = place(app, &ada, product, 2).await;
    let paid = app.settled_order(&ada, order).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    let tracking_number = ship(app, &admin, &ada, order).await;
    expect_json(
        app.set_order_status(&admin.token, order, &json!({"status": "delivered"}))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_json(
        app.post_json(
            &format!("/v1/orders/{order}/refund"),
            &json!({"amount": 500, "reason": "a dented tin"}),
            Some(&admin.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let messages = until_stream_holds_every_event(&shop).await;
    assert_once_per_id(&messages);
    let of_order: Vec<&StreamedMessage> = messages
        .iter()
        .filter(|m| m.body["subject"] == order.to_string())
        .collect();
    let types: Vec<&str> = of_order
        .iter()
        .map(|m| m.body["type"].as_str().expect("a type"))
        .collect();
    assert_eq!(
        types,
        [
            "shop.order.placed",
            "shop.order.paid",
            "shop.invoice.issued",
            "shop.order.shipped",
            "shop.order.delivered",
            "shop.order.refunded",
        ],
        "the order's events in order"
    );
    let positions: Vec<i64> = of_order
        .iter()
        .map(|m| m.body["position"].as_i64().expect("a position"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    for message in &messages {
        let body = &message.body;
        let name = body["type"].as_str().unwrap().trim_start_matches("shop.");
        assert_eq!(message.subject, shop.nats.subject(name), "{body}");
        assert_eq!(body["specversion"], "1.0");
        assert_eq!(body["source"], "/shop");
        assert_eq!(body["datacontenttype"], "application/json");
        assert!(body["time"].is_string(), "{body}");
        assert!(body["subject"].is_string(), "{body}");
    }
    let data = |name: &str| {
        of_order
            .iter()
            .find(|m| m.body["type"] == format!("shop.{name}"))
            .map(|m| m.body["data"].clone())
            .unwrap()
    };
    let placed = data("order.placed");
    assert_eq!(placed["order_id"], order.to_string());
    assert_eq!(placed["customer_id"], ada.id.to_string());
    assert_eq!(placed["total"], json!({"amount": 2900, "currency": "USD"}));
    assert_eq!(placed["lines"][0]["quantity"], 2);
    assert_eq!(placed["lines"][0]["unit_price"]["amount"], 1450);
    assert_eq!(data("order.paid")["amount"]["amount"], 2900);
    assert_eq!(data("order.shipped")["tracking_number"], tracking_number);
    assert_eq!(
        data("invoice.issued")["invoice_number"],
        paid["invoice_number"]
    );
    assert_eq!(data("order.refunded")["amount"]["amount"], 500);

    let stock: Vec<&Value> = messages
        .iter()
        .filter(|m| m.body["type"] == "shop.stock.availability_changed")
        .map(|m| &m.body["data"])
        .collect();
    let last = stock.last().expect("stock events");
    assert_eq!(
        (&last["on_hand"], &last["held"], &last["available"]),
        (&json!(8), &json!(0), &json!(8))
    );
    assert!(messages
        .iter()
        .any(|m| m.body["type"] == "shop.product.created"
            && m.body["data"]["price"] == json!({"amount": 1450, "currency": "USD"})));

    // No personal data: not the name, the email, the phone or the address.
    let text =
        serde_json::to_string(&messages.iter().map(|m| &m.body).collect::<Vec<_>>()).unwrap();
    for personal in [
        "Ada Lovelace",
        "ada@example.com",
        "7946",
        "St James",
        "SW1Y",
    ] {
        assert!(!text.contains(personal), "{personal} is published");
    }
}

/// Places `count` orders for `customer`, each under an idempotency key of
/// its own and sent again until answered (the server may be down or
/// restarting); counts each placed order in `placed`.
async fn place_through_restarts(
    app: &TestApp,
    customer: &Session,
    product: Uuid,
    count: usize,
    placed: &AtomicUsize,
) {
    for _ in 0..count {
        let key = Uuid::new_v4().to_string();
        loop {
            let sent = app
                .request(reqwest::Method::POST, "/v1/orders", Some(&customer.token))
                .header("Idempotency-Key", &key)
                .json(&order_body(product, 1))
                .timeout(Duration::from_secs(15))
                .send()
                .await;
            match sent {
                Ok(response) if response.status() == StatusCode::CREATED => {
                    placed.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Ok(response) if response.status().is_server_error() => {}
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    panic!("placing an order answered {status}: {text}");
                }
                Err(_) => {}
            }
            // The server is down or restarting: ask again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn after_shop_serve_is_killed_while_200_orders_flow_the_stream_holds_every_event_exactly_once(
) {
    let mut shop = shop_on(TestNats::new().await).await;
    let (_admin, product) = catalog(&shop.app, 1_000).await;
    let customers = shop.app.register_customers(20).await;
    let placed = AtomicUsize::new(0);
    let app = &shop.app;
    let server = &mut shop.server;
    let placing = futures::future::join_all(
        customers
            .iter()
            .map(|customer| place_through_restarts(app, customer, product, 10, &placed)),
    );
    let killing = async {
        for threshold in [60, 130] {
            eventually("orders to be placed", PATIENCE, async || {
                placed.load(Ordering::SeqCst) >= threshold
            })
            .await;
            server.kill_and_restart().await;
        }
    };
    tokio::join!(placing, killing);
    assert_eq!(placed.load(Ordering::SeqCst), 200);
    until_live(&shop.app.client, &shop.app.address).await;

    let messages = until_stream_holds_every_event(&shop).await;
    assert_once_per_id(&messages);
    let placed_events = messages
        .iter()
        .filter(|m| m.body["type"] == "shop.order.placed")
        .count();
    assert!(placed_events >= 200, "{placed_events} orders placed");
}

#[tokio::test]
async fn while_nats_is_down_for_ten_seconds_every_command_succeeds_and_every_event_arrives_after_it_returns(
) {
    let mut shop = shop_on(TestNats::private().await).await;
    let (_admin, product) = catalog(&shop.app, 1_000).await;
    let customers = shop.app.register_customers(5).await;
    let js = shop.nats.jetstream().await;
    eventually("the publisher to publish", PATIENCE, async || {
        !shop.nats.outbound_messages(&js).await.is_empty()
    })
    .await;
    drop(js);

    shop.nats.stop().await;
    let outage = tokio::time::Instant::now();
    let mut placed = 0;
    while outage.elapsed() < Duration::from_secs(10) {
        for customer in &customers {
            place(&shop.app, customer, product, 1).await;
            placed += 1;
        }
    }
    shop.nats.restart().await;

    let messages = until_stream_holds_every_event(&shop).await;
    assert_once_per_id(&messages);
    let placed_events = messages
        .iter()
        .filter(|m| m.body["type"] == "shop.order.placed")
        .count();
    assert_eq!(placed_events, placed);
}

/// A shipped order, the shop publishing and consuming on `shop.nats`.
async fn shipped_order(shop: &Shop) -> (Uuid, String, Uuid) {
    let app = &shop.app;
    let (admin, product) = catalog(app, 10).await;
    let ada = app.register_customer("ada").await;
    let order = place(app, &ada, product, 1).await;
    app.settled_order(&ada, order).await;
    let tracking_number = ship(app, &admin, &ada, order).await;
    (order, tracking_number, product)
}

async fn order_status(app: &TestApp, order: Uuid) -> String {
    let (status,): (String,) = sqlx::query_as("SELECT status FROM rm_orders WHERE id = $1")
        .bind(order)
        .fetch_one(&app.db.pool)
        .await
        .expect("the order's row");
    status
}

async fn order_event_count(app: &TestApp, order: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Order' AND aggregate_id = $1",
    )
    .bind(order.to_string())
    .fetch_one(&app.db.pool)
    .await
    .expect("count the order's events")
}

/// Waits until the inbound consumer has acknowledged every message.
async fn until_inbound_done(shop: &Shop) {
    let js = shop.nats.jetstream().await;
    let stream_name = format!("{}_INBOUND", shop.nats.stream);
    eventually("the inbound messages to be handled", PATIENCE, async || {
        let Ok(stream) = js.get_stream(&stream_name).await else {
            return false;
        };
        let Ok(info) = stream.consumer_info("shop").await else {
            return false;
        };
        info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
}

#[tokio::test]
async fn an_inbound_delivery_moves_the_order_to_delivered_and_sending_it_again_changes_nothing() {
    let shop = shop_on(TestNats::new().await).await;
    let (order, tracking_number, _) = shipped_order(&shop).await;
    let js = shop.nats.jetstream().await;
    let fact = json!({"tracking_number": tracking_number, "delivered_at": "2026-12-01T10:00:00Z"});
    let payload = serde_json::to_vec(&fact).unwrap();

    shop.nats
        .send_inbound(&js, "carrier.delivered", &payload, Some("delivery-1"))
        .await;
    eventually("the order to be delivered", PATIENCE, async || {
        order_status(&shop.app, order).await == "delivered"
    })
    .await;
    until_inbound_done(&shop).await;
    let order_events = order_event_count(&shop.app, order).await;

    // The carrier says it again, as a new message.
    shop.nats
        .send_inbound(&js, "carrier.delivered", &payload, Some("delivery-2"))
        .await;
    until_inbound_done(&shop).await;
    assert_eq!(shop.app.events_of(order, "OrderDelivered").await, 1);
    assert_eq!(order_event_count(&shop.app, order).await, order_events);
    assert_eq!(order_status(&shop.app, order).await, "delivered");
}

#[tokio::test]
async fn a_malformed_inbound_message_lands_in_the_dead_letters_while_the_next_good_one_is_applied()
{
    let shop = shop_on(TestNats::new().await).await;
    let (_order, _tracking, product) = shipped_order(&shop).await;
    let (on_hand_before, _, _) = shop.app.availability(product).await;
    let js = shop.nats.jetstream().await;

    shop.nats
        .send_inbound(&js, "carrier.delivered", b"{not json", None)
        .await;
    let receipt = json!({"receipt_id": "R-1001", "product_id": product, "quantity": 5});
    let receipt = serde_json::to_vec(&receipt).unwrap();
    shop.nats
        .send_inbound(&js, "warehouse.received", &receipt, None)
        .await;
    // The warehouse says the same receipt again: no second effect.
    shop.nats
        .send_inbound(&js, "warehouse.received", &receipt, None)
        .await;

    eventually(
        "the malformed message to be dead-lettered",
        PATIENCE,
        async || {
            let rows: Vec<(String, Vec<u8>, i64)> =
                sqlx::query_as("SELECT subject, payload, deliveries FROM inbound_dead_letters")
                    .fetch_all(&shop.app.db.pool)
                    .await
                    .expect("read the dead letters");
            match rows.as_slice() {
                [(subject, payload, deliveries)] => {
                    assert_eq!(
                        subject,
                        &format!("{}.inbound.carrier.delivered", shop.nats.prefix)
                    );
                    assert_eq!(payload.as_slice(), b"{not json");
                    assert!(*deliveries >= 1);
                    true
                }
                [] => false,
                more => panic!("one dead letter expected: {more:?}"),
            }
        },
    )
    .await;
    until_inbound_done(&shop).await;
    let (on_hand, _, _) = shop.app.availability(product).await;
    assert_eq!(on_hand, on_hand_before + 5);
}

// ---- the HTTP feed ----

/// A shop with a few events of every kind, and a reader of the feed.
async fn feed_app() -> (TestApp, Session) {
    let app = spawn_app().await;
    let (_admin, product) = catalog(&app, 10).await;
    let ada = app.register_customer("ada").await;
    for _ in 0..3 {
        let order = place(&app, &ada, product, 1).await;
        app.settled_order(&ada, order).await;
    }
    let reader = app.bootstrap_staff("feeder", Role::Integration).await;
    (app, reader)
}

/// Every event of the JSON feed, page by page.
async fn whole_feed(app: &TestApp, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = expect_json(
            app.get_as(
                &format!("/v1/events/feed?after={after}&limit=4"),
                Some(token),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        let got = page["events"].as_array().expect("events").clone();
        let next = page["next_after"].as_i64().expect("next_after");
        if got.is_empty() && next == after {
            return events;
        }
        events.extend(got);
        after = next;
    }
}

/// Reads Server-Sent Events from `response` until `count` have come;
/// answers `(id, data)` of each.
async fn read_sse(mut response: reqwest::Response, count: usize) -> Vec<(i64, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    let reading = async {
        while events.len() < count {
            let chunk = response
                .chunk()
                .await
                .expect("read the stream")
                .expect("the stream stays open");
            buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().parse::<i64>().expect("a numeric id"));
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if let Some(id) = id {
                    events.push((id, serde_json::from_str(&data).expect("JSON data")));
                }
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading)
        .await
        .expect("the events to come");
    events
}

fn sse_request(app: &TestApp, token: &str, last_event_id: Option<i64>) -> reqwest::RequestBuilder {
    let request = app
        .request(reqwest::Method::GET, "/v1/events/feed", Some(token))
        .header("Accept", "text/event-stream");
    match last_event_id {
        Some(id) => request.header("Last-Event-ID", id.to_string()),
        None => request,
    }
}

#[tokio::test]
async fn the_json_feed_pages_through_the_events_in_commit_order_without_gap_or_repeat() {
    let (app, reader) = feed_app().await;
    let events = whole_feed(&app, &reader.token).await;
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let expected = expected_ids(&app).await;
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "shop.order.placed")
            .count(),
        3
    );
}

#[tokio::test]
async fn the_sse_feed_resumed_with_last_event_id_goes_on_without_gap_or_repeat() {
    let (app, reader) = feed_app().await;
    let all = whole_feed(&app, &reader.token).await;
    assert!(all.len() > 6, "{} events", all.len());

    let first = sse_request(&app, &reader.token, None)
        .send()
        .await
        .expect("open the stream");
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let head = read_sse(first, 3).await;
    for (id, data) in &head {
        assert_eq!(data["position"].as_i64(), Some(*id));
    }

    // The connection drops; the client comes back with the last id it saw.
    let last_seen = head.last().unwrap().0;
    let resumed = sse_request(&app, &reader.token, Some(last_seen))
        .send()
        .await
        .expect("open the stream again");
    let rest_count = all.len() - 3;
    // One more event after the stream is open: it comes live.
    let admin = app.sign_in("admin", testkit::PASSWORD).await;
    let category = app.create_category(&admin.token, "Coffee", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Mocha", "description": "Yemen", "price": 990,
                    "sku": "COF-MOCHA", "category_id": category}),
        )
        .await;
    let rest = read_sse(resumed, rest_count + 1).await;

    let streamed: Vec<Value> = head
        .iter()
        .chain(rest.iter())
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(
        &streamed[..all.len()],
        &all[..],
        "the same events in the same order"
    );
    let live = streamed.last().unwrap();
    assert_eq!(live["type"], "shop.product.created");
    assert_eq!(live["subject"], product.to_string());
}

#[tokio::test]
async fn a_customer_token_gets_403_from_the_feed() {
    let app = spawn_app().await;
    let ada = app.register_customer("ada").await;
    let answer = app.get_as("/v1/events/feed", Some(&ada.token)).await;
    expect_error(answer, StatusCode::FORBIDDEN).await;
    let stream = sse_request(&app, &ada.token, None)
        .send()
        .await
        .expect("ask for the stream");
    expect_error(stream, StatusCode::FORBIDDEN).await;
}
