//! Operations: projector status, and the raw event log for operators and
//! auditors (secrets such as password hashes and payment tokens redacted).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::metadata::Role;
use projections::admin::{self, ProjectorStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AuthUser;
use crate::error::Result;
use crate::extract::AppQuery;
use crate::read::limit;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/projections", get(projections))
        .route("/v1/admin/events", get(events))
}

async fn projections(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<ProjectorStatus>>> {
    user.require(&[Role::Operator, Role::Admin])?;
    Ok(Json(admin::status(&state.pool).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    correlation_id: Option<String>,
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    after_position: Option<i64>,
    limit: Option<i64>,
}

/// One stored event, as auditors read it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub command: Option<String>,
    pub payload: Value,
}

#[derive(Debug, Serialize)]
struct EventPage {
    events: Vec<AuditEvent>,
    /// Pass as `after_position` for the next page; null on the last one.
    next_after_position: Option<i64>,
}

/// Keys whose values are secrets and never leave the server.
const SECRET_KEYS: &[&str] = &["password_hash", "payment_token"];

/// Replaces the values of secret keys, at any depth, with "[redacted]".
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *inner = Value::String("[redacted]".to_string());
                } else {
                    redact(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The columns of [`AuditEvent`], for queries over `events`.
pub const AUDIT_COLUMNS: &str =
    "global_position AS position, aggregate_type, aggregate_id, sequence,
    event_type, event_version, recorded_at, metadata->>'actor' AS actor,
    metadata->>'correlation_id' AS correlation_id, metadata->>'causation_id' AS causation_id,
    metadata->>'command' AS command, payload::jsonb AS payload";

async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<EventQuery>,
) -> Result<Json<EventPage>> {
    user.require(&[Role::Operator, Role::Auditor, Role::Admin])?;
    let limit = limit(query.limit)?;
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM events
          WHERE ($1::text IS NULL OR metadata->>'correlation_id' = $1)
            AND ($2::text IS NULL OR aggregate_type = $2)
            AND ($3::text IS NULL OR aggregate_id = $3)
            AND global_position > $4
          ORDER BY global_position
          LIMIT $5"
    );
    let mut events: Vec<AuditEvent> = sqlx::query_as(&sql)
        .bind(query.correlation_id)
        .bind(query.aggregate_type)
        .bind(query.aggregate_id)
        .bind(query.after_position.unwrap_or(0))
        .bind(limit + 1)
        .fetch_all(&state.pool)
        .await?;
    let next_after_position = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| e.position)
    } else {
        None
    };
    events.iter_mut().for_each(|e| redact(&mut e.payload));
    Ok(Json(EventPage {
        events,
        next_after_position,
    }))
}
