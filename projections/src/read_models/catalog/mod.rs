//! The catalog read model: categories (with their ancestor paths), shops,
//! product listings (full-text searchable) and availability.
//!
//! - `projector`: writes `rm_categories`, `rm_shops`, `rm_products` and
//!   `rm_availability` from the catalog's and the stock's events.

pub mod projector;

pub use projector::{CatalogProjector, NAME};
