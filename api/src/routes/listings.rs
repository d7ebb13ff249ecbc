//! Catalog queries, answered from the `catalog` read model: product listings
//! (full-text search, category subtree, shop, price range, in stock, sort,
//! keyset pagination), categories (flat, tree, search) and shops.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use projections::read_models::catalog::NAME as CATALOG;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, Result};
use crate::extract::{AppPath, AppQuery};
use crate::openapi::ErrorBody;
use crate::read::{
    answer, cursor_not_found, decode_cursor, encode_cursor, limit, min_position, next_page,
    wait_for,
};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/products", get(list_products))
        .route("/v1/products/search", get(search_products))
        .route("/v1/products/{id}", get(get_product))
        .route("/v1/categories", get(list_categories))
        .route("/v1/categories/search", get(search_categories))
        .route("/v1/categories/{id}", get(get_category))
        .route("/v1/shops", get(list_shops))
        .route("/v1/shops/{id}", get(get_shop))
        .route("/v1/inventory/{product_id}/availability", get(availability))
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// Where the previous page ended.
#[derive(Debug, Serialize, Deserialize)]
struct ProductCursor {
    sort: Sort,
    name: Option<String>,
    price: Option<i64>,
    position: Option<i64>,
    rank: Option<f32>,
    id: Uuid,
}

#[derive(Debug, FromRow)]
struct ProductRow {
    id: Uuid,
    name: String,
    description: String,
    price: i64,
    currency: String,
    sku: String,
    image_url: Option<String>,
    category_id: Uuid,
    shop_id: Option<Uuid>,
    available: i64,
    discontinued: bool,
    created_position: i64,
    rank: f32,
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

impl From<&ProductRow> for ProductItem {
    fn from(r: &ProductRow) -> Self {
        ProductItem {
            id: r.id,
            name: r.name.clone(),
            description: r.description.clone(),
            price: r.price,
            currency: r.currency.clone(),
            sku: r.sku.clone(),
            image_url: r.image_url.clone(),
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

const PRODUCT_COLUMNS: &str = "p.id, p.name, p.description, p.price, p.currency, p.sku, p.image_url,
    p.category_id, p.shop_id, COALESCE(a.available, 0) AS available, p.discontinued, p.created_position";

#[utoipa::path(
    get,
    path = "/v1/products",
    tag = "catalog",
    summary = "List products",
    description = "Anyone. Products that are sold, filtered and sorted, keyset-paginated.",
    params(ProductQuery),
    responses(
        (status = 200, description = "A page of products.", body = ProductPage),
        (status = 400, description = "An invalid parameter: `invalid_limit`, `invalid_search`, `invalid_query`, `invalid_min_position` (an `X-Min-Position` header that is not an integer).", body = ErrorBody),
        (status = 404, description = "The cursor is not one this list gave out (`cursor_not_found`).", body = ErrorBody),
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
        (status = 400, description = "An invalid parameter: `invalid_limit`, `invalid_search`, `invalid_query`, `invalid_min_position` (an `X-Min-Position` header that is not an integer).", body = ErrorBody),
        (status = 404, description = "The cursor is not one this list gave out (`cursor_not_found`).", body = ErrorBody),
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
        return Err(ApiError::bad_request(
            "invalid_search",
            "Search words are limited to 200 characters.",
        ));
    }
    let search = search
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let sort = Sort::parse(query.sort, search.is_some());
    let limit = limit(query.limit)?;
    let cursor: Option<ProductCursor> = decode_cursor(query.cursor.as_deref())?;
    if cursor.as_ref().is_some_and(|c| c.sort != sort) {
        return Err(cursor_not_found());
    }
    let freshness = catalog_freshness(state, headers, query.min_position).await?;

    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    sql.push(PRODUCT_COLUMNS);
    match &search {
        Some(words) => {
            sql.push(", ts_rank(p.search, websearch_to_tsquery('english', ")
                .push_bind(words.clone())
                .push("))::real AS rank");
        }
        None => {
            sql.push(", 0::real AS rank");
        }
    }
    sql.push(" FROM rm_products p LEFT JOIN rm_availability a ON a.product_id = p.id WHERE NOT p.discontinued");
    if let Some(words) = &search {
        sql.push(" AND p.search @@ websearch_to_tsquery('english', ")
            .push_bind(words.clone())
            .push(")");
    }
    if let Some(category) = query.category_id {
        sql.push(" AND p.category_id IN (SELECT id FROM rm_categories WHERE ")
            .push_bind(category)
            .push(" = ANY(path))");
    }
    if let Some(shop) = query.shop_id {
        sql.push(" AND p.shop_id = ").push_bind(shop);
    }
    if let Some(min) = query.min_price {
        sql.push(" AND p.price >= ").push_bind(min);
    }
    if let Some(max) = query.max_price {
        sql.push(" AND p.price <= ").push_bind(max);
    }
    if query.in_stock == Some(true) {
        sql.push(" AND COALESCE(a.available, 0) > 0");
    } else if query.in_stock == Some(false) {
        sql.push(" AND COALESCE(a.available, 0) <= 0");
    }
    if let Some(c) = &cursor {
        let missing = cursor_not_found;
        match sort {
            Sort::Name => {
                sql.push(" AND (p.name, p.id) > (")
                    .push_bind(c.name.clone().ok_or_else(missing)?)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            Sort::Price => {
                sql.push(" AND (p.price, p.id) > (")
                    .push_bind(c.price.ok_or_else(missing)?)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            Sort::PriceDesc => {
                sql.push(" AND (p.price, p.id) < (")
                    .push_bind(c.price.ok_or_else(missing)?)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            Sort::Newest => {
                sql.push(" AND p.created_position < ")
                    .push_bind(c.position.ok_or_else(missing)?);
            }
            Sort::Relevance => {
                let rank = c.rank.ok_or_else(missing)?;
                let words = search.clone().unwrap_or_default();
                sql.push(" AND (ts_rank(p.search, websearch_to_tsquery('english', ")
                    .push_bind(words)
                    .push("))::real, p.id) < (")
                    .push_bind(rank)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
        }
    }
    sql.push(match sort {
        Sort::Name => " ORDER BY p.name, p.id",
        Sort::Price => " ORDER BY p.price, p.id",
        Sort::PriceDesc => " ORDER BY p.price DESC, p.id DESC",
        Sort::Newest => " ORDER BY p.created_position DESC",
        Sort::Relevance => " ORDER BY rank DESC, p.id DESC",
    });
    sql.push(" LIMIT ").push_bind(limit + 1);

    let mut rows: Vec<ProductRow> = sql.build_query_as().fetch_all(&state.pool).await?;
    let next_cursor = next_page(&mut rows, limit, |last| {
        encode_cursor(&ProductCursor {
            sort,
            name: Some(last.name.clone()),
            price: Some(last.price),
            position: Some(last.created_position),
            rank: Some(last.rank),
            id: last.id,
        })
    });
    Ok(answer(
        freshness,
        ProductPage {
            products: rows.iter().map(ProductItem::from).collect(),
            next_cursor,
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
        (status = 404, description = "There is no such product.", body = ErrorBody),
        (status = 503, description = "The read model had not reached `min_position` in time (`read_model_behind`), or the database is unavailable.", body = ErrorBody),
    ),
)]
async fn get_product(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<Fresh>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS}, 0::real AS rank
           FROM rm_products p LEFT JOIN rm_availability a ON a.product_id = p.id
          WHERE p.id = $1"
    );
    let row: ProductRow = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| freshness.missing(ApiError::not_found("There is no such product.")))?;
    Ok(answer(freshness, ProductItem::from(&row)))
}

#[derive(Debug, Serialize, FromRow, ToSchema)]
struct AvailabilityRow {
    product_id: Uuid,
    on_hand: i64,
    held: i64,
    available: i64,
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
        (status = 404, description = "There is no such product.", body = ErrorBody),
        (status = 503, description = "The read model had not reached `min_position` in time (`read_model_behind`), or the database is unavailable.", body = ErrorBody),
    ),
)]
async fn availability(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(product_id): AppPath<Uuid>,
    AppQuery(query): AppQuery<Fresh>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let row: AvailabilityRow = sqlx::query_as(
        "SELECT p.id AS product_id, COALESCE(a.on_hand, 0) AS on_hand, COALESCE(a.held, 0) AS held,
                COALESCE(a.available, 0) AS available
           FROM rm_products p LEFT JOIN rm_availability a ON a.product_id = p.id
          WHERE p.id = $1",
    )
    .bind(product_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| freshness.missing(ApiError::not_found("There is no such product.")))?;
    Ok(answer(freshness, row))
}

// ---- categories ----

#[derive(Debug, Clone, FromRow)]
struct CategoryRow {
    id: Uuid,
    name: String,
    parent_id: Option<Uuid>,
    path: Vec<Uuid>,
}

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

async fn all_categories(state: &AppState) -> Result<Vec<CategoryRow>> {
    Ok(sqlx::query_as(
        "SELECT id, name, parent_id, path FROM rm_categories ORDER BY lower(name), id",
    )
    .fetch_all(&state.pool)
    .await?)
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
    let rows = all_categories(&state).await?;
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
        (status = 400, description = "`q` is longer than 100 characters (`invalid_search`), or an invalid parameter.", body = ErrorBody),
    ),
)]
async fn search_categories(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(query): AppQuery<CategorySearch>,
) -> Result<Response> {
    let words = query.q.as_deref().unwrap_or_default();
    if words.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "invalid_search",
            "Give at most 100 characters to look for as `q`.",
        ));
    }
    let words = words.trim();
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let pattern = format!(
        "%{}%",
        words
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows: Vec<CategoryRow> = sqlx::query_as(
        "SELECT id, name, parent_id, path FROM rm_categories WHERE name ILIKE $1
          ORDER BY lower(name), id LIMIT 100",
    )
    .bind(pattern)
    .fetch_all(&state.pool)
    .await?;
    let found: Vec<CategoryItem> = rows.iter().map(CategoryItem::from).collect();
    Ok(answer(freshness, found))
}

#[derive(Debug, Serialize, ToSchema)]
struct Named {
    id: Uuid,
    name: String,
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
        (status = 404, description = "There is no such category.", body = ErrorBody),
        (status = 503, description = "The read model had not reached `min_position` in time (`read_model_behind`), or the database is unavailable.", body = ErrorBody),
    ),
)]
async fn get_category(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<Fresh>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let row: CategoryRow =
        sqlx::query_as("SELECT id, name, parent_id, path FROM rm_categories WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?
            .ok_or_else(|| freshness.missing(ApiError::not_found("There is no such category.")))?;
    let ancestors: Vec<Uuid> = row.path.iter().copied().filter(|a| *a != id).collect();
    let named: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, name FROM rm_categories WHERE id = ANY($1)")
            .bind(&ancestors)
            .fetch_all(&state.pool)
            .await?;
    let names: HashMap<Uuid, String> = named.into_iter().collect();
    let path = ancestors
        .iter()
        .map(|a| Named {
            id: *a,
            name: names.get(a).cloned().unwrap_or_default(),
        })
        .collect();
    let children: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, name FROM rm_categories WHERE parent_id = $1 ORDER BY lower(name), id",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    Ok(answer(
        freshness,
        CategoryDetail {
            id,
            name: row.name,
            parent_category_id: row.parent_id,
            path,
            children: children
                .into_iter()
                .map(|(id, name)| Named { id, name })
                .collect(),
        },
    ))
}

// ---- shops ----

#[derive(Debug, Serialize, FromRow, ToSchema)]
struct ShopItem {
    id: Uuid,
    name: String,
    description: Option<String>,
    address: Option<String>,
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

#[derive(Debug, Serialize, Deserialize)]
struct ShopCursor {
    name: String,
    id: Uuid,
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
    let mut rows: Vec<ShopItem> = sqlx::query_as(
        "SELECT id, name, description, address FROM rm_shops
          WHERE $1::text IS NULL OR (lower(name), id) > (lower($1), $2)
          ORDER BY lower(name), id LIMIT $3",
    )
    .bind(cursor.as_ref().map(|c| c.name.clone()))
    .bind(cursor.as_ref().map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let next_cursor = next_page(&mut rows, limit, |s| {
        encode_cursor(&ShopCursor {
            name: s.name.clone(),
            id: s.id,
        })
    });
    Ok(answer(
        freshness,
        ShopPage {
            shops: rows,
            next_cursor,
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
        (status = 404, description = "There is no such shop.", body = ErrorBody),
        (status = 503, description = "The read model had not reached `min_position` in time (`read_model_behind`), or the database is unavailable.", body = ErrorBody),
    ),
)]
async fn get_shop(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<Fresh>,
) -> Result<Response> {
    let freshness = catalog_freshness(&state, &headers, query.min_position).await?;
    let shop: ShopItem =
        sqlx::query_as("SELECT id, name, description, address FROM rm_shops WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?
            .ok_or_else(|| freshness.missing(ApiError::not_found("There is no such shop.")))?;
    Ok(answer(freshness, shop))
}
