//! Invoices and shipment end to end: the real server and the workflows on a
//! fresh database. Tests wait for the workflows by polling
//! (`wait_for_workflows`), never by a fixed sleep.

use chrono::{DateTime, Datelike, Utc};
use domain::metadata::Role;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{
    expect_error, expect_json, spawn_app_without_payment_callbacks, test_workflow_settings,
    uuid_field, Session, TestApp,
};
use uuid::Uuid;

fn shipping_address(name: &str) -> Value {
    json!({
        "name": name,
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "gb",
    })
}
/// Places an order shipped to `name`; answers its id and total.
async fn place(
    app: &TestApp,
    customer: &Session,
    name: &str,
    lines: &[(Uuid, i64)],
) -> (Uuid, i64) {
    let items: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
        .collect();
    let body = json!({
        "shipping_address": shipping_address(name),
        "items": items,
        "payment": {"method": "card", "token": "tok_visa"},
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

/// Places an order, lets the workflow reserve its stock, captures its
/// payment and waits for the workflow again.
async fn paid_order(app: &TestApp, customer: &Session, lines: &[(Uuid, i64)]) -> Uuid {
    let (order, total) = place(app, customer, "Ada Lovelace", lines).await;
    app.wait_for_workflows().await;
    app.capture_payment(order, total).await;
    app.wait_for_workflows().await;
    order
}

async fn invoice(app: &TestApp, token: &str, order: Uuid) -> reqwest::Response {
    app.get_as(&format!("/v1/orders/{order}/invoice"), Some(token))
        .await
}

async fn order_view(app: &TestApp, token: &str, order: Uuid) -> Value {
    expect_json(app.order(token, order, &[]).await, StatusCode::OK).await
}

/// The year the order's payment was captured in (its invoice's year).
fn paid_year(order: &Value) -> i32 {
    let paid_at: DateTime<Utc> = order["paid_at"]
        .as_str()
        .expect("paid_at")
        .parse()
        .expect("an RFC 3339 time");
    paid_at.year()
}

async fn count_events(app: &TestApp, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&app.db.pool)
        .await
        .expect("count events")
}

/// Every order's invoice number, as the event store holds them.
async fn issued_numbers(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT payload->'InvoiceIssued'->>'invoice_number' FROM events
          WHERE event_type = 'InvoiceIssued' ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("read the invoice numbers")
}

fn numbers(year: i32, range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|n| format!("{year}-{n:06}")).collect()
}

/// An admin and one product per price, 1000 of each in stock.
async fn catalog(app: &TestApp, prices: &[i64]) -> (Session, Vec<Uuid>) {
    let products: Vec<(i64, i64)> = prices.iter().map(|p| (*p, 1000)).collect();
    app.stocked_catalog(&products).await
}

#[tokio::test]
async fn a_paid_order_gets_the_year_s_first_invoice_number_with_its_lines_and_totals() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (admin, products) = catalog(&app, &[1250, 300]).await;
    let alice = app.register_customer("alice").await;

    let (order_id, total) = place(
        &app,
        &alice,
        "Ada Lovelace",
        &[(products[0], 2), (products[1], 1)],
    )
    .await;
    app.wait_for_workflows().await;
    // Not paid yet: no invoice.
    let body = expect_error(
        invoice(&app, &alice.token, order_id).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["error"], "invoice_not_issued", "{body}");

    app.capture_payment(order_id, total).await;
    app.wait_for_workflows().await;
    let order = order_view(&app, &alice.token, order_id).await;
    let year = paid_year(&order);
    let first = format!("{year}-000001");
    assert_eq!(order["invoice_number"], first.as_str(), "{order}");

    let body = expect_json(invoice(&app, &alice.token, order_id).await, StatusCode::OK).await;
    assert_eq!(body["invoice_number"], first.as_str(), "{body}");
    assert_eq!(body["order_id"], order_id.to_string());
    assert!(body["issued_at"].is_string(), "{body}");
    assert_eq!(body["seller"]["name"], "Shop");
    assert_eq!(body["customer"]["id"], alice.id.to_string());
    assert_eq!(body["customer"]["name"], "Ada Lovelace");
    assert_eq!(body["shipping_address"]["city"], "London");
    assert_eq!(body["shipping_address"]["country"], "GB");
    assert_eq!(
        body["lines"],
        json!([
            {"product_id": products[0], "name": "Tea no. 0", "quantity": 2, "unit_price": 1250, "line_total": 2500},
            {"product_id": products[1], "name": "Tea no. 1", "quantity": 1, "unit_price": 300, "line_total": 300},
        ])
    );
    assert_eq!(body["subtotal"], 2800);
    assert_eq!(body["discount"], 0);
    assert_eq!(body["total"], 2800);
    assert_eq!(body["currency"], "USD");

    // A price change later does not touch the invoice.
    let changed = app
        .put_json(
            &format!("/v1/products/{}", products[0]),
            &json!({"price": 9999}),
            Some(&admin.token),
        )
        .await;
    assert!(changed.status().is_success(), "{}", changed.status());
    let again = expect_json(invoice(&app, &alice.token, order_id).await, StatusCode::OK).await;
    assert_eq!(again["lines"][0]["unit_price"], 1250);
    assert_eq!(again["total"], 2800);

    // The next paid order gets the next number.
    let second = paid_order(&app, &alice, &[(products[1], 3)]).await;
    let body = expect_json(invoice(&app, &alice.token, second).await, StatusCode::OK).await;
    assert_eq!(body["invoice_number"], format!("{year}-000002"), "{body}");
    assert_eq!(body["total"], 900);
}

#[tokio::test]
async fn a_payment_seen_twice_keeps_its_one_invoice_number_and_leaves_no_gap() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (_, products) = catalog(&app, &[500]).await;
    let alice = app.register_customer("alice").await;
    let first = paid_order(&app, &alice, &[(products[0], 1)]).await;
    let second = paid_order(&app, &alice, &[(products[0], 2)]).await;
    let year = paid_year(&order_view(&app, &alice.token, first).await);
    let events_before = app.event_count().await;

    // The workflow reads the whole log again, as after a crash before its
    // checkpoint moved: every PaymentCaptured is seen a second time.
    app.replay_from_start("fulfilment").await;
    app.wait_for_workflows().await;

    assert_eq!(app.event_count().await, events_before, "no new event");
    assert_eq!(count_events(&app, "InvoiceNumberAllocated").await, 2);
    assert_eq!(issued_numbers(&app).await, numbers(year, 1..=2));
    let first = order_view(&app, &alice.token, first).await;
    let second = order_view(&app, &alice.token, second).await;
    assert_eq!(first["invoice_number"], format!("{year}-000001"));
    assert_eq!(second["invoice_number"], format!("{year}-000002"));

    // A third order still continues the sequence.
    let third = paid_order(&app, &alice, &[(products[0], 1)]).await;
    let third = order_view(&app, &alice.token, third).await;
    assert_eq!(third["invoice_number"], format!("{year}-000003"));
}

#[tokio::test]
async fn orders_paid_at_the_same_moment_get_consecutive_numbers_without_gap_or_duplicate() {
    const ORDERS: usize = 12;
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (_, products) = catalog(&app, &[700]).await;
    let alice = app.register_customer("alice").await;
    let mut placed = Vec::new();
    for _ in 0..ORDERS {
        placed.push(place(&app, &alice, "Ada Lovelace", &[(products[0], 1)]).await);
    }
    app.wait_for_workflows().await;
    futures::future::join_all(
        placed
            .iter()
            .map(|(order, total)| app.capture_payment(*order, *total)),
    )
    .await;
    app.wait_for_workflows().await;

    let year = paid_year(&order_view(&app, &alice.token, placed[0].0).await);
    assert_eq!(issued_numbers(&app).await, numbers(year, 1..=ORDERS as u64));
    let mut seen = Vec::new();
    for (order, _) in &placed {
        let view = order_view(&app, &alice.token, *order).await;
        seen.push(
            view["invoice_number"]
                .as_str()
                .expect("a number")
                .to_string(),
        );
    }
    seen.sort();
    assert_eq!(seen, numbers(year, 1..=ORDERS as u64));
}

#[tokio::test]
async fn the_printable_invoice_escapes_what_customers_typed() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (_, products) = catalog(&app, &[1000]).await;
    let alice = app.register_customer("alice").await;
    let name = "<script>alert('x')</script> & Co";
    let (order_id, total) = place(&app, &alice, name, &[(products[0], 1)]).await;
    app.wait_for_workflows().await;
    app.capture_payment(order_id, total).await;
    app.wait_for_workflows().await;

    for (path, accept) in [
        (format!("/v1/orders/{order_id}/invoice"), Some("text/html")),
        (format!("/v1/orders/{order_id}/invoice?format=html"), None),
    ] {
        let mut request = app.request(Method::GET, &path, Some(&alice.token));
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        let response = request.send().await.expect("request the invoice");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let html = response.text().await.expect("the page");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co"),
            "{html}"
        );
        assert!(html.contains("Invoice "), "{html}");
        assert!(html.contains("10.00 USD"), "{html}");
    }
    // JSON keeps the text as it is.
    let body = expect_json(invoice(&app, &alice.token, order_id).await, StatusCode::OK).await;
    assert_eq!(body["customer"]["name"], name);
}

#[tokio::test]
async fn only_the_owner_admins_and_auditors_see_an_invoice() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (admin, products) = catalog(&app, &[1000]).await;
    let alice = app.register_customer("alice").await;
    let bob = app.register_customer("bob").await;
    let auditor = app.bootstrap_staff("auditor", Role::Auditor).await;
    let order_id = paid_order(&app, &alice, &[(products[0], 1)]).await;

    let body = expect_error(
        invoice(&app, &bob.token, order_id).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["error"], "order_not_found", "{body}");
    for token in [&alice.token, &admin.token, &auditor.token] {
        expect_json(invoice(&app, token, order_id).await, StatusCode::OK).await;
    }
    let missing = expect_error(
        invoice(&app, &alice.token, Uuid::new_v4()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(missing["error"], "order_not_found", "{missing}");
    let anonymous = app.get(&format!("/v1/orders/{order_id}/invoice")).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn shipping_without_a_tracking_number_books_the_carrier_and_delivery_is_recorded() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (admin, products) = catalog(&app, &[1000]).await;
    let alice = app.register_customer("alice").await;
    let order_id = paid_order(&app, &alice, &[(products[0], 1)]).await;

    let status = |to: &'static str| json!({"status": to});
    expect_json(
        app.set_order_status(&admin.token, order_id, &status("processing"))
            .await,
        StatusCode::OK,
    )
    .await;
    let shipped = expect_json(
        app.set_order_status(&admin.token, order_id, &status("shipped"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shipped["status"], "shipped");
    let position = shipped["position"].as_i64().expect("a position");
    let order = expect_json(
        app.order(
            &admin.token,
            order_id,
            &[("min_position", position.to_string())],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let expected = format!("SIM-{}", order_id.simple().to_string().to_uppercase());
    assert_eq!(order["status"], "shipped", "{order}");
    assert_eq!(order["tracking_number"], expected.as_str(), "{order}");
    assert_eq!(order["carrier"], "simulated", "{order}");

    // Asking again changes nothing: no second booking, no event.
    let events = app.event_count().await;
    expect_json(
        app.set_order_status(&admin.token, order_id, &status("shipped"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.event_count().await, events);

    let delivered = expect_json(
        app.set_order_status(&admin.token, order_id, &status("delivered"))
            .await,
        StatusCode::OK,
    )
    .await;
    let position = delivered["position"].as_i64().expect("a position");
    let order = expect_json(
        app.order(
            &admin.token,
            order_id,
            &[("min_position", position.to_string())],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(order["status"], "delivered", "{order}");
    assert!(order["delivered_at"].is_string(), "{order}");
    assert_eq!(order["tracking_number"], expected.as_str());
    assert!(order["invoice_number"].is_string(), "{order}");
}

#[tokio::test]
async fn a_given_tracking_number_is_kept_and_an_unpaid_order_is_not_booked() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (admin, products) = catalog(&app, &[1000]).await;
    let alice = app.register_customer("alice").await;
    let paid = paid_order(&app, &alice, &[(products[0], 1)]).await;
    expect_json(
        app.set_order_status(&admin.token, paid, &json!({"status": "processing"}))
            .await,
        StatusCode::OK,
    )
    .await;
    let shipped = expect_json(
        app.set_order_status(
            &admin.token,
            paid,
            &json!({"status": "shipped", "tracking_number": "1Z999AA10123456784"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let position = shipped["position"].as_i64().expect("a position");
    let order = expect_json(
        app.order(
            &admin.token,
            paid,
            &[("min_position", position.to_string())],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(order["tracking_number"], "1Z999AA10123456784", "{order}");

    // A pending order cannot ship: the transition is refused, nothing booked.
    let (pending, _) = place(&app, &alice, "Ada Lovelace", &[(products[0], 1)]).await;
    app.wait_for_workflows().await;
    let events = app.event_count().await;
    let body = expect_error(
        app.set_order_status(&admin.token, pending, &json!({"status": "shipped"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        body["error"], "illegal_transition_pending_to_shipped",
        "{body}"
    );
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn processes_racing_for_numbers_never_share_or_skip_one() {
    use domain::invoice::{numbering_id, InvoiceNumbering, InvoiceNumberingCommand};
    use domain::values::OrderId;
    use projections::event_store::CommandBus;

    const RACERS: usize = 16;
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    // As two workflow processes would: separate buses on the same store,
    // each allocating at the same moment, retrying after a lost race.
    let orders: Vec<OrderId> = (0..RACERS).map(|_| OrderId(Uuid::new_v4())).collect();
    let numbering = numbering_id(2031).to_string();
    let allocate = |order_id: OrderId| {
        let bus: CommandBus<InvoiceNumbering> = CommandBus::new(app.db.pool.clone(), ());
        let numbering = numbering.clone();
        async move {
            let meta = domain::metadata::CommandMetadata::new(
                domain::metadata::Actor::System("fulfilment".to_string()),
                Uuid::new_v4().to_string(),
                "AllocateInvoiceNumber",
            );
            let command = InvoiceNumberingCommand::Allocate {
                year: 2031,
                order_id,
                now: Utc::now(),
            };
            loop {
                match bus.execute(&numbering, command.clone(), &meta).await {
                    Ok(_) => return,
                    Err(cqrs_es::AggregateError::AggregateConflict) => {
                        tokio::task::yield_now().await
                    }
                    Err(e) => panic!("allocation failed: {e}"),
                }
            }
        }
    };
    // Every order twice: the second allocation must answer the first number.
    let racers = orders.iter().chain(orders.iter()).map(|o| allocate(*o));
    futures::future::join_all(racers).await;

    // The numbers given, as the numbering's events tell them.
    let state = projections::event_store::load_aggregate::<InvoiceNumbering>(
        &app.db.pool,
        &numbering,
        None,
    )
    .await
    .expect("load")
    .expect("a numbering");
    let mut given: Vec<String> = orders
        .iter()
        .map(|o| {
            state
                .invoice_number_of(*o)
                .expect("a number for every order")
        })
        .collect();
    given.sort();
    assert_eq!(given, numbers(2031, 1..=RACERS as u64));
    assert_eq!(state.last(), RACERS as u64);
    assert_eq!(
        count_events(&app, "InvoiceNumberAllocated").await,
        RACERS as i64
    );
}
