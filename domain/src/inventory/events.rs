//! What happened to a product's stock. Every event carries the product id and
//! the on-hand and held counts after it, so a read model can set rather than
//! recompute them (available = on_hand_after - held_after).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{OrderId, ProductId, Quantity};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryEvent {
    StockReceived {
        product_id: ProductId,
        quantity: Quantity,
        reason: Option<String>,
        on_hand_after: i64,
        held_after: i64,
    },
    StockAdjusted {
        product_id: ProductId,
        delta: i64,
        reason: String,
        on_hand_after: i64,
        held_after: i64,
    },
    HoldPlaced {
        product_id: ProductId,
        owner_id: Uuid,
        quantity: Quantity,
        expires_at: Option<DateTime<Utc>>,
        on_hand_after: i64,
        held_after: i64,
    },
    HoldReleased {
        product_id: ProductId,
        owner_id: Uuid,
        quantity: Quantity,
        on_hand_after: i64,
        held_after: i64,
    },
    HoldExpired {
        product_id: ProductId,
        owner_id: Uuid,
        quantity: Quantity,
        expires_at: DateTime<Utc>,
        on_hand_after: i64,
        held_after: i64,
    },
    /// The held quantity left the stock for good: on hand and held both drop.
    HoldCommitted {
        product_id: ProductId,
        owner_id: Uuid,
        quantity: Quantity,
        on_hand_after: i64,
        held_after: i64,
    },
    StockDecremented {
        product_id: ProductId,
        order_id: OrderId,
        quantity: Quantity,
        on_hand_after: i64,
        held_after: i64,
    },
    /// What a cancelled, paid order had taken is back on hand.
    OrderStockReturned {
        product_id: ProductId,
        order_id: OrderId,
        quantity: Quantity,
        on_hand_after: i64,
        held_after: i64,
    },
    /// Many holds placed by one `PlaceHolds`, as many `HoldPlaced` would;
    /// the counts are those after all of them.
    HoldsPlaced {
        product_id: ProductId,
        holds: Vec<PlacedHold>,
        on_hand_after: i64,
        held_after: i64,
    },
    /// Many holds committed by one `CommitHolds`, as many `HoldCommitted`
    /// would; the counts are those after all of them.
    HoldsCommitted {
        product_id: ProductId,
        commits: Vec<CommittedHold>,
        on_hand_after: i64,
        held_after: i64,
    },
}

/// One hold of a `HoldsPlaced` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedHold {
    pub owner_id: Uuid,
    pub quantity: Quantity,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One hold of a `HoldsCommitted` event: what left the stock for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedHold {
    pub owner_id: Uuid,
    pub quantity: Quantity,
}

impl DomainEvent for InventoryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::StockReceived { .. } => "StockReceived",
            Self::StockAdjusted { .. } => "StockAdjusted",
            Self::HoldPlaced { .. } => "HoldPlaced",
            Self::HoldReleased { .. } => "HoldReleased",
            Self::HoldExpired { .. } => "HoldExpired",
            Self::HoldCommitted { .. } => "HoldCommitted",
            Self::StockDecremented { .. } => "StockDecremented",
            Self::OrderStockReturned { .. } => "OrderStockReturned",
            Self::HoldsPlaced { .. } => "HoldsPlaced",
            Self::HoldsCommitted { .. } => "HoldsCommitted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: stock counts, holds and the reasons staff give.
impl crate::personal::PersonalData for InventoryEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
