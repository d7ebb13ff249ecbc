//! What can be asked of a product's inventory item.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{OrderId, ProductId, Quantity};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryCommand {
    /// Goods arrived. The first receipt starts tracking the product;
    /// `reason` is optional (trimmed, blank is none, at most 500 characters).
    Receive {
        product_id: ProductId,
        quantity: Quantity,
        reason: Option<String>,
    },
    /// Correct the counted stock by `delta` (non-zero) with a required
    /// reason. Refused if available stock would go below zero.
    Adjust { delta: i64, reason: String },
    /// Reserve `quantity` for `owner_id` (an order id for the checkout lock),
    /// optionally until `expires_at` (which must be after `now`). The same
    /// owner and quantity again: no event; another quantity: a conflict.
    PlaceHold {
        owner_id: Uuid,
        quantity: Quantity,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
    /// Give a hold back. No hold: no event.
    ReleaseHold { owner_id: Uuid },
    /// Drop a hold whose time is up (`expires_at <= now`). No hold: no
    /// event; not yet due (or without expiry): refused.
    ExpireHold { owner_id: Uuid, now: DateTime<Utc> },
    /// Turn a hold into a permanent decrement (the order was paid). Already
    /// committed for this owner: no event.
    CommitHold { owner_id: Uuid },
    /// Take stock away for an order without a prior hold. Once per order:
    /// the same order again is no event.
    Decrement {
        order_id: OrderId,
        quantity: Quantity,
    },
    /// Put back on hand what the order took for good (its committed hold or
    /// its decrement): the order was cancelled after it was paid. Nothing
    /// taken for that order, or already put back: no event.
    ReturnOrderStock { order_id: OrderId },
    /// Many holds at once (many orders meeting at one product), decided one
    /// after the other in the given order against the running state, with
    /// the rules of `PlaceHold`: an owner that already holds or has
    /// committed a hold is not placed again (whatever the quantity), a hold
    /// that does not fit the available stock (after expiring due holds, as
    /// `PlaceHold` does, with `HoldExpired` events first) or whose
    /// `expires_at` is not after `now` is not placed. The holds placed are
    /// one `HoldsPlaced` event; those not placed are simply not in it (no
    /// error). None placed: no `HoldsPlaced`. Refused only when no stock was
    /// ever received (`NotStocked`).
    PlaceHolds {
        holds: Vec<HoldRequest>,
        now: DateTime<Utc>,
    },
    /// Commits the holds of many owners at once: one `HoldsCommitted` event
    /// for the owners that hold stock now. An owner without an open hold is
    /// skipped, whether it was committed before or never held (or its hold
    /// was released or expired); the event does not tell the two apart, a
    /// caller that must know sends `CommitHold` for that owner. None
    /// committed: no event.
    CommitHolds { owner_ids: Vec<Uuid> },
}

/// One hold asked for by [`InventoryCommand::PlaceHolds`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRequest {
    pub owner_id: Uuid,
    pub quantity: Quantity,
    pub expires_at: Option<DateTime<Utc>>,
}
