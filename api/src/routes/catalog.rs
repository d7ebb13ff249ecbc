//! Catalog commands (categories, shops, products) and single-item reads.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::category::{CategoryCommand, CategoryError};
use domain::product::{ProductCommand, ProductError};
use domain::shop::{ShopCommand, ShopError};
use domain::values::{CategoryId, ProductId, ShopId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::create_product::{self, CreateProductError};
use crate::app::products::{existing_product, FindProductError};
use crate::app::state::AppState;
use crate::app::update_category::{self, UpdateCategoryError};
use crate::app::update_product::{self, UpdateProductError};
use crate::app::{Domain, Forbidden, KeyReused, StoreError};
use crate::auth::Admin;
use crate::commands::{
    caller, command_error, create, double_option, metadata, request_hash, CommandAnswer,
    IdempotencyKey, IdempotencyKeyHeader,
};
use crate::error::{Answers, Result};
use crate::extract::{AppJson, AppPath, RequestId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_category))
        .routes(routes!(update_category))
        .routes(routes!(create_shop))
        .routes(routes!(update_shop))
        .routes(routes!(create_product))
        .routes(routes!(update_product, discontinue_product))
}

type Created = (StatusCode, Json<CommandAnswer>);

fn created(answer: CommandAnswer) -> Created {
    (StatusCode::CREATED, Json(answer))
}

// ---- categories ----

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCategory {
    /// Not blank, at most 100 characters.
    #[schema(max_length = 100, format = "not-blank")]
    name: String,
    /// Absent or null: a top-level category.
    #[serde(default)]
    parent_category_id: Option<Uuid>,
}

#[utoipa::path(
    post,
    path = "/v1/categories",
    tag = "catalog",
    summary = "Create a category",
    description = "Role: admin. A category, at the top level or under `parent_category_id`.",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    request_body = NewCategory,
    responses(
        (status = 201, description = "Created: the category id and position.", body = CommandAnswer),
        Answers::<(Forbidden, Domain<CategoryError>, KeyReused, StoreError)>,
    ),
)]
async fn create_category(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    key: IdempotencyKey,
    AppJson(body): AppJson<NewCategory>,
) -> Result<Created> {
    let meta = metadata(user.actor(), &request_id, "CreateCategory");
    let id = key.creation_id("category", user.id);
    let answer = create(&state.categories, &key, id, &body, meta, |id| {
        CategoryCommand::Create {
            category_id: CategoryId(id),
            name: body.name.clone(),
            parent: body.parent_category_id.map(CategoryId),
        }
    })
    .await?;
    Ok(created(answer))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CategoryChange {
    /// Not blank, at most 100 characters.
    #[serde(default)]
    #[schema(max_length = 100, format = "not-blank")]
    name: Option<String>,
    /// Absent: keep; `null`: move to the top level; an id: move under it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    parent_category_id: Option<Option<Uuid>>,
}

#[utoipa::path(
    put,
    path = "/v1/categories/{id}",
    tag = "catalog",
    summary = "Rename or move a category",
    description = "Role: admin. Renames the category and/or moves it; both or neither happen.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The category.")),
    request_body = CategoryChange,
    responses(
        (status = 200, description = "Changed: the category id and position.", body = CommandAnswer),
        Answers::<(Forbidden, UpdateCategoryError)>,
    ),
)]
async fn update_category(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<CategoryChange>,
) -> Result<Json<CommandAnswer>> {
    let change = update_category::CategoryChange {
        name: body.name,
        parent: body.parent_category_id.map(|p| p.map(CategoryId)),
    };
    let position =
        update_category::update_category(&state, &caller(&user, &request_id), id, change).await?;
    Ok(Json(CommandAnswer { id, position }))
}

// ---- shops ----

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewShop {
    /// Not blank, at most 100 characters.
    #[schema(max_length = 100, format = "not-blank")]
    name: String,
    /// At most 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    address: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/shops",
    tag = "catalog",
    summary = "Create a shop",
    description = "Role: admin. A seller that lists products.",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    request_body = NewShop,
    responses(
        (status = 201, description = "Created: the shop id and position.", body = CommandAnswer),
        Answers::<(Forbidden, Domain<ShopError>, KeyReused, StoreError)>,
    ),
)]
async fn create_shop(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    key: IdempotencyKey,
    AppJson(body): AppJson<NewShop>,
) -> Result<Created> {
    let meta = metadata(user.actor(), &request_id, "CreateShop");
    let id = key.creation_id("shop", user.id);
    let answer = create(&state.shops, &key, id, &body, meta, |id| {
        ShopCommand::Create {
            shop_id: ShopId(id),
            name: body.name.clone(),
            description: body.description.clone(),
            address: body.address.clone(),
        }
    })
    .await?;
    Ok(created(answer))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ShopChange {
    /// Not blank, at most 100 characters.
    #[serde(default)]
    #[schema(max_length = 100, format = "not-blank")]
    name: Option<String>,
    /// At most 2000 characters; blank removes it.
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// At most 500 characters; blank removes it.
    #[serde(default)]
    #[schema(max_length = 500)]
    address: Option<String>,
}

#[utoipa::path(
    put,
    path = "/v1/shops/{id}",
    tag = "catalog",
    summary = "Change a shop",
    description = "Role: admin. Changes the given fields; absent fields keep their value.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The shop.")),
    request_body = ShopChange,
    responses(
        (status = 200, description = "Changed: the shop id and position.", body = CommandAnswer),
        Answers::<(Forbidden, Domain<ShopError>, StoreError)>,
    ),
)]
async fn update_shop(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<ShopChange>,
) -> Result<Json<CommandAnswer>> {
    let meta = metadata(user.actor(), &request_id, "UpdateShop");
    let committed = state
        .shops
        .execute_with_retry(
            &id.to_string(),
            ShopCommand::Update {
                name: body.name,
                description: body.description,
                address: body.address,
            },
            &meta,
        )
        .await
        .map_err(command_error)?;
    Ok(Json(CommandAnswer {
        id,
        position: committed.position,
    }))
}

// ---- products ----

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewProduct {
    /// Not blank, at most 200 characters.
    #[schema(max_length = 200, format = "not-blank")]
    name: String,
    /// At most 5000 characters.
    #[serde(default)]
    #[schema(max_length = 5000)]
    description: String,
    /// Minor units of the shop's currency: 1 to 10000000000.
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    price: i64,
    /// 1 to 64 letters, digits, `.`, `_` or `-`, unique across products
    /// (stored upper case).
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9._-]{1,64}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "MUG-01"
    )]
    sku: String,
    /// `http://` or `https://` and no whitespace, at most 2048 characters;
    /// blank is none.
    #[serde(default)]
    #[schema(
        max_length = 2048,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([Hh][Tt][Tt][Pp][Ss]?://[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    image_url: Option<String>,
    category_id: Uuid,
    #[serde(default)]
    shop_id: Option<Uuid>,
}

#[utoipa::path(
    post,
    path = "/v1/products",
    tag = "catalog",
    summary = "Create a product",
    description = "Role: admin. A product in a category (and optionally a shop), priced in the shop's currency. Its SKU must be unused.",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    request_body = NewProduct,
    responses(
        (status = 201, description = "Created: the product id and position.", body = CommandAnswer),
        Answers::<(Forbidden, CreateProductError)>,
    ),
)]
async fn create_product(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    key: IdempotencyKey,
    AppJson(body): AppJson<NewProduct>,
) -> Result<Created> {
    let product_id = ProductId(key.creation_id("product", user.id));
    let new = create_product::NewProduct {
        product_id,
        name: body.name.clone(),
        description: body.description.clone(),
        price: body.price,
        sku: body.sku.clone(),
        image_url: body.image_url.clone(),
        category_id: CategoryId(body.category_id),
        shop_id: body.shop_id.map(ShopId),
        request_hash: request_hash(&body),
        keyed: key.0.is_some(),
    };
    let position = create_product::create_product(&state, &caller(&user, &request_id), new).await?;
    Ok(created(CommandAnswer {
        id: product_id.as_uuid(),
        position,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProductChange {
    /// Not blank, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200, format = "not-blank")]
    name: Option<String>,
    /// At most 5000 characters.
    #[serde(default)]
    #[schema(max_length = 5000)]
    description: Option<String>,
    /// Minor units: 1 to 10000000000.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    price: Option<i64>,
    /// 1 to 64 letters, digits, `.`, `_` or `-`, unique across products.
    #[serde(default)]
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9._-]{1,64}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    sku: Option<String>,
    /// `http://` or `https://` and no whitespace, at most 2048 characters;
    /// blank removes it.
    #[serde(default)]
    #[schema(
        max_length = 2048,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([Hh][Tt][Tt][Pp][Ss]?://[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    image_url: Option<String>,
    #[serde(default)]
    category_id: Option<Uuid>,
    /// Absent: keep; `null`: no shop; an id: that shop.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    shop_id: Option<Option<Uuid>>,
}

#[utoipa::path(
    put,
    path = "/v1/products/{id}",
    tag = "catalog",
    summary = "Change a product",
    description = "Role: admin. Changes the given fields (all optional); every field is checked before anything is written.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The product.")),
    request_body = ProductChange,
    responses(
        (status = 200, description = "Changed: the product id and position.", body = CommandAnswer),
        Answers::<(Forbidden, UpdateProductError)>,
    ),
)]
async fn update_product(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<ProductChange>,
) -> Result<Json<CommandAnswer>> {
    let change = update_product::ProductChange {
        name: body.name,
        description: body.description,
        price: body.price,
        sku: body.sku,
        image_url: body.image_url,
        category_id: body.category_id.map(CategoryId),
        shop_id: body.shop_id.map(|s| s.map(ShopId)),
    };
    let caller = caller(&user, &request_id);
    let position = update_product::update_product(&state, &caller, ProductId(id), change).await?;
    Ok(Json(CommandAnswer { id, position }))
}

#[utoipa::path(
    delete,
    path = "/v1/products/{id}",
    tag = "catalog",
    summary = "Discontinue a product",
    description = "Role: admin. The product is no longer sold; its history stays.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The product.")),
    responses(
        (status = 200, description = "Discontinued: the product id and position.", body = CommandAnswer),
        Answers::<(Forbidden, FindProductError, Domain<ProductError>, StoreError)>,
    ),
)]
async fn discontinue_product(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CommandAnswer>> {
    existing_product(&state, ProductId(id)).await?;
    let meta = metadata(user.actor(), &request_id, "DiscontinueProduct");
    let committed = state
        .products
        .execute_with_retry(&id.to_string(), ProductCommand::Discontinue, &meta)
        .await
        .map_err(command_error)?;
    Ok(Json(CommandAnswer {
        id,
        position: committed.position,
    }))
}
