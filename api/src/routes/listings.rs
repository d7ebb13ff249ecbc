//! Catalog queries, answered from the `catalog` read model: product listings
//! (full-text search, category subtree, shop, price range, in stock, sort,
//! keyset pagination), categories (flat, tree, search) and shops.
//!
//! The SQL is the read model's own (`projections::read_models::catalog::
//! queries`); a handler here checks the request, waits for freshness, calls
//! a query and shapes its rows into the answer.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use projections::read_models::catalog::queries::{
    self as catalog, CategoryName, CategoryRow, ListingError, ProductCursor, ProductRow,
    ProductSearch, ProductSort, ShopCursor, ShopRow, StockRow,
};
use projections::read_models::catalog::NAME as CATALOG;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::refusals::ReadModelBehind;
use crate::app::refusals::{InvalidSearch, NotFound};
use crate::app::state::AppState;
use crate::error::Answers;
use crate::error::{ApiError, Result};
use crate::extract::{AppPath, AppQuery};
use crate::read::{
    answer, cursor_not_found, decode_cursor, encode_cursor, limit, min_position, wait_for,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(search_products))
        .routes(routes!(get_product))
        .routes(routes!(list_categories))
        .routes(routes!(search_categories))
        .routes(routes!(get_category))
        .routes(routes!(list_shops))
        .routes(routes!(get_shop))
        .routes(routes!(availability))
}

/// Waits (bounded) for the catalog read model to reach `min_position`.
async fn catalog_freshness(
    state: &AppState,
    headers: &HeaderMap,
    min: Option<i64>,
) -> Result<crate::read::Freshness> {
    wait_for(&state.pool, CATALOG, min_position(min, headers)?).await
}

// ---- products ----

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

impl From<ListingError> for ApiError {
    fn from(error: ListingError) -> Self {
        match error {
            ListingError::CursorNotFound => cursor_not_found(),
            ListingError::Database(e) => e.into(),
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

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Fresh {
    /// Wait (bounded) until the read model has processed this global position.
    min_position: Option<i64>,
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

// ---- categories ----

#[derive(Debug, Clone, Serialize, ToSchema)]
struct CategoryItem {
    id: Uuid,
    name: String,
    parent_category_id: Option<Uuid>,
    /// Only with `tree=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    children: Option<Vec<CategoryItem>>,
}

impl From<&CategoryRow> for CategoryItem {
    fn from(r: &CategoryRow) -> Self {
        CategoryItem {
            id: r.id,
            name: r.name.clone(),
            parent_category_id: r.parent_id,
            children: None,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CategoryQuery {
    /// true: nest sub-categories in `children`.
    tree: Option<bool>,
    /// Wait (bounded) until the read model has processed this global position.
    min_position: Option<i64>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CategorySearch {
    /// Words to look for in names, at most 100 characters (without them
    /// every category matches).
    #[param(max_length = 100)]
    q: Option<String>,
    /// Wait (bounded) until the read model has processed this global position.
    min_position: Option<i64>,
}

fn nest(
    parent: Option<Uuid>,
    by_parent: &HashMap<Option<Uuid>, Vec<&CategoryRow>>,
) -> Vec<CategoryItem> {
    by_parent
        .get(&parent)
        .map(|rows| {
            rows.iter()
                .map(|row| CategoryItem {
                    children: Some(nest(Some(row.id), by_parent)),
                    ..CategoryItem::from(*row)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[utoipa::path(
    get,
    path = "/v1/categories",
    tag = "catalog",
    summary = "List categories",
    description = "Anyone. Every category, flat, or with `tree=true` nested by parent.",
    params(CategoryQuery),
    responses(
        (status = 200, description = "The categories.", body = Vec<CategoryItem>),
    ),
)]
async fn list_categories(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(query): AppQuery<CategoryQuery>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let rows = catalog::all_categories(&state.pool).await?;
    if query.tree == Some(true) {
        let mut by_parent: HashMap<Option<Uuid>, Vec<&CategoryRow>> = HashMap::new();
        for row in &rows {
            by_parent.entry(row.parent_id).or_default().push(row);
        }
        return Ok(answer(freshness, nest(None, &by_parent)));
    }
    let flat: Vec<CategoryItem> = rows.iter().map(CategoryItem::from).collect();
    Ok(answer(freshness, flat))
}

#[utoipa::path(
    get,
    path = "/v1/categories/search",
    tag = "catalog",
    summary = "Search categories",
    description = "Anyone. Categories whose name contains `q`, at most 100 of them (all categories without `q`).",
    params(CategorySearch),
    responses(
        (status = 200, description = "The categories found.", body = Vec<CategoryItem>),
        Answers::<InvalidSearch>,
    ),
)]
async fn search_categories(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(query): AppQuery<CategorySearch>,
) -> Result<Response> {
    let words = query.q.as_deref().unwrap_or_default();
    if words.chars().count() > 100 {
        return Err(InvalidSearch::new("Give at most 100 characters to look for as `q`.").into());
    }
    let words = words.trim();
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let rows = catalog::search_categories(&state.pool, words).await?;
    let found: Vec<CategoryItem> = rows.iter().map(CategoryItem::from).collect();
    Ok(answer(freshness, found))
}

#[derive(Debug, Serialize, ToSchema)]
struct Named {
    id: Uuid,
    name: String,
}

impl From<CategoryName> for Named {
    fn from(c: CategoryName) -> Self {
        Named {
            id: c.id,
            name: c.name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct CategoryDetail {
    id: Uuid,
    name: String,
    parent_category_id: Option<Uuid>,
    /// Ancestors, root first.
    path: Vec<Named>,
    children: Vec<Named>,
}

#[utoipa::path(
    get,
    path = "/v1/categories/{id}",
    tag = "catalog",
    summary = "One category",
    description = "Anyone. The category with its ancestors (`path`, root first) and its children.",
    params(("id" = Uuid, Path, description = "The category."), Fresh),
    responses(
        (status = 200, description = "The category.", body = CategoryDetail),
        Answers::<(NotFound, ReadModelBehind)>,
    ),
)]
async fn get_category(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<Fresh>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let detail = catalog::category(&state.pool, id)
        .await?
        .ok_or_else(|| freshness.missing(NotFound::new("There is no such category.").into()))?;
    Ok(answer(
        freshness,
        CategoryDetail {
            id,
            name: detail.category.name,
            parent_category_id: detail.category.parent_id,
            path: detail.ancestors.into_iter().map(Named::from).collect(),
            children: detail.children.into_iter().map(Named::from).collect(),
        },
    ))
}

// ---- shops ----

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
