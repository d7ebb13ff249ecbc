//! Projection rebuilds over HTTP (operators): start one in the background,
//! follow its progress. `shop projections rebuild NAME` does the same from
//! the command line, with a progress bar.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use domain::metadata::Role;
use projections::rebuild::{self, Rebuild, RebuildError, RebuildStatus};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::refusals::NotFound;
use crate::app::refusals::NotRebuildable;
use crate::app::refusals::RebuildRunning;
use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::error::Answers;
use crate::error::{ApiError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start, progress))
}

/// A rebuild started in the background.
#[derive(Debug, Serialize, ToSchema)]
struct Started {
    job_id: Uuid,
    /// The projector.
    name: String,
    version: i32,
    /// True when this picked up an interrupted rebuild where it stopped.
    resumed: bool,
}

impl From<RebuildError> for ApiError {
    fn from(error: RebuildError) -> Self {
        match error {
            RebuildError::UnknownProjector(_) => NotFound(error.to_string()).into(),
            RebuildError::AlreadyRunning(_) => RebuildRunning(error.to_string()).into(),
            RebuildError::NotRebuildable(_) => NotRebuildable(error.to_string()).into(),
            RebuildError::Database(e) => e.into(),
            RebuildError::Poison { .. } | RebuildError::Interrupted => ApiError::internal(error),
        }
    }
}

/// Starts a rebuild (or resumes an interrupted one) in the background: 202
/// with its job id; 409 while one of the same projector runs anywhere.
#[utoipa::path(
    post,
    path = "/v1/admin/projections/{name}/rebuild",
    tag = "operations",
    summary = "Rebuild a read model without downtime",
    description = "Role: operator. Builds the projector's read model anew from the whole event log into shadow tables while the live ones keep answering, then switches atomically. An interrupted rebuild of the same version is resumed where it stopped. Follow it with GET on the same path.",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The projector, e.g. `catalog` or `orders`.")),
    responses(
        (status = 202, description = "Started (or resumed) in the background.", body = Started),
        Answers::<(Forbidden, NotFound, RebuildRunning, NotRebuildable)>,
    ),
)]
async fn start(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Started>)> {
    user.require(&[Role::Operator])?;
    let projector = rebuild::find(&state.projectors, &name)?;
    let job = Rebuild::start(&state.pool, projector, rebuild::DEFAULT_BATCH_SIZE, "http").await?;
    let started = Started {
        job_id: job.status().job_id,
        name: name.clone(),
        version: job.status().version,
        resumed: job.resumed(),
    };
    let background = state.background.clone();
    tokio::spawn(async move {
        match job.run(|_| {}, &background).await {
            Ok(status) => {
                tracing::info!(projector = %name, events = status.processed, "rebuild finished")
            }
            Err(e) => tracing::error!(projector = %name, error = %e, "rebuild did not finish"),
        }
    });
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// The rebuild in progress, or the last one.
#[utoipa::path(
    get,
    path = "/v1/admin/projections/{name}/rebuild",
    tag = "operations",
    summary = "Progress of a rebuild",
    description = "Role: operator. The rebuild in progress, or the last one: state (`building`, `interrupted`, `failed`, `done`), events processed of total, events per second.",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The projector, e.g. `catalog` or `orders`.")),
    responses(
        (status = 200, description = "The rebuild.", body = RebuildStatus),
        Answers::<(Forbidden, NotFound)>,
    ),
)]
async fn progress(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<RebuildStatus>> {
    user.require(&[Role::Operator])?;
    rebuild::find(&state.projectors, &name)?;
    rebuild::status(&state.pool, &name)
        .await?
        .map(Json)
        .ok_or_else(|| NotFound(format!("projector {name:?} has not been rebuilt")).into())
}
