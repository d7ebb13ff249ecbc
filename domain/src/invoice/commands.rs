use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::values::OrderId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceNumberingCommand {
    /// Gives `order_id` the next number of `year` (the aggregate's year);
    /// an order that has one keeps it (no event).
    Allocate {
        year: i32,
        order_id: OrderId,
        now: DateTime<Utc>,
    },
    /// Gives the next numbers of `year`, in one event, to the orders of a
    /// run (many orders paid together): `first + i` to the i-th order that
    /// has no number yet. Orders that have one keep it and are left out; an
    /// order named twice counts once. No order left: no event.
    AllocateRun {
        year: i32,
        orders: Vec<OrderId>,
        now: DateTime<Utc>,
    },
}
