//! The order history read model: one row per order, per customer.
//!
//! - `projector`: writes `rm_orders` from the orders' events.

pub mod projector;

pub use projector::{OrdersProjector, NAME};
