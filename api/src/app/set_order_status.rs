//! Changing an order's status (an admin's fulfilment step), booking the
//! carrier when it ships without a tracking number.

use chrono::Utc;
use domain::order::{OrderCommand, OrderError, OrderStatus};
use domain::shipping::{CarrierError, ShipmentRequest};
use uuid::Uuid;

use super::orders::{load_order, LoadOrderError};
use super::{use_case_error, Caller, StoreError};
use crate::app::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum SetOrderStatusError {
    #[error(transparent)]
    Order(OrderError),
    /// The carrier refused the shipment or did not answer; nothing changed.
    #[error(transparent)]
    Carrier(CarrierError),
    #[error(transparent)]
    Load(#[from] LoadOrderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(SetOrderStatusError {
    Self::Order(e) => domain(e: OrderError),
    Self::Carrier(e) => domain(e: CarrierError),
    Self::Load(e) => nested(e: LoadOrderError),
    Self::Store(e) => nested(e: StoreError),
});

/// Moves the order `id` to `to` (only legal transitions); answers the
/// position of the last event written. A blank tracking number is none.
pub async fn set_order_status(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    to: OrderStatus,
    tracking_number: Option<String>,
) -> Result<i64, SetOrderStatusError> {
    let meta = caller.meta("ChangeOrderStatus");
    let tracking_number = tracking_number.filter(|t| !t.trim().is_empty());
    let command = match (to, tracking_number) {
        (OrderStatus::Shipped, None) => book_shipment(state, id).await?,
        (to, tracking_number) => OrderCommand::ChangeStatus {
            to,
            tracking_number,
            now: Utc::now(),
        },
    };
    let committed = state
        .orders
        .execute_with_retry(&id.to_string(), command, &meta)
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => SetOrderStatusError::Order(e),
            Err(e) => SetOrderStatusError::Store(e),
        })?;
    Ok(committed.position)
}

/// `shipped` without a tracking number: the carrier books the shipment and
/// issues one, recorded with the carrier's name on `OrderShipped`.
///
/// Booked here, synchronously, in the admin's request: the admin's action is
/// the cause, the answer can say at once whether it worked, and a failed
/// booking changes nothing. Only an order that may ship now is booked; an
/// order already shipped, or one that may not ship, goes through
/// `ChangeStatus` as before (no change, or the illegal transition). The
/// carrier answers the same tracking number for the same order, so a retried
/// request books no second parcel.
async fn book_shipment(state: &AppState, id: Uuid) -> Result<OrderCommand, SetOrderStatusError> {
    let (order, _) = load_order(state, id, None, None).await?;
    let pass_through = OrderCommand::ChangeStatus {
        to: OrderStatus::Shipped,
        tracking_number: None,
        now: Utc::now(),
    };
    let Some(order_id) = order.order_id() else {
        return Ok(pass_through);
    };
    if !domain::order::legal_transition(order.status(), OrderStatus::Shipped) {
        return Ok(pass_through);
    }
    let request = ShipmentRequest {
        order_id,
        address: order.shipping_address().clone(),
    };
    let shipment = state
        .carrier
        .book(&request)
        .await
        .map_err(SetOrderStatusError::Carrier)?;
    Ok(OrderCommand::Ship {
        tracking_number: shipment.tracking_number,
        carrier: Some(shipment.carrier),
        now: Utc::now(),
    })
}
