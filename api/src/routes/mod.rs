//! HTTP routes, one module per feature, each exposing `router()`: its
//! handlers registered once, each with its document entry (utoipa-axum's
//! `routes!`), so the OpenAPI document's paths are the router's.

use std::sync::OnceLock;

use serde_json::Value;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::state::AppState;
use crate::openapi::{self, ApiDoc};

pub mod accounts;
pub mod admin;
pub mod cart;
pub mod catalog;
pub mod coupons;
pub mod docs;
pub mod events;
pub mod health;
pub mod inventory;
pub mod invoices;
pub mod listings;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod personal_data;
pub mod rebuilds;

/// Every route of the API with its document entry.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(accounts::router())
        .merge(personal_data::router())
        .merge(listings::router())
        .merge(catalog::router())
        .merge(inventory::router())
        .merge(cart::router())
        .merge(coupons::router())
        .merge(orders::router())
        .merge(invoices::router())
        .merge(admin::router())
        .merge(rebuilds::router())
        .merge(notifications::router())
        .merge(payments::router())
        .merge(events::router())
        .routes(routes!(crate::metrics::render))
        .merge(docs::router())
}

/// The document as served, built once from [`api`].
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| openapi::served(api().into_openapi()))
}
