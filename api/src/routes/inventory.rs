//! Inventory: stock arrivals, corrections, holds, decrements, order locks.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use domain::inventory::{InventoryCommand, InventoryError, InventoryItem};
use domain::metadata::CommandMetadata;
use domain::values::{derived_id, OrderId, ProductId, Quantity};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::lock_stock::LockStockError;
use crate::app::lock_stock::{lock_stock, Locked};
use crate::app::products::existing_product;
use crate::app::products::FindProductError;
use crate::app::refusals::{InvalidQuantity, InvalidTtl};
use crate::app::state::AppState;
use crate::app::Domain;
use crate::app::Forbidden;
use crate::app::StoreError;
use crate::auth::Admin;
use crate::commands::{caller, command_error, metadata, CommandAnswer};
use crate::error::Answers;
use crate::error::{ApiError, Result};
use crate::extract::{AppJson, AppPath, RequestId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receive))
        .routes(routes!(adjust))
        .routes(routes!(place_hold))
        .routes(routes!(release_hold))
        .routes(routes!(decrement))
        .routes(routes!(lock))
}

/// A hold without `ttl_seconds` lasts this long.
const DEFAULT_HOLD_TTL_SECONDS: i64 = 15 * 60;
/// The longest hold one can ask for: a week.
const MAX_HOLD_TTL_SECONDS: i64 = 7 * 24 * 3600;

async fn load_item(state: &AppState, product: ProductId) -> Result<InventoryItem> {
    Ok(state
        .inventory
        .load(&product.to_string())
        .await
        .map_err(command_error::<InventoryError>)?
        .unwrap_or_default())
}

fn quantity(value: i64) -> Result<Quantity> {
    Quantity::new(value).map_err(|e| ApiError::from(InvalidQuantity(e.to_string())))
}

/// Runs one inventory command against an existing product.
async fn run(
    state: &AppState,
    product_id: Uuid,
    command: InventoryCommand,
    meta: &CommandMetadata,
) -> Result<CommandAnswer> {
    existing_product(state, ProductId(product_id)).await?;
    let committed = state
        .inventory
        .execute_with_retry(&product_id.to_string(), command, meta)
        .await
        .map_err(command_error)?;
    Ok(CommandAnswer {
        id: product_id,
        position: committed.position,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Receive {
    /// At least 1.
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: i64,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/inventory/{product_id}/receive",
    tag = "inventory",
    summary = "Stock arrives",
    description = "Role: admin. Adds `quantity` to the stock on hand.",
    security(("bearer" = [])),
    params(("product_id" = Uuid, Path, description = "The product (its inventory item shares the id).")),
    request_body = Receive,
    responses(
        (status = 200, description = "Done: the product id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, FindProductError, InvalidQuantity, Domain<InventoryError>, StoreError)>,
    ),
)]
async fn receive(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(product_id): AppPath<Uuid>,
    AppJson(body): AppJson<Receive>,
) -> Result<Json<CommandAnswer>> {
    let command = InventoryCommand::Receive {
        product_id: ProductId(product_id),
        quantity: quantity(body.quantity)?,
        reason: body.reason,
    };
    let meta = metadata(user.actor(), &request_id, "ReceiveStock");
    Ok(Json(run(&state, product_id, command, &meta).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Adjust {
    /// Added to the stock on hand (negative removes); not 0.
    delta: i64,
    /// Not blank, at most 500 characters.
    #[schema(max_length = 500, format = "not-blank")]
    reason: String,
}

#[utoipa::path(
    post,
    path = "/v1/inventory/{product_id}/adjust",
    tag = "inventory",
    summary = "Correct the stock count",
    description = "Role: admin. Adds `delta` (negative removes) to the stock on hand, with a reason.",
    security(("bearer" = [])),
    params(("product_id" = Uuid, Path, description = "The product (its inventory item shares the id).")),
    request_body = Adjust,
    responses(
        (status = 200, description = "Done: the product id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, FindProductError, Domain<InventoryError>, StoreError)>,
    ),
)]
async fn adjust(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(product_id): AppPath<Uuid>,
    AppJson(body): AppJson<Adjust>,
) -> Result<Json<CommandAnswer>> {
    let command = InventoryCommand::Adjust {
        delta: body.delta,
        reason: body.reason,
    };
    let meta = metadata(user.actor(), &request_id, "AdjustStock");
    Ok(Json(run(&state, product_id, command, &meta).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlaceHold {
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: i64,
    /// Who holds it (e.g. a cart or an order); one hold per owner.
    owner_id: Uuid,
    /// 1 to 604800 (a week); default 900.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 604_800)]
    ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct HoldAnswer {
    hold_id: Uuid,
    expires_at: Option<DateTime<Utc>>,
    position: i64,
}

#[utoipa::path(
    put,
    path = "/v1/inventory/{product_id}/hold",
    tag = "inventory",
    summary = "Hold stock",
    description = "Role: admin. Holds `quantity` for `owner_id` until it expires; idempotent per owner (a repeat keeps the first expiry).",
    security(("bearer" = [])),
    params(("product_id" = Uuid, Path, description = "The product (its inventory item shares the id).")),
    request_body = PlaceHold,
    responses(
        (status = 200, description = "Held.", body = HoldAnswer),
        Answers::<(Forbidden, FindProductError, (InvalidQuantity, InvalidTtl), Domain<InventoryError>, StoreError)>,
    ),
)]
async fn place_hold(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(product_id): AppPath<Uuid>,
    AppJson(body): AppJson<PlaceHold>,
) -> Result<Json<HoldAnswer>> {
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_HOLD_TTL_SECONDS);
    if !(1..=MAX_HOLD_TTL_SECONDS).contains(&ttl) {
        return Err(InvalidTtl(format!(
            "ttl_seconds must be between 1 and {MAX_HOLD_TTL_SECONDS}."
        ))
        .into());
    }
    let now = Utc::now();
    let command = InventoryCommand::PlaceHold {
        owner_id: body.owner_id,
        quantity: quantity(body.quantity)?,
        expires_at: Some(now + Duration::seconds(ttl)),
        now,
    };
    let meta = metadata(user.actor(), &request_id, "PlaceHold");
    let answer = run(&state, product_id, command, &meta).await?;
    // A repeated hold keeps its first expiry: answer what is stored.
    let item = load_item(&state, ProductId(product_id)).await?;
    Ok(Json(HoldAnswer {
        hold_id: derived_id("hold", &format!("{product_id}:{}", body.owner_id)),
        expires_at: item.hold(body.owner_id).and_then(|h| h.expires_at),
        position: answer.position,
    }))
}

#[utoipa::path(
    delete,
    path = "/v1/inventory/{product_id}/hold/{owner_id}",
    tag = "inventory",
    summary = "Release a hold",
    description = "Role: admin. Gives the owner's held stock back.",
    security(("bearer" = [])),
    params(("product_id" = Uuid, Path, description = "The product (its inventory item shares the id)."), ("owner_id" = Uuid, Path, description = "Who holds the stock.")),
    responses(
        (status = 200, description = "Done: the product id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, FindProductError, Domain<InventoryError>, StoreError)>,
    ),
)]
async fn release_hold(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath((product_id, owner_id)): AppPath<(Uuid, Uuid)>,
) -> Result<Json<CommandAnswer>> {
    let meta = metadata(user.actor(), &request_id, "ReleaseHold");
    let command = InventoryCommand::ReleaseHold { owner_id };
    Ok(Json(run(&state, product_id, command, &meta).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Decrement {
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: i64,
    order_id: Uuid,
}

#[utoipa::path(
    put,
    path = "/v1/inventory/{product_id}/decrement",
    tag = "inventory",
    summary = "Take stock for an order",
    description = "Role: admin. Removes `quantity` from the stock for `order_id` (using the order's hold when there is one); idempotent per order.",
    security(("bearer" = [])),
    params(("product_id" = Uuid, Path, description = "The product (its inventory item shares the id).")),
    request_body = Decrement,
    responses(
        (status = 200, description = "Done: the product id and the position of the last event written.", body = CommandAnswer),
        Answers::<(Forbidden, FindProductError, InvalidQuantity, Domain<InventoryError>, StoreError)>,
    ),
)]
async fn decrement(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(product_id): AppPath<Uuid>,
    AppJson(body): AppJson<Decrement>,
) -> Result<Json<CommandAnswer>> {
    let command = InventoryCommand::Decrement {
        order_id: OrderId(body.order_id),
        quantity: quantity(body.quantity)?,
    };
    let meta = metadata(user.actor(), &request_id, "DecrementStock");
    Ok(Json(run(&state, product_id, command, &meta).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LockRequest {
    order_id: Uuid,
    /// 1 to 100 lines, one per product.
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<LockLine>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LockLine {
    product_id: Uuid,
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct LockAnswer {
    locked: bool,
    message: String,
    position: i64,
}

/// Holds every line for the order, or none: a line that cannot be held
/// releases the holds this request placed. Holding again for the same order
/// and quantities changes nothing.
#[utoipa::path(
    post,
    path = "/v1/inventory/lock",
    tag = "inventory",
    summary = "Hold every line of an order, or none",
    description = "Role: admin. Holds each line for `order_id` without expiry; when a line cannot be held, the holds this request placed are released and the answer is `locked: false` with the reason. Idempotent per order.",
    security(("bearer" = [])),
    request_body = LockRequest,
    responses(
        (status = 200, description = "Locked, or refused with the reason in `message`.", body = LockAnswer),
        Answers::<(Forbidden, LockStockError)>,
    ),
)]
async fn lock(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppJson(body): AppJson<LockRequest>,
) -> Result<Json<LockAnswer>> {
    let items: Vec<(Uuid, i64)> = body
        .items
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    let caller = caller(&user, &request_id);
    Ok(Json(
        match lock_stock(&state, &caller, body.order_id, &items).await? {
            Locked::Held { lines, position } => LockAnswer {
                locked: true,
                message: format!("{lines} line(s) held for order {}.", body.order_id),
                position,
            },
            Locked::Refused {
                product_id,
                reason,
                position,
            } => LockAnswer {
                locked: false,
                message: format!("Product {product_id}: {reason}"),
                position,
            },
        },
    ))
}
