//! Crash safety of the write path: the real `shop serve` process is killed
//! (-9) while many clients send commands. Every command the server
//! acknowledged must be in the event store at the position it answered; the
//! commands left without an answer may or may not be; the hash chain must
//! hold; and the server started again on the same database must serve.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::cart::{cart_id_for, Cart};
use domain::inventory::InventoryItem;
use domain::values::{CustomerId, ProductId};
use projections::event_store::load_aggregate;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::server_process::{app_of, until_live, ServerProcess};
use testkit::{expect_json, uuid_field};
use tokio::time::Instant;
use uuid::Uuid;

const CUSTOMERS: usize = 50;
const PRODUCTS: usize = 5;
/// Clients receiving stock (as the admin), all on the same few products.
const RECEIVERS: usize = 3;
const KILLS: usize = 3;
/// Commands acknowledged between two kills.
const ACKS_PER_ROUND: usize = 200;
const INITIAL_STOCK: i64 = 100;

/// A number below `n`, at random.
fn random_below(n: u64) -> u64 {
    (Uuid::new_v4().as_u128() % u128::from(n.max(1))) as u64
}

/// What a client asked for.
#[derive(Debug, Clone, Copy)]
enum Asked {
    /// A customer adds `quantity` of a product to their cart.
    CartItem {
        customer: usize,
        product: usize,
        quantity: i64,
    },
    /// The admin receives `quantity` of a product.
    Receipt { product: usize, quantity: i64 },
}

/// What the server answered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// 200 with the aggregate id and the position of the event written.
    Acknowledged { id: Uuid, position: i64 },
    /// A 409 conflict: nothing was written.
    Conflict,
    /// No connection (the server was down): nothing was sent.
    Unreached,
    /// No answer (the server died or was down), or a 5xx: written or not.
    InDoubt,
}

/// Sends one command and tells what came of it.
async fn send(request: reqwest::RequestBuilder) -> Answer {
    match request.timeout(Duration::from_secs(15)).send().await {
        Ok(response) if response.status() == StatusCode::OK => {
            match response.json::<Value>().await {
                Ok(body) => Answer::Acknowledged {
                    id: uuid_field(&body, "id"),
                    position: body["position"].as_i64().expect("a position"),
                },
                // The answer was cut off: the server acknowledged nothing.
                Err(_) => Answer::InDoubt,
            }
        }
        Ok(response) if response.status() == StatusCode::CONFLICT => Answer::Conflict,
        Ok(response) if response.status().is_server_error() => Answer::InDoubt,
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            panic!("a command answered {status}: {text}");
        }
        Err(e) if e.is_connect() => Answer::Unreached,
        Err(_) => Answer::InDoubt,
    }
}

#[tokio::test]
async fn no_acknowledged_command_is_lost_when_the_server_is_killed() {
    let started = std::time::Instant::now();
    let db = testkit::fresh_database().await;
    let mut server = ServerProcess::start(env!("CARGO_BIN_EXE_shop-under-test"), &db.url);
    let address = server.address();
    let app = app_of(&server, db).await;

    // The catalog, its stock and the customers, before any kill.
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tea", None).await;
    let mut products = Vec::new();
    for n in 0..PRODUCTS {
        let body = json!({
            "name": format!("Tea no. {n}"),
            "description": "Loose leaf",
            "price": 450,
            "sku": format!("TEA-{n}"),
            "category_id": category,
        });
        let product = app.create_product(&admin.token, &body).await;
        expect_json(
            app.receive(&admin.token, product, INITIAL_STOCK).await,
            StatusCode::OK,
        )
        .await;
        products.push(product);
    }
    let customers: Vec<(Uuid, String)> = app
        .register_customers(CUSTOMERS)
        .await
        .into_iter()
        .map(|customer| (customer.id, customer.token))
        .collect();

    // The clients: each sends one command after the other, whatever the
    // server's state, and writes down every answer.
    let log: Arc<Mutex<Vec<(Asked, Answer)>>> = Arc::default();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let note = |asked: Asked, answer: Answer| {
        if matches!(answer, Answer::Acknowledged { .. }) {
            acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        log.lock().unwrap().push((asked, answer));
    };
    let pause = |answer: Answer| async move {
        // Not hammering a server that is down.
        let ms = if answer == Answer::InDoubt {
            50
        } else {
            random_below(10)
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
    };
    let shoppers = customers.iter().enumerate().map(|(customer, (_, token))| {
        let (client, address, products, stop, note) =
            (&app.client, &address, &products, &stop, &note);
        async move {
            while !stop.load(Ordering::SeqCst) {
                let product = random_below(PRODUCTS as u64) as usize;
                let quantity = 1 + random_below(3) as i64;
                let request = client
                    .post(format!("{address}/v1/cart/items"))
                    .bearer_auth(token)
                    .json(&json!({"product_id": products[product], "quantity": quantity}));
                let answer = send(request).await;
                note(
                    Asked::CartItem {
                        customer,
                        product,
                        quantity,
                    },
                    answer,
                );
                pause(answer).await;
            }
        }
    });
    let receivers = (0..RECEIVERS).map(|_| {
        let (client, address, products, stop, note, token) =
            (&app.client, &address, &products, &stop, &note, &admin.token);
        async move {
            while !stop.load(Ordering::SeqCst) {
                let product = random_below(PRODUCTS as u64) as usize;
                let quantity = 1 + random_below(5) as i64;
                let request = client
                    .post(format!(
                        "{address}/v1/inventory/{}/receive",
                        products[product]
                    ))
                    .bearer_auth(token)
                    .json(&json!({"quantity": quantity}));
                let answer = send(request).await;
                note(Asked::Receipt { product, quantity }, answer);
                pause(answer).await;
            }
        }
    });
    let clients = async {
        futures::future::join(
            futures::future::join_all(shoppers),
            futures::future::join_all(receivers),
        )
        .await;
    };
    // Killed while the clients run, once enough was acknowledged since the
    // last start; started again but after the last kill.
    let killing = async {
        for kill in 1..=KILLS {
            until_live(&app.client, &address).await;
            let deadline = Instant::now() + Duration::from_secs(120);
            while acknowledged.load(Ordering::SeqCst) < kill * ACKS_PER_ROUND {
                assert!(
                    Instant::now() < deadline,
                    "kill {kill}: too few acknowledged"
                );
                tokio::time::sleep(Duration::from_millis(random_below(20))).await;
            }
            server.kill().await;
            eprintln!(
                "kill {kill}: {} acknowledged so far",
                acknowledged.load(Ordering::SeqCst)
            );
            // The clients meet a dead server for a moment.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if kill < KILLS {
                server.restart();
            }
        }
        stop.store(true, Ordering::SeqCst);
    };
    futures::future::join(clients, killing).await;
    let log = log.lock().unwrap().clone();
    let pool = &app.db.pool;

    // Every acknowledged command is in the store at the position answered,
    // on the aggregate answered, with what was asked.
    let acks: Vec<(Asked, Uuid, i64)> = log
        .iter()
        .filter_map(|(asked, answer)| match answer {
            Answer::Acknowledged { id, position } => Some((*asked, *id, *position)),
            _ => None,
        })
        .collect();
    let positions: Vec<i64> = acks.iter().map(|(_, _, p)| *p).collect();
    let mut distinct = positions.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        positions.len(),
        "two acknowledgements of one position"
    );
    let stored: Vec<(i64, String, String, String, Value)> = sqlx::query_as(
        "SELECT global_position, aggregate_type, aggregate_id, event_type, payload::jsonb
           FROM events WHERE global_position = ANY($1)",
    )
    .bind(&positions)
    .fetch_all(pool)
    .await
    .expect("read the acknowledged events");
    let stored: std::collections::HashMap<i64, (String, String, String, Value)> = stored
        .into_iter()
        .map(|(p, t, i, e, v)| (p, (t, i, e, v)))
        .collect();
    for (asked, id, position) in &acks {
        let Some((aggregate_type, aggregate_id, event_type, payload)) = stored.get(position) else {
            panic!(
                "{asked:?} was acknowledged at position {position}, which the store does not have"
            );
        };
        assert_eq!(aggregate_id, &id.to_string(), "{asked:?} at {position}");
        match *asked {
            Asked::CartItem {
                customer,
                product,
                quantity,
            } => {
                let cart = cart_id_for(&CustomerId(customers[customer].0));
                assert_eq!(*id, cart.as_uuid(), "{asked:?}: the cart answered");
                assert_eq!(
                    (aggregate_type.as_str(), event_type.as_str()),
                    ("Cart", "CartItemAdded")
                );
                let added = &payload["CartItemAdded"];
                assert_eq!(
                    added["product_id"],
                    json!(products[product]),
                    "{asked:?} at {position}"
                );
                assert_eq!(
                    added["quantity"],
                    json!(quantity),
                    "{asked:?} at {position}"
                );
            }
            Asked::Receipt { product, quantity } => {
                assert_eq!(*id, products[product], "{asked:?}: the product answered");
                assert_eq!(
                    (aggregate_type.as_str(), event_type.as_str()),
                    ("InventoryItem", "StockReceived")
                );
                assert_eq!(
                    payload["StockReceived"]["quantity"],
                    json!(quantity),
                    "{asked:?} at {position}"
                );
            }
        }
    }

    // What was not acknowledged may have been written, but nothing else: the
    // state lies between the acknowledged and the acknowledged plus the
    // commands in doubt, and the snapshots agree with the events.
    let sums = |wanted: &dyn Fn(&Asked) -> bool| {
        let mut sure = 0;
        let mut doubt = 0;
        for (asked, answer) in &log {
            if !wanted(asked) {
                continue;
            }
            let quantity = match asked {
                Asked::CartItem { quantity, .. } | Asked::Receipt { quantity, .. } => *quantity,
            };
            match answer {
                Answer::Acknowledged { .. } => sure += quantity,
                Answer::InDoubt => doubt += quantity,
                Answer::Conflict | Answer::Unreached => {}
            }
        }
        (sure, doubt)
    };
    let carts = &app.state.carts;
    for (customer, (id, _)) in customers.iter().enumerate() {
        let cart_id = cart_id_for(&CustomerId(*id)).to_string();
        let cart = load_aggregate::<Cart>(pool, &cart_id, None)
            .await
            .unwrap()
            .unwrap_or_default();
        assert_eq!(
            serde_json::to_value(carts.load(&cart_id).await.unwrap().unwrap_or_default()).unwrap(),
            serde_json::to_value(&cart).unwrap(),
            "customer {customer}: the cart from its snapshot"
        );
        for (product, product_id) in products.iter().enumerate() {
            let (sure, doubt) = sums(
                &|asked| matches!(asked, Asked::CartItem { customer: c, product: p, .. } if *c == customer && *p == product),
            );
            let held = i64::from(cart.quantity_of(ProductId(*product_id)));
            assert!(
                sure <= held && held <= sure + doubt,
                "customer {customer}, product {product}: {held} in the cart, {sure} acknowledged, {doubt} in doubt"
            );
        }
    }
    let inventory = &app.state.inventory;
    for (product, product_id) in products.iter().enumerate() {
        let (sure, doubt) =
            sums(&|asked| matches!(asked, Asked::Receipt { product: p, .. } if *p == product));
        let item = load_aggregate::<InventoryItem>(pool, &product_id.to_string(), None)
            .await
            .unwrap()
            .expect("stocked");
        assert_eq!(
            serde_json::to_value(inventory.load(&product_id.to_string()).await.unwrap()).unwrap(),
            serde_json::to_value(Some(&item)).unwrap(),
            "product {product}: the stock from its snapshot"
        );
        let received = item.on_hand() - INITIAL_STOCK;
        assert!(
            sure <= received && received <= sure + doubt,
            "product {product}: {received} received, {sure} acknowledged, {doubt} in doubt"
        );
    }

    // The hash chain holds, as `shop audit verify` checks it.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    let audit = tokio::process::Command::new(env!("CARGO_BIN_EXE_shop-under-test"))
        .args(["audit", "--database-url", &server.url, "verify"])
        .env("SHOP_DATA_DIR", &server.data_dir)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run shop audit verify");
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "shop audit verify failed: {said} {}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(
        said.starts_with(&format!("ok: {events} events")),
        "shop audit verify said: {said}"
    );

    // Started again on the same database, the server serves commands.
    server.restart();
    until_live(&app.client, &address).await;
    let last = *distinct.last().expect("acknowledged commands");
    let (customer, token) = &customers[0];
    let request = app
        .client
        .post(format!("{address}/v1/cart/items"))
        .bearer_auth(token)
        .json(&json!({"product_id": products[0], "quantity": 1}));
    let Answer::Acknowledged { id, position } = send(request).await else {
        panic!("the restarted server did not add to a cart");
    };
    assert_eq!(id, cart_id_for(&CustomerId(*customer)).as_uuid());
    assert!(position > last, "position {position} after {last}");
    let request = app
        .client
        .post(format!("{address}/v1/inventory/{}/receive", products[0]))
        .bearer_auth(&admin.token)
        .json(&json!({"quantity": 1}));
    let Answer::Acknowledged {
        id,
        position: received_at,
    } = send(request).await
    else {
        panic!("the restarted server did not receive stock");
    };
    assert_eq!(id, products[0]);
    assert!(received_at > position);
    let written: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position IN ($1, $2)")
            .bind(position)
            .bind(received_at)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(written, 2);

    let in_doubt = log.iter().filter(|(_, a)| *a == Answer::InDoubt).count();
    let conflicts = log.iter().filter(|(_, a)| *a == Answer::Conflict).count();
    let unreached = log.iter().filter(|(_, a)| *a == Answer::Unreached).count();
    let commands_written: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type IN ('CartItemAdded', 'StockReceived')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    // Less the initial receipts and the two commands after the restart.
    let doubted_written = commands_written - PRODUCTS as i64 - 2 - acks.len() as i64;
    eprintln!(
        "{KILLS} kills; {} commands sent: {} acknowledged, {in_doubt} without an answer ({doubted_written} of them written), \
         {unreached} not reaching the server, {conflicts} conflicts; {events} events; {:.1} s",
        log.len(),
        acks.len(),
        started.elapsed().as_secs_f64()
    );
}
