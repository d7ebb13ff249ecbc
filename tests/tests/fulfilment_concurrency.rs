//! The fulfilment workflow with many orders at once. 64 orders are placed at
//! the same moment while the workflow holds still (paused), each with a
//! known fate: paid, out of stock, declined, timed out, cancelled before
//! payment, refunded. Then the workflow takes them all on together. Every
//! order must end as the workflow acting on one order after the other, in
//! the order they were placed, ends it: the same status, payment status and
//! cancellation reason; one capture for each paid order and none for the
//! others; invoice numbers 1 to n without a gap; stock taken once and no
//! hold left; each refund made once. Once with the server in the test
//! process, once with the real `shop serve` killed (-9) in the middle and
//! started again on the same database.
//!
//! Tests wait for conditions with a deadline, never for a fixed time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use projections::workflows::WorkflowSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::server_process::{app_of, until_live, ServerProcess};
use testkit::{
    eventually_every, expect_json, shipping_address, spawn_app_with, test_workflow_settings,
    uuid_field, Session, TestApp, READ_MODEL_PATIENCE,
};
use tokio::time::Instant;
use uuid::Uuid;

const ORDERS: usize = 64;
const CUSTOMERS: usize = 16;
const FULFILMENT: &str = projections::workflows::fulfilment::NAME;

/// The catalog's products, by index: tea and jam to spare, saffron scarce.
const TEA: usize = 0;
const JAM: usize = 1;
const SAFFRON: usize = 2;
const SAFFRON_STOCK: i64 = 10;
/// `(price, stock)` of each product.
const CATALOG: [(i64, i64); 3] = [(450, 1000), (275, 1000), (1200, SAFFRON_STOCK)];

/// How long an order may stay unpaid. Every order but the timed-out ones
/// has to be paid or failed well within it, kills and restarts included;
/// the test waits this long for the timed-out ones.
const PAYMENT_TIMEOUT: Duration = Duration::from_secs(20);
const PAYMENT_TIMEOUT_WITH_KILLS: Duration = Duration::from_secs(30);

/// What an order is set up to meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// `tok_visa`, stock to spare: paid and invoiced.
    Paid,
    /// `tok_visa` with saffron, of which there is too little for all: paid,
    /// or cancelled out of stock, as the order of placing decides.
    Scarce,
    /// A card the gateway declines.
    Declined,
    /// The gateway takes the charge and never answers: the payment times
    /// out.
    TimedOut,
    /// Cancelled by its customer before the workflow takes it on.
    Cancelled,
    /// Paid, then refunded in full by an admin.
    RefundedByAdmin,
    /// Paid, then cancelled by its customer: the money goes back, and so
    /// does the stock.
    CancelledAfterPayment,
}

/// One order to place.
#[derive(Debug, Clone)]
struct Plan {
    n: usize,
    fate: Fate,
    customer: usize,
    /// `(product index, quantity)`.
    lines: Vec<(usize, i64)>,
    token: &'static str,
}

/// The 64 orders, their fates mixed in the order they are listed.
fn plans() -> Vec<Plan> {
    let mut planned = Vec::new();
    let mut plan = |fate: Fate, lines: Vec<(usize, i64)>, token: &'static str| {
        planned.push(Plan {
            n: 0,
            fate,
            customer: 0,
            lines,
            token,
        });
    };
    for i in 0..12 {
        let lines = if i % 3 == 0 {
            vec![(TEA, 1), (JAM, 2)]
        } else {
            vec![(TEA, 1 + i % 3)]
        };
        plan(Fate::Paid, lines, "tok_visa");
    }
    // 16 orders for 24 saffron where there are 10; some with a line of tea
    // too, which they get only with the saffron (all lines or none).
    for i in 0..16 {
        let quantity = 1 + i % 2;
        let lines = if i % 4 == 3 {
            vec![(TEA, 1), (SAFFRON, quantity)]
        } else {
            vec![(SAFFRON, quantity)]
        };
        plan(Fate::Scarce, lines, "tok_visa");
    }
    for i in 0..8 {
        let token = if i % 2 == 0 {
            "tok_chargeDeclined"
        } else {
            "tok_insufficientFunds"
        };
        plan(Fate::Declined, vec![(TEA, 1)], token);
    }
    for _ in 0..8 {
        plan(Fate::TimedOut, vec![(JAM, 1)], "tok_visa");
    }
    for _ in 0..8 {
        plan(Fate::Cancelled, vec![(TEA, 2)], "tok_visa");
    }
    for _ in 0..6 {
        plan(Fate::RefundedByAdmin, vec![(JAM, 1), (TEA, 1)], "tok_visa");
    }
    for _ in 0..6 {
        plan(Fate::CancelledAfterPayment, vec![(TEA, 1)], "tok_visa");
    }
    assert_eq!(planned.len(), ORDERS);
    // 29 is prime to 64: every planned order once, no fate in a block.
    (0..ORDERS)
        .map(|n| Plan {
            n,
            customer: n % CUSTOMERS,
            ..planned[n * 29 % ORDERS].clone()
        })
        .collect()
}

/// A placed order.
#[derive(Debug)]
struct Placed {
    plan: Plan,
    id: Uuid,
    total: i64,
}

/// How an order ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    status: &'static str,
    payment_status: &'static str,
    cancellation_reason: Option<&'static str>,
    /// Its payment was captured (once), and so it was invoiced.
    captured: bool,
    /// Its payment went back (once).
    refunded: bool,
    /// It keeps the stock it took.
    keeps_stock: bool,
}

impl Outcome {
    const fn cancelled(payment_status: &'static str, reason: &'static str) -> Outcome {
        Outcome {
            status: "cancelled",
            payment_status,
            cancellation_reason: Some(reason),
            captured: false,
            refunded: false,
            keeps_stock: false,
        }
    }
}

const PAID: Outcome = Outcome {
    status: "paid",
    payment_status: "captured",
    cancellation_reason: None,
    captured: true,
    refunded: false,
    keeps_stock: true,
};

/// What the serial workflow makes of an order of `fate`; `got_stock` says
/// whether a scarce one got its saffron.
fn expected(fate: Fate, got_stock: bool) -> Outcome {
    match fate {
        Fate::Paid => PAID,
        Fate::Scarce if got_stock => PAID,
        Fate::Scarce => Outcome::cancelled("pending", "out_of_stock"),
        Fate::Declined => Outcome::cancelled("failed", "payment_failed"),
        Fate::TimedOut => Outcome::cancelled("pending", "payment_timeout"),
        Fate::Cancelled => Outcome::cancelled("pending", "customer_request"),
        Fate::RefundedByAdmin => Outcome {
            status: "refunded",
            payment_status: "refunded",
            refunded: true,
            ..PAID
        },
        Fate::CancelledAfterPayment => Outcome {
            status: "refunded",
            payment_status: "refunded",
            cancellation_reason: Some("customer_request"),
            refunded: true,
            keeps_stock: false,
            ..PAID
        },
    }
}

struct Shop {
    admin: Session,
    products: Vec<Uuid>,
    customers: Vec<Session>,
}

/// The catalog and the customers; the workflow has run once (so it can be
/// paused) and is idle.
async fn open_shop(app: &TestApp) -> Shop {
    let (admin, products) = app.stocked_catalog(&CATALOG).await;
    let customers = app.register_customers(CUSTOMERS).await;
    app.wait_for_workflows().await;
    Shop {
        admin,
        products,
        customers,
    }
}

/// Pauses the workflow, places every planned order at the same moment, and
/// sets up the fates that need it before the workflow sees the orders: the
/// customers cancel theirs, and the gateway is made to keep quiet about
/// the timed-out ones. The workflow stays paused.
async fn place_while_paused(app: &TestApp, shop: &Shop) -> Vec<Placed> {
    projections::admin::pause(&app.db.pool, FULFILMENT)
        .await
        .expect("pause the workflow");
    let placing = plans().into_iter().map(|plan| async move {
        let items: Vec<Value> = plan
            .lines
            .iter()
            .map(|(p, q)| json!({"product_id": shop.products[*p], "quantity": q}))
            .collect();
        let body = json!({
            "shipping_address": shipping_address(),
            "items": items,
            "payment": {"method": "card", "token": plan.token},
        });
        let token = &shop.customers[plan.customer].token;
        let order = expect_json(
            app.place_order(token, &body, None).await,
            StatusCode::CREATED,
        )
        .await;
        Placed {
            id: uuid_field(&order, "id"),
            total: order["total"].as_i64().expect("a total"),
            plan,
        }
    });
    let placed = futures::future::join_all(placing).await;
    let preparing = placed.iter().map(|order| async move {
        match order.plan.fate {
            Fate::Cancelled => {
                let token = &shop.customers[order.plan.customer].token;
                let path = format!("/v1/orders/{}/cancel", order.id);
                expect_json(
                    app.post_json(&path, &json!({}), Some(token)).await,
                    StatusCode::OK,
                )
                .await;
            }
            Fate::TimedOut => app.withhold_payment_answer(order.id, order.total).await,
            _ => {}
        }
    });
    futures::future::join_all(preparing).await;
    placed
}

/// The workflow takes on every order at once.
async fn let_go(app: &TestApp) {
    projections::admin::resume(&app.db.pool, FULFILMENT)
        .await
        .expect("resume the workflow");
}

/// How often the waits here ask again.
const POLL: Duration = Duration::from_millis(50);

/// How many events of `event_type` the orders `ids` have together.
async fn events_among(app: &TestApp, ids: &[Uuid], event_type: &str) -> usize {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = ANY($1) AND event_type = $2",
    )
    .bind(&ids)
    .bind(event_type)
    .fetch_one(&app.db.pool)
    .await
    .expect("count events");
    count as usize
}

fn ids_of(placed: &[Placed], fates: &[Fate]) -> Vec<Uuid> {
    placed
        .iter()
        .filter(|o| fates.contains(&o.plan.fate))
        .map(|o| o.id)
        .collect()
}

/// Waits until the orders to be refunded are invoiced, then, all at once,
/// an admin refunds half of them in full and the customers cancel the
/// others.
async fn refund_when_paid(app: &TestApp, shop: &Shop, placed: &[Placed]) {
    let waiting = Instant::now();
    let to_refund = ids_of(
        placed,
        &[Fate::RefundedByAdmin, Fate::CancelledAfterPayment],
    );
    eventually_every(
        POLL,
        "the orders to refund are invoiced",
        READ_MODEL_PATIENCE,
        async || events_among(app, &to_refund, "InvoiceIssued").await == to_refund.len(),
    )
    .await;
    eprintln!(
        "the orders to refund were invoiced {:.1} s after the wait began: {}",
        waiting.elapsed().as_secs_f64(),
        progress(app).await
    );
    let refunding = placed.iter().map(|order| async move {
        let response = match order.plan.fate {
            Fate::RefundedByAdmin => {
                let path = format!("/v1/orders/{}/refund", order.id);
                let body = json!({"reason": "never arrived"});
                app.post_json(&path, &body, Some(&shop.admin.token)).await
            }
            Fate::CancelledAfterPayment => {
                let path = format!("/v1/orders/{}/cancel", order.id);
                let token = &shop.customers[order.plan.customer].token;
                app.post_json(&path, &json!({}), Some(token)).await
            }
            _ => return,
        };
        expect_json(response, StatusCode::OK).await;
    });
    futures::future::join_all(refunding).await;
}

/// Waits until the timed-out orders are cancelled, every payment deadline
/// has passed, and the workflows have acted on everything.
async fn settle(app: &TestApp, placed: &[Placed], payment_timeout: Duration) {
    let timed_out = ids_of(placed, &[Fate::TimedOut]);
    eventually_every(
        POLL,
        "the unanswered orders time out",
        payment_timeout + READ_MODEL_PATIENCE,
        async || events_among(app, &timed_out, "OrderCancelled").await == timed_out.len(),
    )
    .await;
    eventually_every(
        POLL,
        "every deadline is done",
        READ_MODEL_PATIENCE,
        async || {
            let open: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deadlines WHERE done_at IS NULL")
                    .fetch_one(&app.db.pool)
                    .await
                    .expect("count open deadlines");
            open == 0
        },
    )
    .await;
    app.wait_for_workflows().await;
}

/// The scarce orders that get their saffron when the orders are decided one
/// after the other in the order the log holds them: each takes what it asks
/// for while enough is left.
async fn saffron_winners(app: &TestApp, placed: &[Placed]) -> BTreeSet<Uuid> {
    let scarce: BTreeMap<String, i64> = placed
        .iter()
        .filter(|o| o.plan.fate == Fate::Scarce)
        .map(|o| {
            let saffron: i64 = o
                .plan
                .lines
                .iter()
                .filter(|(p, _)| *p == SAFFRON)
                .map(|(_, q)| q)
                .sum();
            (o.id.to_string(), saffron)
        })
        .collect();
    let ids: Vec<String> = scarce.keys().cloned().collect();
    let in_log_order: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events
          WHERE event_type = 'OrderPlaced' AND aggregate_id = ANY($1)
          ORDER BY transaction_id, global_position",
    )
    .bind(&ids)
    .fetch_all(&app.db.pool)
    .await
    .expect("read the order of placing");
    assert_eq!(in_log_order.len(), scarce.len());
    let mut left = SAFFRON_STOCK;
    let mut winners = BTreeSet::new();
    for id in in_log_order {
        let wanted = scarce[&id];
        if wanted <= left {
            left -= wanted;
            winners.insert(Uuid::parse_str(&id).expect("an order id"));
        }
    }
    winners
}

/// Every order ended as the serial workflow ends it, and the money, the
/// stock and the invoice numbers agree.
async fn check(app: &TestApp, shop: &Shop, placed: &[Placed]) {
    let winners = saffron_winners(app, placed).await;
    assert!(
        !winners.is_empty() && winners.len() < ids_of(placed, &[Fate::Scarce]).len(),
        "the saffron is meant to run out: {} winners",
        winners.len()
    );
    let mut on_hand: Vec<i64> = CATALOG.iter().map(|(_, stock)| *stock).collect();
    let mut invoices: BTreeSet<String> = BTreeSet::new();
    let mut paid_at: Option<DateTime<Utc>> = None;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for order in placed {
        let (n, id, total) = (order.plan.n, order.id, order.total);
        let outcome = expected(order.plan.fate, winners.contains(&id));
        let what = format!("order {n} ({:?}, {id})", order.plan.fate);
        *outcomes
            .entry(format!(
                "{} {}",
                outcome.status,
                outcome.cancellation_reason.unwrap_or("")
            ))
            .or_default() += 1;

        // The customer's view.
        let token = &shop.customers[order.plan.customer].token;
        let view = expect_json(app.order(token, id, &[]).await, StatusCode::OK).await;
        assert_eq!(view["status"], outcome.status, "{what}: {view}");
        assert_eq!(
            view["payment_status"], outcome.payment_status,
            "{what}: {view}"
        );
        assert_eq!(
            view["cancellation_reason"],
            json!(outcome.cancellation_reason),
            "{what}: {view}"
        );
        let refunded = if outcome.refunded { total } else { 0 };
        assert_eq!(view["refunded"], json!(refunded), "{what}: {view}");
        match view["invoice_number"].as_str() {
            Some(number) => {
                assert!(outcome.captured, "{what} invoiced: {view}");
                assert!(
                    invoices.insert(number.to_string()),
                    "{what}: invoice number {number} given twice"
                );
            }
            None => assert!(!outcome.captured, "{what} not invoiced: {view}"),
        }
        if outcome.captured && paid_at.is_none() {
            paid_at = Some(
                view["paid_at"]
                    .as_str()
                    .and_then(|at| at.parse().ok())
                    .unwrap_or_else(|| panic!("{what}: no paid_at: {view}")),
            );
        }

        // Its events: each step once, or not at all.
        let once = |yes: bool| i64::from(yes);
        for (event_type, count) in [
            ("PaymentCaptured", once(outcome.captured)),
            ("InvoiceIssued", once(outcome.captured)),
            ("OrderRefunded", once(outcome.refunded)),
            ("PaymentFailed", once(order.plan.fate == Fate::Declined)),
            (
                "OrderCancelled",
                once(outcome.cancellation_reason.is_some()),
            ),
        ] {
            assert_eq!(
                app.events_of(id, event_type).await,
                count,
                "{what}: {event_type} events"
            );
        }

        // The gateway's side: one charge for each order the workflow
        // charged, answered unless it was held back; one refund for each
        // order refunded.
        let charges: Vec<(String, i64, bool)> = sqlx::query_as(
            "SELECT outcome, amount, callback_delivered_at IS NOT NULL
               FROM gateway_charges WHERE reference = $1",
        )
        .bind(format!("order:{id}"))
        .fetch_all(&app.db.pool)
        .await
        .expect("read the gateway's charges");
        let expected_charges = match order.plan.fate {
            _ if outcome.captured => vec![("succeeded".to_string(), total, true)],
            Fate::Declined => vec![("failed".to_string(), total, true)],
            Fate::TimedOut => vec![("succeeded".to_string(), total, false)],
            _ => vec![],
        };
        assert_eq!(charges, expected_charges, "{what}: the gateway's charges");
        let refunds: Vec<(String, i64)> = sqlx::query_as(
            "SELECT r.reference, r.amount FROM gateway_refunds r
               JOIN gateway_charges c ON c.id = r.charge_id
              WHERE c.reference = $1",
        )
        .bind(format!("order:{id}"))
        .fetch_all(&app.db.pool)
        .await
        .expect("read the gateway's refunds");
        let expected_refunds = if outcome.refunded {
            vec![(format!("refund:{id}:{total}"), total)]
        } else {
            vec![]
        };
        assert_eq!(refunds, expected_refunds, "{what}: the gateway's refunds");

        if outcome.keeps_stock {
            for (product, quantity) in &order.plan.lines {
                on_hand[*product] -= quantity;
            }
        }
    }
    eprintln!("outcomes: {outcomes:?}");

    // Nothing charged or refunded that is not some order's.
    let (charges, refunds): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM gateway_charges), (SELECT count(*) FROM gateway_refunds)",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("count the gateway's charges and refunds");
    let charged = placed
        .iter()
        .filter(|o| {
            matches!(o.plan.fate, Fate::Declined | Fate::TimedOut)
                || expected(o.plan.fate, winners.contains(&o.id)).captured
        })
        .count();
    assert_eq!(charges, charged as i64, "charges in all");
    assert_eq!(
        refunds,
        ids_of(
            placed,
            &[Fate::RefundedByAdmin, Fate::CancelledAfterPayment]
        )
        .len() as i64,
        "refunds in all"
    );

    // Invoice numbers 1 to n of the year, each on one paid order, none lost.
    let year = paid_at.expect("a paid order").year();
    let expected_numbers: BTreeSet<String> = (1..=invoices.len())
        .map(|n| format!("{year}-{n:06}"))
        .collect();
    assert_eq!(invoices, expected_numbers, "the orders' invoice numbers");
    let issued: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'InvoiceIssued'->>'invoice_number' FROM events
          WHERE event_type = 'InvoiceIssued' ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("read the invoices issued");
    assert_eq!(
        issued,
        expected_numbers.into_iter().collect::<Vec<_>>(),
        "the invoices issued"
    );

    // Stock taken once by each order that kept it, given back by the one
    // cancelled after payment, and no hold left (not even of the orders
    // that timed out or were cancelled).
    for (p, product) in shop.products.iter().enumerate() {
        assert_eq!(
            app.availability(*product).await,
            (on_hand[p], 0, on_hand[p]),
            "product {p}: (on_hand, held, available)"
        );
    }
    assert!(on_hand[SAFFRON] >= 0, "saffron oversold");
}

#[tokio::test]
async fn sixty_four_orders_taken_on_at_once_each_end_as_the_serial_workflow_ends_them() {
    let started = std::time::Instant::now();
    let app = spawn_app_with(WorkflowSettings {
        payment_timeout: PAYMENT_TIMEOUT,
        ..test_workflow_settings()
    })
    .await;
    let shop = open_shop(&app).await;
    let placed = place_while_paused(&app, &shop).await;
    let_go(&app).await;
    refund_when_paid(&app, &shop, &placed).await;
    settle(&app, &placed, PAYMENT_TIMEOUT).await;
    check(&app, &shop, &placed).await;
    eprintln!(
        "{ORDERS} orders in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// What the workflow has done so far, for the log of a kill.
async fn progress(app: &TestApp) -> String {
    let mut said = Vec::new();
    for event_type in [
        "StockReserved",
        "PaymentCaptured",
        "InvoiceIssued",
        "OrderRefunded",
    ] {
        said.push(format!(
            "{event_type} {}",
            app.events_of_type(event_type).await
        ));
    }
    said.join(", ")
}

/// kill -9 the server, start it again, and wait until it answers.
async fn kill(server: &mut ServerProcess, app: &TestApp, when: &str) {
    eprintln!("kill -9 {when}: {}", progress(app).await);
    server.kill_and_restart().await;
    until_live(&app.client, &app.address).await;
}

#[tokio::test]
async fn sixty_four_orders_end_the_same_when_the_server_is_killed_in_the_middle() {
    let started = std::time::Instant::now();
    let db = testkit::fresh_database().await;
    let timeout = PAYMENT_TIMEOUT_WITH_KILLS.as_secs().to_string();
    let mut server = ServerProcess::start_with(
        env!("CARGO_BIN_EXE_shop-under-test"),
        &db.url,
        &[("SHOP_PAYMENT_TIMEOUT_SECS", &timeout)],
    );
    let app = app_of(&server, db).await;
    let shop = open_shop(&app).await;
    let placed = place_while_paused(&app, &shop).await;
    let_go(&app).await;

    // As soon as the workflow has begun on the orders.
    eventually_every(
        POLL,
        "the workflow starts",
        READ_MODEL_PATIENCE,
        async || app.events_of_type("StockReserved").await > 0,
    )
    .await;
    kill(&mut server, &app, "once stock is reserved").await;
    // Once the payments come back and invoices are issued.
    eventually_every(POLL, "the first invoice", READ_MODEL_PATIENCE, async || {
        app.events_of_type("InvoiceIssued").await > 0
    })
    .await;
    kill(&mut server, &app, "once an invoice is issued").await;
    // With the refunds just asked for.
    refund_when_paid(&app, &shop, &placed).await;
    kill(&mut server, &app, "with the refunds asked for").await;

    settle(&app, &placed, PAYMENT_TIMEOUT_WITH_KILLS).await;
    check(&app, &shop, &placed).await;
    eprintln!(
        "{ORDERS} orders, 3 kills, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
