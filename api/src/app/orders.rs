//! Reading one order from the event store, now or as it was, and who may
//! see it. Someone else's order is "not found", never "forbidden", so that
//! order ids cannot be probed.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::metadata::Role;
use domain::order::{Order, OrderError};
use projections::event_store::{load_aggregate, streams};
use uuid::Uuid;

use super::{use_case_error, StoreError};
use crate::app::state::AppState;

/// Who may read any order (besides its owner).
pub const READERS: &[Role] = &[Role::Admin, Role::Auditor];

/// Why an order cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadOrderError {
    /// There is no such order (yet), or it is not the caller's to see.
    #[error(transparent)]
    NotFound(OrderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LoadOrderError {
    pub fn not_found() -> Self {
        LoadOrderError::NotFound(OrderError::NotFound)
    }
}

impl From<sqlx::Error> for LoadOrderError {
    fn from(e: sqlx::Error) -> Self {
        LoadOrderError::Store(e.into())
    }
}

use_case_error!(LoadOrderError {
    Self::NotFound(e) => domain(e: OrderError where NotFound),
    Self::Store(e) => nested(e: StoreError),
});

/// Loads an order, optionally as it was: up to sequence `version`, and/or
/// from the events recorded at or before `as_of`. Answers the order and the
/// sequence of its last applied event; not found when the order did not
/// exist (yet).
pub async fn load_order(
    state: &AppState,
    id: Uuid,
    as_of: Option<DateTime<Utc>>,
    version: Option<i64>,
) -> Result<(Order, i64), LoadOrderError> {
    let sequence =
        streams::sequence_at(&state.pool, Order::TYPE, &id.to_string(), as_of, version).await?;
    let sequence = sequence.ok_or_else(LoadOrderError::not_found)?;
    let order = load_aggregate::<Order>(&state.pool, &id.to_string(), Some(sequence))
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => LoadOrderError::NotFound(e),
            Err(e) => LoadOrderError::Store(e),
        })?
        .filter(Order::is_placed)
        .ok_or_else(LoadOrderError::not_found)?;
    Ok((order, sequence))
}

/// Whether the user `user_id` with `role` may see `order`: its owner,
/// admins and auditors.
pub fn may_read(user_id: Uuid, role: Role, order: &Order) -> bool {
    order.customer_id().as_uuid() == user_id || READERS.contains(&role)
}

/// The current order, or not found when it does not exist or is not the
/// user's to see.
pub async fn visible_order(
    state: &AppState,
    user_id: Uuid,
    role: Role,
    id: Uuid,
) -> Result<Order, LoadOrderError> {
    let (order, _) = load_order(state, id, None, None).await?;
    if may_read(user_id, role, &order) {
        Ok(order)
    } else {
        Err(LoadOrderError::not_found())
    }
}
