//! The fulfilment workflow in lanes: one order waiting on the payment gateway
//! holds up neither the read models nor the other orders, and a crash redoes
//! only what was unfinished. The real server and projectors on a fresh
//! database, with a payment gateway that holds back the charges of one test
//! card until the test lets them go. Tests wait on conditions with a
//! deadline, never a fixed sleep.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Datelike;
use domain::payment::{
    CardDetails, CardToken, ChargeRequest, GatewayError, PaymentGateway, RefundRequest, TokenOwner,
};
use domain::values::CustomerId;
use projections::payments::SimulatedGateway;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use testkit::{
    eventually, expect_json, shipping_address, spawn_app_with_gateway, test_workflow_settings,
    uuid_field, Projectors, Session, TestApp,
};
use tokio::time::Instant;
use uuid::Uuid;

/// The card whose charges the gateway holds back.
const SLOW_CARD: &str = "tok_slow";

/// How long a read model may take to show a command's effect while the
/// workflow waits on the gateway: far beyond what it takes (a poll or two),
/// for loaded machines, and far below "until the gateway answers".
const READ_MODEL_BOUND: Duration = Duration::from_secs(20);

/// How long a test waits for the workflow before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A payment gateway that holds back every charge of [`SLOW_CARD`] until
/// [`SlowGateway::release`], then makes it as the simulated gateway makes
/// a charge of `tok_visa` (approved, called back); every other call goes to
/// the simulated gateway as it is. It counts the charges asked for per
/// reference.
struct SlowGateway {
    simulated: SimulatedGateway,
    open: tokio::sync::watch::Sender<bool>,
    holding: AtomicUsize,
    asked: Mutex<HashMap<String, usize>>,
}

impl SlowGateway {
    fn new(pool: PgPool) -> Arc<Self> {
        Arc::new(Self {
            simulated: SimulatedGateway::new(pool),
            open: tokio::sync::watch::Sender::new(false),
            holding: AtomicUsize::new(0),
            asked: Mutex::new(HashMap::new()),
        })
    }

    /// Lets every held charge (and every later one) go through.
    fn release(&self) {
        self.open.send_replace(true);
    }

    /// Charges held back right now.
    fn holding(&self) -> usize {
        self.holding.load(Ordering::SeqCst)
    }

    /// How often the charge of `order` was asked for.
    fn asked(&self, order: Uuid) -> usize {
        let asked = self.asked.lock().expect("the charge counts");
        asked.get(&format!("order:{order}")).copied().unwrap_or(0)
    }

    /// Waits until `n` charges are held back.
    async fn until_holding(&self, n: usize) {
        eventually(
            "the gateway to hold the slow card's charge",
            PATIENCE,
            async || self.holding() == n,
        )
        .await;
    }
}

/// Counts a held charge while it is held (also when the wait is dropped).
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl PaymentGateway for SlowGateway {
    async fn tokenize(
        &self,
        customer_id: CustomerId,
        card: CardDetails,
    ) -> Result<CardToken, GatewayError> {
        self.simulated.tokenize(customer_id, card).await
    }

    async fn token_owner(&self, token: &str) -> Result<TokenOwner, GatewayError> {
        self.simulated.token_owner(token).await
    }

    async fn charge(&self, mut request: ChargeRequest) -> Result<String, GatewayError> {
        *self
            .asked
            .lock()
            .expect("the charge counts")
            .entry(request.reference.clone())
            .or_default() += 1;
        if request.token == SLOW_CARD {
            let _held = Held::new(&self.holding);
            let mut open = self.open.subscribe();
            let _ = open.wait_for(|open| *open).await;
            request.token = "tok_visa".to_string();
        }
        self.simulated.charge(request).await
    }

    async fn refund(&self, request: RefundRequest) -> Result<String, GatewayError> {
        self.simulated.refund(request).await
    }
}

/// Places an order of one of `product`, paid by `card`; answers its id.
async fn place(app: &TestApp, customer: &Session, product: Uuid, card: &str) -> Uuid {
    let body = json!({
        "shipping_address": shipping_address(),
        "items": [{"product_id": product, "quantity": 1}],
        "payment": {"method": "card", "token": card},
    });
    let placed = app.place_order(&customer.token, &body, None).await;
    uuid_field(&expect_json(placed, StatusCode::CREATED).await, "id")
}

/// The order as its customer reads it, once the order history has every
/// event stored so far.
async fn view(app: &TestApp, customer: &Session, order: Uuid) -> Value {
    let response = app.order(&customer.token, order, &[]).await;
    assert!(
        !response.headers().contains_key("x-read-model-stale"),
        "the order history is behind"
    );
    expect_json(response, StatusCode::OK).await
}

/// Waits until the order is paid and invoiced; answers its invoice number.
async fn invoiced(app: &TestApp, customer: &Session, order: Uuid) -> String {
    eventually("the order to be paid and invoiced", PATIENCE, async || {
        let order = view(app, customer, order).await;
        match (order["status"].as_str(), order["invoice_number"].as_str()) {
            (Some("paid"), Some(number)) => Ok(number.to_string()),
            _ => Err(order),
        }
    })
    .await
}

/// The fulfilment workflow's checkpoint position.
async fn workflow_checkpoint(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT global_position FROM projector_checkpoints WHERE name = 'fulfilment'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("read the workflow's checkpoint")
}

/// The position of the order's event of `event_type`.
async fn position_of(app: &TestApp, order: Uuid, event_type: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT global_position FROM events WHERE aggregate_id = $1 AND event_type = $2",
    )
    .bind(order.to_string())
    .bind(event_type)
    .fetch_one(&app.db.pool)
    .await
    .expect("the order's event")
}

async fn events_of(app: &TestApp, order: Uuid, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2")
        .bind(order.to_string())
        .bind(event_type)
        .fetch_one(&app.db.pool)
        .await
        .expect("count the order's events")
}

fn numbers(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    let year = chrono::Utc::now().year();
    range.map(|n| format!("{year}-{n:06}")).collect()
}

async fn start() -> (TestApp, Projectors, Arc<SlowGateway>) {
    spawn_app_with_gateway(test_workflow_settings(), SlowGateway::new).await
}

#[tokio::test]
async fn a_charge_the_gateway_holds_back_delays_neither_the_catalog_nor_the_order_history() {
    let (app, _projectors, gateway) = start().await;
    let (admin, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let alice = app.register_customer("alice").await;
    let slow = place(&app, &alice, products[0], SLOW_CARD).await;
    gateway.until_holding(1).await;

    // While the workflow waits on the gateway, a new product shows in the
    // catalog and a new order in the order history.
    let asked = Instant::now();
    let category = app.create_category(&admin.token, "Black tea", None).await;
    let body = json!({
        "name": "Darjeeling",
        "description": "First flush",
        "price": 1800,
        "sku": "TEA-DJ",
        "category_id": category,
    });
    let product = app.create_product(&admin.token, &body).await;
    let head = app.latest_position().await;
    eventually(
        "the catalog to show the new product",
        READ_MODEL_BOUND,
        async || {
            let response = app
                .get(&format!("/v1/products/{product}?min_position={head}"))
                .await;
            response.status() == StatusCode::OK
                && !response.headers().contains_key("x-read-model-stale")
        },
    )
    .await;
    let bob = app.register_customer("bob").await;
    let other = place(&app, &bob, products[0], "tok_visa").await;
    let order = view(&app, &bob, other).await;
    assert_eq!(order["id"], json!(other), "{order}");
    assert!(
        asked.elapsed() < READ_MODEL_BOUND,
        "the read models took {:?}",
        asked.elapsed()
    );
    assert_eq!(gateway.holding(), 1, "the charge was held all along");
    assert_eq!(view(&app, &alice, slow).await["status"], "pending");

    // Let go, the held order is paid and invoiced as usual.
    gateway.release();
    invoiced(&app, &alice, slow).await;
    let order = app.settled_order(&alice, slow).await;
    assert_eq!(order["status"], "paid", "{order}");
}

#[tokio::test]
async fn other_orders_are_paid_and_invoiced_while_one_orders_charge_is_held_back() {
    let (app, _projectors, gateway) = start().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;
    let bob = app.register_customer("bob").await;

    let slow = place(&app, &alice, tea, SLOW_CARD).await;
    gateway.until_holding(1).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(place(&app, &bob, tea, "tok_visa").await);
    }
    let mut given = Vec::new();
    for order in &others {
        given.push(invoiced(&app, &bob, *order).await);
    }
    given.sort();
    assert_eq!(given, numbers(1..=3), "the other orders' invoice numbers");
    assert_eq!(gateway.holding(), 1, "the slow charge was held all along");
    let waiting = view(&app, &alice, slow).await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert_eq!(waiting["invoice_number"], Value::Null, "{waiting}");

    gateway.release();
    assert_eq!(invoiced(&app, &alice, slow).await, numbers(4..=4)[0]);
    app.wait_for_workflows().await;
    assert_eq!(app.availability(tea).await, (6, 0, 6));
}

#[tokio::test]
async fn a_crash_while_one_order_waits_on_the_gateway_redoes_only_what_was_unfinished() {
    let (app, mut projectors, gateway) = start().await;
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;

    // Two orders done before the slow one.
    let early = [
        place(&app, &alice, tea, "tok_visa").await,
        place(&app, &alice, tea, "tok_visa").await,
    ];
    for order in early {
        invoiced(&app, &alice, order).await;
    }
    app.wait_for_workflows().await;
    let before_slow = app.latest_position().await;

    // The slow one, then two more that finish while it waits.
    let slow = place(&app, &alice, tea, SLOW_CARD).await;
    gateway.until_holding(1).await;
    let late = [
        place(&app, &alice, tea, "tok_visa").await,
        place(&app, &alice, tea, "tok_visa").await,
    ];
    for order in late {
        invoiced(&app, &alice, order).await;
    }
    // The checkpoint is past every event of the early orders, and stops
    // before the event the slow order's lane is still acting on.
    let waiting_at = position_of(&app, slow, "StockReserved").await;
    eventually(
        "the checkpoint to reach the slow order's charge",
        PATIENCE,
        async || workflow_checkpoint(&app).await >= position_of(&app, slow, "OrderPlaced").await,
    )
    .await;
    let checkpoint = workflow_checkpoint(&app).await;
    assert!(checkpoint >= before_slow, "{checkpoint} < {before_slow}");
    assert!(checkpoint < waiting_at, "{checkpoint} >= {waiting_at}");

    // Killed while the charge is held; started again with the gateway
    // answering.
    projectors.kill().await;
    assert_eq!(gateway.holding(), 0, "the held charge went with the crash");
    gateway.release();
    projectors.start();
    invoiced(&app, &alice, slow).await;
    app.wait_for_workflows().await;

    // Nothing before the checkpoint was acted on again: the early orders'
    // charges were asked for once. The slow order's charge was unfinished
    // and asked for again.
    for order in early {
        assert_eq!(gateway.asked(order), 1, "order {order} charged again");
    }
    assert_eq!(gateway.asked(slow), 2);
    // Whatever was done again had no second effect.
    let mut invoices = Vec::new();
    for order in early.iter().chain([&slow]).chain(late.iter()) {
        assert_eq!(events_of(&app, *order, "PaymentCaptured").await, 1);
        assert_eq!(events_of(&app, *order, "InvoiceIssued").await, 1);
        let charges: i64 =
            sqlx::query_scalar("SELECT count(*) FROM gateway_charges WHERE reference = $1")
                .bind(format!("order:{order}"))
                .fetch_one(&app.db.pool)
                .await
                .expect("count the gateway's charges");
        assert_eq!(charges, 1, "order {order}");
        invoices.push(view(&app, &alice, *order).await["invoice_number"].clone());
    }
    let mut invoices: Vec<String> = invoices
        .iter()
        .map(|n| n.as_str().unwrap_or_default().to_string())
        .collect();
    invoices.sort();
    assert_eq!(invoices, numbers(1..=5));
    assert_eq!(app.availability(tea).await, (5, 0, 5));
}

async fn checkpoint_of(app: &TestApp, projector: &str) -> (String, i64) {
    sqlx::query_as("SELECT state, global_position FROM projector_checkpoints WHERE name = $1")
        .bind(projector)
        .fetch_one(&app.db.pool)
        .await
        .expect("read a checkpoint")
}

#[tokio::test]
async fn a_poison_order_event_stops_the_workflow_just_before_it_until_an_operator_skips_it() {
    let (app, _projectors, gateway) = start().await;
    gateway.release();
    let (_, products) = app.stocked_catalog(&[(1000, 10)]).await;
    let tea = products[0];
    let alice = app.register_customer("alice").await;
    let first = place(&app, &alice, tea, "tok_visa").await;
    invoiced(&app, &alice, first).await;
    app.wait_for_workflows().await;
    let before = app.latest_position().await;

    // An order event no one can read.
    let poison: i64 = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Order', $1, 1, 'OrderPlaced', '1.0', '{\"OrderPlaced\": {\"no\": \"fields\"}}', '{}')
         RETURNING global_position",
    )
    .bind(Uuid::new_v4().to_string())
    .fetch_one(&app.db.pool)
    .await
    .expect("insert a poison event");
    eventually(
        "the workflow to stop at the poison event",
        PATIENCE,
        async || checkpoint_of(&app, "fulfilment").await.0 == "stopped",
    )
    .await;
    let dead: Vec<i64> = sqlx::query_scalar(
        "SELECT global_position FROM projector_dead_letters
          WHERE projector = 'fulfilment' AND resolution IS NULL",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("read the dead letters");
    assert_eq!(dead, vec![poison]);
    let (_, stopped_at) = checkpoint_of(&app, "fulfilment").await;
    assert!(
        (before..poison).contains(&stopped_at),
        "the checkpoint {stopped_at} is not just before the poison event {poison}"
    );

    // Stopped, it acts on nothing after the poison event...
    let later = place(&app, &alice, tea, "tok_visa").await;
    let placed_at = position_of(&app, later, "OrderPlaced").await;
    eventually(
        "another projector to read past the new order",
        PATIENCE,
        async || checkpoint_of(&app, "audit_seal").await.1 >= placed_at,
    )
    .await;
    assert_eq!(events_of(&app, later, "StockReserved").await, 0);
    assert_eq!(
        checkpoint_of(&app, "fulfilment").await,
        ("stopped".to_string(), stopped_at)
    );

    // ...until the operator skips it.
    assert_eq!(
        projections::admin::skip(&app.db.pool, "fulfilment")
            .await
            .expect("skip the poison event"),
        poison
    );
    eventually("the later order to be invoiced", PATIENCE, async || {
        events_of(&app, later, "InvoiceIssued").await == 1
    })
    .await;
    assert_eq!(events_of(&app, later, "PaymentCaptured").await, 1);
    assert_eq!(checkpoint_of(&app, "fulfilment").await.0, "running");
}
