//! Operations: projector status, and the raw event log for operators and
//! auditors (secrets such as password hashes and payment tokens redacted).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::metadata::Role;
use projections::admin::{self, ProjectorStatus};
use projections::audit::{self, AuditEvent, EventFilter};
use serde::{Deserialize, Serialize};

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

#[derive(Debug, Serialize)]
struct EventPage {
    events: Vec<AuditEvent>,
    /// Pass as `after_position` for the next page; null on the last one.
    next_after_position: Option<i64>,
}

async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<EventQuery>,
) -> Result<Json<EventPage>> {
    user.require(&[Role::Operator, Role::Auditor, Role::Admin])?;
    let limit = limit(query.limit)?;
    let filter = EventFilter {
        correlation_id: query.correlation_id,
        aggregate_type: query.aggregate_type,
        aggregate_id: query.aggregate_id,
        after_position: query.after_position.unwrap_or(0),
    };
    let mut events = audit::events(&state.pool, &filter, limit + 1).await?;
    let next_after_position = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| e.position)
    } else {
        None
    };
    Ok(Json(EventPage {
        events,
        next_after_position,
    }))
}
