//! Facts told by other services (see `crate::inbound`): a carrier's
//! delivery and a warehouse's receipt, each turned into the shop's command.
//!
//! Both are idempotent: a delivery moves an order to `delivered` once (the
//! order already delivered answers no change), and a receipt's command id is
//! made from its `receipt_id`, so the same receipt adds stock once however
//! often it is delivered.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::inventory::{InventoryCommand, InventoryItem};
use domain::metadata::{Actor, CommandMetadata};
use domain::order::{OrderCommand, OrderStatus};
use domain::values::{ProductId, Quantity};
use projections::event_store::lookups;
use uuid::Uuid;

use super::products::{existing_product, FindProductError};
use super::StoreError;
use crate::app::state::AppState;

/// The system actor of the commands inbound facts cause.
pub const INBOUND_ACTOR: &str = "inbound";

/// Why a fact could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum FactError {
    /// The fact names something the shop does not know, or breaks a rule
    /// (a delivery of a cancelled order): it will not apply later either,
    /// unless what it names appears meanwhile.
    #[error("{0}")]
    Refused(String),
    /// The store failed; try again later.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn meta(command: &str, correlation: &str) -> CommandMetadata {
    CommandMetadata::new(
        Actor::System(INBOUND_ACTOR.to_string()),
        correlation.to_string(),
        command,
    )
}

/// The carrier delivered the parcel with `tracking_number`: its order is
/// delivered. Answers the position of the last event written (or the
/// order's latest when it was delivered already).
pub async fn record_delivery(
    state: &AppState,
    tracking_number: &str,
    delivered_at: DateTime<Utc>,
    correlation: &str,
) -> Result<i64, FactError> {
    let order_id = lookups::order_shipped_with(&state.pool, tracking_number)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| {
            FactError::Refused(format!(
                "no order shipped with the tracking number {tracking_number}"
            ))
        })?;
    let command = OrderCommand::ChangeStatus {
        to: OrderStatus::Delivered,
        tracking_number: None,
        now: delivered_at,
    };
    let committed = state
        .orders
        .execute_with_retry(&order_id, command, &meta("RecordDelivery", correlation))
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(refusal) => FactError::Refused(refusal.to_string()),
            Err(e) => FactError::Store(e),
        })?;
    Ok(committed.position)
}

/// The warehouse received `quantity` of `product_id` under `receipt_id`:
/// the stock on hand grows, once per receipt.
pub async fn record_receipt(
    state: &AppState,
    receipt_id: &str,
    product_id: Uuid,
    quantity: i64,
    correlation: &str,
) -> Result<i64, FactError> {
    let quantity =
        Quantity::new(quantity).map_err(|e| FactError::Refused(format!("quantity: {e}")))?;
    existing_product(state, ProductId(product_id))
        .await
        .map_err(|e| match e {
            FindProductError::NotFound => {
                FactError::Refused(format!("there is no product {product_id}"))
            }
            FindProductError::Store(e) => FactError::Store(e),
        })?;
    let command_id = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("shop.inbound.warehouse.received:{receipt_id}").as_bytes(),
    );
    let aggregate_id = product_id.to_string();
    if let Some(position) = lookups::position_of_command(
        &state.pool,
        InventoryItem::TYPE,
        &aggregate_id,
        &command_id.to_string(),
    )
    .await
    .map_err(StoreError::from)?
    {
        return Ok(position);
    }
    let mut meta = meta("ReceiveStock", correlation);
    meta.command_id = command_id;
    let command = InventoryCommand::Receive {
        product_id: ProductId(product_id),
        quantity,
        reason: Some(format!("warehouse receipt {receipt_id}")),
    };
    let committed = state
        .inventory
        .execute_with_retry(&aggregate_id, command, &meta)
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(refusal) => FactError::Refused(refusal.to_string()),
            Err(e) => FactError::Store(e),
        })?;
    Ok(committed.position)
}
