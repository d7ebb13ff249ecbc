//! Read models: plain SQL tables (schema in `migrations/`), each written by
//! exactly one projector.
//!
//! - `catalog/`: categories (with their ancestor paths), shops, product
//!   listings (full-text searchable) and availability.
//! - `orders/`: order history, per customer and per order.
//!
//! Each folder holds the projector that writes its tables (`projector.rs`)
//! and the queries that read them (`queries.rs`).

pub mod catalog;
pub mod orders;

use std::sync::Arc;

use crate::runtime::Projector;

/// Every projector the server runs.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(catalog::CatalogProjector),
        Arc::new(orders::OrdersProjector),
    ]
}

/// Decodes a stored event's payload into the aggregate's event type.
/// Decodes a stored event's payload into the aggregate's event type (from
/// the payload in place: no copy of it).
pub(crate) fn decode<E: serde::de::DeserializeOwned>(
    event: &crate::event_store::log::StoredEvent,
) -> Result<E, crate::runtime::ApplyError> {
    Ok(E::deserialize(&event.payload)?)
}
