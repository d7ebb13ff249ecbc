//! Liveness and readiness.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::{ApiError, Result};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

/// 200 while the process runs.
async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

/// 200 when the database answers and every migration is applied; 503 otherwise.
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
    Ok(Json(json!({ "status": "ready" })))
}
