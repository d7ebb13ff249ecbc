//! Liveness and readiness.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::app::state::AppState;
use crate::error::ErrorBody;
use crate::error::{ApiError, Result};
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
    description = "Anyone. 200 when the database answers, every migration is applied and no projector is halted; 503 otherwise (`database_unavailable`, `migrations_pending`, `projector_halted`). With NATS configured, `integration_events` tells how far the publisher is behind (`lag_events`, `lag_seconds`); NATS being down does not make the shop unready.",
    responses(
        (status = 200, description = "Ready.", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "Not ready: the database is unreachable, a migration is pending or a projector needs an operator.", body = ErrorBody),
    ),
)]
async fn ready(State(state): State<AppState>) -> Result<Json<Value>> {
    let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&state.pool)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "readiness: database did not answer");
            ApiError::unavailable()
        })?;
    let missing = projections::MIGRATOR
        .iter()
        .filter(|m| !applied.iter().any(|(v,)| *v == m.version))
        .count();
    if missing > 0 {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "migrations_pending",
            format!("{missing} database migration(s) are not applied yet."),
        ));
    }
    let halted: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT c.name, c.state,
                (SELECT count(*) FROM projector_dead_letters d
                  WHERE d.projector = c.name AND d.resolution IS NULL)
           FROM projector_checkpoints c
          WHERE c.state = 'stopped'
             OR EXISTS (SELECT 1 FROM projector_dead_letters d
                         WHERE d.projector = c.name AND d.resolution IS NULL)
          ORDER BY c.name",
    )
    .fetch_all(&state.pool)
    .await
    .map_err(|_| ApiError::unavailable())?;
    if !halted.is_empty() {
        let names: Vec<String> = halted
            .iter()
            .map(|(name, state, dead)| format!("{name} ({state}, {dead} dead letter(s))"))
            .collect();
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "projector_halted",
            format!("Projector(s) need an operator: {}.", names.join(", ")),
        ));
    }
    // The integration event publisher's lag: NATS being down does not make
    // the shop unready (commands go on), but it shows here.
    let publisher = projections::integration::publisher::NAME;
    let lag = projections::admin::lag_of(&state.pool, publisher)
        .await
        .map_err(|_| ApiError::unavailable())?;
    Ok(Json(match lag {
        Some((lag_events, lag_seconds)) => json!({
            "status": "ready",
            "integration_events": {"lag_events": lag_events, "lag_seconds": lag_seconds},
        }),
        None => json!({ "status": "ready" }),
    }))
}
