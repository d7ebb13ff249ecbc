//! Product listings (full-text search, category subtree, shop, price range,
//! in stock, sort, keyset pagination), one product, and its availability.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use projections::read_models::catalog::queries::{
    self as catalog, ProductCursor, ProductRow, ProductSearch, ProductSort, StockRow,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{catalog_freshness, Fresh};
use crate::app::refusals::ReadModelBehind;
use crate::app::refusals::{InvalidSearch, NotFound};
use crate::app::state::AppState;
use crate::error::Answers;
use crate::error::Result;
use crate::extract::{AppPath, AppQuery};
use crate::read::{answer, cursor_not_found, decode_cursor, encode_cursor, limit};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(search_products))
        .routes(routes!(get_product))
        .routes(routes!(availability))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ProductQuery {
    /// Full-text search words (at most 200 characters).
    #[param(max_length = 200)]
    search: Option<String>,
    /// The same as `search`.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Products of this category and its sub-categories.
    category_id: Option<Uuid>,
    shop_id: Option<Uuid>,
    /// Minor units.
    min_price: Option<i64>,
    /// Minor units; not below `min_price`.
    max_price: Option<i64>,
    /// true: only products available now; false: only those that are not.
    in_stock: Option<bool>,
    /// `name` (the default without search words), `price`, `-price`,
    /// `newest`, or `relevance` (the default with search words; by name
    /// without them).
    #[param(inline)]
    sort: Option<Sort>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The previous page's `next_cursor` (with the same `sort`).
    cursor: Option<String>,
    /// Wait (bounded) until the read model has processed this global position.
    min_position: Option<i64>,
}

// The `sort` parameter as the API documents it (a `///` comment here would
// enter the document); the query's own order is `ProductSort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
enum Sort {
    #[serde(rename = "name")]
    Name,
    #[serde(rename = "price")]
    Price,
    #[serde(rename = "-price")]
    PriceDesc,
    #[serde(rename = "newest")]
    Newest,
    #[serde(rename = "relevance")]
    Relevance,
}

impl Sort {
    /// The asked order; by default relevance with search words, else name.
    /// Relevance without search words ranks every product alike: by name.
    fn parse(asked: Option<Sort>, searching: bool) -> Sort {
        match asked {
            None | Some(Sort::Relevance) if searching => Sort::Relevance,
            None | Some(Sort::Relevance) => Sort::Name,
            Some(other) => other,
        }
    }
}

impl From<Sort> for ProductSort {
    fn from(sort: Sort) -> Self {
        match sort {
            Sort::Name => ProductSort::Name,
            Sort::Price => ProductSort::Price,
            Sort::PriceDesc => ProductSort::PriceDesc,
            Sort::Newest => ProductSort::Newest,
            Sort::Relevance => ProductSort::Relevance,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct ProductItem {
    id: Uuid,
    name: String,
    description: String,
    price: i64,
    currency: String,
    sku: String,
    image_url: Option<String>,
    category_id: Uuid,
    shop_id: Option<Uuid>,
    /// On hand minus held.
    available: i64,
    discontinued: bool,
}

impl From<ProductRow> for ProductItem {
    fn from(r: ProductRow) -> Self {
        ProductItem {
            id: r.id,
            name: r.name,
            description: r.description,
            price: r.price,
            currency: r.currency,
            sku: r.sku,
            image_url: r.image_url,
            category_id: r.category_id,
            shop_id: r.shop_id,
            available: r.available,
            discontinued: r.discontinued,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct ProductPage {
    products: Vec<ProductItem>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/products",
    tag = "catalog",
    summary = "List products",
    description = "Anyone. Products that are sold, filtered and sorted, keyset-paginated.",
    params(ProductQuery),
    responses(
        (status = 200, description = "A page of products.", body = ProductPage),
        Answers::<InvalidSearch>,
    ),
)]
async fn list_products(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(query): AppQuery<ProductQuery>,
) -> Result<Response> {
    let search = query.search.clone().or_else(|| query.q.clone());
    products(&state, &headers, query, search).await
}

#[utoipa::path(
    get,
    path = "/v1/products/search",
    tag = "catalog",
    summary = "Search products",
    description = "Anyone. Full-text search (`q`) with the same filters, by relevance unless `sort` says otherwise. Without search words it lists like `GET /v1/products`.",
    params(ProductQuery),
    responses(
        (status = 200, description = "A page of products.", body = ProductPage),
        Answers::<InvalidSearch>,
    ),
)]
async fn search_products(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(query): AppQuery<ProductQuery>,
) -> Result<Response> {
    let search = query.q.clone().or_else(|| query.search.clone());
    products(&state, &headers, query, search).await
}

async fn products(
    state: &AppState,
    headers: &HeaderMap,
    query: ProductQuery,
    search: Option<String>,
) -> Result<Response> {
    if search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(InvalidSearch::new("Search words are limited to 200 characters.").into());
    }
    let search = search
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let sort = ProductSort::from(Sort::parse(query.sort, search.is_some()));
    let limit = limit(query.limit)?;
    let cursor: Option<ProductCursor> = decode_cursor(query.cursor.as_deref())?;
    if cursor.as_ref().is_some_and(|c| c.sort() != sort) {
        return Err(cursor_not_found());
    }
    let freshness = catalog_freshness(state, headers, query.min_position).await?;
    let search = ProductSearch {
        words: search,
        category_id: query.category_id,
        shop_id: query.shop_id,
        min_price: query.min_price,
        max_price: query.max_price,
        in_stock: query.in_stock,
        sort,
        after: cursor,
        limit,
    };
    let page = catalog::search_products(&state.pool, &search).await?;
    Ok(answer(
        freshness,
        ProductPage {
            products: page.products.into_iter().map(ProductItem::from).collect(),
            next_cursor: page.next.as_ref().map(encode_cursor),
        },
    ))
}

#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    tag = "catalog",
    summary = "One product",
    description = "Anyone. The product, also when discontinued.",
    params(("id" = Uuid, Path, description = "The product."), Fresh),
    responses(
        (status = 200, description = "The product.", body = ProductItem),
        Answers::<(NotFound, ReadModelBehind)>,
    ),
)]
async fn get_product(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<Fresh>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let row = catalog::product(&state.pool, id)
        .await?
        .ok_or_else(|| freshness.missing(NotFound::new("There is no such product.").into()))?;
    Ok(answer(freshness, ProductItem::from(row)))
}

#[derive(Debug, Serialize, ToSchema)]
struct AvailabilityRow {
    product_id: Uuid,
    on_hand: i64,
    held: i64,
    available: i64,
}

impl From<StockRow> for AvailabilityRow {
    fn from(r: StockRow) -> Self {
        AvailabilityRow {
            product_id: r.product_id,
            on_hand: r.on_hand,
            held: r.held,
            available: r.available,
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/inventory/{product_id}/availability",
    tag = "inventory",
    summary = "Stock of a product",
    description = "Anyone. Stock on hand, held, and available (on hand minus held).",
    params(("product_id" = Uuid, Path, description = "The product."), Fresh),
    responses(
        (status = 200, description = "The product's stock.", body = AvailabilityRow),
        Answers::<(NotFound, ReadModelBehind)>,
    ),
)]
async fn availability(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(product_id): AppPath<Uuid>,
    AppQuery(query): AppQuery<Fresh>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let row = catalog::stock(&state.pool, product_id)
        .await?
        .ok_or_else(|| freshness.missing(NotFound::new("There is no such product.").into()))?;
    Ok(answer(freshness, AvailabilityRow::from(row)))
}
