//! The fulfilment workflow under load: many customers at the same moment,
//! the real server, the workflows and the simulated gateway's callbacks on a
//! fresh database; and the real `shop serve` process killed (-9) and
//! restarted while orders flow. Tests wait for the workflows by polling
//! (`wait_for_workflows`), never by a fixed sleep.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::server_process::{app_of, until_live, ServerProcess};
use testkit::{eventually, eventually_every, expect_json, spawn_app, uuid_field, Session, TestApp};
use uuid::Uuid;

fn shipping_address() -> Value {
    json!({
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "gb",
    })
}

fn order_body(product: Uuid, quantity: i64) -> Value {
    json!({
        "shipping_address": shipping_address(),
        "items": [{"product_id": product, "quantity": quantity}],
        "payment": {"method": "card", "token": "tok_visa"},
    })
}

/// A new product of the category with `stock` received.
async fn stocked_product(
    app: &TestApp,
    admin: &Session,
    category: Uuid,
    n: usize,
    stock: i64,
) -> Uuid {
    let body = json!({
        "name": format!("Tea no. {n}"),
        "description": "Loose leaf",
        "price": 450,
        "sku": format!("TEA-{n}"),
        "image_url": "https://img.example.com/tea.png",
        "category_id": category,
    });
    let id = app.create_product(&admin.token, &body).await;
    expect_json(app.receive(&admin.token, id, stock).await, StatusCode::OK).await;
    id
}

/// Every customer places one order of `quantity` of `product` at the same
/// moment; answers `(customer index, order id)` of each.
async fn place_all_at_once(
    app: &TestApp,
    customers: &[Session],
    product: Uuid,
    quantity: i64,
) -> Vec<(usize, Uuid)> {
    let body = order_body(product, quantity);
    let placing = customers.iter().enumerate().map(|(i, customer)| {
        let body = body.clone();
        async move {
            let placed = app.place_order(&customer.token, &body, None).await;
            let order = expect_json(placed, StatusCode::CREATED).await;
            (i, uuid_field(&order, "id"))
        }
    });
    futures::future::join_all(placing).await
}

/// The orders' views, once the workflows have acted on everything so far.
async fn views(app: &TestApp, customers: &[Session], orders: &[(usize, Uuid)]) -> Vec<Value> {
    app.wait_for_workflows().await;
    let reading = orders.iter().map(|(i, order)| async move {
        expect_json(
            app.order(&customers[*i].token, *order, &[]).await,
            StatusCode::OK,
        )
        .await
    });
    futures::future::join_all(reading).await
}

#[tokio::test]
async fn fifty_customers_racing_for_ten_in_stock_never_oversell_in_twenty_rounds() {
    const ROUNDS: usize = 20;
    const CUSTOMERS: usize = 50;
    const STOCK: i64 = 10;
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tea", None).await;
    let customers = app.register_customers(CUSTOMERS).await;

    for round in 0..ROUNDS {
        let product = stocked_product(&app, &admin, category, round, STOCK).await;
        let orders = place_all_at_once(&app, &customers, product, 1).await;
        let views = views(&app, &customers, &orders).await;

        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for view in &views {
            let outcome = match view["status"].as_str() {
                Some("cancelled") => format!(
                    "cancelled {}",
                    view["cancellation_reason"].as_str().unwrap_or("(none)")
                ),
                Some(status) => status.to_string(),
                None => panic!("round {round}: an order without a status: {view}"),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        let expected: BTreeMap<String, usize> = [
            ("paid".to_string(), STOCK as usize),
            (
                "cancelled out_of_stock".to_string(),
                CUSTOMERS - STOCK as usize,
            ),
        ]
        .into();
        assert_eq!(outcomes, expected, "round {round}");
        assert_eq!(
            app.availability(product).await,
            (0, 0, 0),
            "round {round}: (on_hand, held, available)"
        );
        // Paid orders were captured once; cancelled ones never charged.
        for ((_, order), view) in orders.iter().zip(&views) {
            let captured = app.events_of(*order, "PaymentCaptured").await;
            let expected = i64::from(view["status"] == "paid");
            assert_eq!(captured, expected, "round {round}: {view}");
        }
    }
}

#[tokio::test]
async fn a_hundred_orders_paid_at_the_same_moment_get_invoice_numbers_one_to_a_hundred() {
    const ORDERS: usize = 100;
    const CUSTOMERS: usize = 20;
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tea", None).await;
    let product = stocked_product(&app, &admin, category, 0, 1000).await;
    let customers = app.register_customers(CUSTOMERS).await;

    // Five orders per customer, all placed (and so charged, and called back)
    // at the same moment.
    let body = order_body(product, 1);
    let placing = (0..ORDERS).map(|n| {
        let body = body.clone();
        let i = n % CUSTOMERS;
        let customer = &customers[i];
        let app = &app;
        async move {
            let placed = app.place_order(&customer.token, &body, None).await;
            (
                i,
                uuid_field(&expect_json(placed, StatusCode::CREATED).await, "id"),
            )
        }
    });
    let orders = futures::future::join_all(placing).await;
    let views = views(&app, &customers, &orders).await;

    for view in &views {
        assert_eq!(view["status"], "paid", "{view}");
    }
    let paid_at: DateTime<Utc> = views[0]["paid_at"]
        .as_str()
        .expect("paid_at")
        .parse()
        .expect("an RFC 3339 time");
    let year = paid_at.year();
    let expected: Vec<String> = (1..=ORDERS as u64)
        .map(|n| format!("{year}-{n:06}"))
        .collect();
    let mut seen: Vec<String> = views
        .iter()
        .map(|view| {
            view["invoice_number"]
                .as_str()
                .unwrap_or_else(|| panic!("no invoice number: {view}"))
                .to_string()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, expected, "the orders' invoice numbers");
    let issued: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'InvoiceIssued'->>'invoice_number' FROM events
          WHERE event_type = 'InvoiceIssued' ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("read the invoice numbers");
    assert_eq!(issued, expected, "the invoices issued");
    assert_eq!(
        app.availability(product).await,
        (1000 - ORDERS as i64, 0, 1000 - ORDERS as i64)
    );
}

// ---- crash safety: the real `shop serve` process, killed and restarted ----

async fn order_count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'Order'",
    )
    .fetch_one(pool)
    .await
    .expect("count orders")
}

/// A number below `n`, at random.
fn random_below(n: u64) -> u64 {
    (Uuid::new_v4().as_u128() % u128::from(n)) as u64
}

/// Places an order under `key` until the server answers it: through
/// connection errors while the server is down, and 5xx answers while it
/// starts. The key makes every attempt the same one order.
async fn place_until_answered(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    body: &Value,
    key: &str,
) -> Uuid {
    eventually_every(
        std::time::Duration::from_millis(50),
        format!("order {key} to be placed"),
        std::time::Duration::from_secs(180),
        async || {
            let sent = client
                .post(format!("{address}/v1/orders"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(body)
                .timeout(std::time::Duration::from_secs(20))
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    let answer: Value = response.json().await.expect("an order");
                    Some(uuid_field(&answer, "id"))
                }
                Ok(response) if response.status().is_server_error() => None,
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    panic!("placing order {key} answered {status}: {text}");
                }
                Err(_) => None,
            }
        },
    )
    .await
}

#[tokio::test]
async fn killing_the_server_while_two_hundred_orders_flow_charges_and_takes_stock_once() {
    use std::time::Duration;

    const ORDERS: usize = 200;
    const CLIENTS: usize = 10;
    const PRODUCTS: usize = 5;
    const STOCK: i64 = 100;
    const KILLS: usize = 6;

    let db = testkit::fresh_database().await;
    let mut server = ServerProcess::start(env!("CARGO_BIN_EXE_shop-under-test"), &db.url);
    let address = server.address();
    let app = app_of(&server, db).await;

    // The catalog and the customers, before any kill.
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tea", None).await;
    let mut products = Vec::new();
    for n in 0..PRODUCTS {
        products.push(stocked_product(&app, &admin, category, n, STOCK).await);
    }
    let customers = app.register_customers(CLIENTS).await;

    // What each intended order asks for: one or two products, 1 to 3 each.
    let intended: Vec<Vec<(Uuid, i64)>> = (0..ORDERS)
        .map(|_| {
            let first = random_below(PRODUCTS as u64) as usize;
            let mut lines = vec![(products[first], 1 + random_below(3) as i64)];
            if random_below(2) == 0 {
                let second = (first + 1 + random_below(PRODUCTS as u64 - 1) as usize) % PRODUCTS;
                lines.push((products[second], 1 + random_below(3) as i64));
            }
            lines
        })
        .collect();

    // Each client places its share of the orders, paced, retrying each
    // under its own key while the server is down.
    let placing_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let placing = {
        let intended = &intended;
        let customers = &customers;
        let client = &app.client;
        let address = &address;
        async move {
            let per_client = (0..CLIENTS).map(|c| async move {
                let mut placed = Vec::new();
                for n in (c..ORDERS).step_by(CLIENTS) {
                    let items: Vec<Value> = intended[n]
                        .iter()
                        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
                        .collect();
                    let body = json!({
                        "shipping_address": shipping_address(),
                        "items": items,
                        "payment": {"method": "card", "token": "tok_visa"},
                    });
                    let key = format!("crash-order-{n}");
                    let id =
                        place_until_answered(client, address, &customers[c].token, &body, &key)
                            .await;
                    placed.push((n, c, id));
                    tokio::time::sleep(Duration::from_millis(50 + random_below(300))).await;
                }
                placed
            });
            let placed: Vec<(usize, usize, Uuid)> = futures::future::join_all(per_client)
                .await
                .into_iter()
                .flatten()
                .collect();
            placed
        }
    };
    let killing = {
        let placing_done = placing_done.clone();
        let server = &mut server;
        let client = &app.client;
        let client_pool = &app.db.pool;
        let address = &address;
        async move {
            let mut kills = 0;
            while kills < KILLS || !placing_done.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!(
                    "kill {kills}: {} orders stored",
                    order_count(client_pool).await
                );
                until_live(client, address).await;
                tokio::time::sleep(Duration::from_millis(100 + random_below(1200))).await;
                server.kill_and_restart().await;
                kills += 1;
            }
            until_live(client, address).await;
            kills
        }
    };
    let placing = async {
        let placed = placing.await;
        placing_done.store(true, std::sync::atomic::Ordering::SeqCst);
        placed
    };
    let (placed, kills) = tokio::join!(placing, killing);
    assert!(kills >= KILLS, "{kills} kills");
    assert_eq!(placed.len(), ORDERS);

    app.wait_for_workflows().await;

    // Every intended order was placed exactly once.
    assert_eq!(app.order_count().await, ORDERS as i64);
    let mut ids: Vec<Uuid> = placed.iter().map(|(_, _, id)| *id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ORDERS, "an order placed under two keys");

    let mut on_hand_expected = [STOCK; PRODUCTS];
    let mut paid = 0_u64;
    for (n, c, id) in &placed {
        let view = expect_json(
            app.order(&customers[*c].token, *id, &[]).await,
            StatusCode::OK,
        )
        .await;
        let captured = app.events_of(*id, "PaymentCaptured").await;
        let charges: Vec<(String, i64)> =
            sqlx::query_as("SELECT outcome, amount FROM gateway_charges WHERE reference = $1")
                .bind(format!("order:{id}"))
                .fetch_all(&app.db.pool)
                .await
                .expect("read the gateway's charges");
        assert!(captured <= 1, "order {n} captured {captured} times: {view}");
        let status = view["status"].as_str().unwrap_or_default();
        match status {
            "paid" => {
                paid += 1;
                assert_eq!(captured, 1, "order {n}: {view}");
                assert_eq!(
                    charges,
                    vec![(
                        "succeeded".to_string(),
                        view["total"].as_i64().expect("a total")
                    )],
                    "order {n}: the gateway's charges"
                );
                assert_eq!(app.events_of(*id, "InvoiceIssued").await, 1, "order {n}");
                for (product, quantity) in &intended[*n] {
                    let p = products
                        .iter()
                        .position(|x| x == product)
                        .expect("a product");
                    on_hand_expected[p] -= quantity;
                }
            }
            "cancelled" => {
                assert_eq!(
                    view["cancellation_reason"], "out_of_stock",
                    "order {n}: {view}"
                );
                assert_eq!(captured, 0, "order {n}: {view}");
                assert!(charges.is_empty(), "order {n}: charged {charges:?}");
            }
            // Every order was charged (the gateway approves `tok_visa`) and
            // its callback delivered: none may be left waiting, or holding.
            _ => panic!("order {n} left {status}: {view}"),
        }
    }
    // The gateway charged once per paid order, and nothing else.
    let succeeded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM gateway_charges WHERE outcome = 'succeeded' AND reference LIKE 'order:%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("count the gateway's charges");
    assert_eq!(succeeded, paid as i64);
    // No stock taken twice, none held for an order that is over.
    for (p, product) in products.iter().enumerate() {
        let (on_hand, held, available) = app.availability(*product).await;
        assert_eq!(
            (on_hand, held, available),
            (on_hand_expected[p], 0, on_hand_expected[p]),
            "product {p}: (on_hand, held, available)"
        );
    }
    // Invoice numbers stay gapless through the crashes.
    let mut numbers: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'InvoiceIssued'->>'invoice_number' FROM events
          WHERE event_type = 'InvoiceIssued'",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("read the invoice numbers");
    numbers.sort();
    let year = Utc::now().year();
    let expected: Vec<String> = (1..=paid).map(|n| format!("{year}-{n:06}")).collect();
    assert_eq!(numbers, expected, "invoice numbers");
    assert!(paid > 0, "no order paid");
    eprintln!(
        "{kills} kills; {ORDERS} orders: {paid} paid, {} cancelled out_of_stock",
        ORDERS as u64 - paid
    );
}

#[tokio::test]
async fn sigterm_while_the_workflow_is_far_behind_stops_within_ten_seconds_and_loses_nothing() {
    use std::time::Duration;

    const ORDERS: usize = 600;
    const CLIENTS: usize = 8;

    let db = testkit::fresh_database().await;
    let mut server = ServerProcess::start(env!("CARGO_BIN_EXE_shop-under-test"), &db.url);
    let address = server.address();
    let app = app_of(&server, db).await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tea", None).await;
    let product = stocked_product(&app, &admin, category, 0, 100_000).await;
    let customers = app.register_customers(CLIENTS).await;

    // The workflow holds still while the orders pile up, then has them all
    // to do at once.
    projections::admin::pause(&app.db.pool, "fulfilment")
        .await
        .expect("pause the workflow");
    let per_client = (0..CLIENTS).map(|c| {
        let (client, address, token) = (&app.client, &address, &customers[c].token);
        async move {
            for n in (c..ORDERS).step_by(CLIENTS) {
                let body = json!({
                    "shipping_address": shipping_address(),
                    "items": [{"product_id": product, "quantity": 1}],
                    "payment": {"method": "card", "token": "tok_visa"},
                });
                place_until_answered(client, address, token, &body, &format!("stop-{n}")).await;
            }
        }
    });
    futures::future::join_all(per_client).await;
    projections::admin::resume(&app.db.pool, "fulfilment")
        .await
        .expect("resume the workflow");
    eventually(
        "the workflow to start",
        Duration::from_secs(60),
        async || app.events_of_type("StockReserved").await > 0,
    )
    .await;

    let (status, took) = server.terminate().await;
    let invoiced_at_stop = app.events_of_type("InvoiceIssued").await;
    assert!(status.success(), "shop serve exited with {status}");
    assert!(
        took < Duration::from_secs(10),
        "shop serve took {took:?} to stop"
    );
    assert!(
        invoiced_at_stop < ORDERS as i64,
        "the workflow was still behind when it was stopped ({invoiced_at_stop} invoiced)"
    );

    // Started again, it finishes what was left: every order invoiced once.
    server.restart();
    until_live(&app.client, &address).await;
    eventually_every(
        Duration::from_millis(100),
        "every order to be invoiced after the restart",
        Duration::from_secs(240),
        async || app.events_of_type("InvoiceIssued").await >= ORDERS as i64,
    )
    .await;
    app.wait_for_workflows().await;
    assert_eq!(app.events_of_type("InvoiceIssued").await, ORDERS as i64);
    assert_eq!(
        app.availability(product).await,
        (100_000 - ORDERS as i64, 0, 100_000 - ORDERS as i64)
    );
}
