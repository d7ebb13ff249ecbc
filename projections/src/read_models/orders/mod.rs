//! The order history read model: one row per order, per customer.
//!
//! - `projector`: writes `rm_orders` from the orders' events.
//! - `queries`: every read of `rm_orders`: one order, and a customer's (or
//!   everyone's) orders newest first in keyset pages.

pub mod projector;
pub mod queries;

pub use projector::{OrdersProjector, NAME};
