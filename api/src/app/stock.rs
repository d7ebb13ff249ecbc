//! Stock commands on one product's inventory item (an admin's arrivals,
//! corrections, holds, releases and decrements): the product must exist,
//! and a hold lasts [`DEFAULT_HOLD_TTL_SECONDS`] unless asked otherwise, at
//! most [`MAX_HOLD_TTL_SECONDS`]. Locking stock for a whole order is
//! `lock_stock`.

use chrono::{DateTime, Duration, Utc};
use domain::inventory::{InventoryCommand, InventoryError, InventoryItem};
use domain::values::{derived_id, ProductId, Quantity};
use uuid::Uuid;

use super::products::{existing_product, FindProductError};
use super::refusals::{InvalidQuantity, InvalidTtl};
use super::{use_case_error, Caller, StoreError};
use crate::app::state::AppState;

/// A hold without a time to live lasts this long.
pub const DEFAULT_HOLD_TTL_SECONDS: i64 = 15 * 60;
/// The longest hold one can ask for: a week.
pub const MAX_HOLD_TTL_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error(transparent)]
    InvalidQuantity(InvalidQuantity),
    #[error(transparent)]
    InvalidTtl(InvalidTtl),
    #[error(transparent)]
    Product(#[from] FindProductError),
    #[error(transparent)]
    Inventory(InventoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(StockError {
    Self::InvalidQuantity(e) => nested(e: InvalidQuantity),
    Self::InvalidTtl(e) => nested(e: InvalidTtl),
    Self::Product(e) => nested(e: FindProductError),
    Self::Inventory(e) => domain(e: InventoryError),
    Self::Store(e) => nested(e: StoreError),
});

/// A quantity of stock: 1 to 1,000,000.
pub fn quantity(value: i64) -> Result<Quantity, StockError> {
    Quantity::new(value).map_err(|e| StockError::InvalidQuantity(InvalidQuantity(e.to_string())))
}

/// Runs `command` (named `name` in its metadata) on the stock of the
/// existing product `product_id`; answers the position of the last event
/// written. Every inventory command is decided on the item's current state,
/// so deciding again after a concurrent change is safe.
pub async fn run(
    state: &AppState,
    caller: &Caller,
    product_id: Uuid,
    name: &str,
    command: InventoryCommand,
) -> Result<i64, StockError> {
    existing_product(state, ProductId(product_id)).await?;
    let committed = state
        .inventory
        .execute_with_retry(&product_id.to_string(), command, &caller.meta(name))
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => StockError::Inventory(e),
            Err(e) => StockError::Store(e),
        })?;
    Ok(committed.position)
}

/// A hold as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub hold_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
    pub position: i64,
}

/// Holds `quantity` of the product for `owner_id` for `ttl_seconds`
/// (default [`DEFAULT_HOLD_TTL_SECONDS`]). A repeat for the same owner keeps
/// the first expiry, which the answer shows.
pub async fn place_hold(
    state: &AppState,
    caller: &Caller,
    product_id: Uuid,
    owner_id: Uuid,
    quantity: i64,
    ttl_seconds: Option<i64>,
) -> Result<Hold, StockError> {
    let ttl = ttl_seconds.unwrap_or(DEFAULT_HOLD_TTL_SECONDS);
    if !(1..=MAX_HOLD_TTL_SECONDS).contains(&ttl) {
        return Err(StockError::InvalidTtl(InvalidTtl(format!(
            "ttl_seconds must be between 1 and {MAX_HOLD_TTL_SECONDS}."
        ))));
    }
    let now = Utc::now();
    let command = InventoryCommand::PlaceHold {
        owner_id,
        quantity: self::quantity(quantity)?,
        expires_at: Some(now + Duration::seconds(ttl)),
        now,
    };
    let position = run(state, caller, product_id, "PlaceHold", command).await?;
    let item: InventoryItem = state
        .inventory
        .load(&product_id.to_string())
        .await
        .map_err(super::load_error)?
        .unwrap_or_default();
    Ok(Hold {
        hold_id: derived_id("hold", &format!("{product_id}:{owner_id}")),
        expires_at: item.hold(owner_id).and_then(|h| h.expires_at),
        position,
    })
}
