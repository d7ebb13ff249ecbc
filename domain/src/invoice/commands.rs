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
}
