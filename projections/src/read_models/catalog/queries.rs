//! The catalog's queries: the only reads of `rm_products`, `rm_availability`,
//! `rm_categories` and `rm_shops`, kept next to the projector that writes
//! them, so a change of these tables is one change in one folder.
//!
//! # Layout
//! - products: [`search_products`] (full-text words, category subtree, shop,
//!   price range, in stock; sorted and keyset-paginated by
//!   [`ProductCursor`]), [`product`], and [`stock`] of one product;
//! - categories: [`all_categories`], [`search_categories`] by name, and
//!   [`category`] with its ancestors and children;
//! - shops: [`list_shops`] (keyset-paginated by [`ShopCursor`]) and [`shop`].
//!
//! Cursors are the sort key of a page's last row. They are serde types so
//! that the caller can hand them out opaquely; their JSON shape is what
//! clients hold, so it does not change.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::read_models::next_page;

/// A product as listed: the catalog's fields and its availability now.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ProductRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// Minor units of `currency`.
    pub price: i64,
    pub currency: String,
    pub sku: String,
    pub image_url: Option<String>,
    pub category_id: Uuid,
    pub shop_id: Option<Uuid>,
    /// On hand minus held; 0 for a product never stocked.
    pub available: i64,
    pub discontinued: bool,
}

/// A listed product with the keys a page of listings is sorted by.
#[derive(Debug, FromRow)]
struct Listed {
    #[sqlx(flatten)]
    product: ProductRow,
    created_position: i64,
    rank: f32,
}

/// What every product query selects (`p`: `rm_products`, `a`: its
/// `rm_availability`, joined on the left: a product never stocked has none).
const PRODUCT_COLUMNS: &str = "p.id, p.name, p.description, p.price, p.currency, p.sku, p.image_url,
    p.category_id, p.shop_id, COALESCE(a.available, 0) AS available, p.discontinued, p.created_position";

/// The order of a product listing. The serde names are those of the API's
/// `sort` parameter, and are written into cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductSort {
    /// By name, then id.
    #[serde(rename = "name")]
    Name,
    /// Cheapest first, then by id.
    #[serde(rename = "price")]
    Price,
    /// Dearest first, then by id descending.
    #[serde(rename = "-price")]
    PriceDesc,
    /// The most recently created first.
    #[serde(rename = "newest")]
    Newest,
    /// The best match of the search words first, then by id descending.
    /// Without search words every product ranks alike.
    #[serde(rename = "relevance")]
    Relevance,
}

/// Where a page of products ended: the last row's keys for every sort, and
/// the sort they were taken for. A cursor of one sort names no place in a
/// listing of another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductCursor {
    sort: ProductSort,
    name: Option<String>,
    price: Option<i64>,
    position: Option<i64>,
    rank: Option<f32>,
    id: Uuid,
}

impl ProductCursor {
    /// The sort the cursor was handed out for.
    pub fn sort(&self) -> ProductSort {
        self.sort
    }

    fn after(listed: &Listed, sort: ProductSort) -> Self {
        ProductCursor {
            sort,
            name: Some(listed.product.name.clone()),
            price: Some(listed.product.price),
            position: Some(listed.created_position),
            rank: Some(listed.rank),
            id: listed.product.id,
        }
    }
}

/// A product listing: which products, in what order, from where on.
/// Discontinued products are never listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductSearch {
    /// Full-text search words (web search syntax, English stemming); `None`
    /// lists every product.
    pub words: Option<String>,
    /// Products of this category and of its sub-categories.
    pub category_id: Option<Uuid>,
    pub shop_id: Option<Uuid>,
    /// Minor units, inclusive.
    pub min_price: Option<i64>,
    /// Minor units, inclusive.
    pub max_price: Option<i64>,
    /// `Some(true)`: only products available now; `Some(false)`: only those
    /// that are not.
    pub in_stock: Option<bool>,
    pub sort: ProductSort,
    /// The previous page's cursor: the page starts after it.
    pub after: Option<ProductCursor>,
    /// The most products on the page.
    pub limit: i64,
}

/// A page of products and, unless it is the last, the cursor of the next.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductPage {
    pub products: Vec<ProductRow>,
    pub next: Option<ProductCursor>,
}

/// Why a listing could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// The cursor is of another sort, or lacks the key its sort pages by:
    /// it names no place in this listing.
    #[error("the cursor names no place in this listing")]
    CursorNotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One page of a product listing.
pub async fn search_products(
    db: impl PgExecutor<'_>,
    search: &ProductSearch,
) -> Result<ProductPage, ListingError> {
    let sort = search.sort;
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    sql.push(PRODUCT_COLUMNS);
    match &search.words {
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
    if let Some(words) = &search.words {
        sql.push(" AND p.search @@ websearch_to_tsquery('english', ")
            .push_bind(words.clone())
            .push(")");
    }
    if let Some(category) = search.category_id {
        sql.push(" AND p.category_id IN (SELECT id FROM rm_categories WHERE ")
            .push_bind(category)
            .push(" = ANY(path))");
    }
    if let Some(shop) = search.shop_id {
        sql.push(" AND p.shop_id = ").push_bind(shop);
    }
    if let Some(min) = search.min_price {
        sql.push(" AND p.price >= ").push_bind(min);
    }
    if let Some(max) = search.max_price {
        sql.push(" AND p.price <= ").push_bind(max);
    }
    if search.in_stock == Some(true) {
        sql.push(" AND COALESCE(a.available, 0) > 0");
    } else if search.in_stock == Some(false) {
        sql.push(" AND COALESCE(a.available, 0) <= 0");
    }
    if let Some(c) = &search.after {
        if c.sort != sort {
            return Err(ListingError::CursorNotFound);
        }
        let missing = || ListingError::CursorNotFound;
        match sort {
            ProductSort::Name => {
                sql.push(" AND (p.name, p.id) > (")
                    .push_bind(c.name.clone().ok_or_else(missing)?)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            ProductSort::Price => {
                sql.push(" AND (p.price, p.id) > (")
                    .push_bind(c.price.ok_or_else(missing)?)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            ProductSort::PriceDesc => {
                sql.push(" AND (p.price, p.id) < (")
                    .push_bind(c.price.ok_or_else(missing)?)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            ProductSort::Newest => {
                sql.push(" AND p.created_position < ")
                    .push_bind(c.position.ok_or_else(missing)?);
            }
            ProductSort::Relevance => {
                let rank = c.rank.ok_or_else(missing)?;
                let words = search.words.clone().unwrap_or_default();
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
        ProductSort::Name => " ORDER BY p.name, p.id",
        ProductSort::Price => " ORDER BY p.price, p.id",
        ProductSort::PriceDesc => " ORDER BY p.price DESC, p.id DESC",
        ProductSort::Newest => " ORDER BY p.created_position DESC",
        ProductSort::Relevance => " ORDER BY rank DESC, p.id DESC",
    });
    sql.push(" LIMIT ").push_bind(search.limit + 1);

    let mut rows: Vec<Listed> = sql.build_query_as().fetch_all(db).await?;
    let next = next_page(&mut rows, search.limit, |last| {
        ProductCursor::after(last, sort)
    });
    Ok(ProductPage {
        products: rows.into_iter().map(|r| r.product).collect(),
        next,
    })
}

/// One product, also when discontinued.
pub async fn product(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ProductRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS}
           FROM rm_products p LEFT JOIN rm_availability a ON a.product_id = p.id
          WHERE p.id = $1"
    );
    sqlx::query_as(&sql).bind(id).fetch_optional(db).await
}

/// A product's stock; all 0 for a product never stocked.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StockRow {
    pub product_id: Uuid,
    pub on_hand: i64,
    pub held: i64,
    /// On hand minus held.
    pub available: i64,
}

/// The stock of a product; `None` when there is no such product.
pub async fn stock(
    db: impl PgExecutor<'_>,
    product_id: Uuid,
) -> Result<Option<StockRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id AS product_id, COALESCE(a.on_hand, 0) AS on_hand, COALESCE(a.held, 0) AS held,
                COALESCE(a.available, 0) AS available
           FROM rm_products p LEFT JOIN rm_availability a ON a.product_id = p.id
          WHERE p.id = $1",
    )
    .bind(product_id)
    .fetch_optional(db)
    .await
}

// ---- categories ----

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CategoryRow {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    /// Its ancestors and itself, root first.
    pub path: Vec<Uuid>,
}

/// A category named by another: an ancestor or a child.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CategoryName {
    pub id: Uuid,
    pub name: String,
}

/// A category with its ancestors and its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryDetail {
    pub category: CategoryRow,
    /// Root first. An ancestor the read model does not have (yet) has an
    /// empty name.
    pub ancestors: Vec<CategoryName>,
    /// By name (case-insensitive), then id.
    pub children: Vec<CategoryName>,
}

/// Every category, by name (case-insensitive), then id.
pub async fn all_categories(db: impl PgExecutor<'_>) -> Result<Vec<CategoryRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, parent_id, path FROM rm_categories ORDER BY lower(name), id")
        .fetch_all(db)
        .await
}

/// Categories whose name contains `words` (case-insensitive, taken
/// literally: `%` and `_` are no wildcards), by name, then id; at most 100.
/// Empty words match every category.
pub async fn search_categories(
    db: impl PgExecutor<'_>,
    words: &str,
) -> Result<Vec<CategoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, parent_id, path FROM rm_categories WHERE name ILIKE $1
          ORDER BY lower(name), id LIMIT 100",
    )
    .bind(contains_pattern(words))
    .fetch_all(db)
    .await
}

/// The `LIKE` pattern that matches text containing `words` as they are.
fn contains_pattern(words: &str) -> String {
    format!(
        "%{}%",
        words
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// One category with its ancestors and children; `None` when there is no
/// such category. Three reads, each of the model as it is then.
pub async fn category(pool: &PgPool, id: Uuid) -> Result<Option<CategoryDetail>, sqlx::Error> {
    let row: Option<CategoryRow> =
        sqlx::query_as("SELECT id, name, parent_id, path FROM rm_categories WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some(category) = row else {
        return Ok(None);
    };
    let ancestors: Vec<Uuid> = category.path.iter().copied().filter(|a| *a != id).collect();
    let named: Vec<CategoryName> =
        sqlx::query_as("SELECT id, name FROM rm_categories WHERE id = ANY($1)")
            .bind(&ancestors)
            .fetch_all(pool)
            .await?;
    let names: HashMap<Uuid, String> = named.into_iter().map(|n| (n.id, n.name)).collect();
    let ancestors = ancestors
        .iter()
        .map(|a| CategoryName {
            id: *a,
            name: names.get(a).cloned().unwrap_or_default(),
        })
        .collect();
    let children: Vec<CategoryName> = sqlx::query_as(
        "SELECT id, name FROM rm_categories WHERE parent_id = $1 ORDER BY lower(name), id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(Some(CategoryDetail {
        category,
        ancestors,
        children,
    }))
}

// ---- shops ----

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ShopRow {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub address: Option<String>,
}

/// Where a page of shops ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopCursor {
    name: String,
    id: Uuid,
}

/// A page of shops and, unless it is the last, the cursor of the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopPage {
    pub shops: Vec<ShopRow>,
    pub next: Option<ShopCursor>,
}

/// At most `limit` shops by name (case-insensitive), then id, after the
/// cursor `after`.
pub async fn list_shops(
    db: impl PgExecutor<'_>,
    after: Option<&ShopCursor>,
    limit: i64,
) -> Result<ShopPage, sqlx::Error> {
    let mut shops: Vec<ShopRow> = sqlx::query_as(
        "SELECT id, name, description, address FROM rm_shops
          WHERE $1::text IS NULL OR (lower(name), id) > (lower($1), $2)
          ORDER BY lower(name), id LIMIT $3",
    )
    .bind(after.map(|c| c.name.clone()))
    .bind(after.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let next = next_page(&mut shops, limit, |s| ShopCursor {
        name: s.name.clone(),
        id: s.id,
    });
    Ok(ShopPage { shops, next })
}

/// One shop.
pub async fn shop(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ShopRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, description, address FROM rm_shops WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_product_cursor_keeps_the_json_shape_clients_hold() {
        let id = Uuid::nil();
        let cursor = ProductCursor {
            sort: ProductSort::PriceDesc,
            name: Some("Mug".into()),
            price: Some(1200),
            position: Some(7),
            rank: Some(0.5),
            id,
        };
        let shape = json!({
            "sort": "-price", "name": "Mug", "price": 1200, "position": 7, "rank": 0.5, "id": id,
        });
        assert_eq!(serde_json::to_value(&cursor).unwrap(), shape);
        assert_eq!(
            serde_json::from_value::<ProductCursor>(shape).unwrap(),
            cursor
        );
    }

    #[test]
    fn a_shop_cursor_keeps_the_json_shape_clients_hold() {
        let cursor = ShopCursor {
            name: "Tools".into(),
            id: Uuid::nil(),
        };
        assert_eq!(
            serde_json::to_value(&cursor).unwrap(),
            json!({"name": "Tools", "id": Uuid::nil()})
        );
    }

    #[test]
    fn a_category_search_takes_its_words_literally() {
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
    }
}
