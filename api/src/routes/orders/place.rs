//! Placing an order: from the cart or from explicit lines, in today's form
//! or an older client's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::metadata::Role;
use domain::order::{OrderView, PaymentMethod, ShippingAddress};
use domain::values::{CustomerId, OrderId, ProductId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::place_order::{self, PlaceOrder, PlaceOrderError, RequestedItem};
use crate::app::refusals::TooManyOrders;
use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::commands::{caller, request_hash, IdempotencyKey, IdempotencyKeyHeader};
use crate::error::OrTooMany;
use crate::error::{Answers, Result};
use crate::extract::{AppJson, RequestId};
/// Who places orders.
const BUYERS: &[Role] = &[Role::Customer];

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AddressBody {
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
pub(super) enum AddressInput {
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
pub(super) struct ItemBody {
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
pub(super) enum PaymentBody {
    Card {
        /// The card's payment token, e.g. the test token `tok_visa`.
        #[schema(format = "not-blank")]
        token: String,
    },
    Wallet,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewOrder {
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
pub(super) struct Warning {
    error: String,
    message: String,
}

/// An order as the API shows it, with the position of the command's last
/// event (placing) or the sequence it was read at (reading).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OrderAnswer {
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
pub(super) async fn place_order(
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

#[cfg(test)]
mod tests {
    use domain::error::DomainError;
    use domain::order::{OrderError, OrderStatus};

    use super::*;
    use crate::commands::domain_error;

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
