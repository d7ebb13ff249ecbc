//! Notifications to customers: the outbox and its delivery.
//!
//! - `outbox`: the `notifications` projector, which queues a message per order
//!   stage in the `notifications` table.
//! - [`deliver`] / [`Delivery`]: sends pending messages through a
//!   [`Notifier`], several processes at once if need be (`FOR UPDATE SKIP
//!   LOCKED`), retrying failures with backoff and giving up after
//!   [`MAX_ATTEMPTS`]; the notifier is the log ([`LogNotifier`]) or an SMTP
//!   relay ([`smtp::SmtpNotifier`]).

pub mod outbox;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use outbox::{NotificationsProjector, NAME};

use crate::runtime::BackgroundTask;

/// Attempts before a message is marked failed.
pub const MAX_ATTEMPTS: i32 = 8;

/// A message ready to go.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Outgoing {
    pub id: i64,
    pub customer_id: Uuid,
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

/// Sends up to `batch` due messages; answers how many were sent.
pub async fn deliver(
    pool: &PgPool,
    notifier: &dyn Notifier,
    batch: i64,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due: Vec<Outgoing> = sqlx::query_as(
        "SELECT id, customer_id, channel, recipient, subject, body FROM notifications
          WHERE status = 'pending' AND next_attempt_at <= now()
          ORDER BY id
          LIMIT $1
          FOR UPDATE SKIP LOCKED",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    let mut sent = 0;
    for message in &due {
        match notifier.send(message).await {
            Ok(()) => {
                sent += 1;
                sqlx::query(
                    "UPDATE notifications
                        SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL
                      WHERE id = $1",
                )
                .bind(message.id)
                .execute(&mut *tx)
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
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
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
