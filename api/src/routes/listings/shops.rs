//! Shops: a page of them, and one.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use projections::read_models::catalog::queries::{self as catalog, ShopCursor, ShopRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{catalog_freshness, Fresh};
use crate::app::refusals::NotFound;
use crate::app::refusals::ReadModelBehind;
use crate::app::state::AppState;
use crate::error::Answers;
use crate::error::Result;
use crate::extract::{AppPath, AppQuery};
use crate::read::{answer, decode_cursor, encode_cursor, limit};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shops))
        .routes(routes!(get_shop))
}

#[derive(Debug, Serialize, ToSchema)]
struct ShopItem {
    id: Uuid,
    name: String,
    description: Option<String>,
    address: Option<String>,
}

impl From<ShopRow> for ShopItem {
    fn from(r: ShopRow) -> Self {
        ShopItem {
            id: r.id,
            name: r.name,
            description: r.description,
            address: r.address,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ShopQuery {
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Wait (bounded) until the read model has processed this global position.
    min_position: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ShopPage {
    shops: Vec<ShopItem>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/shops",
    tag = "catalog",
    summary = "List shops",
    description = "Anyone. Shops by name, keyset-paginated.",
    params(ShopQuery),
    responses(
        (status = 200, description = "A page of shops.", body = ShopPage),
    ),
)]
async fn list_shops(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(query): AppQuery<ShopQuery>,
) -> Result<Response> {
    let limit = limit(query.limit)?;
    let cursor: Option<ShopCursor> = decode_cursor(query.cursor.as_deref())?;
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let page = catalog::list_shops(&state.pool, cursor.as_ref(), limit).await?;
    Ok(answer(
        freshness,
        ShopPage {
            shops: page.shops.into_iter().map(ShopItem::from).collect(),
            next_cursor: page.next.as_ref().map(encode_cursor),
        },
    ))
}

#[utoipa::path(
    get,
    path = "/v1/shops/{id}",
    tag = "catalog",
    summary = "One shop",
    description = "Anyone. The shop.",
    params(("id" = Uuid, Path, description = "The shop."), Fresh),
    responses(
        (status = 200, description = "The shop.", body = ShopItem),
        Answers::<(NotFound, ReadModelBehind)>,
    ),
)]
async fn get_shop(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<Fresh>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let shop = catalog::shop(&state.pool, id)
        .await?
        .ok_or_else(|| freshness.missing(NotFound::new("There is no such shop.").into()))?;
    Ok(answer(freshness, ShopItem::from(shop)))
}
