//! The notifications outbox: one message per order stage to the customer,
//! delivered by the notifier, queued once however often the events are read,
//! and retried with backoff when sending fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use projections::notifications::{deliver, Notifier, Outgoing, MAX_ATTEMPTS};
use projections::workflows::WorkflowSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{
    customer_body, eventually, expect_json, fresh_database, shipping_address, spawn_app_with,
    spawn_app_without_payment_callbacks, test_workflow_settings, uuid_field, TestApp,
};
use uuid::Uuid;

fn order_body(product: Uuid) -> Value {
    json!({
        "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square",
                             "city": "London", "postal_code": "SW1Y 4JH", "country": "gb"},
        "items": [{"product_id": product, "quantity": 2}],
        "payment": {"method": "card", "token": "tok_visa"},
    })
}

async fn ok(response: reqwest::Response) -> Value {
    expect_json(response, StatusCode::OK).await
}

/// The notifications `token` sees once the outbox has caught up with every
/// event so far and the notifier has sent them all.
async fn sent_notifications(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let head = app.head_position().await;
    let path = format!("/v1/notifications?min_position={head}&limit=100{query}");
    eventually(
        "every notification to be sent",
        Duration::from_secs(30),
        async || {
            let list = ok(app.get_as(&path, Some(token)).await).await;
            let items = list["notifications"].as_array().unwrap().clone();
            if items.iter().all(|n| n["status"] == "sent") {
                Ok(items)
            } else {
                Err(list)
            }
        },
    )
    .await
}

fn stages(items: &[Value], order: Uuid) -> Vec<(String, String)> {
    items
        .iter()
        .filter(|n| n["order_id"] == json!(order))
        .map(|n| {
            (
                n["stage"].as_str().unwrap().to_string(),
                n["channel"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_stage_of_an_order_sends_the_customer_one_message_once() {
    // The gateway accepts the card charges but does not answer, so each order
    // stays pending until the test pays it (or its customer cancels it).
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tea", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Assam", "description": "Malty", "price": 1250,
                    "sku": "TEA-ASSAM", "category_id": category}),
        )
        .await;
    ok(app.receive(&admin.token, product, 10).await).await;
    let ada = app.register_customer("ada").await;
    let grace = app.register_customer("grace").await;

    // Order 1: placed, paid, shipped, delivered, partly refunded.
    let placed = app
        .place_order(&ada.token, &order_body(product), None)
        .await;
    let first = uuid_field(&expect_json(placed, StatusCode::CREATED).await, "id");
    // Paid once the fulfilment workflow has reserved the stock.
    app.wait_for_workflows().await;
    app.capture_payment(first, 2500).await;
    for body in [
        json!({"status": "processing"}),
        json!({"status": "shipped", "tracking_number": "1Z999AA10123456784"}),
        json!({"status": "delivered"}),
    ] {
        ok(app.set_order_status(&admin.token, first, &body).await).await;
    }
    let refund = json!({"amount": 1250, "reason": "one tin arrived dented"});
    let refunded = app
        .post_json(
            &format!("/v1/orders/{first}/refund"),
            &refund,
            Some(&admin.token),
        )
        .await;
    assert!(refunded.status().is_success(), "{}", refunded.status());

    // Order 2: placed, then cancelled by the customer.
    let placed = app
        .place_order(&ada.token, &order_body(product), None)
        .await;
    let second = uuid_field(&expect_json(placed, StatusCode::CREATED).await, "id");
    app.wait_for_workflows().await;
    let cancelled = app
        .post_json(
            &format!("/v1/orders/{second}/cancel"),
            &json!({}),
            Some(&ada.token),
        )
        .await;
    assert!(cancelled.status().is_success(), "{}", cancelled.status());

    let mine = sent_notifications(&app, &ada.token, "").await;
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // Newest first.
    assert_eq!(
        stages(&mine, first),
        pairs(&[
            ("refunded", "email"),
            ("delivered", "sms"),
            ("shipped", "sms"),
            ("paid", "email"),
            ("placed", "email"),
        ])
    );
    assert_eq!(
        stages(&mine, second),
        pairs(&[("cancelled", "email"), ("placed", "email")])
    );
    let contact = customer_body("ada");
    // The phone number as the account keeps it: without spaces.
    let phone = contact["phone"].as_str().unwrap().replace(' ', "");
    for n in &mine {
        let expected = if n["channel"] == "sms" {
            json!(phone)
        } else {
            contact["email"].clone()
        };
        assert_eq!(n["recipient"], expected, "{n}");
        assert_eq!(n["customer_id"], json!(ada.id));
    }
    let shipped = mine.iter().find(|n| n["stage"] == "shipped").unwrap();
    assert!(
        shipped["body"]
            .as_str()
            .unwrap()
            .contains("1Z999AA10123456784"),
        "{shipped}"
    );
    let refunded = mine.iter().find(|n| n["stage"] == "refunded").unwrap();
    assert!(
        refunded["body"].as_str().unwrap().contains("12.50 USD"),
        "{refunded}"
    );

    // Someone else's are not shown; staff can read a customer's.
    assert_eq!(
        sent_notifications(&app, &grace.token, "").await,
        Vec::<Value>::new()
    );
    let by_staff =
        sent_notifications(&app, &admin.token, &format!("&customer_id={}", ada.id)).await;
    assert_eq!(by_staff, mine);
    let denied = app
        .get_as(&format!("/v1/notifications?customer_id={}", ada.id), None)
        .await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);

    // Reading every event again queues nothing twice.
    app.replay_from_start("notifications").await;
    let head = app.head_position().await;
    eventually(
        "the replayed outbox to reach the head",
        Duration::from_secs(30),
        async || {
            let at = sqlx::query_scalar::<_, i64>(
                "SELECT global_position FROM projector_checkpoints WHERE name = 'notifications'",
            )
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
            at >= head
        },
    )
    .await;
    assert_eq!(sent_notifications(&app, &ada.token, "").await, mine);

    // Pages, newest first.
    let page = ok(app
        .get_as("/v1/notifications?limit=3", Some(&ada.token))
        .await)
    .await;
    assert_eq!(page["notifications"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = ok(app
        .get_as(
            &format!("/v1/notifications?limit=100&cursor={cursor}"),
            Some(&ada.token),
        )
        .await)
    .await;
    assert_eq!(rest["notifications"].as_array().unwrap().len(), 4);
    assert_eq!(rest["next_cursor"], Value::Null);
}

/// A notifier whose provider is down.
struct Down(AtomicUsize);

#[async_trait]
impl Notifier for Down {
    async fn send(&self, _: &Outgoing) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Err("connection refused by the mail relay".into())
    }
}

#[tokio::test]
async fn a_message_that_cannot_be_sent_is_retried_later_and_given_up_after_the_last_attempt() {
    let db = fresh_database().await;
    sqlx::query(
        "INSERT INTO notifications
             (customer_id, stage, channel, recipient, subject, body, event_position, created_at)
         VALUES ($1, 'placed', 'email', 'ada@example.com', 'Hello', 'Hi', 1, now())",
    )
    .bind(Uuid::new_v4())
    .execute(&db.pool)
    .await
    .unwrap();
    let down = Down(AtomicUsize::new(0));

    assert_eq!(deliver(&db.pool, &down, 10).await.unwrap(), 0);
    let (status, attempts, error, later): (String, i32, Option<String>, bool) = sqlx::query_as(
        "SELECT status, attempts, last_error, next_attempt_at > now() FROM notifications",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    assert_eq!(
        error.as_deref(),
        Some("connection refused by the mail relay")
    );
    assert!(later, "the next attempt waits");
    // Not due yet: nothing is tried.
    deliver(&db.pool, &down, 10).await.unwrap();
    assert_eq!(down.0.load(Ordering::Relaxed), 1);

    // Each time it falls due it is tried again, until the last attempt.
    for attempt in 2..=MAX_ATTEMPTS {
        sqlx::query("UPDATE notifications SET next_attempt_at = now()")
            .execute(&db.pool)
            .await
            .unwrap();
        deliver(&db.pool, &down, 10).await.unwrap();
        assert_eq!(down.0.load(Ordering::Relaxed), attempt as usize);
    }
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM notifications")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("failed", MAX_ATTEMPTS));
}

/// A received email: its recipients and its text.
type Mail = (Vec<String>, String);

/// A real SMTP server on loopback that keeps what it receives.
#[derive(Clone, Default)]
struct Inbox {
    received: std::sync::Arc<std::sync::Mutex<Vec<Mail>>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for Inbox {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let mail = String::from_utf8_lossy(&self.data).into_owned();
        self.received
            .lock()
            .unwrap()
            .push((std::mem::take(&mut self.to), mail));
        mailin_embedded::response::OK
    }
}

/// Starts the SMTP server on a free port; answers its port.
fn start_smtp_server(inbox: &Inbox) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the SMTP server");
    let port = listener.local_addr().unwrap().port();
    let mut server = mailin_embedded::Server::new(inbox.clone());
    server
        .with_name("mail.test")
        .with_ssl(mailin_embedded::SslConfig::None)
        .expect("plain SMTP")
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        if let Err(e) = server.serve() {
            eprintln!("the test SMTP server stopped: {e}");
        }
    });
    port
}

#[tokio::test]
async fn with_an_smtp_relay_configured_the_emails_go_out_by_smtp() {
    let inbox = Inbox::default();
    let port = start_smtp_server(&inbox);
    let app = spawn_app_with(WorkflowSettings {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        mail_from: "Tea Shop <orders@tea.example>".to_string(),
        ..test_workflow_settings()
    })
    .await;
    let (_, products) = app.stocked_catalog(&[(1250, 10)]).await;
    let ada = app.register_customer("ada").await;
    let body = json!({
        "shipping_address": shipping_address(),
        "items": [{"product_id": products[0], "quantity": 2}],
        "payment": {"method": "card", "token": "tok_visa"},
    });
    let placed = app.place_order(&ada.token, &body, None).await;
    expect_json(placed, StatusCode::CREATED).await;
    app.wait_for_workflows().await;

    // Placed and paid: two emails, sent through the relay.
    let sent = eventually(
        "two emails through the relay",
        Duration::from_secs(30),
        async || {
            let sent = inbox.received.lock().unwrap().clone();
            if sent.len() >= 2 {
                Ok(sent)
            } else {
                Err(format!("{sent:?}"))
            }
        },
    )
    .await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (to, mail) in &sent {
        assert_eq!(to, &vec!["ada@example.com".to_string()]);
        assert!(
            mail.contains("From: \"Tea Shop\" <orders@tea.example>")
                || mail.contains("From: Tea Shop <orders@tea.example>"),
            "{mail}"
        );
    }
    assert!(
        sent[0].1.contains("Subject: We have your order"),
        "{}",
        sent[0].1
    );
    assert!(sent[1].1.contains("is paid"), "{}", sent[1].1);
    // The relay holds the mail before the shop has its answer and records
    // the message as sent.
    eventually(
        "both messages to be recorded as sent",
        Duration::from_secs(30),
        async || {
            let list = expect_json(
                app.get_as("/v1/notifications", Some(&ada.token)).await,
                StatusCode::OK,
            )
            .await;
            if list["notifications"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["status"] == "sent")
            {
                Ok(())
            } else {
                Err(list)
            }
        },
    )
    .await;
}

/// A notifier that holds back the messages whose subject is `Slow` until
/// released, and keeps the order in which it sent.
struct Gate {
    open: tokio::sync::watch::Sender<bool>,
    holding: AtomicUsize,
    sent: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl Notifier for Gate {
    async fn send(&self, message: &Outgoing) -> Result<(), String> {
        if message.subject == "Slow" {
            self.holding.fetch_add(1, Ordering::SeqCst);
            let _ = self.open.subscribe().wait_for(|open| *open).await;
            self.holding.fetch_sub(1, Ordering::SeqCst);
        }
        self.sent.lock().unwrap().push(message.body.clone());
        Ok(())
    }
}

#[tokio::test]
async fn other_orders_messages_go_out_while_one_is_held_back_and_each_orders_stay_in_order() {
    let db = fresh_database().await;
    let (slow_order, quick_order) = (Uuid::new_v4(), Uuid::new_v4());
    // Queued one order after the other: slow 1, quick 1, slow 2, quick 2.
    for (n, (order, subject, body)) in [
        (slow_order, "Slow", "slow 1"),
        (quick_order, "Quick", "quick 1"),
        (slow_order, "Slow", "slow 2"),
        (quick_order, "Quick", "quick 2"),
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO notifications
                 (customer_id, order_id, stage, channel, recipient, subject, body, event_position, created_at)
             VALUES ($1, $2, 'placed', 'email', 'ada@example.com', $3, $4, $5, now())",
        )
        .bind(Uuid::new_v4())
        .bind(order)
        .bind(subject)
        .bind(body)
        .bind(n as i64 + 1)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let gate = Gate {
        open: tokio::sync::watch::Sender::new(false),
        holding: AtomicUsize::new(0),
        sent: std::sync::Mutex::new(Vec::new()),
    };
    let status = |body: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM notifications WHERE body = $1")
                .bind(body)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };

    let delivering = deliver(&db.pool, &gate, 10);
    let meanwhile = async {
        // The quick order's messages go out while the slow one's first is
        // held back; its second waits behind it.
        eventually(
            "the quick order's messages to go out while the slow one's first is held",
            Duration::from_secs(30),
            async || status("quick 2").await == "sent" && gate.holding.load(Ordering::SeqCst) == 1,
        )
        .await;
        assert_eq!(status("quick 1").await, "sent");
        assert_eq!(status("slow 2").await, "pending");
        // Another sender meanwhile takes nothing: the slow order's second
        // message stays behind its first.
        let other = Gate {
            open: tokio::sync::watch::Sender::new(true),
            holding: AtomicUsize::new(0),
            sent: std::sync::Mutex::new(Vec::new()),
        };
        assert_eq!(deliver(&db.pool, &other, 10).await.unwrap(), 0);
        gate.open.send_replace(true);
    };
    let (sent, ()) = tokio::join!(delivering, meanwhile);
    assert_eq!(sent.unwrap(), 4);
    assert_eq!(
        *gate.sent.lock().unwrap(),
        vec!["quick 1", "quick 2", "slow 1", "slow 2"]
    );
    for body in ["slow 1", "slow 2", "quick 1", "quick 2"] {
        assert_eq!(status(body).await, "sent");
    }
    // Sent once: nothing is left to send.
    assert_eq!(deliver(&db.pool, &gate, 10).await.unwrap(), 0);
}
