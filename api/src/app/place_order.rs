//! Placing an order: from explicit lines or from the cart (with its
//! coupon), priced from the catalog, the coupon's use taken, then the order
//! placed and the cart checked out: a flow over three aggregates.

use chrono::Utc;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use domain::cart::{cart_id_for, CartCommand, CartError};
use domain::coupon::CouponCommand;
use domain::metadata::CommandMetadata;
use domain::order::{
    check_line_count, Order, OrderCommand, OrderCoupon, OrderError, OrderView, PaymentMethod,
    ShippingAddress,
};
use domain::values::{CustomerId, OrderId, ProductId, Quantity};
use projections::event_store::lookups;

use super::coupons::{order_coupon, OrderCouponError};
use super::gateway::{check_card_owner, GatewayFailure};
use super::orders::{load_order, LoadOrderError};
use super::pricing::{order_lines, subtotal, PricingError};
use super::{replayed_creation, use_case_error, Caller, KeyReused, StoreError};
use crate::app::state::AppState;

/// What is asked for.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    /// From `IdempotencyKey::creation_id` (the same for a repeat under the
    /// same key).
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    /// The lines asked for; `None`: the cart is ordered (with its coupon).
    pub items: Option<Vec<RequestedItem>>,
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

/// One line as the client asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedItem {
    pub product_id: ProductId,
    pub quantity: i64,
    /// The unit price the client shows (older clients send one): it must be
    /// the catalog's, or the order is refused ([`PlaceOrderError::PriceMismatch`]).
    /// It never sets the price.
    pub price: Option<i64>,
}

/// A step after placing that did not go through (the order stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    CartNotCheckedOut,
}

impl FollowUp {
    pub fn code(self) -> &'static str {
        match self {
            FollowUp::CartNotCheckedOut => "cart_not_checked_out",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
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
    #[error("The price of product {product_id} is {catalog}, not {given}.")]
    PriceMismatch {
        product_id: ProductId,
        catalog: i64,
        given: i64,
    },
    #[error(transparent)]
    Gateway(#[from] GatewayFailure),
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
    Self::PriceMismatch { .. } => refused(Conflict, "price_mismatch"),
    Self::Gateway(e) => nested(e: GatewayFailure),
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
/// 1. Everything is read and checked first (lines, catalog prices and the
///    client's prices, the coupon's window and uses, the card token's
///    owner), and the order itself is decided on a blank order (totals,
///    address, payment): a refusal writes nothing.
/// 2. The coupon's use is taken for the order (`Redeem`, idempotent per
///    order id). The coupon aggregate serialises racing orders: a lost race
///    is decided again on the coupon as it is then, so no more orders get
///    it than its limit allows, and the others are refused
///    (`coupon_used_up`) before anything else is written or charged.
/// 3. The order is placed: one event, all or nothing. From here the order
///    stands. Should placing fail after the use was taken, the use is given
///    back (unless the order exists after all: a racing twin under the same
///    idempotency key placed it).
/// 4. The cart is checked out into the order (idempotent per order id).
///    Should that fail, the order is NOT rolled back: the failure is logged
///    and reported in `warnings`.
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
                .map(|item| Ok((item.product_id, quantity(item.quantity)?)))
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
    for item in request.items.iter().flatten() {
        let Some(given) = item.price else { continue };
        let catalog = lines
            .iter()
            .find(|l| l.product_id == item.product_id)
            .map(|l| l.unit_price.minor);
        if let Some(catalog) = catalog.filter(|catalog| *catalog != given) {
            return Err(PlaceOrderError::PriceMismatch {
                product_id: item.product_id,
                catalog,
                given,
            });
        }
    }
    let subtotal = subtotal(&lines, &state.currency).map_err(PlaceOrderError::Order)?;
    let coupon = match &applied {
        Some(applied) => Some(order_coupon(state, applied, order_id, &subtotal, now).await?),
        None => None,
    };
    if let PaymentMethod::Card { token } = &request.payment {
        check_card_owner(state, customer_id, token).await?;
    }
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
    Order::default()
        .handle(command.clone(), &(), &EventSink::default())
        .await
        .map_err(PlaceOrderError::Order)?;

    let place_meta = caller
        .meta("PlaceOrder")
        .with_request_hash(request.request_hash.clone());
    let caused = |name: &str| {
        caller
            .meta(name)
            .caused_by(place_meta.command_id.to_string())
    };

    // 2. The coupon's use, before the order exists.
    let took_use = match &coupon {
        Some(c) => redeem(state, c, order_id, now, &caused("RedeemCoupon")).await?,
        None => false,
    };

    // 3. The order itself. Not retried: a conflict at sequence 1 is a twin
    //    under the same key, which the caller answers as a replay.
    let committed = match state
        .orders
        .execute(&order_id.to_string(), command, &place_meta)
        .await
    {
        Ok(committed) => committed,
        Err(e) => {
            let twin_placed = matches!(e, cqrs_es::AggregateError::AggregateConflict);
            let error = match StoreError::split(e) {
                Ok(e) => PlaceOrderError::Order(e),
                Err(e) => PlaceOrderError::Store(e),
            };
            if let (Some(c), true, false) = (&coupon, took_use, twin_placed) {
                give_back(state, c, order_id, &caused("ReleaseCouponRedemption")).await;
            }
            return Err(error);
        }
    };

    // 4. Follow-ups, idempotent per order (see above).
    let mut warnings = Vec::new();
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

/// Takes one use of the coupon for the order; answers whether this call
/// took it (`false`: the order held it already). A lost race is decided
/// again on the coupon as it is then; a coupon used up or expired by then
/// refuses the order.
async fn redeem(
    state: &AppState,
    coupon: &OrderCoupon,
    order_id: OrderId,
    now: chrono::DateTime<Utc>,
    meta: &CommandMetadata,
) -> Result<bool, PlaceOrderError> {
    let redeem = CouponCommand::Redeem { order_id, now };
    match state
        .coupons
        .execute_with_retry(&coupon.coupon_id.to_string(), redeem, meta)
        .await
    {
        Ok(committed) => Ok(committed.wrote_events),
        Err(e) => Err(match StoreError::split(e) {
            Ok(refused) => PlaceOrderError::Coupon(OrderCouponError::Refused(refused)),
            Err(e) => PlaceOrderError::Store(e),
        }),
    }
}

/// Gives the coupon's use back after the order could not be placed, unless
/// the order exists after all. When even that cannot be done (the database
/// is away) the use stays taken and is logged: a coupon use too few is the
/// smaller harm than an order with a discount its coupon did not allow.
async fn give_back(
    state: &AppState,
    coupon: &OrderCoupon,
    order_id: OrderId,
    meta: &CommandMetadata,
) {
    match lookups::first_event(&state.pool, Order::TYPE, &order_id.to_string()).await {
        Ok(Some(_)) => return,
        Ok(None) => {}
        Err(e) => {
            tracing::error!(%order_id, coupon = %coupon.code, error = %e, "order not placed, coupon use not given back");
            return;
        }
    }
    let release = CouponCommand::ReleaseRedemption { order_id };
    if let Err(e) = state
        .coupons
        .execute_with_retry(&coupon.coupon_id.to_string(), release, meta)
        .await
    {
        tracing::error!(%order_id, coupon = %coupon.code, error = %e, "order not placed, coupon use not given back");
    }
}
