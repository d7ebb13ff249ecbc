use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::values::{CustomerId, OrderId, ProductId, Quantity};

/// What a customer (or the order placement) asks of a cart. The aggregate id
/// is always [`super::cart_id_for`] of the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartCommand {
    /// Adds a line, or increases an existing line by `quantity`. The product
    /// must exist and still be sold; a line holds at most `Quantity::MAX`,
    /// and a cart at most [`crate::order::MAX_LINES`] lines.
    AddItem {
        customer_id: CustomerId,
        product_id: ProductId,
        quantity: Quantity,
    },
    /// Sets a line's quantity; 0 removes the line.
    ChangeQuantity {
        product_id: ProductId,
        quantity: u32,
    },
    RemoveItem {
        product_id: ProductId,
    },
    /// Removes every line (the coupon stays). Nothing happens if already empty.
    Empty,
    /// Applies a coupon by its code (case and surrounding blanks ignored),
    /// replacing any other. The cart must have items.
    ApplyCoupon {
        code: String,
        now: DateTime<Utc>,
    },
    /// Nothing happens when no coupon is applied.
    RemoveCoupon,
    /// The cart was ordered as `order_id`: it becomes empty (no coupon) and
    /// open for the next order. Repeating it for the same order does nothing.
    CheckOut {
        order_id: OrderId,
    },
}
