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
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::cart::{cart_id_for, AppliedCoupon, CartCommand, CartError};
use domain::coupon::{used_up, within_validity, CouponCommand, CouponError};
use domain::metadata::{CommandMetadata, Role};
use domain::order::{
    CancellationReason, Order, OrderCommand, OrderCoupon, OrderError, OrderLine, OrderStatus,
    OrderView, PaymentMethod, ShippingAddress,
};
use domain::product::{Product, ProductError};
use domain::shipping::ShipmentRequest;
use domain::values::{CustomerId, Money, OrderId, ProductId, Quantity};
use projections::audit::{self, AuditEvent};
use projections::event_store::{load_aggregate, streams};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Admin, AuthUser};
use crate::commands::{
    command_error, domain_error, metadata, replayed_creation, request_hash, CommandAnswer,
    IdempotencyKey,
};
use crate::error::{ApiError, Result};
use crate::extract::{AppJson, AppPath, AppQuery, RequestId};
use crate::openapi::ErrorBody;
use crate::read::{answer, decode_cursor, encode_cursor, limit, min_position, wait_for, Freshness};
use crate::routes::cart::load_cart;
use crate::startup::AppState;
use projections::read_models::orders::queries::{self as history, OrderCursor, OrderFilter};
use projections::read_models::orders::NAME as ORDERS;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/orders",
            post(place_order).get(list_orders).put(change_status_legacy),
        )
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/history", get(order_history))
        .route("/v1/orders/{id}/status", put(change_status))
        .route("/v1/orders/{id}/cancel", post(cancel_order))
        .route("/v1/orders/{id}/refund", post(refund_order))
        .method_not_allowed_fallback(crate::error::method_not_allowed)
}

/// Who places orders.
const BUYERS: &[Role] = &[Role::Customer];
/// Who runs fulfilment: status changes and refunds.
const FULFILMENT: &[Role] = &[Role::Admin];
/// Who may read any order (besides its owner).
const READERS: &[Role] = &[Role::Admin, Role::Auditor];
/// The most lines one order may have.
const MAX_LINES: usize = 100;

// ---- placing an order ----

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    /// Not blank, at most 200 characters.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    name: String,
    /// Not blank, at most 200 characters.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    line1: String,
    /// At most 200 characters; blank is none.
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    line2: Option<String>,
    /// Not blank, at most 100 characters.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    city: String,
    /// Not blank, at most 20 characters.
    #[schema(
        max_length = 20,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    postal_code: String,
    /// Two letters, e.g. `US`.
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z]{2}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "US"
    )]
    country: String,
}

/// A requested line. There is deliberately no price field: a body with
/// `unit_price` or `price` is refused (422) rather than silently ignored.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    product_id: Uuid,
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum PaymentBody {
    Card {
        /// The card's payment token, e.g. the test token `tok_visa`.
        #[schema(
            pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
        )]
        token: String,
    },
    Wallet,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    shipping_address: AddressBody,
    /// Absent: the cart is ordered (with its coupon).
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
    description = "Role: customer. Orders the given `items`, or without them the cart (with its coupon). Prices come from the catalog, never from the client: a line with a price is 422, an `expected_total` that differs is 409. With `Idempotency-Key`, a repeat of the same body answers the first answer and writes nothing.",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[\t -~]*[!-~][\t -~]*$", description = "1 to 255 visible ASCII characters. A repeat of the same request with the same key answers the first answer and writes nothing; another body under the key is 422 `idempotency_key_reused`.")),
    request_body = NewOrder,
    responses(
        (status = 201, description = "Placed. Steps after placing that did not go through are listed in `warnings`; the order stands.", body = OrderAnswer),
        (status = 403, description = "The caller is not a customer (`forbidden`).", body = ErrorBody),
        (status = 404, description = "A line names no product (`product_not_found`), or the cart's coupon is gone (`unknown_coupon`).", body = ErrorBody),
        (status = 409, description = "Refused as things are now: `empty_cart`, `product_discontinued`, `total_mismatch` (prices changed), `coupon_expired`, `coupon_used_up`, `insufficient_stock`; or changed concurrently.", body = ErrorBody),
        (status = 422, description = "The body breaks a rule its schema states (`invalid_body`, `invalid_quantity`, `invalid_shipping_address`, `invalid_country`, ...), or the `Idempotency-Key` was used with another body (`idempotency_key_reused`).", body = ErrorBody),
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
    let order_id = OrderId(key.creation_id("order", user.id));
    let hash = request_hash(&body);
    if key.0.is_some() {
        if let Some(answer) = replayed_order(&state, order_id, &hash).await? {
            return Ok((StatusCode::CREATED, Json(answer)));
        }
    }
    match place(&state, &user, &request_id, order_id, &hash, &body).await {
        Ok(answer) => Ok((StatusCode::CREATED, Json(answer))),
        Err(e) if key.0.is_some() => match replayed_order(&state, order_id, &hash).await? {
            Some(answer) => Ok((StatusCode::CREATED, Json(answer))),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The first answer for an order placed under an idempotency key with this
/// body; 422 when it was placed with another body; `None` when it does not
/// exist.
async fn replayed_order(
    state: &AppState,
    order_id: OrderId,
    hash: &str,
) -> Result<Option<OrderAnswer>> {
    let Some(position) =
        replayed_creation(&state.pool, Order::TYPE, order_id.as_uuid(), hash).await?
    else {
        return Ok(None);
    };
    let (order, _) = load_order(state, order_id.as_uuid(), None, Some(1)).await?;
    Ok(Some(OrderAnswer {
        order: order_view(&order)?,
        position,
        warnings: vec![],
    }))
}

fn order_view(order: &Order) -> Result<OrderView> {
    order
        .view()
        .ok_or_else(|| ApiError::internal("an order without an id was loaded as placed"))
}

/// Order of effects, so that a failure leaves nothing half-applied:
///
/// 1. Everything is read and checked first (lines, catalog prices, the
///    coupon's window and uses, totals): a refusal writes nothing.
/// 2. The order is placed: one event, all or nothing. From here the order
///    stands.
/// 3. The coupon is redeemed for the order and the cart is checked out into
///    it. Both commands are idempotent per order id (a second redemption or
///    check-out for the same order does nothing), so the fulfilment workflow
///    or an operator can safely run them again. Should one of them fail (a
///    racing order took the coupon's last use between 1 and 3, or the
///    database went away), the order is NOT rolled back: the failure is
///    logged and reported in `warnings` of the 201 answer. Undoing a placed
///    order would need its own compensating events and could fail too; a
///    placed order with a missing redemption is the smaller, visible harm.
async fn place(
    state: &AppState,
    user: &AuthUser,
    request_id: &RequestId,
    order_id: OrderId,
    hash: &str,
    body: &NewOrder,
) -> Result<OrderAnswer> {
    let customer_id = CustomerId(user.id);
    let now = Utc::now();

    // 1. What is ordered: the given lines, or the cart with its coupon.
    if body.expected_total.is_some_and(|total| total < 0) {
        return Err(ApiError::unprocessable(
            "invalid_expected_total",
            "expected_total is a total in minor units: 0 or more.",
        ));
    }
    let (requested, applied, from_cart) = match &body.items {
        Some(items) => {
            if items.len() > MAX_LINES {
                return Err(ApiError::unprocessable(
                    "too_many_lines",
                    format!("An order has at most {MAX_LINES} lines."),
                ));
            }
            let lines = items
                .iter()
                .map(|i| Ok((ProductId(i.product_id), quantity(i.quantity)?)))
                .collect::<Result<Vec<_>>>()?;
            (lines, None, false)
        }
        None => {
            let cart = load_cart(state, user.id).await?;
            if cart.is_empty() {
                return Err(domain_error(&CartError::EmptyCart));
            }
            let lines = cart
                .lines()
                .iter()
                .map(|l| (l.product_id, l.quantity))
                .collect();
            (lines, cart.coupon().cloned(), true)
        }
    };
    let lines = price_lines(state, &requested).await?;
    let subtotal = lines
        .iter()
        .try_fold(Money::zero(state.currency.clone()), |sum, l| {
            sum.checked_add(&l.line_total)
        })
        .map_err(|_| domain_error(&OrderError::AmountTooLarge))?;
    let coupon = match &applied {
        Some(applied) => Some(order_coupon(state, applied, &subtotal, now).await?),
        None => None,
    };

    // 2. The order itself.
    let place_meta = metadata(user.actor(), request_id, "PlaceOrder").with_request_hash(hash);
    let a = &body.shipping_address;
    let command = OrderCommand::Place {
        order_id,
        customer_id,
        lines,
        coupon: coupon.clone(),
        shipping_address: ShippingAddress {
            name: a.name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        },
        payment: match &body.payment {
            PaymentBody::Card { token } => PaymentMethod::Card {
                token: token.clone(),
            },
            PaymentBody::Wallet => PaymentMethod::Wallet,
        },
        expected_total: body.expected_total,
        currency: state.currency.clone(),
        now,
    };
    // Not retried: a conflict at sequence 1 is a twin under the same key,
    // which the caller answers as a replay.
    let committed = state
        .orders
        .execute(&order_id.to_string(), command, &place_meta)
        .await
        .map_err(command_error)?;

    // 3. Follow-ups, idempotent per order (see above).
    let mut warnings = Vec::new();
    let caused = |name: &str| {
        metadata(user.actor(), request_id, name).caused_by(place_meta.command_id.to_string())
    };
    if let Some(c) = &coupon {
        let redeem = CouponCommand::Redeem { order_id, now };
        if let Err(e) = state
            .coupons
            .execute_with_retry(&c.coupon_id.to_string(), redeem, &caused("RedeemCoupon"))
            .await
        {
            tracing::error!(%order_id, coupon = %c.code, error = %e, "order placed, coupon not redeemed");
            warnings.push(follow_up_warning(
                "coupon_not_redeemed",
                "The order was placed but its coupon could not be redeemed; support will look into it.",
            ));
        }
    }
    if from_cart {
        let cart_id = cart_id_for(&customer_id).to_string();
        let check_out = CartCommand::CheckOut { order_id };
        if let Err(e) = state
            .carts
            .execute_with_retry(&cart_id, check_out, &caused("CheckOutCart"))
            .await
        {
            tracing::error!(%order_id, error = %e, "order placed, cart not checked out");
            warnings.push(follow_up_warning(
                "cart_not_checked_out",
                "The order was placed but the cart could not be emptied; empty it yourself.",
            ));
        }
    }

    let (order, _) = load_order(state, order_id.as_uuid(), None, Some(1)).await?;
    Ok(OrderAnswer {
        order: order_view(&order)?,
        position: committed.position,
        warnings,
    })
}

fn follow_up_warning(error: &str, message: &str) -> Warning {
    Warning {
        error: error.to_string(),
        message: message.to_string(),
    }
}

fn quantity(value: i64) -> Result<Quantity> {
    Quantity::new(value).map_err(|e| ApiError::unprocessable("invalid_quantity", e.to_string()))
}

/// Prices every line from the catalog as it is now.
async fn price_lines(
    state: &AppState,
    requested: &[(ProductId, Quantity)],
) -> Result<Vec<OrderLine>> {
    let mut lines = Vec::with_capacity(requested.len());
    for &(product_id, quantity) in requested {
        let product = state
            .products
            .load(&product_id.to_string())
            .await
            .map_err(command_error::<ProductError>)?
            .filter(Product::is_created);
        // 422, not 404: the order is what was asked for, and it names a
        // product that cannot be ordered.
        let (Some(product), true) = (
            product.as_ref(),
            product.as_ref().is_some_and(|p| p.price().is_some()),
        ) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "product_not_found",
                format!("Product {product_id} does not exist."),
            ));
        };
        if product.is_discontinued() {
            return Err(ApiError::conflict(
                "product_discontinued",
                format!("Product {product_id} is no longer sold."),
            ));
        }
        let unit_price = product
            .price()
            .cloned()
            .unwrap_or_else(|| Money::zero(state.currency.clone()));
        let line_total = unit_price
            .checked_mul(quantity)
            .map_err(|_| domain_error(&OrderError::AmountTooLarge))?;
        lines.push(OrderLine {
            product_id,
            name: product.name().unwrap_or_default().to_string(),
            unit_price,
            quantity,
            line_total,
        });
    }
    Ok(lines)
}

/// The cart's coupon as the order takes it, after checking that it may be
/// used now (the same checks redeeming it makes).
async fn order_coupon(
    state: &AppState,
    applied: &AppliedCoupon,
    subtotal: &Money,
    now: DateTime<Utc>,
) -> Result<OrderCoupon> {
    let coupon = state
        .coupons
        .load(&applied.coupon_id.to_string())
        .await
        .map_err(command_error::<CouponError>)?;
    let details = coupon.as_ref().and_then(|c| {
        Some((
            c.discount()?.clone(),
            c.valid_from()?,
            c.valid_until()?,
            used_up(c.usage_limit(), c.times_used()),
        ))
    });
    let Some((rule, from, until, is_used_up)) = details else {
        return Err(domain_error(&CartError::CouponNotFound {
            code: applied.code.clone(),
        }));
    };
    if !within_validity(from, until, now) {
        return Err(domain_error(&CouponError::Expired));
    }
    if is_used_up {
        return Err(domain_error(&CouponError::UsedUp));
    }
    let discount = rule.apply(subtotal).map_err(|e| {
        ApiError::unprocessable("invalid_discount", format!("The coupon cannot apply: {e}"))
    })?;
    Ok(OrderCoupon {
        coupon_id: applied.coupon_id,
        code: applied.code.clone(),
        discount,
    })
}

// ---- reading ----

/// Loads an order, optionally as it was: up to sequence `version`, and/or
/// from the events recorded at or before `as_of`. Answers the order and the
/// sequence of its last applied event; 404 when the order did not exist (yet).
async fn load_order(
    state: &AppState,
    id: Uuid,
    as_of: Option<DateTime<Utc>>,
    version: Option<i64>,
) -> Result<(Order, i64)> {
    let sequence =
        streams::sequence_at(&state.pool, Order::TYPE, &id.to_string(), as_of, version).await?;
    let not_found = || domain_error(&OrderError::NotFound);
    let sequence = sequence.ok_or_else(not_found)?;
    let order = load_aggregate::<Order>(&state.pool, &id.to_string(), Some(sequence))
        .await
        .map_err(command_error::<OrderError>)?
        .filter(Order::is_placed)
        .ok_or_else(not_found)?;
    Ok((order, sequence))
}

/// Whether `user` may see `order`: its owner, admins and auditors.
fn may_read(user: &AuthUser, order: &Order) -> bool {
    order.customer_id().as_uuid() == user.id || READERS.contains(&user.role)
}

/// The current order, or 404 when it does not exist or is not the caller's
/// to see.
pub(crate) async fn visible_order(state: &AppState, user: &AuthUser, id: Uuid) -> Result<Order> {
    let (order, _) = load_order(state, id, None, None).await?;
    if may_read(user, &order) {
        Ok(order)
    } else {
        Err(domain_error(&OrderError::NotFound))
    }
}

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
        (status = 400, description = "An invalid parameter: `invalid_version`, `invalid_query`, `invalid_min_position` (an `X-Min-Position` header that is not an integer).", body = ErrorBody),
        (status = 404, description = "There is no such order, or it is not the caller's to see (`order_not_found`).", body = ErrorBody),
        (status = 503, description = "The read model had not reached `min_position` in time (`read_model_behind`), or the database is unavailable.", body = ErrorBody),
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
        return Err(ApiError::bad_request(
            "invalid_version",
            "version counts the order's events and starts at 1.",
        ));
    }
    if query.as_of.is_some() || query.version.is_some() {
        let (order, version) = load_order(&state, id, query.as_of, query.version).await?;
        if !may_read(&user, &order) {
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
    description = "Role: the order's owner, admin or auditor (anyone else gets 404). Every event of the order from the event store, oldest first, with who caused it and in which request.",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "The events.", body = Vec<projections::audit::AuditEvent>),
        (status = 404, description = "There is no such order, or it is not the caller's to see (`order_not_found`).", body = ErrorBody),
    ),
)]
async fn order_history(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Vec<AuditEvent>>> {
    // Visibility is decided on the order itself: 404 for anyone else's.
    visible_order(&state, &user, id).await?;
    let events = audit::history(&state.pool, Order::TYPE, &id.to_string()).await?;
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
        (status = 403, description = "The caller's role may not list orders (`forbidden`).", body = ErrorBody),
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

/// Runs an order command that is safe to decide again on fresh state.
async fn run(
    state: &AppState,
    id: Uuid,
    command: OrderCommand,
    meta: &CommandMetadata,
) -> Result<i64> {
    let committed = state
        .orders
        .execute_with_retry(&id.to_string(), command, meta)
        .await
        .map_err(command_error)?;
    Ok(committed.position)
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
    let meta = metadata(user.actor(), request_id, "ChangeOrderStatus");
    let tracking_number = tracking_number.filter(|t| !t.trim().is_empty());
    let command = match (to, tracking_number) {
        (OrderStatus::Shipped, None) => book_shipment(state, id).await?,
        (to, tracking_number) => OrderCommand::ChangeStatus {
            to,
            tracking_number,
            now: Utc::now(),
        },
    };
    let position = run(state, id, command, &meta).await?;
    // A command that succeeded leaves the order in the asked status.
    Ok(Json(StatusAnswer {
        id,
        position,
        status: to,
    }))
}

/// `shipped` without a tracking number: the carrier books the shipment and
/// issues one, recorded with the carrier's name on `OrderShipped`.
///
/// Booked here, synchronously, in the admin's request: the admin's action is
/// the cause, the answer can say at once whether it worked, and a failed
/// booking changes nothing. Only an order that may ship now is booked; an
/// order already shipped, or one that may not ship, goes through
/// `ChangeStatus` as before (no change, or the illegal transition). The
/// carrier answers the same tracking number for the same order, so a retried
/// request books no second parcel.
async fn book_shipment(state: &AppState, id: Uuid) -> Result<OrderCommand> {
    let (order, _) = load_order(state, id, None, None).await?;
    let pass_through = OrderCommand::ChangeStatus {
        to: OrderStatus::Shipped,
        tracking_number: None,
        now: Utc::now(),
    };
    let Some(order_id) = order.order_id() else {
        return Ok(pass_through);
    };
    if !domain::order::legal_transition(order.status(), OrderStatus::Shipped) {
        return Ok(pass_through);
    }
    let request = ShipmentRequest {
        order_id,
        address: order.shipping_address().clone(),
    };
    let shipment = state
        .carrier
        .book(&request)
        .await
        .map_err(|e| domain_error(&e))?;
    Ok(OrderCommand::Ship {
        tracking_number: shipment.tracking_number,
        carrier: Some(shipment.carrier),
        now: Utc::now(),
    })
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
        (status = 403, description = "The caller is not an admin (`forbidden`).", body = ErrorBody),
        (status = 404, description = "There is no such order, or it is not the caller's to see (`order_not_found`).", body = ErrorBody),
        (status = 409, description = "An illegal transition (`illegal_transition_<from>_to_<to>`), or changed concurrently.", body = ErrorBody),
        (status = 422, description = "A rule is broken: `status_not_settable`, `shipment_refused`.", body = ErrorBody),
        (status = 503, description = "The carrier did not answer (`carrier_unavailable`); nothing changed.", body = ErrorBody),
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
        (status = 403, description = "The caller is not an admin (`forbidden`).", body = ErrorBody),
        (status = 404, description = "There is no such order, or it is not the caller's to see (`order_not_found`).", body = ErrorBody),
        (status = 409, description = "An illegal transition (`illegal_transition_<from>_to_<to>`), or changed concurrently.", body = ErrorBody),
        (status = 422, description = "A rule is broken: `status_not_settable`, `shipment_refused`.", body = ErrorBody),
        (status = 503, description = "The carrier did not answer (`carrier_unavailable`); nothing changed.", body = ErrorBody),
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
        (status = 403, description = "An auditor may read the order but not cancel it (`forbidden`).", body = ErrorBody),
        (status = 404, description = "There is no such order, or it is not the caller's to see (`order_not_found`).", body = ErrorBody),
        (status = 409, description = "The order is not in a state that allows this (e.g. `illegal_transition_shipped_to_cancelled`), or it changed concurrently.", body = ErrorBody),
    ),
)]
async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CommandAnswer>> {
    let order = visible_order(&state, &user, id).await?;
    let reason = if order.customer_id().as_uuid() == user.id {
        CancellationReason::CustomerRequest
    } else {
        // Auditors may read the order but not change it.
        user.require(FULFILMENT)?;
        CancellationReason::Admin
    };
    let meta = metadata(user.actor(), &request_id, "CancelOrder");
    let command = OrderCommand::Cancel {
        reason,
        now: Utc::now(),
    };
    let mut position = run(&state, id, command, &meta).await?;

    let (order, _) = load_order(&state, id, None, None).await?;
    if let (Some(coupon_id), true) = (order.coupon_id(), order.captured().minor == 0) {
        let release_meta = metadata(user.actor(), &request_id, "ReleaseCouponRedemption")
            .caused_by(meta.command_id.to_string());
        let release = CouponCommand::ReleaseRedemption {
            order_id: OrderId(id),
        };
        match state
            .coupons
            .execute_with_retry(&coupon_id.to_string(), release, &release_meta)
            .await
        {
            Ok(c) if c.wrote_events => position = position.max(c.position),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(order_id = %id, error = %e, "order cancelled, coupon use not given back");
            }
        }
    }
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
    #[schema(
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
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
        (status = 403, description = "The caller is not an admin (`forbidden`).", body = ErrorBody),
        (status = 404, description = "There is no such order, or it is not the caller's to see (`order_not_found`).", body = ErrorBody),
        (status = 409, description = "Nothing to refund (`nothing_to_refund`), the order is not paid, or it changed concurrently.", body = ErrorBody),
        (status = 422, description = "A rule is broken: `invalid_refund_amount`, `refund_exceeds_paid`, `refund_reason_required`.", body = ErrorBody),
    ),
)]
async fn refund_order(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<RefundBody>,
) -> Result<Json<CommandAnswer>> {
    let amount = body
        .amount
        .map(|minor| {
            Money::new(minor, state.currency.clone())
                .map_err(|_| domain_error(&OrderError::InvalidRefundAmount))
        })
        .transpose()?;
    let meta = metadata(user.actor(), &request_id, "RefundOrder");
    let command = OrderCommand::Refund {
        amount,
        reason: body.reason,
        now: Utc::now(),
    };
    let position = run(&state, id, command, &meta).await?;
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
