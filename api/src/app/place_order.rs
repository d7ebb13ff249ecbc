//! Placing an order: from explicit lines or from the cart (with its
//! coupon), priced from the catalog, then the coupon redeemed and the cart
//! checked out: a flow over three aggregates.

use chrono::Utc;
use cqrs_es::Aggregate;
use domain::cart::{cart_id_for, CartCommand, CartError};
use domain::coupon::CouponCommand;
use domain::order::{
    check_line_count, Order, OrderCommand, OrderError, OrderView, PaymentMethod, ShippingAddress,
};
use domain::values::{CustomerId, OrderId, ProductId, Quantity};

use super::coupons::{order_coupon, OrderCouponError};
use super::orders::{load_order, LoadOrderError};
use super::pricing::{order_lines, subtotal, PricingError};
use super::{replayed_creation, use_case_error, Caller, KeyReused, StoreError};
use crate::state::AppState;

/// What is asked for.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    /// From `IdempotencyKey::creation_id` (the same for a repeat under the
    /// same key).
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    /// `(product, quantity)`; `None`: the cart is ordered (with its coupon).
    pub items: Option<Vec<(ProductId, i64)>>,
    pub shipping_address: ShippingAddress,
    pub payment: PaymentMethod,
    /// The total the client showed the customer (minor units).
    pub expected_total: Option<i64>,
    /// The request body's hash, kept on `OrderPlaced`.
    pub request_hash: String,
    /// Whether it came with an `Idempotency-Key`: a repeat answers the first
    /// answer.
    pub keyed: bool,
}

/// A step after placing that did not go through (the order stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    CouponNotRedeemed,
    CartNotCheckedOut,
}

impl FollowUp {
    pub fn code(self) -> &'static str {
        match self {
            FollowUp::CouponNotRedeemed => "coupon_not_redeemed",
            FollowUp::CartNotCheckedOut => "cart_not_checked_out",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            FollowUp::CouponNotRedeemed => {
                "The order was placed but its coupon could not be redeemed; support will look into it."
            }
            FollowUp::CartNotCheckedOut => {
                "The order was placed but the cart could not be emptied; empty it yourself."
            }
        }
    }
}

/// The order as placed, with the position of its `OrderPlaced`.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: OrderView,
    pub position: i64,
    pub warnings: Vec<FollowUp>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceOrderError {
    #[error("expected_total is a total in minor units: 0 or more.")]
    InvalidExpectedTotal,
    /// A quantity that is not one; the message says why.
    #[error("{0}")]
    InvalidQuantity(super::refusals::InvalidQuantity),
    #[error(transparent)]
    Cart(CartError),
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error(transparent)]
    Coupon(#[from] OrderCouponError),
    #[error(transparent)]
    Order(OrderError),
    #[error(transparent)]
    KeyReused(#[from] KeyReused),
    #[error(transparent)]
    Load(#[from] LoadOrderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(PlaceOrderError {
    Self::InvalidExpectedTotal => refused(Rule, "invalid_expected_total"),
    Self::InvalidQuantity(e) => nested(e: super::refusals::InvalidQuantity),
    Self::Cart(e) => domain(e: CartError),
    Self::Pricing(e) => nested(e: PricingError),
    Self::Coupon(e) => nested(e: OrderCouponError),
    Self::Order(e) => domain(e: OrderError),
    Self::KeyReused(e) => nested(e: KeyReused),
    Self::Load(e) => nested(e: LoadOrderError),
    Self::Store(e) => nested(e: StoreError),
});

/// Places the order. Under an idempotency key a repeat of the same body
/// answers the first answer (the order as placed, at sequence 1) and writes
/// nothing; another body is [`KeyReused`]. Racing repeats lose at sequence
/// 1 of the same aggregate, re-read it and answer the same. Any failure under
/// a key is checked against the store the same way, since a racing twin may
/// have placed the order (and emptied the cart) while this request was
/// deciding.
pub async fn place_order(
    state: &AppState,
    caller: &Caller,
    request: &PlaceOrder,
) -> Result<Placed, PlaceOrderError> {
    if request.keyed {
        if let Some(placed) = replayed(state, request).await? {
            return Ok(placed);
        }
    }
    match place(state, caller, request).await {
        Ok(placed) => Ok(placed),
        Err(e) if request.keyed => match replayed(state, request).await? {
            Some(placed) => Ok(placed),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The first answer for an order placed under an idempotency key with this
/// body; [`KeyReused`] when it was placed with another body; `None` when it
/// does not exist.
async fn replayed(
    state: &AppState,
    request: &PlaceOrder,
) -> Result<Option<Placed>, PlaceOrderError> {
    let order_id = request.order_id.as_uuid();
    let Some(position) =
        replayed_creation(&state.pool, Order::TYPE, order_id, &request.request_hash).await?
    else {
        return Ok(None);
    };
    let position = position?;
    let (order, _) = load_order(state, order_id, None, Some(1)).await?;
    Ok(Some(Placed {
        order: view(&order)?,
        position,
        warnings: vec![],
    }))
}

fn view(order: &Order) -> Result<OrderView, StoreError> {
    order.view().ok_or_else(|| {
        StoreError::Internal("an order without an id was loaded as placed".to_string())
    })
}

fn quantity(value: i64) -> Result<Quantity, PlaceOrderError> {
    Quantity::new(value).map_err(|e| {
        PlaceOrderError::InvalidQuantity(super::refusals::InvalidQuantity(e.to_string()))
    })
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
///    logged and reported in `warnings`. Undoing a placed order would need
///    its own compensating events and could fail too; a placed order with a
///    missing redemption is the smaller, visible harm.
async fn place(
    state: &AppState,
    caller: &Caller,
    request: &PlaceOrder,
) -> Result<Placed, PlaceOrderError> {
    let order_id = request.order_id;
    let customer_id = request.customer_id;
    let now = Utc::now();

    // 1. What is ordered: the given lines, or the cart with its coupon
    //    (either within the order's line cap, asked before pricing them;
    //    a cart from before the cart had the cap may hold more).
    if request.expected_total.is_some_and(|total| total < 0) {
        return Err(PlaceOrderError::InvalidExpectedTotal);
    }
    let (requested, applied, from_cart) = match &request.items {
        Some(items) => {
            check_line_count(items.len()).map_err(PlaceOrderError::Order)?;
            let lines = items
                .iter()
                .map(|&(product_id, q)| Ok((product_id, quantity(q)?)))
                .collect::<Result<Vec<_>, PlaceOrderError>>()?;
            (lines, None, false)
        }
        None => {
            let cart = super::cart::load_cart(state, customer_id).await?;
            if cart.is_empty() {
                return Err(PlaceOrderError::Cart(CartError::EmptyCart));
            }
            check_line_count(cart.lines().len()).map_err(PlaceOrderError::Order)?;
            let lines = cart
                .lines()
                .iter()
                .map(|l| (l.product_id, l.quantity))
                .collect();
            (lines, cart.coupon().cloned(), true)
        }
    };
    let lines = order_lines(state, &requested).await?;
    let subtotal = subtotal(&lines, &state.currency).map_err(PlaceOrderError::Order)?;
    let coupon = match &applied {
        Some(applied) => Some(order_coupon(state, applied, &subtotal, now).await?),
        None => None,
    };

    // 2. The order itself.
    let place_meta = caller
        .meta("PlaceOrder")
        .with_request_hash(request.request_hash.clone());
    let command = OrderCommand::Place {
        order_id,
        customer_id,
        lines,
        coupon: coupon.clone(),
        shipping_address: request.shipping_address.clone(),
        payment: request.payment.clone(),
        expected_total: request.expected_total,
        currency: state.currency.clone(),
        now,
    };
    // Not retried: a conflict at sequence 1 is a twin under the same key,
    // which the caller answers as a replay.
    let committed = state
        .orders
        .execute(&order_id.to_string(), command, &place_meta)
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => PlaceOrderError::Order(e),
            Err(e) => PlaceOrderError::Store(e),
        })?;

    // 3. Follow-ups, idempotent per order (see above).
    let mut warnings = Vec::new();
    let caused = |name: &str| {
        caller
            .meta(name)
            .caused_by(place_meta.command_id.to_string())
    };
    if let Some(c) = &coupon {
        let redeem = CouponCommand::Redeem { order_id, now };
        if let Err(e) = state
            .coupons
            .execute_with_retry(&c.coupon_id.to_string(), redeem, &caused("RedeemCoupon"))
            .await
        {
            tracing::error!(%order_id, coupon = %c.code, error = %e, "order placed, coupon not redeemed");
            warnings.push(FollowUp::CouponNotRedeemed);
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
            warnings.push(FollowUp::CartNotCheckedOut);
        }
    }

    let (order, _) = load_order(state, order_id.as_uuid(), None, Some(1)).await?;
    Ok(Placed {
        order: view(&order)?,
        position: committed.position,
        warnings,
    })
}
