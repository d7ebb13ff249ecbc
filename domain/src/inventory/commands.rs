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
}
