//! The customer's notifications: every email and SMS the shop queued for
//! them, newest first, with its delivery status.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::metadata::Role;
use projections::notifications::NAME as NOTIFICATIONS;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::error::Answers;
use crate::error::Result;
use crate::extract::AppQuery;
use crate::read::{answer, decode_cursor, encode_cursor, limit, min_position, next_page, wait_for};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Staff who may read anyone's notifications (with `customer_id`).
const READERS: &[Role] = &[Role::Admin, Role::Auditor];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Admins and auditors only; a customer sees their own whatever this says.
    #[serde(default)]
    customer_id: Option<Uuid>,
    /// 1 to 100, default 20.
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The previous page's `next_cursor`.
    #[serde(default)]
    cursor: Option<String>,
    /// Wait (bounded) until the outbox has this position.
    #[serde(default)]
    min_position: Option<i64>,
}

/// One message to a customer.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
struct Notification {
    id: i64,
    customer_id: Uuid,
    order_id: Option<Uuid>,
    /// `placed`, `paid`, `payment_failed`, `shipped`, `delivered`,
    /// `cancelled`, `expired` or `refunded`.
    stage: String,
    /// `email` or `sms`.
    channel: String,
    /// The email address or phone number it goes to.
    recipient: String,
    subject: String,
    body: String,
    /// `pending` (queued, or waiting to be tried again), `sent` or `failed`.
    status: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
struct NotificationList {
    notifications: Vec<Notification>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "notifications",
    summary = "The customer's notifications",
    description = "Role: customer (their own), admin or auditor (anyone's, or one customer's with `customer_id`). Every email and SMS queued about the customer's orders, newest first, keyset-paginated, with its delivery status.",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of notifications.", body = NotificationList),
        Answers::<Forbidden>,
    ),
)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Response> {
    user.require(&[Role::Customer, Role::Admin, Role::Auditor])?;
    let customer = if READERS.contains(&user.role) {
        query.customer_id
    } else {
        Some(user.id)
    };
    let limit = limit(query.limit)?;
    let before: Option<i64> = decode_cursor(query.cursor.as_deref())?;
    let freshness = wait_for(
        &state.pool,
        NOTIFICATIONS,
        min_position(query.min_position, &headers)?,
    )
    .await?;
    let mut rows: Vec<Notification> = sqlx::query_as(
        "SELECT id, customer_id, order_id, stage, channel, recipient, subject, body, status,
                attempts, created_at, sent_at
           FROM notifications
          WHERE ($1::uuid IS NULL OR customer_id = $1)
            AND ($2::bigint IS NULL OR id < $2)
          ORDER BY id DESC
          LIMIT $3",
    )
    .bind(customer)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let next_cursor = next_page(&mut rows, limit, |r| encode_cursor(&r.id));
    Ok(answer(
        freshness,
        NotificationList {
            notifications: rows,
            next_cursor,
        },
    ))
}
