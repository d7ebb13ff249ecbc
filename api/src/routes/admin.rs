//! Operations: projector status, and the raw event log for operators and
//! auditors (secrets such as password hashes and payment tokens redacted
//! for both; personal data redacted for operators).

use axum::extract::State;
use axum::Json;
use domain::metadata::Role;
use projections::admin::{self, ProjectorStatus};
use projections::audit::{self, AuditEvent, EventFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::error::Answers;
use crate::error::Result;
use crate::extract::AppQuery;
use crate::read::{limit, next_page};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(projections))
        .routes(routes!(events))
}

#[utoipa::path(
    get,
    path = "/v1/admin/projections",
    tag = "operations",
    summary = "Projectors and their lag",
    description = "Role: operator. Every projector with its checkpoint, lag, state and dead letters.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The projectors.", body = Vec<ProjectorStatus>),
        Answers::<Forbidden>,
    ),
)]
async fn projections(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<ProjectorStatus>>> {
    user.require(&[Role::Operator])?;
    Ok(Json(admin::status(&state.pool).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    /// Only the events of this request (its answer's `X-Correlation-Id`).
    correlation_id: Option<String>,
    /// e.g. `Order`, `Product`, `Customer`.
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    /// Only events after this global position (the previous page's `next_after_position`).
    after_position: Option<i64>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct EventPage {
    events: Vec<AuditEvent>,
    /// Pass as `after_position` for the next page; null on the last one.
    next_after_position: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/v1/admin/events",
    tag = "operations",
    summary = "The event log",
    description = "Role: operator or auditor. Events of the event store in global order, filtered. Secrets (password hashes, payment tokens) are redacted for both; fields holding personal data (names, usernames, emails, phones, addresses) read `[redacted]` for operators and as stored for auditors.",
    security(("bearer" = [])),
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events.", body = EventPage),
        Answers::<Forbidden>,
    ),
)]
async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<EventQuery>,
) -> Result<Json<EventPage>> {
    user.require(&[Role::Operator, Role::Auditor])?;
    let limit = limit(query.limit)?;
    let filter = EventFilter {
        correlation_id: query.correlation_id,
        aggregate_type: query.aggregate_type,
        aggregate_id: query.aggregate_id,
        after_position: query.after_position.unwrap_or(0),
    };
    let mut events = audit::events(&state.pool, &filter, limit + 1).await?;
    let next_after_position = next_page(&mut events, limit, |e| e.position);
    // Auditors read personal data; everyone else who may read the log
    // (operators) reads it redacted.
    if user.role != Role::Auditor {
        events.iter_mut().for_each(audit::redact_personal);
    }
    Ok(Json(EventPage {
        events,
        next_after_position,
    }))
}
