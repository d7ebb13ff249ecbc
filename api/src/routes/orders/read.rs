//! Reading orders: one (also as it was at a past moment), its events, and
//! lists.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::metadata::Role;
use domain::order::{Order, OrderError, OrderStatus, OrderView};
use projections::audit::{self, AuditEvent};
use projections::read_models::orders::queries::{self as history, OrderCursor, OrderFilter};
use projections::read_models::orders::NAME as ORDERS;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::app::orders::{self, LoadOrderError, READERS};
use crate::app::refusals::InvalidVersion;
use crate::app::refusals::ReadModelBehind;
use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::commands::domain_error;
use crate::error::{Answers, ApiError, Result};
use crate::extract::{AppPath, AppQuery};
use crate::read::{answer, decode_cursor, encode_cursor, limit, min_position, wait_for, Freshness};

fn order_view(order: &Order) -> Result<OrderView> {
    order
        .view()
        .ok_or_else(|| ApiError::internal("an order without an id was loaded as placed"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct OrderQuery {
    /// RFC 3339; the order as it was at that moment.
    #[serde(default)]
    as_of: Option<DateTime<Utc>>,
    /// The order after its first `version` events.
    #[serde(default)]
    #[param(minimum = 1)]
    version: Option<i64>,
    /// Wait (bounded) until the order history has this position.
    #[serde(default)]
    min_position: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OrderRead {
    #[serde(flatten)]
    order: OrderView,
    /// The sequence of the order's last event shown (pass as `version`).
    version: i64,
}

/// The order now (from the order history read model), or as it was
/// (`as_of`, `version`: rebuilt from its events in the event store).
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    summary = "One order",
    description = "Role: the order's owner, admin or auditor (anyone else gets 404). The order now, or as it was (`as_of`, `version`: rebuilt from its events).",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order."), OrderQuery),
    responses(
        (status = 200, description = "The order.", body = OrderRead),
        Answers::<(InvalidVersion, LoadOrderError, ReadModelBehind)>,
        Answers::<LoadOrderError>,
    ),
)]
pub(super) async fn get_order(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<OrderQuery>,
) -> Result<Response> {
    if query.version.is_some_and(|v| v < 1) {
        return Err(
            InvalidVersion::new("version counts the order's events and starts at 1.").into(),
        );
    }
    if query.as_of.is_some() || query.version.is_some() {
        let (order, version) = orders::load_order(&state, id, query.as_of, query.version).await?;
        if !orders::may_read(user.id, user.role, &order) {
            return Err(domain_error(&OrderError::NotFound));
        }
        let fresh = Freshness {
            position: 0,
            stale: false,
        };
        return Ok(answer(
            fresh,
            OrderRead {
                order: order_view(&order)?,
                version,
            },
        ));
    }
    let freshness = wait_for(
        &state.pool,
        ORDERS,
        min_position(query.min_position, &headers)?,
    )
    .await?;
    let row = history::order(&state.pool, id)
        .await?
        .filter(|r| r.customer_id == user.id || READERS.contains(&user.role))
        .ok_or_else(|| freshness.missing(domain_error(&OrderError::NotFound)))?;
    Ok(answer(
        freshness,
        OrderRead {
            order: row.view,
            version: row.version,
        },
    ))
}

/// Every event of the order, oldest first, read from the event store itself,
/// with who caused it, in which request, and why.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/history",
    tag = "orders",
    summary = "An order's events",
    description = "Role: the order's owner, admin or auditor (anyone else gets 404). Every event of the order from the event store, oldest first, with who caused it and in which request. Admins and auditors see the full `actor` (`admin:<uuid>`); the owner sees the role alone (`admin`), never a staff account's id.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "The events.", body = Vec<projections::audit::AuditEvent>),
        Answers::<LoadOrderError>,
    ),
)]
pub(super) async fn order_history(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Vec<AuditEvent>>> {
    // Visibility is decided on the order itself: 404 for anyone else's.
    orders::visible_order(&state, user.id, user.role, id).await?;
    let mut events = audit::history(&state.pool, Order::TYPE, &id.to_string()).await?;
    if !READERS.contains(&user.role) {
        for event in &mut events {
            if let Some(actor) = event.actor.as_mut() {
                *actor = domain::metadata::Actor::role_only(actor).to_string();
            }
        }
    }
    Ok(Json(events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: Option<OrderStatus>,
    /// Admins and auditors only; a customer sees their own orders whatever
    /// this says.
    #[serde(default)]
    customer_id: Option<Uuid>,
    /// 1 to 100, default 20.
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The previous page's `next_cursor`.
    #[serde(default)]
    cursor: Option<String>,
    /// Wait (bounded) until the order history has this position.
    #[serde(default)]
    min_position: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OrderList {
    orders: Vec<OrderView>,
    next_cursor: Option<String>,
}

/// Newest first, keyset-paginated on the position the order was placed at,
/// from the order history read model.
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    summary = "List orders",
    description = "Role: customer (their own orders), admin or auditor (all, or one customer's). Newest first, keyset-paginated.",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders.", body = OrderList),
        Answers::<Forbidden>,
    ),
)]
pub(super) async fn list_orders(
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
    let after: Option<OrderCursor> = decode_cursor(query.cursor.as_deref())?;
    let freshness = wait_for(
        &state.pool,
        ORDERS,
        min_position(query.min_position, &headers)?,
    )
    .await?;
    let filter = OrderFilter {
        customer_id: customer,
        status: query.status,
        after,
        limit,
    };
    let page = history::list_orders(&state.pool, &filter).await?;
    Ok(answer(
        freshness,
        OrderList {
            orders: page.orders.into_iter().map(|r| r.view).collect(),
            next_cursor: page.next.as_ref().map(encode_cursor),
        },
    ))
}
