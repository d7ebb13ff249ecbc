//! Why an inventory command was refused.

use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

use crate::values::{ProductId, ValueError};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InventoryError {
    #[error("this inventory item tracks product {expected}, not {got}")]
    WrongProduct { expected: ProductId, got: ProductId },
    #[error("no stock has been received for this product yet")]
    NotStocked,
    #[error("an adjustment must change the stock")]
    ZeroAdjustment,
    #[error("invalid reason: {0}")]
    InvalidReason(ValueError),
    #[error("adjusting by {delta} would take available stock ({available}) below zero")]
    AvailableWouldGoNegative { delta: i64, available: i64 },
    #[error("insufficient stock: {requested} requested, {available} available")]
    InsufficientStock { requested: u32, available: i64 },
    #[error("owner {owner_id} already holds {existing}, cannot hold {requested} instead")]
    HoldConflict {
        owner_id: Uuid,
        existing: u32,
        requested: u32,
    },
    #[error("a hold cannot expire at {expires_at}, which is not after {now}")]
    HoldExpiryInPast {
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("the hold of owner {owner_id} is not due to expire")]
    HoldNotExpired {
        owner_id: Uuid,
        expires_at: Option<DateTime<Utc>>,
    },
    #[error("owner {owner_id} holds no stock of this product")]
    NoSuchHold { owner_id: Uuid },
    #[error("stock count out of range")]
    Overflow,
}

crate::error_codes!(InventoryError {
    Self::WrongProduct { .. } => Rule "wrong_product",
    Self::NotStocked => NotFound "inventory_item_not_found",
    Self::ZeroAdjustment => Rule "zero_adjustment",
    Self::InvalidReason(_) => Rule "invalid_reason",
    Self::AvailableWouldGoNegative { .. } => Conflict "available_would_go_negative",
    Self::InsufficientStock { .. } => Conflict "insufficient_stock",
    Self::HoldConflict { .. } => Conflict "hold_conflict",
    Self::HoldExpiryInPast { .. } => Rule "hold_expiry_in_past",
    Self::HoldNotExpired { .. } => Conflict "hold_not_expired",
    Self::NoSuchHold { .. } => NotFound "no_such_hold",
    // The stock on hand would leave the range it is counted in.
    Self::Overflow => Conflict "stock_overflow",
});
