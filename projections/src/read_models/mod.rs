//! Read models: plain SQL tables (schema in `migrations/`), each written by
//! exactly one projector and read only by the queries next to it, so the
//! API calls functions and never names a read-model table or column.
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

use crate::event_store::log::StoredEvent;
use crate::projector::{ApplyError, Projector};

/// Every projector the server runs.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(catalog::CatalogProjector),
        Arc::new(orders::OrdersProjector),
    ]
}

/// [`StoredEvent::decode`] as an [`ApplyError`], for the projectors here.
pub(crate) fn decode<E: serde::de::DeserializeOwned>(event: &StoredEvent) -> Result<E, ApplyError> {
    Ok(event.decode()?)
}

/// Keyset paging: `rows` were fetched with `LIMIT limit + 1`. When the extra
/// row came, it is dropped and `key` of the page's last row is the way on;
/// otherwise this is the last page (`None`).
pub(crate) fn next_page<T, K>(
    rows: &mut Vec<T>,
    limit: i64,
    key: impl FnOnce(&T) -> K,
) -> Option<K> {
    if rows.len() as i64 <= limit {
        return None;
    }
    rows.truncate(limit.max(0) as usize);
    rows.last().map(key)
}
