//! The catalog read model: categories (with their ancestor paths), shops,
//! product listings (full-text searchable) and availability.
//!
//! - `projector`: writes `rm_categories`, `rm_shops`, `rm_products` and
//!   `rm_availability` from the catalog's and the stock's events.
//! - `queries`: every read of those tables: product listings (search,
//!   filters, sort, keyset pages), one product and its stock, categories
//!   (all, by name, one with its ancestors and children), and shops.

pub mod projector;
pub mod queries;

pub use projector::{CatalogProjector, NAME};
