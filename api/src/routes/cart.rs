//! The signed-in customer's cart.
//!
//! Every customer has exactly one cart, whose id is derived from the
//! customer's id ([`cart_id_for`]): the handlers never take a cart id from the
//! client, so nobody can reach anyone else's cart.
//!
//! The cart stores product ids and quantities only. `GET /v1/cart` prices it
//! with the catalog's current prices and the applied coupon, straight from the
//! event store (so it always shows the customer's last write).

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use domain::cart::{cart_id_for, CartCommand};
use domain::metadata::Role;
use domain::values::{CustomerId, ProductId, Quantity};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::cart::priced_cart;
use crate::app::pricing::CartPricingError;
use crate::app::refusals::{InvalidQuantity, TooManyCouponAttempts};
use crate::app::state::AppState;
use crate::app::Domain;
use crate::app::Forbidden;
use crate::app::StoreError;
use crate::auth::AuthUser;
use crate::commands::{command_error, metadata, CommandAnswer};
use crate::error::Answers;
use crate::error::OrTooMany;
use crate::error::{ApiError, Result};
use crate::extract::{AppJson, AppPath, RequestId};
use domain::cart::CartError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_cart, empty_cart))
        .routes(routes!(add_item))
        .routes(routes!(change_quantity, remove_item))
        .routes(routes!(apply_coupon, remove_coupon))
}

/// Who has a cart: customers. Staff accounts do not shop.
const CART_ROLES: &[Role] = &[Role::Customer];

/// The caller's cart id, after checking that the caller may have one.
fn cart_of(user: &AuthUser) -> Result<Uuid> {
    user.require(CART_ROLES)?;
    Ok(cart_id_for(&CustomerId(user.id)).as_uuid())
}

/// Runs one cart command on the caller's cart. Every cart command is decided
/// on the cart's current state, so re-deciding after a concurrency conflict
/// (the customer's other tab) is safe.
async fn run(
    state: &AppState,
    user: &AuthUser,
    request_id: &RequestId,
    name: &str,
    command: CartCommand,
) -> Result<Json<CommandAnswer>> {
    let cart_id = cart_of(user)?;
    let meta = metadata(user.actor(), request_id, name);
    let committed = state
        .carts
        .execute_with_retry(&cart_id.to_string(), command, &meta)
        .await
        .map_err(command_error)?;
    Ok(Json(CommandAnswer {
        id: cart_id,
        position: committed.position,
    }))
}

/// The cart as it is now: an empty cart when it never had an item.
fn quantity(value: i64) -> Result<Quantity> {
    Quantity::new(value).map_err(|e| ApiError::from(InvalidQuantity(e.to_string())))
}

// ---- reading ----

#[derive(Debug, Serialize, ToSchema)]
struct CartItemView {
    #[schema(value_type = Uuid)]
    product_id: ProductId,
    name: String,
    quantity: u32,
    unit_price: i64,
    line_total: i64,
    /// False once the product is discontinued: the line can no longer be
    /// ordered (remove it).
    available: bool,
}

#[derive(Debug, Serialize, ToSchema)]
struct CartView {
    id: Uuid,
    items: Vec<CartItemView>,
    subtotal: i64,
    discount: i64,
    total: i64,
    currency: String,
    coupon_code: Option<String>,
    /// Whether the applied coupon gives its discount now (`null` without a
    /// coupon): an expired or used-up coupon stays on the cart but takes
    /// nothing off, and ordering the cart with it is refused.
    coupon_valid: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/v1/cart",
    tag = "cart",
    summary = "The cart, priced",
    description = "Role: customer (staff accounts have no cart). The cart with the catalog's current prices and the applied coupon's discount; money in minor units of `currency`. An empty cart when it never had an item.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart.", body = CartView),
        Answers::<(Forbidden, CartPricingError)>,
    ),
)]
async fn get_cart(State(state): State<AppState>, user: AuthUser) -> Result<Json<CartView>> {
    let cart_id = cart_of(&user)?;
    let (cart, priced) = priced_cart(&state, CustomerId(user.id)).await?;
    Ok(Json(CartView {
        id: cart_id,
        items: priced
            .lines
            .iter()
            .map(|line| CartItemView {
                product_id: line.product_id,
                name: line.name.clone(),
                quantity: line.quantity.get(),
                unit_price: line.unit_price.minor,
                line_total: line.line_total.minor,
                available: line.exists && !line.discontinued,
            })
            .collect(),
        subtotal: priced.subtotal.minor,
        discount: priced.discount.minor,
        total: priced.total.minor,
        currency: state.currency.to_string(),
        coupon_code: cart.coupon().map(|c| c.code.clone()),
        coupon_valid: priced.coupon_valid,
    }))
}

// ---- commands ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddItem {
    product_id: Uuid,
    /// At least 1.
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: i64,
}

#[utoipa::path(
    post,
    path = "/v1/cart/items",
    tag = "cart",
    summary = "Add a line",
    description = "Role: customer (staff accounts have no cart). Adds the product, or increases the quantity of its line. A cart holds at most 100 lines (one per product), as many as one order.",
    security(("bearer" = [])),
    request_body = AddItem,
    responses(
        (status = 200, description = "Done: the cart id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, InvalidQuantity, Domain<CartError>, StoreError)>,
    ),
)]
async fn add_item(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    AppJson(body): AppJson<AddItem>,
) -> Result<Json<CommandAnswer>> {
    let command = CartCommand::AddItem {
        customer_id: CustomerId(user.id),
        product_id: ProductId(body.product_id),
        quantity: quantity(body.quantity)?,
    };
    run(&state, &user, &request_id, "AddCartItem", command).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeQuantity {
    /// 0 removes the line.
    #[schema(minimum = 0, maximum = 1_000_000)]
    quantity: i64,
}

#[utoipa::path(
    put,
    path = "/v1/cart/items/{product_id}",
    tag = "cart",
    summary = "Change a line's quantity",
    description = "Role: customer (staff accounts have no cart). Sets the quantity of the product's line; 0 removes it.",
    security(("bearer" = [])),
    params(("product_id" = Uuid, Path, description = "The product.")),
    request_body = ChangeQuantity,
    responses(
        (status = 200, description = "Done: the cart id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, InvalidQuantity, Domain<CartError>, StoreError)>,
    ),
)]
async fn change_quantity(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    AppPath(product_id): AppPath<Uuid>,
    AppJson(body): AppJson<ChangeQuantity>,
) -> Result<Json<CommandAnswer>> {
    // 0 removes the line; anything else must be a quantity.
    let quantity = match body.quantity {
        0 => 0,
        n => quantity(n)?.get(),
    };
    let command = CartCommand::ChangeQuantity {
        product_id: ProductId(product_id),
        quantity,
    };
    run(&state, &user, &request_id, "ChangeCartQuantity", command).await
}

#[utoipa::path(
    delete,
    path = "/v1/cart/items/{product_id}",
    tag = "cart",
    summary = "Remove a line",
    description = "Role: customer (staff accounts have no cart). Removes the product's line.",
    security(("bearer" = [])),
    params(("product_id" = Uuid, Path, description = "The product.")),
    responses(
        (status = 200, description = "Done: the cart id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, Domain<CartError>, StoreError)>,
    ),
)]
async fn remove_item(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    AppPath(product_id): AppPath<Uuid>,
) -> Result<Json<CommandAnswer>> {
    let command = CartCommand::RemoveItem {
        product_id: ProductId(product_id),
    };
    run(&state, &user, &request_id, "RemoveCartItem", command).await
}

#[utoipa::path(
    delete,
    path = "/v1/cart",
    tag = "cart",
    summary = "Empty the cart",
    description = "Role: customer (staff accounts have no cart). Removes every line and the coupon.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done: the cart id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, Domain<CartError>, StoreError)>,
    ),
)]
async fn empty_cart(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
) -> Result<Json<CommandAnswer>> {
    run(&state, &user, &request_id, "EmptyCart", CartCommand::Empty).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ApplyCoupon {
    code: String,
}

#[utoipa::path(
    post,
    path = "/v1/cart/coupon",
    tag = "cart",
    summary = "Apply a coupon",
    description = "Role: customer (staff accounts have no cart). Applies the coupon with this code to the cart (one coupon per cart).",
    security(("bearer" = [])),
    request_body = ApplyCoupon,
    responses(
        (status = 200, description = "Done: the cart id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, Domain<CartError>, StoreError, TooManyCouponAttempts)>,
    ),
)]
async fn apply_coupon(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    AppJson(body): AppJson<ApplyCoupon>,
) -> Result<Json<CommandAnswer>> {
    state.customer_limits.coupons.check(&user.id).or_too_many(
        TooManyCouponAttempts::CODE,
        "Too many coupons tried; wait a minute.",
    )?;
    let command = CartCommand::ApplyCoupon {
        code: body.code,
        now: Utc::now(),
    };
    run(&state, &user, &request_id, "ApplyCoupon", command).await
}

#[utoipa::path(
    delete,
    path = "/v1/cart/coupon",
    tag = "cart",
    summary = "Remove the coupon",
    description = "Role: customer (staff accounts have no cart). Takes the coupon off the cart.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done: the cart id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, Domain<CartError>, StoreError)>,
    ),
)]
async fn remove_coupon(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
) -> Result<Json<CommandAnswer>> {
    run(
        &state,
        &user,
        &request_id,
        "RemoveCoupon",
        CartCommand::RemoveCoupon,
    )
    .await
}
