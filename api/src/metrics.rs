//! Prometheus metrics: requests by route and status with latency, commands
//! by aggregate and outcome (recorded in `projections::event_store`),
//! projector checkpoints and lag, dead letters, and the connection pool.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::metadata::Role;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::error::Answers;
use crate::error::{ApiError, Result};

/// The process-wide recorder (installed on first use).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_string()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            builder
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

/// Middleware: counts every request by method, matched route and status,
/// and observes its latency.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: Prometheus text, for callers on loopback or operators.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Callers on this machine (loopback) without a token, or role: operator from anywhere. Prometheus text format.",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The metrics.", content_type = "text/plain; version=0.0.4", body = String),
        Answers::<Forbidden>,
    ),
)]
pub async fn render(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    user: Option<AuthUser>,
) -> Result<Response> {
    let allowed =
        client.ip().is_loopback() || user.is_some_and(|u| u.require(&[Role::Operator]).is_ok());
    if !allowed {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            crate::app::FORBIDDEN,
            "Metrics are for operators, or for scrapers on this machine.",
        ));
    }
    // Gauges are read at scrape time, so they are never stale.
    if let Ok(projectors) = projections::admin::status(&state.pool).await {
        for p in projectors {
            let name = p.name.clone();
            metrics::gauge!("projector_position", "projector" => name.clone())
                .set(p.position as f64);
            metrics::gauge!("projector_lag_events", "projector" => name.clone())
                .set(p.lag_events as f64);
            metrics::gauge!("projector_lag_seconds", "projector" => name.clone())
                .set(p.lag_seconds);
            metrics::gauge!("projector_dead_letters", "projector" => name.clone())
                .set(p.dead_letters as f64);
            metrics::gauge!("projector_running", "projector" => name)
                .set(if p.state == "running" { 1.0 } else { 0.0 });
        }
    }
    metrics::gauge!("db_pool_connections").set(f64::from(state.pool.size()));
    metrics::gauge!("db_pool_idle_connections").set(state.pool.num_idle() as f64);
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response())
}
