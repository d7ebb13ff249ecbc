//! Catalog queries, answered from the `catalog` read model: product listings
//! (full-text search, category subtree, shop, price range, in stock, sort,
//! keyset pagination), categories (flat, tree, search) and shops.
//!
//! The SQL is the read model's own (`projections::read_models::catalog::
//! queries`); a handler here checks the request, waits for freshness, calls
//! a query and shapes its rows into the answer.

use axum::http::HeaderMap;
use projections::read_models::catalog::queries::ListingError;
use projections::read_models::catalog::NAME as CATALOG;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;

use crate::app::state::AppState;
use crate::error::{ApiError, Result};
use crate::read::{cursor_not_found, min_position, wait_for};

mod categories;
mod products;
mod shops;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(products::router())
        .merge(categories::router())
        .merge(shops::router())
}

/// Waits (bounded) for the catalog read model to reach `min_position`.
async fn catalog_freshness(
    state: &AppState,
    headers: &HeaderMap,
    min: Option<i64>,
) -> Result<crate::read::Freshness> {
    wait_for(&state.pool, CATALOG, min_position(min, headers)?).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct Fresh {
    /// Wait (bounded) until the read model has processed this global position.
    pub(super) min_position: Option<i64>,
}

impl From<ListingError> for ApiError {
    fn from(error: ListingError) -> Self {
        match error {
            ListingError::CursorNotFound => cursor_not_found(),
            ListingError::Database(e) => e.into(),
        }
    }
}
