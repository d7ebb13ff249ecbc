//! Categories: flat, as a tree, searched, and one with its path.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use projections::read_models::catalog::queries::{self as catalog, CategoryName, CategoryRow};
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
use crate::read::answer;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_categories))
        .routes(routes!(search_categories))
        .routes(routes!(get_category))
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
