//! Liveness and readiness.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::app::readiness::{check_ready, NotReady};
use crate::app::state::AppState;
use crate::error::{Answers, Result};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// 200 while the process runs.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    summary = "Liveness",
    description = "Anyone. 200 while the process runs; it does not ask the database.",
    responses((status = 200, description = "Alive.", body = Object, example = json!({"status": "live"}))),
)]
async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

/// 200 when the database answers, every migration is applied and no
/// projector is halted on a poison event; 503 otherwise, naming the cause.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    summary = "Readiness",
    description = "Anyone. 200 when the database answers, every migration is applied and no projector is halted; 503 otherwise, naming the cause. With NATS configured, `integration_events` tells how far the publisher is behind (`lag_events`, `lag_seconds`); NATS being down does not make the shop unready.",
    responses(
        (status = 200, description = "Ready.", body = Object, example = json!({"status": "ready"})),
        Answers::<NotReady>,
    ),
)]
async fn ready(State(state): State<AppState>) -> Result<Json<Value>> {
    let ready = check_ready(&state.pool).await?;
    Ok(Json(match ready.integration_lag {
        Some((lag_events, lag_seconds)) => json!({
            "status": "ready",
            "integration_events": {"lag_events": lag_events, "lag_seconds": lag_seconds},
        }),
        None => json!({ "status": "ready" }),
    }))
}
