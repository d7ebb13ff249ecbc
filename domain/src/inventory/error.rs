//! Why an inventory command was refused.

use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

use crate::error::{DomainError, ErrorKind};
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

impl DomainError for InventoryError {
    fn code(&self) -> String {
        match self {
            Self::WrongProduct { .. } => "wrong_product",
            Self::NotStocked => "inventory_item_not_found",
            Self::ZeroAdjustment => "zero_adjustment",
            Self::InvalidReason(_) => "invalid_reason",
            Self::AvailableWouldGoNegative { .. } => "available_would_go_negative",
            Self::InsufficientStock { .. } => "insufficient_stock",
            Self::HoldConflict { .. } => "hold_conflict",
            Self::HoldExpiryInPast { .. } => "hold_expiry_in_past",
            Self::HoldNotExpired { .. } => "hold_not_expired",
            Self::NoSuchHold { .. } => "no_such_hold",
            Self::Overflow => "stock_overflow",
        }
        .to_string()
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotStocked | Self::NoSuchHold { .. } => ErrorKind::NotFound,
            Self::AvailableWouldGoNegative { .. }
            | Self::InsufficientStock { .. }
            | Self::HoldConflict { .. }
            | Self::HoldNotExpired { .. }
            // The stock on hand would leave the range it is counted in.
            | Self::Overflow => ErrorKind::Conflict,
            Self::WrongProduct { .. }
            | Self::ZeroAdjustment
            | Self::InvalidReason(_)
            | Self::HoldExpiryInPast { .. } => ErrorKind::Rule,
        }
    }
}
