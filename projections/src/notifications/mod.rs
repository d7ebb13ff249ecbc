//! Notifications to customers: the outbox and its delivery.
//!
//! - `outbox`: the `notifications` projector, which queues a message per order
//!   stage in the `notifications` table.
//! - [`deliver`] / [`Delivery`]: sends pending messages through a
//!   [`Notifier`], retrying failures with backoff and giving up after
//!   [`MAX_ATTEMPTS`]; the notifier is the log ([`LogNotifier`]) or an SMTP
//!   relay ([`smtp::SmtpNotifier`]).
//!
//! Delivery claims due messages in a short transaction (their next attempt
//! moves [`CLAIM`] ahead, so no other sender takes them meanwhile), sends
//! them with no transaction open (a slow relay holds back no projector:
//! they read only below the oldest open transaction), and records each
//! outcome in a statement of its own. Independent orders' messages go out at
//! once, up to [`CONCURRENT_SENDS`]; one order's messages go one after the
//! other in the order they were queued, and a message waits while an earlier
//! one of its order is being sent or waits for a retry. Claims are taken one
//! process at a time (a transaction-level advisory lock), so several
//! processes can deliver without sending one order's messages out of order.
//! Delivery is at least once: a process that dies between sending a message
//! and recording it sends it again once the claim runs out.

pub mod outbox;
pub mod smtp;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use outbox::{NotificationsProjector, NAME};

use crate::runtime::BackgroundTask;

/// Attempts before a message is marked failed.
pub const MAX_ATTEMPTS: i32 = 8;

/// Orders whose messages are sent at once, at most.
pub const CONCURRENT_SENDS: usize = 16;

/// How long a claimed message is kept from other senders. Longer than
/// [`SEND_TIMEOUT`], so a message is sent twice only when its sender died.
pub const CLAIM: Duration = Duration::from_secs(120);

/// How long one message may take to send before it counts as failed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The advisory lock that takes claims one at a time ("shnd" in ASCII;
/// projectors and rebuilds have namespaces of their own).
const CLAIM_LOCK: i64 = 0x7368_6e64;

/// A message ready to go.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Outgoing {
    pub id: i64,
    pub customer_id: Uuid,
    /// The order it is about (none for a message about no order).
    pub order_id: Option<Uuid>,
    /// `email` or `sms`.
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// Sends a message by email or SMS.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    async fn send(&self, message: &Outgoing) -> Result<(), String>;
}

/// The default notifier: writes each message to the log (the recipient
/// masked), for development and for shops that send nothing yet.
pub struct LogNotifier;

/// `a***@example.com`, `***4567`: enough to tell recipients apart in a log.
fn masked(recipient: &str) -> String {
    match recipient.split_once('@') {
        Some((user, domain)) => {
            format!("{}***@{domain}", user.chars().next().unwrap_or('*'))
        }
        None => {
            let digits: Vec<char> = recipient.chars().collect();
            let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            format!("***{tail}")
        }
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    async fn send(&self, message: &Outgoing) -> Result<(), String> {
        tracing::info!(
            notification = message.id,
            channel = %message.channel,
            to = %masked(&message.recipient),
            subject = %message.subject,
            "notification sent (log)"
        );
        Ok(())
    }
}

/// Sends up to `batch` due messages (see the module doc); answers how many
/// were sent.
pub async fn deliver(
    pool: &PgPool,
    notifier: &dyn Notifier,
    batch: i64,
) -> Result<usize, sqlx::Error> {
    let due = claim(pool, batch).await?;
    // One queue per order, in the order the messages were queued.
    let mut orders: Vec<Vec<Outgoing>> = Vec::new();
    let mut queue_of: HashMap<Uuid, usize> = HashMap::new();
    for message in due {
        match message.order_id {
            Some(order_id) => {
                let queue = *queue_of.entry(order_id).or_insert_with(|| {
                    orders.push(Vec::new());
                    orders.len() - 1
                });
                orders[queue].push(message);
            }
            None => orders.push(vec![message]),
        }
    }
    let mut sending = futures::stream::iter(orders)
        .map(|messages| send_in_order(pool, notifier, messages))
        .buffer_unordered(CONCURRENT_SENDS);
    let mut sent = 0;
    let mut failure = None;
    // Every order's sending runs to its end, so no claim is left behind
    // without need.
    while let Some(outcome) = sending.next().await {
        match outcome {
            Ok(n) => sent += n,
            Err(e) => failure = Some(e),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}

/// Takes up to `batch` due messages for this sender: pending, due, and with
/// no earlier message of their order in the way.
async fn claim(pool: &PgPool, batch: i64) -> Result<Vec<Outgoing>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CLAIM_LOCK)
        .execute(&mut *tx)
        .await?;
    let mut due: Vec<Outgoing> = sqlx::query_as(
        "WITH due AS (
             SELECT n.id FROM notifications n
              WHERE n.status = 'pending' AND n.next_attempt_at <= now()
                AND NOT EXISTS (
                    SELECT 1 FROM notifications e
                     WHERE e.order_id = n.order_id AND e.id < n.id
                       AND e.status = 'pending' AND e.next_attempt_at > now())
              ORDER BY n.id
              LIMIT $1
              FOR UPDATE OF n SKIP LOCKED)
         UPDATE notifications t
            SET next_attempt_at = now() + make_interval(secs => $2)
           FROM due
          WHERE t.id = due.id
         RETURNING t.id, t.customer_id, t.order_id, t.channel, t.recipient, t.subject, t.body",
    )
    .bind(batch)
    .bind(CLAIM.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    due.sort_by_key(|m| m.id);
    Ok(due)
}

/// Sends one order's claimed messages one after the other; after a failure
/// the rest wait (their claim is given up) until that one is sent or given
/// up. Answers how many were sent.
async fn send_in_order(
    pool: &PgPool,
    notifier: &dyn Notifier,
    messages: Vec<Outgoing>,
) -> Result<usize, sqlx::Error> {
    let mut sent = 0;
    for (n, message) in messages.iter().enumerate() {
        let outcome = tokio::time::timeout(SEND_TIMEOUT, notifier.send(message))
            .await
            .unwrap_or_else(|_| Err(format!("not sent within {SEND_TIMEOUT:?}")));
        match outcome {
            Ok(()) => {
                sent += 1;
                sqlx::query(
                    "UPDATE notifications
                        SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL
                      WHERE id = $1",
                )
                .bind(message.id)
                .execute(pool)
                .await?;
            }
            Err(error) => {
                tracing::warn!(notification = message.id, %error, "notification not sent");
                // 2^attempts seconds later; failed for good after MAX_ATTEMPTS.
                sqlx::query(
                    "UPDATE notifications
                        SET attempts = attempts + 1, last_error = $2,
                            status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END,
                            next_attempt_at = now() + make_interval(secs => power(2, attempts + 1))
                      WHERE id = $1",
                )
                .bind(message.id)
                .bind(error)
                .bind(MAX_ATTEMPTS)
                .execute(pool)
                .await?;
                let rest: Vec<i64> = messages[n + 1..].iter().map(|m| m.id).collect();
                if !rest.is_empty() {
                    sqlx::query(
                        "UPDATE notifications SET next_attempt_at = now()
                          WHERE id = ANY($1) AND status = 'pending'",
                    )
                    .bind(&rest)
                    .execute(pool)
                    .await?;
                }
                break;
            }
        }
    }
    Ok(sent)
}

/// The delivery task, run next to the projectors: a batch whenever there is
/// one, otherwise a look every `interval`.
pub struct Delivery {
    pub pool: PgPool,
    pub notifier: Arc<dyn Notifier>,
    pub interval: Duration,
}

#[async_trait]
impl BackgroundTask for Delivery {
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        run_delivery(&self.pool, self.notifier.as_ref(), self.interval, shutdown).await
    }
}

async fn run_delivery(
    pool: &PgPool,
    notifier: &dyn Notifier,
    interval: Duration,
    shutdown: CancellationToken,
) {
    const BATCH: i64 = 100;
    loop {
        let pause = match deliver(pool, notifier, BATCH).await {
            Ok(sent) if sent as i64 == BATCH => Duration::ZERO,
            Ok(_) => interval,
            Err(e) => {
                tracing::warn!(error = %e, "notification delivery hit a database error; retrying");
                interval.max(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn recipients_are_masked_in_the_log() {
        assert_eq!(masked("ada@example.com"), "a***@example.com");
        assert_eq!(masked("+15551234567"), "***4567");
        assert_eq!(masked("12"), "***12");
    }
}

/// One message queued to a customer, as their data export shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentNotification {
    pub order_id: Option<uuid::Uuid>,
    pub stage: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every message queued to `customer`, newest first.
pub async fn of_customer(
    pool: &sqlx::PgPool,
    customer: uuid::Uuid,
) -> Result<Vec<SentNotification>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, stage, channel, recipient, subject, body, status, created_at, sent_at
           FROM notifications WHERE customer_id = $1 ORDER BY id DESC",
    )
    .bind(customer)
    .fetch_all(pool)
    .await
}
