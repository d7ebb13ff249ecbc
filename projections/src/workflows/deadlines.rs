//! Deadlines: time-based workflow steps, kept in the `deadlines` table.
//!
//! A workflow schedules a deadline in a statement of its own before it acts
//! on the event that calls for it; `(kind, aggregate_id)` is unique, so
//! scheduling it again (the event acted on again after a crash) changes
//! nothing. The poller takes due
//! deadlines one at a time with `FOR UPDATE SKIP LOCKED`, runs the command
//! they stand for and marks them done in that same transaction: several
//! processes can poll at once, and a deadline whose run was interrupted is
//! taken again (its commands are idempotent).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use domain::inventory::{InventoryCommand, InventoryItem};
use domain::metadata::{Actor, CommandMetadata};
use domain::order::{Order, OrderCommand};
use domain::values::ProductId;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::event_store::CommandBus;
use crate::projector::ApplyError;
use crate::runtime::{BackgroundTask, StepError};

/// An unpaid order's time is up: `Expire` (cancelled with `payment_timeout`
/// when still pending). `aggregate_id` is the order id.
pub const PAYMENT_TIMEOUT: &str = "payment_timeout";

/// A hold's time is up: `ExpireHold` (dropped when still open).
/// `aggregate_id` is [`hold_deadline_key`]; scheduled by the hold expiry
/// projector ([`super::holds`]).
pub const HOLD_EXPIRY: &str = "hold_expiry";

/// The deadline's key (its `aggregate_id`): the product, the owner and the
/// expiry, so a hold given back and placed again by the same owner gets a
/// deadline of its own.
pub fn hold_deadline_key(
    product_id: ProductId,
    owner_id: Uuid,
    expires_at: DateTime<Utc>,
) -> String {
    format!(
        "{}/{owner_id}/{}",
        product_id.as_uuid(),
        expires_at.timestamp_micros()
    )
}

/// The product and owner of a deadline key ([`hold_deadline_key`]).
pub fn parse_hold_deadline_key(key: &str) -> Option<(ProductId, Uuid)> {
    let mut parts = key.split('/');
    let product = Uuid::parse_str(parts.next()?).ok()?;
    let owner = Uuid::parse_str(parts.next()?).ok()?;
    Some((ProductId(product), owner))
}

/// Deadlines run per poll before the poller looks at shutdown again.
const BATCH: usize = 100;

/// Schedules deadline `kind` for `aggregate_id` at `due_at`. Already
/// scheduled: nothing changes.
pub async fn schedule(
    conn: impl sqlx::PgExecutor<'_>,
    kind: &str,
    aggregate_id: &str,
    due_at: DateTime<Utc>,
    payload: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO deadlines (kind, aggregate_id, due_at, payload) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, aggregate_id) DO NOTHING",
    )
    .bind(kind)
    .bind(aggregate_id)
    .bind(due_at)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs due deadlines until cancelled.
pub struct DeadlinePoller {
    pool: PgPool,
    orders: CommandBus<Order>,
    inventory: CommandBus<InventoryItem>,
    interval: Duration,
}

impl DeadlinePoller {
    pub fn new(pool: PgPool, interval: Duration) -> Self {
        Self {
            orders: CommandBus::new(pool.clone(), ()),
            inventory: CommandBus::new(pool.clone(), ()),
            pool,
            interval,
        }
    }

    /// Runs every deadline due now, one transaction each. Returns how many
    /// ran; stops at the first error that passes (the deadline stays due).
    pub async fn run_due(&self) -> Result<usize, StepError> {
        let mut ran = 0;
        while ran < BATCH {
            let mut tx = self.pool.begin().await?;
            let due: Option<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(
                "SELECT id, kind, aggregate_id, due_at FROM deadlines
                  WHERE done_at IS NULL AND due_at <= now()
                  ORDER BY due_at
                  LIMIT 1
                  FOR UPDATE SKIP LOCKED",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, kind, aggregate_id, due_at)) = due else {
                return Ok(ran);
            };
            let outcome = match self.run_one(&kind, &aggregate_id, due_at).await {
                Ok(outcome) => outcome,
                Err(ApplyError::Database(e)) => return Err(e.into()),
                Err(ApplyError::Retry(reason)) => return Err(StepError::Retry(reason)),
                // Nothing will make it succeed later: record why and move on.
                Err(ApplyError::Poison(reason)) => {
                    tracing::error!(deadline = id, %kind, %aggregate_id, %reason, "deadline cannot run");
                    reason
                }
            };
            sqlx::query("UPDATE deadlines SET done_at = now(), outcome = $2 WHERE id = $1")
                .bind(id)
                .bind(&outcome)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            ran += 1;
        }
        Ok(ran)
    }

    /// Runs one deadline; answers its outcome. The database's clock said it
    /// is due, so its commands take `now` no earlier than `due_at`, whatever
    /// this process's clock says.
    #[tracing::instrument(skip(self))]
    async fn run_one(
        &self,
        kind: &str,
        aggregate_id: &str,
        due_at: DateTime<Utc>,
    ) -> Result<String, ApplyError> {
        let now = Utc::now().max(due_at);
        match kind {
            PAYMENT_TIMEOUT => {
                let meta = CommandMetadata::new(
                    Actor::System(super::FULFILMENT.to_string()),
                    format!("deadline-{kind}-{aggregate_id}"),
                    "Expire",
                );
                let command = OrderCommand::Expire { now };
                match self
                    .orders
                    .execute_with_retry(aggregate_id, command, &meta)
                    .await
                {
                    Ok(_) => Ok("ok".to_string()),
                    Err(AggregateError::UserError(e)) => Ok(format!("refused: {e}")),
                    Err(e) => Err(super::infrastructure(e)),
                }
            }
            HOLD_EXPIRY => {
                let Some((product_id, owner_id)) = parse_hold_deadline_key(aggregate_id) else {
                    return Err(ApplyError::Poison(format!(
                        "not a hold's deadline: {aggregate_id:?}"
                    )));
                };
                let meta = CommandMetadata::new(
                    Actor::System(super::HOLD_EXPIRY_NAME.to_string()),
                    format!("deadline-{kind}-{aggregate_id}"),
                    "ExpireHold",
                );
                let command = InventoryCommand::ExpireHold { owner_id, now };
                match self
                    .inventory
                    .execute_with_retry(&product_id.to_string(), command, &meta)
                    .await
                {
                    Ok(_) => Ok("ok".to_string()),
                    Err(AggregateError::UserError(e)) => Ok(format!("refused: {e}")),
                    Err(e) => Err(super::infrastructure(e)),
                }
            }
            other => Err(ApplyError::Poison(format!(
                "unknown deadline kind {other:?}"
            ))),
        }
    }
}

#[async_trait]
impl BackgroundTask for DeadlinePoller {
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = self.interval;
        loop {
            let wait = match self.run_due().await {
                Ok(ran) if ran >= BATCH => Duration::ZERO,
                Ok(_) => {
                    backoff = self.interval;
                    self.interval
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "the deadline poller hit an error; retrying");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    wait
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_deadline_key_names_the_product_and_the_owner() {
        let product = ProductId(Uuid::from_u128(1));
        let owner = Uuid::from_u128(2);
        let key = hold_deadline_key(product, owner, Utc::now());
        assert_eq!(parse_hold_deadline_key(&key), Some((product, owner)));
        assert_eq!(parse_hold_deadline_key("nope"), None);
    }
}
