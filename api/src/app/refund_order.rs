//! Refunding (part of) a paid order.

use chrono::Utc;
use domain::order::{OrderCommand, OrderError};
use domain::values::Money;
use uuid::Uuid;

use super::{use_case_error, Caller, StoreError};
use crate::app::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum RefundOrderError {
    #[error(transparent)]
    Order(OrderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(RefundOrderError {
    Self::Order(e) => domain(e: OrderError),
    Self::Store(e) => nested(e: StoreError),
});

/// Refunds `amount` minor units (absent: everything not yet refunded) of
/// the order `id`; answers the position of the last event written.
pub async fn refund_order(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    amount: Option<i64>,
    reason: String,
) -> Result<i64, RefundOrderError> {
    let amount = amount
        .map(|minor| {
            Money::new(minor, state.currency.clone())
                .map_err(|_| RefundOrderError::Order(OrderError::InvalidRefundAmount))
        })
        .transpose()?;
    let command = OrderCommand::Refund {
        amount,
        reason,
        now: Utc::now(),
    };
    let committed = state
        .orders
        .execute_with_retry(&id.to_string(), command, &caller.meta("RefundOrder"))
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => RefundOrderError::Order(e),
            Err(e) => RefundOrderError::Store(e),
        })?;
    Ok(committed.position)
}
