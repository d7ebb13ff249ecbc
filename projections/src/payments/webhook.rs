//! What a verified gateway callback does in the shop.

use chrono::Utc;
use cqrs_es::AggregateError;
use domain::metadata::{Actor, CommandMetadata};
use domain::order::{Order, OrderCommand};
use domain::payment::{PaymentGateway, RefundRequest};
use domain::values::{Currency, Money};
use domain::wallet::{wallet_id, Wallet, WalletCommand};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::ChargeFor;
use crate::event_store::CommandBus;

/// A charge's outcome as the gateway posts it (the signed body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayCallback {
    /// Unique per callback: a replay carries the same id.
    pub id: String,
    /// `charge.succeeded` or `charge.failed`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub charge_id: String,
    /// The charge's reference (what it pays for).
    pub reference: String,
    pub amount: i64,
    pub currency: String,
    /// For a failed charge: `card_declined`, `insufficient_funds`, ...
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// What handling a callback came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Acted on now; the text says how (kept in `payment_webhook_events`).
    Handled(String),
    /// Seen before: nothing done again.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The callback makes no sense (answered 422; the gateway should not
    /// send it again).
    #[error("{0}")]
    Malformed(String),
    /// The database or event store failed (answered 503; the gateway
    /// retries).
    #[error("{0}")]
    Unavailable(String),
}

fn unavailable(e: impl std::fmt::Display) -> WebhookError {
    WebhookError::Unavailable(e.to_string())
}

/// Acts on `callback` once: a successful charge captures the order's payment
/// (or, when the order moved on meanwhile, is refunded at once) or credits a
/// wallet top-up; a failed charge fails the order's payment. A callback id
/// seen before does nothing. Every command sent is idempotent, so a callback
/// interrupted half-way is safe to receive again.
pub async fn handle_callback(
    pool: &PgPool,
    orders: &CommandBus<Order>,
    wallets: &CommandBus<Wallet>,
    gateway: &dyn PaymentGateway,
    callback: &GatewayCallback,
) -> Result<CallbackOutcome, WebhookError> {
    let seen: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM payment_webhook_events WHERE event_id = $1")
            .bind(&callback.id)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?;
    if seen.is_some() {
        return Ok(CallbackOutcome::Duplicate);
    }
    let succeeded = match callback.event_type.as_str() {
        "charge.succeeded" => true,
        "charge.failed" => false,
        other => return Err(WebhookError::Malformed(format!("unknown type {other:?}"))),
    };
    let currency = Currency::parse(&callback.currency)
        .map_err(|e| WebhookError::Malformed(format!("currency: {e}")))?;
    let amount = Money::new(callback.amount, currency)
        .map_err(|e| WebhookError::Malformed(format!("amount: {e}")))?;
    let charge_for = ChargeFor::parse(&callback.reference).ok_or_else(|| {
        WebhookError::Malformed(format!("unknown reference {:?}", callback.reference))
    })?;
    // The commands continue the conversation that caused the charge (an
    // order's: its placing request's correlation id), caused by this
    // callback.
    let correlation_id = match charge_for {
        ChargeFor::Order(order_id) => crate::event_store::lookups::first_event(
            pool,
            <Order as cqrs_es::Aggregate>::TYPE,
            &order_id.to_string(),
        )
        .await
        .map_err(unavailable)?
        .and_then(|first| {
            first
                .metadata
                .get(domain::metadata::CORRELATION_ID)?
                .as_str()
                .map(str::to_string)
        }),
        ChargeFor::TopUp { .. } => None,
    }
    .unwrap_or_else(|| callback.id.clone());
    let meta = |command: &str| {
        CommandMetadata::new(
            Actor::System("payments".to_string()),
            correlation_id.clone(),
            command,
        )
        .caused_by(format!("callback-{}", callback.id))
    };
    let void = |reason: String, amount: Money| async move {
        // The money was taken but cannot be used: give it back at once.
        let request = RefundRequest {
            reference: format!("void:{}", callback.reference),
            charge_reference: callback.reference.clone(),
            amount,
        };
        gateway.refund(request).await.map_err(unavailable)?;
        Ok::<_, WebhookError>(format!("refunded: {reason}"))
    };

    let outcome = match (charge_for, succeeded) {
        (ChargeFor::Order(order_id), true) => {
            let command = OrderCommand::CapturePayment {
                payment_id: callback.charge_id.clone(),
                amount: amount.clone(),
                now: Utc::now(),
            };
            match orders
                .execute_with_retry(&order_id.to_string(), command, &meta("CapturePayment"))
                .await
            {
                Ok(_) => "captured".to_string(),
                Err(AggregateError::UserError(e)) => {
                    tracing::info!(%order_id, reason = %e, "a charge the order cannot take; refunding it");
                    void(e.to_string(), amount.clone()).await?
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        (ChargeFor::Order(order_id), false) => {
            let reason = callback
                .failure_reason
                .clone()
                .unwrap_or_else(|| "payment_failed".to_string());
            let command = OrderCommand::FailPayment {
                reason: reason.clone(),
                now: Utc::now(),
            };
            match orders
                .execute_with_retry(&order_id.to_string(), command, &meta("FailPayment"))
                .await
            {
                Ok(_) => format!("failed: {reason}"),
                Err(AggregateError::UserError(e)) => format!("refused: {e}"),
                Err(e) => return Err(unavailable(e)),
            }
        }
        (
            ChargeFor::TopUp {
                customer_id,
                top_up_id,
            },
            true,
        ) => {
            let command = WalletCommand::Credit {
                customer_id,
                reference: format!("topup:{top_up_id}"),
                amount: amount.clone(),
            };
            match wallets
                .execute_with_retry(
                    &wallet_id(customer_id).to_string(),
                    command,
                    &meta("CreditWallet"),
                )
                .await
            {
                Ok(_) => "credited".to_string(),
                Err(AggregateError::UserError(e)) => void(e.to_string(), amount.clone()).await?,
                Err(e) => return Err(unavailable(e)),
            }
        }
        (ChargeFor::TopUp { .. }, false) => format!(
            "top-up failed: {}",
            callback
                .failure_reason
                .as_deref()
                .unwrap_or("payment_failed")
        ),
    };
    sqlx::query(
        "INSERT INTO payment_webhook_events (event_id, event_type, reference, outcome)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&callback.id)
    .bind(&callback.event_type)
    .bind(&callback.reference)
    .bind(&outcome)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(CallbackOutcome::Handled(outcome))
}
