//! Cancelling an order: by its owner (reason `customer_request`) or by an
//! admin (`admin`), refused once it has shipped. An order cancelled before
//! its payment was captured gives its coupon use back (idempotent per order,
//! like the redemption; stock and refunds are the fulfilment workflow's
//! part).

use chrono::Utc;
use domain::coupon::CouponCommand;
use domain::metadata::Role;
use domain::order::{CancellationReason, OrderCommand, OrderError};
use domain::values::OrderId;
use uuid::Uuid;

use super::orders::{load_order, visible_order, LoadOrderError};
use super::{use_case_error, Caller, StoreError};
use crate::app::state::AppState;

/// Who may cancel any order (besides its owner).
pub const CANCELLERS: &[Role] = &[Role::Admin];

#[derive(Debug, thiserror::Error)]
pub enum CancelOrderError {
    /// An auditor may read the order but not change it.
    #[error("Your role may not do this.")]
    Forbidden,
    #[error(transparent)]
    Order(OrderError),
    #[error(transparent)]
    Load(#[from] LoadOrderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(CancelOrderError {
    Self::Forbidden => refused(Forbidden, super::FORBIDDEN),
    Self::Order(e) => domain(e: OrderError),
    Self::Load(e) => nested(e: LoadOrderError),
    Self::Store(e) => nested(e: StoreError),
});

/// Cancels the order `id` for the signed-in `user_id` with `role`; answers
/// the position of the last event written.
pub async fn cancel_order(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
    role: Role,
    id: Uuid,
) -> Result<i64, CancelOrderError> {
    let order = visible_order(state, user_id, role, id).await?;
    let reason = if order.customer_id().as_uuid() == user_id {
        CancellationReason::CustomerRequest
    } else if CANCELLERS.contains(&role) {
        CancellationReason::Admin
    } else {
        return Err(CancelOrderError::Forbidden);
    };
    let meta = caller.meta("CancelOrder");
    let command = OrderCommand::Cancel {
        reason,
        now: Utc::now(),
    };
    let mut position = state
        .orders
        .execute_with_retry(&id.to_string(), command, &meta)
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => CancelOrderError::Order(e),
            Err(e) => CancelOrderError::Store(e),
        })?
        .position;

    let (order, _) = load_order(state, id, None, None).await?;
    if let (Some(coupon_id), true) = (order.coupon_id(), order.captured().minor == 0) {
        let release_meta = caller
            .meta("ReleaseCouponRedemption")
            .caused_by(meta.command_id.to_string());
        let release = CouponCommand::ReleaseRedemption {
            order_id: OrderId(id),
        };
        match state
            .coupons
            .execute_with_retry(&coupon_id.to_string(), release, &release_meta)
            .await
        {
            Ok(c) if c.wrote_events => position = position.max(c.position),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(order_id = %id, error = %e, "order cancelled, coupon use not given back");
            }
        }
    }
    Ok(position)
}
