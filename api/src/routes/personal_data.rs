//! Personal data: a customer's export, and forgetting them (see
//! docs/personal-data.md). `DELETE /v1/me` is with the other `/v1/me`
//! operations in `accounts`.

use axum::extract::State;
use axum::Json;
use domain::metadata::Role;
use domain::values::CustomerId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::export_customer::{export_customer, CustomerExport, ExportCustomerError};
use crate::app::forget_customer::{forget_customer, ForgetCustomerError};
use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::{Admin, AuthUser};
use crate::commands::{caller, CommandAnswer};
use crate::error::{Answers, Result};
use crate::extract::{AppPath, RequestId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_me))
        .routes(routes!(forget))
        .routes(routes!(export))
}

#[utoipa::path(
    get,
    path = "/v1/me/export",
    tag = "accounts",
    summary = "Export my personal data",
    description = "Role: customer. Everything the shop holds about the signed-in customer: the profile, every order with its shipping address, and every notification queued to them.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The export.", body = CustomerExport),
        Answers::<(Forbidden, ExportCustomerError)>,
    ),
)]
async fn export_me(State(state): State<AppState>, user: AuthUser) -> Result<Json<CustomerExport>> {
    user.require(&[Role::Customer])?;
    Ok(Json(export_customer(&state, CustomerId(user.id)).await?))
}

#[utoipa::path(
    post,
    path = "/v1/admin/customers/{id}/forget",
    tag = "accounts",
    summary = "Forget a customer",
    description = "Role: admin. As `DELETE /v1/me`, on the customer's behalf (no password). Forgetting a forgotten customer again answers the same. Staff accounts are not customers here (404).",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The customer.")),
    responses(
        (status = 200, description = "Forgotten.", body = CommandAnswer),
        Answers::<(Forbidden, ForgetCustomerError)>,
    ),
)]
async fn forget(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CommandAnswer>> {
    let committed = forget_customer(&state, &caller(&user, &request_id), CustomerId(id)).await?;
    Ok(Json(CommandAnswer {
        id,
        position: committed.position,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/customers/{id}/export",
    tag = "accounts",
    summary = "Export a customer's personal data",
    description = "Role: admin. As `GET /v1/me/export`, for customer `id`.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The customer.")),
    responses(
        (status = 200, description = "The export.", body = CustomerExport),
        Answers::<(Forbidden, ExportCustomerError)>,
    ),
)]
async fn export(
    State(state): State<AppState>,
    Admin(_): Admin,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CustomerExport>> {
    Ok(Json(export_customer(&state, CustomerId(id)).await?))
}
