//! The admin's and the customer's actions on an order: its status, a
//! cancellation, a refund.

use axum::extract::State;
use axum::Json;
use domain::metadata::Role;
use domain::order::OrderStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::cancel_order::{self, CancelOrderError};
use crate::app::refund_order::{self, RefundOrderError};
use crate::app::set_order_status::{set_order_status, SetOrderStatusError};
use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::{Admin, AuthUser};
use crate::commands::{caller, CommandAnswer};
use crate::error::{Answers, Result};
use crate::extract::{AppJson, AppPath, RequestId};
/// Who runs fulfilment: status changes and refunds.
const FULFILMENT: &[Role] = &[Role::Admin];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusChange {
    status: OrderStatus,
    /// For `shipped`: a tracking number given by the carrier already;
    /// without it the carrier books the shipment and issues one.
    #[serde(default)]
    tracking_number: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LegacyStatusChange {
    order_id: Uuid,
    status: OrderStatus,
    /// For `shipped`: a tracking number given by the carrier already;
    /// without it the carrier books the shipment and issues one.
    #[serde(default)]
    tracking_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StatusAnswer {
    id: Uuid,
    position: i64,
    status: OrderStatus,
}

async fn set_status(
    state: &AppState,
    user: &AuthUser,
    request_id: &RequestId,
    id: Uuid,
    to: OrderStatus,
    tracking_number: Option<String>,
) -> Result<Json<StatusAnswer>> {
    user.require(FULFILMENT)?;
    let caller = caller(user, request_id);
    let position = set_order_status(state, &caller, id, to, tracking_number).await?;
    // A command that succeeded leaves the order in the asked status.
    Ok(Json(StatusAnswer {
        id,
        position,
        status: to,
    }))
}

/// `PUT /v1/orders/{id}/status`: illegal transitions are 409
/// `illegal_transition_<from>_to_<to>`.
#[utoipa::path(
    put,
    path = "/v1/orders/{id}/status",
    tag = "orders",
    summary = "Change an order's status",
    description = "Role: admin. Only legal transitions (see the order states). `shipped` books the shipment: without a `tracking_number` the carrier issues one; a given one is recorded as it is.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "Changed.", body = StatusAnswer),
        Answers::<(Forbidden, SetOrderStatusError)>,
    ),
)]
pub(super) async fn change_status(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<StatusChange>,
) -> Result<Json<StatusAnswer>> {
    set_status(
        &state,
        &user,
        &request_id,
        id,
        body.status,
        body.tracking_number,
    )
    .await
}

/// `PUT /v1/orders {order_id, status}`: older clients' form of the above.
#[utoipa::path(
    put,
    path = "/v1/orders",
    tag = "orders",
    summary = "Change an order's status (older form)",
    description = "Role: admin. The same as `PUT /v1/orders/{id}/status`, with the order id in the body, for older clients.",
    security(("bearer" = [])),
    request_body = LegacyStatusChange,
    responses(
        (status = 200, description = "Changed.", body = StatusAnswer),
        Answers::<(Forbidden, SetOrderStatusError)>,
    ),
)]
pub(super) async fn change_status_legacy(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppJson(body): AppJson<LegacyStatusChange>,
) -> Result<Json<StatusAnswer>> {
    set_status(
        &state,
        &user,
        &request_id,
        body.order_id,
        body.status,
        body.tracking_number,
    )
    .await
}

/// The owner cancels (reason `customer_request`) or an admin does (`admin`);
/// refused (409) once the order has shipped. An order cancelled before its
/// payment was captured gives its coupon use back (idempotent per order, like
/// the redemption; stock and refunds are the fulfilment workflow's part).
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    tag = "orders",
    summary = "Cancel an order",
    description = "Role: the order's owner (reason `customer_request`) or admin (reason `admin`). Refused once the order has shipped.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "Cancelled.", body = CommandAnswer),
        Answers::<CancelOrderError>,
    ),
)]
pub(super) async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CommandAnswer>> {
    let caller = caller(&user, &request_id);
    let position = cancel_order::cancel_order(&state, &caller, user.id, user.role, id).await?;
    Ok(Json(CommandAnswer { id, position }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundBody {
    /// Minor units, at least 1; absent: everything not yet refunded.
    #[serde(default)]
    #[schema(minimum = 1)]
    amount: Option<i64>,
    /// Not blank.
    #[schema(format = "not-blank")]
    reason: String,
}

#[utoipa::path(
    post,
    path = "/v1/orders/{id}/refund",
    tag = "orders",
    summary = "Refund an order",
    description = "Role: admin. Refunds `amount` (default: everything not yet refunded) of a paid order.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    request_body = RefundBody,
    responses(
        (status = 200, description = "Refunded.", body = CommandAnswer),
        Answers::<(Forbidden, RefundOrderError)>,
    ),
)]
pub(super) async fn refund_order(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<RefundBody>,
) -> Result<Json<CommandAnswer>> {
    let caller = caller(&user, &request_id);
    let position =
        refund_order::refund_order(&state, &caller, id, body.amount, body.reason).await?;
    Ok(Json(CommandAnswer { id, position }))
}
