//! Orders: placing one (from the cart or from explicit lines), reading it
//! (also as it was at a past moment), and the admin's and customer's actions
//! on it. The state machine is drawn in `docs/order-states.md`.
//!
//! Prices never come from the client: every line is priced from the catalog
//! when the order is placed, and the lines keep those prices for ever.
//!
//! Someone else's order is answered 404, never 403, so that order ids cannot
//! be probed.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::metadata::Role;
use domain::order::{Order, OrderError, OrderStatus, OrderView, PaymentMethod, ShippingAddress};
use domain::values::{CustomerId, OrderId, ProductId};
use projections::audit::{self, AuditEvent};
use projections::read_models::orders::queries::{self as history, OrderCursor, OrderFilter};
use projections::read_models::orders::NAME as ORDERS;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::cancel_order::{self, CancelOrderError};
use crate::app::orders::{self, LoadOrderError, READERS};
use crate::app::place_order::{self, PlaceOrder, PlaceOrderError, RequestedItem};
use crate::app::refund_order::{self, RefundOrderError};
use crate::app::refusals::ReadModelBehind;
use crate::app::refusals::{InvalidVersion, TooManyOrders};
use crate::app::set_order_status::{set_order_status, SetOrderStatusError};
use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::{Admin, AuthUser};
use crate::commands::{
    caller, domain_error, request_hash, CommandAnswer, IdempotencyKey, IdempotencyKeyHeader,
};
use crate::error::OrTooMany;
use crate::error::{Answers, ApiError, Result};
use crate::extract::{AppJson, AppPath, AppQuery, RequestId};
use crate::read::{answer, decode_cursor, encode_cursor, limit, min_position, wait_for, Freshness};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders, change_status_legacy))
        .routes(routes!(get_order))
        .routes(routes!(order_history))
        .routes(routes!(change_status))
        .routes(routes!(cancel_order))
        .routes(routes!(refund_order))
}

/// Who places orders.
const BUYERS: &[Role] = &[Role::Customer];
/// Who runs fulfilment: status changes and refunds.
const FULFILMENT: &[Role] = &[Role::Admin];

// ---- placing an order ----

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    /// Not blank, at most 200 characters.
    #[schema(max_length = 200, format = "not-blank")]
    name: String,
    /// Not blank, at most 200 characters.
    #[schema(max_length = 200, format = "not-blank")]
    line1: String,
    /// At most 200 characters; blank is none.
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    line2: Option<String>,
    /// Not blank, at most 100 characters.
    #[schema(max_length = 100, format = "not-blank")]
    city: String,
    /// Not blank, at most 20 characters.
    #[schema(max_length = 20, format = "not-blank")]
    postal_code: String,
    /// Two letters, e.g. `US`.
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z]{2}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "US"
    )]
    country: String,
}

/// Where the order goes: a structured address, or (older clients) one
/// string. The string is taken as one line: it becomes `line1` as written
/// (trimmed, 1 to 200 characters) and every other field stays empty; an
/// address id of another system is taken as that line too, since the shop
/// keeps no address book.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum AddressInput {
    Structured(AddressBody),
    /// One line, e.g. `Ada Lovelace, 12 St James's Square, London SW1Y
    /// 4JH, GB`.
    OneLine(String),
}

/// Parsed by hand so that a malformed structured address keeps the precise
/// message of [`AddressBody`] (an untagged enum would only say that nothing
/// matched).
impl<'de> Deserialize<'de> for AddressInput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(line) => Ok(AddressInput::OneLine(line)),
            object @ serde_json::Value::Object(_) => AddressBody::deserialize(object)
                .map(AddressInput::Structured)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "shipping_address must be an address object or one line of text",
            )),
        }
    }
}

impl AddressInput {
    fn to_address(&self) -> ShippingAddress {
        match self {
            AddressInput::Structured(a) => ShippingAddress {
                name: a.name.clone(),
                line1: a.line1.clone(),
                line2: a.line2.clone(),
                city: a.city.clone(),
                postal_code: a.postal_code.clone(),
                country: a.country.clone(),
            },
            AddressInput::OneLine(line) => ShippingAddress::one_line(line),
        }
    }
}

/// A requested line. The price always comes from the catalog: `price` (sent
/// by older clients) is only checked against it, 409 `price_mismatch` when
/// it differs; `unit_price` or any other field is refused (422).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    product_id: Uuid,
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: i64,
    /// The unit price the client shows, in minor units; it must equal the
    /// catalog's (409 `price_mismatch` otherwise). Absent or `null`: not
    /// checked.
    #[serde(default)]
    price: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum PaymentBody {
    Card {
        /// The card's payment token, e.g. the test token `tok_visa`.
        #[schema(format = "not-blank")]
        token: String,
    },
    Wallet,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    shipping_address: AddressInput,
    /// Absent: the cart is ordered (with its coupon). At most 100 lines
    /// either way.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100)]
    items: Option<Vec<ItemBody>>,
    payment: PaymentBody,
    /// The total the client showed the customer (minor units); 409
    /// `total_mismatch` when today's prices make another.
    #[serde(default)]
    #[schema(minimum = 0)]
    expected_total: Option<i64>,
}

/// A step after placing that did not go through (the order stands).
#[derive(Debug, Serialize, ToSchema)]
struct Warning {
    error: String,
    message: String,
}

/// An order as the API shows it, with the position of the command's last
/// event (placing) or the sequence it was read at (reading).
#[derive(Debug, Serialize, ToSchema)]
struct OrderAnswer {
    #[serde(flatten)]
    order: OrderView,
    position: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Warning>,
}

/// Places an order.
///
/// With an `Idempotency-Key`, the order id is UUIDv5(customer, key) and the
/// request's hash is stored in the metadata of `OrderPlaced`: a repeat of the
/// same body answers the first answer (the order as placed, at sequence 1)
/// and writes nothing; another body is 422 `idempotency_key_reused`. Racing
/// repeats lose at sequence 1 of the same aggregate, re-read it and answer
/// the same. Any failure under a key is checked against the store the same
/// way, since a racing twin may have placed the order (and emptied the cart)
/// while this request was deciding.
#[utoipa::path(
    post,
    path = "/v1/orders",
    tag = "orders",
    summary = "Place an order",
    description = "Role: customer. Orders the given `items`, or without them the cart (with its coupon). Prices come from the catalog, never from the client: a line's `price` (older clients send one) that differs from the catalog's is 409 `price_mismatch`, an `expected_total` that differs is 409 `total_mismatch`. `shipping_address` is a structured address or, for older clients, one string taken as one line (`line1`, the other fields empty). A card token must be the customer's own (409 `card_token_not_owned`). A coupon's last use goes to one order only: when it is taken, the order is refused (409 `coupon_used_up`) before anything is written or charged. With `Idempotency-Key`, a repeat of the same body answers the first answer and writes nothing.",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    request_body = NewOrder,
    responses(
        (status = 201, description = "Placed. A step after placing that did not go through (`cart_not_checked_out`) is listed in `warnings`; the order stands.", body = OrderAnswer),
        Answers::<(Forbidden, PlaceOrderError, TooManyOrders)>,
    ),
)]
async fn place_order(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    key: IdempotencyKey,
    AppJson(body): AppJson<NewOrder>,
) -> Result<(StatusCode, Json<OrderAnswer>)> {
    user.require(BUYERS)?;
    state.customer_limits.orders.check(&user.id).or_too_many(
        TooManyOrders::CODE,
        "Too many orders placed; wait a minute.",
    )?;
    let request = PlaceOrder {
        order_id: OrderId(key.creation_id("order", user.id)),
        customer_id: CustomerId(user.id),
        items: body.items.as_ref().map(|items| {
            items
                .iter()
                .map(|i| RequestedItem {
                    product_id: ProductId(i.product_id),
                    quantity: i.quantity,
                    price: i.price,
                })
                .collect()
        }),
        shipping_address: body.shipping_address.to_address(),
        payment: match &body.payment {
            PaymentBody::Card { token } => PaymentMethod::Card {
                token: token.clone(),
            },
            PaymentBody::Wallet => PaymentMethod::Wallet,
        },
        expected_total: body.expected_total,
        request_hash: request_hash(&body),
        keyed: key.0.is_some(),
    };
    let placed = place_order::place_order(&state, &caller(&user, &request_id), &request).await?;
    let answer = OrderAnswer {
        order: placed.order,
        position: placed.position,
        warnings: placed
            .warnings
            .into_iter()
            .map(|w| Warning {
                error: w.code().to_string(),
                message: w.message().to_string(),
            })
            .collect(),
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

fn order_view(order: &Order) -> Result<OrderView> {
    order
        .view()
        .ok_or_else(|| ApiError::internal("an order without an id was loaded as placed"))
}

// ---- reading ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OrderQuery {
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
struct OrderRead {
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
async fn get_order(
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
async fn order_history(
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
struct ListQuery {
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
struct OrderList {
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
async fn list_orders(
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

// ---- changing an order ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: OrderStatus,
    /// For `shipped`: a tracking number given by the carrier already;
    /// without it the carrier books the shipment and issues one.
    #[serde(default)]
    tracking_number: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LegacyStatusChange {
    order_id: Uuid,
    status: OrderStatus,
    /// For `shipped`: a tracking number given by the carrier already;
    /// without it the carrier books the shipment and issues one.
    #[serde(default)]
    tracking_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct StatusAnswer {
    id: Uuid,
    position: i64,
    status: OrderStatus,
}

async fn set_status(
    state: &AppState,
    user: &AuthUser,
    request_id: &RequestId,
    id: Uuid,
    to: OrderStatus,
    tracking_number: Option<String>,
) -> Result<Json<StatusAnswer>> {
    user.require(FULFILMENT)?;
    let caller = caller(user, request_id);
    let position = set_order_status(state, &caller, id, to, tracking_number).await?;
    // A command that succeeded leaves the order in the asked status.
    Ok(Json(StatusAnswer {
        id,
        position,
        status: to,
    }))
}

/// `PUT /v1/orders/{id}/status`: illegal transitions are 409
/// `illegal_transition_<from>_to_<to>`.
#[utoipa::path(
    put,
    path = "/v1/orders/{id}/status",
    tag = "orders",
    summary = "Change an order's status",
    description = "Role: admin. Only legal transitions (see the order states). `shipped` books the shipment: without a `tracking_number` the carrier issues one; a given one is recorded as it is.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "Changed.", body = StatusAnswer),
        Answers::<(Forbidden, SetOrderStatusError)>,
    ),
)]
async fn change_status(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<StatusChange>,
) -> Result<Json<StatusAnswer>> {
    set_status(
        &state,
        &user,
        &request_id,
        id,
        body.status,
        body.tracking_number,
    )
    .await
}

/// `PUT /v1/orders {order_id, status}`: older clients' form of the above.
#[utoipa::path(
    put,
    path = "/v1/orders",
    tag = "orders",
    summary = "Change an order's status (older form)",
    description = "Role: admin. The same as `PUT /v1/orders/{id}/status`, with the order id in the body, for older clients.",
    security(("bearer" = [])),
    request_body = LegacyStatusChange,
    responses(
        (status = 200, description = "Changed.", body = StatusAnswer),
        Answers::<(Forbidden, SetOrderStatusError)>,
    ),
)]
async fn change_status_legacy(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppJson(body): AppJson<LegacyStatusChange>,
) -> Result<Json<StatusAnswer>> {
    set_status(
        &state,
        &user,
        &request_id,
        body.order_id,
        body.status,
        body.tracking_number,
    )
    .await
}

/// The owner cancels (reason `customer_request`) or an admin does (`admin`);
/// refused (409) once the order has shipped. An order cancelled before its
/// payment was captured gives its coupon use back (idempotent per order, like
/// the redemption; stock and refunds are the fulfilment workflow's part).
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    tag = "orders",
    summary = "Cancel an order",
    description = "Role: the order's owner (reason `customer_request`) or admin (reason `admin`). Refused once the order has shipped.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "Cancelled.", body = CommandAnswer),
        Answers::<CancelOrderError>,
    ),
)]
async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CommandAnswer>> {
    let caller = caller(&user, &request_id);
    let position = cancel_order::cancel_order(&state, &caller, user.id, user.role, id).await?;
    Ok(Json(CommandAnswer { id, position }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    /// Minor units, at least 1; absent: everything not yet refunded.
    #[serde(default)]
    #[schema(minimum = 1)]
    amount: Option<i64>,
    /// Not blank.
    #[schema(format = "not-blank")]
    reason: String,
}

#[utoipa::path(
    post,
    path = "/v1/orders/{id}/refund",
    tag = "orders",
    summary = "Refund an order",
    description = "Role: admin. Refunds `amount` (default: everything not yet refunded) of a paid order.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    request_body = RefundBody,
    responses(
        (status = 200, description = "Refunded.", body = CommandAnswer),
        Answers::<(Forbidden, RefundOrderError)>,
    ),
)]
async fn refund_order(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<RefundBody>,
) -> Result<Json<CommandAnswer>> {
    let caller = caller(&user, &request_id);
    let position =
        refund_order::refund_order(&state, &caller, id, body.amount, body.reason).await?;
    Ok(Json(CommandAnswer { id, position }))
}

#[cfg(test)]
mod tests {
    use domain::error::DomainError;

    use super::*;

    #[test]
    fn an_illegal_transition_is_named_in_its_code() {
        let e = OrderError::IllegalTransition {
            from: OrderStatus::Shipped,
            to: OrderStatus::Cancelled,
        };
        assert_eq!(e.code(), "illegal_transition_shipped_to_cancelled");
        assert_eq!(domain_error(&e).status, StatusCode::CONFLICT);
    }

    #[test]
    fn a_client_price_on_a_line_is_refused() {
        let line = serde_json::json!({"product_id": Uuid::nil(), "quantity": 1, "unit_price": 1});
        assert!(serde_json::from_value::<ItemBody>(line).is_err());
        let wallet = serde_json::json!({"method": "wallet"});
        assert!(serde_json::from_value::<PaymentBody>(wallet).is_ok());
        let card = serde_json::json!({"method": "card", "token": "tok_visa", "number": "4242"});
        assert!(serde_json::from_value::<PaymentBody>(card).is_err());
    }
}
