//! Inventory: stock arrivals, corrections, holds, decrements, order locks.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::inventory::InventoryCommand;
use domain::values::{OrderId, ProductId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::lock_stock::LockStockError;
use crate::app::lock_stock::{lock_stock, Locked};
use crate::app::state::AppState;
use crate::app::stock::{self, StockError};
use crate::app::Forbidden;
use crate::auth::Admin;
use crate::commands::{caller, CommandAnswer};
use crate::error::Answers;
use crate::error::Result;
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

/// Runs one stock command; answers the product id and position.
async fn run(
    state: &AppState,
    user: &crate::auth::AuthUser,
    request_id: &RequestId,
    product_id: Uuid,
    name: &str,
    command: InventoryCommand,
) -> Result<Json<CommandAnswer>> {
    let position = stock::run(state, &caller(user, request_id), product_id, name, command).await?;
    Ok(Json(CommandAnswer {
        id: product_id,
        position,
    }))
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
        Answers::<(Forbidden, StockError)>,
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
        quantity: stock::quantity(body.quantity)?,
        reason: body.reason,
    };
    run(
        &state,
        &user,
        &request_id,
        product_id,
        "ReceiveStock",
        command,
    )
    .await
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
        Answers::<(Forbidden, StockError)>,
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
    run(
        &state,
        &user,
        &request_id,
        product_id,
        "AdjustStock",
        command,
    )
    .await
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
        Answers::<(Forbidden, StockError)>,
    ),
)]
async fn place_hold(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(product_id): AppPath<Uuid>,
    AppJson(body): AppJson<PlaceHold>,
) -> Result<Json<HoldAnswer>> {
    let hold = stock::place_hold(
        &state,
        &caller(&user, &request_id),
        product_id,
        body.owner_id,
        body.quantity,
        body.ttl_seconds,
    )
    .await?;
    Ok(Json(HoldAnswer {
        hold_id: hold.hold_id,
        expires_at: hold.expires_at,
        position: hold.position,
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
        Answers::<(Forbidden, StockError)>,
    ),
)]
async fn release_hold(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath((product_id, owner_id)): AppPath<(Uuid, Uuid)>,
) -> Result<Json<CommandAnswer>> {
    let command = InventoryCommand::ReleaseHold { owner_id };
    run(
        &state,
        &user,
        &request_id,
        product_id,
        "ReleaseHold",
        command,
    )
    .await
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
        Answers::<(Forbidden, StockError)>,
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
        quantity: stock::quantity(body.quantity)?,
    };
    run(
        &state,
        &user,
        &request_id,
        product_id,
        "DecrementStock",
        command,
    )
    .await
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
