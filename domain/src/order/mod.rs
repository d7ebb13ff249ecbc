//! Orders: placing one, and its life from payment to delivery, cancellation
//! or refund.
//!
//! The order checks that a placed order adds up (it does not look prices up:
//! the caller takes them from the catalog) and guards the status machine
//! drawn on [`legal_transition`]. The fulfilment workflow drives it with
//! `ConfirmStockReserved`, `AuthorizePayment`, `CapturePayment`,
//! `FailPayment`, `Expire` and `IssueInvoice`; those are idempotent where a
//! redelivered event would otherwise repeat them.
//!
//! The state is `Serialize` for snapshots; [`Order::view`] gives the shape the
//! HTTP API answers with (amounts as integers of minor units).

mod commands;
mod error;
mod events;
mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::coupon;
use crate::values::{
    optional_text, required_text, CouponId, Currency, CustomerId, Money, OrderId, ProductId,
    Quantity,
};

pub use commands::OrderCommand;
pub use error::OrderError;
pub use events::OrderEvent;
pub use status::{legal_transition, CancellationReason, OrderStatus, PaymentStatus};

/// The most lines one order may have. A cart refuses a new line past as
/// many (see `Cart`), so a cart filled since then can always be ordered.
pub const MAX_LINES: usize = 100;

/// Whether `count` lines are few enough for one order
/// ([`OrderError::TooManyLines`] beyond [`MAX_LINES`]). The order refuses
/// more when it is placed; callers may ask first, before pricing them.
pub fn check_line_count(count: usize) -> Result<(), OrderError> {
    if count > MAX_LINES {
        return Err(OrderError::TooManyLines { max: MAX_LINES });
    }
    Ok(())
}

/// One line of an order, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub name: String,
    pub unit_price: Money,
    pub quantity: Quantity,
    /// `unit_price * quantity`.
    pub line_total: Money,
}

/// The coupon an order is placed with and the discount it gives (computed by
/// the caller with [`crate::coupon::Discount::apply`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCoupon {
    pub coupon_id: CouponId,
    pub code: String,
    pub discount: Money,
}

/// Where the order goes: a structured address, or one line.
///
/// Structured: every field is trimmed and, except `line2`, required;
/// `country` is a two-letter code (stored upper case).
///
/// One line (what older clients send, see [`ShippingAddress::one_line`]):
/// only `line1` is given, 1 to 200 characters, kept trimmed and as written;
/// every other field is empty. Nothing is guessed from the line: the
/// carrier gets it as the customer wrote it.
///
/// Read back from storage, a bare string is a one-line address: that is how
/// an erased address (`crate::personal::ERASED`) reads, so a forgotten
/// person's orders keep their shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

impl<'de> Deserialize<'de> for ShippingAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            name: String,
            line1: String,
            #[serde(default)]
            line2: Option<String>,
            city: String,
            postal_code: String,
            country: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Fields(Fields),
            Line(String),
        }
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Fields(f) => ShippingAddress {
                name: f.name,
                line1: f.line1,
                line2: f.line2,
                city: f.city,
                postal_code: f.postal_code,
                country: f.country,
            },
            Stored::Line(line) => ShippingAddress::one_line(&line),
        })
    }
}

impl ShippingAddress {
    /// An address given as one line of text: the line is `line1`, every
    /// other field empty.
    pub fn one_line(line: &str) -> ShippingAddress {
        ShippingAddress {
            line1: line.to_string(),
            ..ShippingAddress::default()
        }
    }

    /// Whether this is a one-line address: nothing but `line1` is given.
    pub fn is_one_line(&self) -> bool {
        [&self.name, &self.city, &self.postal_code, &self.country]
            .iter()
            .all(|field| field.trim().is_empty())
            && self.line2.as_deref().is_none_or(|l| l.trim().is_empty())
    }

    /// The address trimmed and checked.
    pub fn normalized(&self) -> Result<ShippingAddress, OrderError> {
        let invalid = OrderError::InvalidShippingAddress;
        if self.is_one_line() {
            let line = required_text("line1", &self.line1, 200).map_err(invalid)?;
            return Ok(ShippingAddress::one_line(&line));
        }
        let line2 = optional_text("line2", self.line2.as_deref(), 200).map_err(invalid)?;
        let country = self.country.trim();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(OrderError::InvalidCountry(self.country.clone()));
        }
        Ok(ShippingAddress {
            name: required_text("name", &self.name, 200).map_err(invalid)?,
            line1: required_text("line1", &self.line1, 200).map_err(invalid)?,
            line2,
            city: required_text("city", &self.city, 100).map_err(invalid)?,
            postal_code: required_text("postal_code", &self.postal_code, 20).map_err(invalid)?,
            country: country.to_ascii_uppercase(),
        })
    }
}

/// How the customer pays, as the API receives it:
/// `{"method": "card", "token": "tok_visa"}` or `{"method": "wallet"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum PaymentMethod {
    /// `token` is the gateway's card token, never a card number.
    Card {
        token: String,
    },
    Wallet,
}

impl PaymentMethod {
    pub fn kind(&self) -> PaymentMethodKind {
        match self {
            PaymentMethod::Card { .. } => PaymentMethodKind::Card,
            PaymentMethod::Wallet => PaymentMethodKind::Wallet,
        }
    }
}

/// The payment method without its secret: `"card"` or `"wallet"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethodKind {
    Card,
    Wallet,
}

/// An order's state, built from its events. `order_id` is `None` until it is
/// placed; every other command on such an order answers `NotFound`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    order_id: Option<OrderId>,
    customer_id: CustomerId,
    status: OrderStatus,
    payment_status: PaymentStatus,
    lines: Vec<OrderLine>,
    currency: Currency,
    subtotal: Money,
    discount: Money,
    total: Money,
    coupon_id: Option<CouponId>,
    coupon_code: Option<String>,
    shipping_address: ShippingAddress,
    payment_method: Option<PaymentMethodKind>,
    stock_reserved: bool,
    /// The gateway's id of the authorized or captured payment.
    payment_id: Option<String>,
    captured: Money,
    refunded: Money,
    payment_failure: Option<String>,
    tracking_number: Option<String>,
    carrier: Option<String>,
    invoice_number: Option<String>,
    /// When the invoice was issued (`InvoiceIssued`'s `at`).
    #[serde(default)]
    invoiced_at: Option<DateTime<Utc>>,
    cancellation_reason: Option<CancellationReason>,
    placed_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

/// An order line as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderItemView {
    pub product_id: ProductId,
    pub name: String,
    pub quantity: u32,
    pub unit_price: i64,
    pub line_total: i64,
}

/// An order as `GET /v1/orders/{id}` answers it (also for `as_of`): money in
/// minor units of `currency`. The card token is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub cancellation_reason: Option<CancellationReason>,
    pub items: Vec<OrderItemView>,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    pub refunded: i64,
    pub currency: Currency,
    pub coupon_code: Option<String>,
    pub payment_method: Option<PaymentMethodKind>,
    pub shipping_address: ShippingAddress,
    pub tracking_number: Option<String>,
    pub carrier: Option<String>,
    pub invoice_number: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl Order {
    pub fn order_id(&self) -> Option<OrderId> {
        self.order_id
    }
    pub fn is_placed(&self) -> bool {
        self.order_id.is_some()
    }
    pub fn customer_id(&self) -> CustomerId {
        self.customer_id
    }
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    pub fn payment_status(&self) -> PaymentStatus {
        self.payment_status
    }
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }
    pub fn currency(&self) -> &Currency {
        &self.currency
    }
    pub fn subtotal(&self) -> &Money {
        &self.subtotal
    }
    pub fn discount(&self) -> &Money {
        &self.discount
    }
    pub fn total(&self) -> &Money {
        &self.total
    }
    pub fn coupon_id(&self) -> Option<CouponId> {
        self.coupon_id
    }
    pub fn coupon_code(&self) -> Option<&str> {
        self.coupon_code.as_deref()
    }
    pub fn shipping_address(&self) -> &ShippingAddress {
        &self.shipping_address
    }
    pub fn payment_method(&self) -> Option<PaymentMethodKind> {
        self.payment_method
    }
    pub fn stock_reserved(&self) -> bool {
        self.stock_reserved
    }
    pub fn payment_id(&self) -> Option<&str> {
        self.payment_id.as_deref()
    }
    /// Money taken from the customer.
    pub fn captured(&self) -> &Money {
        &self.captured
    }
    /// Money given back so far.
    pub fn refunded(&self) -> &Money {
        &self.refunded
    }
    /// Captured money not yet refunded.
    pub fn refundable(&self) -> Money {
        Money {
            minor: (self.captured.minor - self.refunded.minor).max(0),
            currency: self.currency.clone(),
        }
    }
    pub fn payment_failure(&self) -> Option<&str> {
        self.payment_failure.as_deref()
    }
    pub fn tracking_number(&self) -> Option<&str> {
        self.tracking_number.as_deref()
    }
    pub fn carrier(&self) -> Option<&str> {
        self.carrier.as_deref()
    }
    pub fn invoice_number(&self) -> Option<&str> {
        self.invoice_number.as_deref()
    }
    pub fn invoiced_at(&self) -> Option<DateTime<Utc>> {
        self.invoiced_at
    }
    /// Whether money was taken for the order (even if given back since).
    pub fn is_paid_for(&self) -> bool {
        self.payment_captured()
    }
    pub fn cancellation_reason(&self) -> Option<CancellationReason> {
        self.cancellation_reason
    }
    pub fn placed_at(&self) -> Option<DateTime<Utc>> {
        self.placed_at
    }
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.updated_at
    }
    pub fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.paid_at
    }
    pub fn shipped_at(&self) -> Option<DateTime<Utc>> {
        self.shipped_at
    }
    pub fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.delivered_at
    }
    pub fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.cancelled_at
    }

    /// The order as the API shows it; `None` before it is placed.
    pub fn view(&self) -> Option<OrderView> {
        let id = self.order_id?;
        Some(OrderView {
            id,
            customer_id: self.customer_id,
            status: self.status,
            payment_status: self.payment_status,
            cancellation_reason: self.cancellation_reason,
            items: self
                .lines
                .iter()
                .map(|l| OrderItemView {
                    product_id: l.product_id,
                    name: l.name.clone(),
                    quantity: l.quantity.get(),
                    unit_price: l.unit_price.minor,
                    line_total: l.line_total.minor,
                })
                .collect(),
            subtotal: self.subtotal.minor,
            discount: self.discount.minor,
            total: self.total.minor,
            refunded: self.refunded.minor,
            currency: self.currency.clone(),
            coupon_code: self.coupon_code.clone(),
            payment_method: self.payment_method,
            shipping_address: self.shipping_address.clone(),
            tracking_number: self.tracking_number.clone(),
            carrier: self.carrier.clone(),
            invoice_number: self.invoice_number.clone(),
            created_at: self.placed_at,
            updated_at: self.updated_at,
            paid_at: self.paid_at,
            shipped_at: self.shipped_at,
            delivered_at: self.delivered_at,
            cancelled_at: self.cancelled_at,
        })
    }

    /// The ids every event carries; `NotFound` before the order is placed.
    fn ids(&self) -> Result<(OrderId, CustomerId), OrderError> {
        self.order_id
            .map(|id| (id, self.customer_id))
            .ok_or(OrderError::NotFound)
    }

    fn payment_captured(&self) -> bool {
        matches!(
            self.payment_status,
            PaymentStatus::Captured | PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded
        )
    }

    /// `Ok` when the order may go to `to`; the error names the transition.
    fn check_transition(&self, to: OrderStatus) -> Result<(), OrderError> {
        if legal_transition(self.status, to) {
            Ok(())
        } else {
            Err(OrderError::IllegalTransition {
                from: self.status,
                to,
            })
        }
    }

    fn in_currency(&self, money: &Money) -> Result<(), OrderError> {
        in_currency(&self.currency, money)
    }

    #[allow(clippy::too_many_arguments)] // the fields of `OrderCommand::Place`
    fn place(
        &self,
        order_id: OrderId,
        customer_id: CustomerId,
        lines: Vec<OrderLine>,
        coupon: Option<OrderCoupon>,
        shipping_address: ShippingAddress,
        payment: PaymentMethod,
        expected_total: Option<i64>,
        currency: Currency,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        if self.order_id.is_some() {
            return Err(OrderError::AlreadyPlaced);
        }
        if lines.is_empty() {
            return Err(OrderError::NoLines);
        }
        check_line_count(lines.len())?;
        let mut seen = BTreeSet::new();
        let mut subtotal = Money::zero(currency.clone());
        for line in &lines {
            if !seen.insert(line.product_id) {
                return Err(OrderError::DuplicateLine(line.product_id));
            }
            in_currency(&currency, &line.unit_price)?;
            in_currency(&currency, &line.line_total)?;
            let expected = line
                .unit_price
                .checked_mul(line.quantity)
                .map_err(|_| OrderError::AmountTooLarge)?;
            if expected != line.line_total {
                return Err(OrderError::LineTotalMismatch {
                    product_id: line.product_id,
                    expected: expected.minor,
                    given: line.line_total.minor,
                });
            }
            subtotal = subtotal
                .checked_add(&line.line_total)
                .map_err(|_| OrderError::AmountTooLarge)?;
        }
        let discount = match &coupon {
            Some(c) => {
                in_currency(&currency, &c.discount)?;
                c.discount.clone()
            }
            None => Money::zero(currency.clone()),
        };
        if discount.minor > subtotal.minor {
            return Err(OrderError::DiscountExceedsSubtotal);
        }
        let total = Money {
            minor: subtotal.minor - discount.minor,
            currency: currency.clone(),
        };
        if let Some(expected) = expected_total {
            if expected != total.minor {
                return Err(OrderError::TotalMismatch {
                    expected,
                    computed: total.minor,
                });
            }
        }
        let shipping_address = shipping_address.normalized()?;
        let payment_method = payment.kind();
        let payment_token = match payment {
            PaymentMethod::Card { token } => {
                let token = token.trim();
                if token.is_empty() {
                    return Err(OrderError::PaymentTokenRequired);
                }
                Some(token.to_string())
            }
            PaymentMethod::Wallet => None,
        };
        let (coupon_id, coupon_code) = match coupon {
            Some(c) => (Some(c.coupon_id), Some(coupon::normalize_code(&c.code))),
            None => (None, None),
        };
        Ok(vec![OrderEvent::OrderPlaced {
            order_id,
            customer_id,
            lines,
            subtotal,
            discount,
            total,
            currency,
            coupon_id,
            coupon_code,
            shipping_address,
            payment_method,
            payment_token,
            placed_at: now,
            at: now,
        }])
    }

    fn confirm_stock_reserved(&self, now: DateTime<Utc>) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        if self.stock_reserved {
            return Ok(vec![]);
        }
        if self.status != OrderStatus::Pending {
            return Err(OrderError::NotPending {
                status: self.status,
            });
        }
        Ok(vec![OrderEvent::StockReserved {
            order_id,
            customer_id,
            at: now,
        }])
    }

    fn authorize_payment(
        &self,
        payment_id: &str,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        let payment_id = required_payment_id(payment_id)?;
        let same_payment = self.payment_id.as_deref() == Some(payment_id.as_str());
        if same_payment && self.payment_status != PaymentStatus::Pending {
            return Ok(vec![]);
        }
        if self.status != OrderStatus::Pending {
            return Err(OrderError::NotPending {
                status: self.status,
            });
        }
        if let Some(expected) = &self.payment_id {
            return Err(OrderError::PaymentIdMismatch {
                expected: expected.clone(),
                got: payment_id,
            });
        }
        self.check_amount(&amount)?;
        Ok(vec![OrderEvent::PaymentAuthorized {
            order_id,
            customer_id,
            payment_id,
            amount,
            at: now,
        }])
    }

    fn capture_payment(
        &self,
        payment_id: &str,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        let payment_id = required_payment_id(payment_id)?;
        if self.payment_captured() && self.payment_id.as_deref() == Some(payment_id.as_str()) {
            return Ok(vec![]);
        }
        self.check_transition(OrderStatus::Paid)?;
        if let Some(expected) = &self.payment_id {
            if *expected != payment_id {
                return Err(OrderError::PaymentIdMismatch {
                    expected: expected.clone(),
                    got: payment_id,
                });
            }
        }
        self.check_amount(&amount)?;
        Ok(vec![OrderEvent::PaymentCaptured {
            order_id,
            customer_id,
            payment_id,
            amount,
            at: now,
        }])
    }

    fn check_amount(&self, amount: &Money) -> Result<(), OrderError> {
        if *amount == self.total {
            Ok(())
        } else {
            Err(OrderError::AmountMismatch {
                expected: self.total.clone(),
                got: amount.clone(),
            })
        }
    }

    fn fail_payment(
        &self,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        if self.status == OrderStatus::Cancelled {
            return Ok(vec![]);
        }
        if self.status != OrderStatus::Pending {
            return Err(OrderError::NotPending {
                status: self.status,
            });
        }
        Ok(vec![
            OrderEvent::PaymentFailed {
                order_id,
                customer_id,
                reason: reason.trim().to_string(),
                at: now,
            },
            self.cancelled(
                order_id,
                customer_id,
                CancellationReason::PaymentFailed,
                now,
            ),
        ])
    }

    fn cancelled(
        &self,
        order_id: OrderId,
        customer_id: CustomerId,
        reason: CancellationReason,
        now: DateTime<Utc>,
    ) -> OrderEvent {
        OrderEvent::OrderCancelled {
            order_id,
            customer_id,
            reason,
            refund_due: self.refundable(),
            stock_reserved: self.stock_reserved,
            coupon_id: self.coupon_id,
            at: now,
        }
    }

    fn start_processing(&self, now: DateTime<Utc>) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        if self.status == OrderStatus::Processing {
            return Ok(vec![]);
        }
        self.check_transition(OrderStatus::Processing)?;
        Ok(vec![OrderEvent::OrderProcessingStarted {
            order_id,
            customer_id,
            at: now,
        }])
    }

    fn ship(
        &self,
        tracking_number: &str,
        carrier: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        let tracking_number = tracking_number.trim();
        let carrier = carrier.map(str::trim).filter(|c| !c.is_empty());
        if self.status == OrderStatus::Shipped
            && self.tracking_number.as_deref() == Some(tracking_number)
            && (carrier.is_none() || carrier == self.carrier.as_deref())
        {
            return Ok(vec![]);
        }
        self.check_transition(OrderStatus::Shipped)?;
        if tracking_number.is_empty() {
            return Err(OrderError::TrackingNumberRequired);
        }
        Ok(vec![OrderEvent::OrderShipped {
            order_id,
            customer_id,
            tracking_number: tracking_number.to_string(),
            carrier: carrier.map(str::to_string),
            at: now,
        }])
    }

    fn deliver(&self, now: DateTime<Utc>) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        if self.status == OrderStatus::Delivered {
            return Ok(vec![]);
        }
        self.check_transition(OrderStatus::Delivered)?;
        Ok(vec![OrderEvent::OrderDelivered {
            order_id,
            customer_id,
            at: now,
        }])
    }

    fn cancel(
        &self,
        reason: CancellationReason,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        if self.status == OrderStatus::Cancelled {
            return Ok(vec![]);
        }
        self.check_transition(OrderStatus::Cancelled)?;
        Ok(vec![self.cancelled(order_id, customer_id, reason, now)])
    }

    fn expire(&self, now: DateTime<Utc>) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        if self.status != OrderStatus::Pending {
            return Ok(vec![]);
        }
        Ok(vec![self.cancelled(
            order_id,
            customer_id,
            CancellationReason::PaymentTimeout,
            now,
        )])
    }

    fn refund(
        &self,
        amount: Option<Money>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(OrderError::RefundReasonRequired);
        }
        if self.status == OrderStatus::Refunded {
            return Err(OrderError::NothingToRefund);
        }
        self.check_transition(OrderStatus::Refunded)?;
        let refundable = self.refundable();
        if !self.payment_captured() || refundable.minor == 0 {
            return Err(OrderError::NothingToRefund);
        }
        let amount = match amount {
            None => refundable.clone(),
            Some(amount) => {
                self.in_currency(&amount)?;
                if amount.minor <= 0 {
                    return Err(OrderError::InvalidRefundAmount);
                }
                if amount.minor > refundable.minor {
                    return Err(OrderError::RefundExceedsPaid {
                        requested: amount,
                        refundable,
                    });
                }
                amount
            }
        };
        let total_refunded = Money {
            minor: self.refunded.minor + amount.minor,
            currency: self.currency.clone(),
        };
        Ok(vec![OrderEvent::OrderRefunded {
            order_id,
            customer_id,
            full: total_refunded.minor == self.captured.minor,
            amount,
            total_refunded,
            reason: reason.to_string(),
            at: now,
        }])
    }

    fn issue_invoice(
        &self,
        invoice_number: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (order_id, customer_id) = self.ids()?;
        let invoice_number = invoice_number.trim();
        if invoice_number.is_empty() {
            return Err(OrderError::InvoiceNumberRequired);
        }
        match &self.invoice_number {
            Some(existing) if existing == invoice_number => return Ok(vec![]),
            Some(existing) => {
                return Err(OrderError::InvoiceAlreadyIssued {
                    invoice_number: existing.clone(),
                })
            }
            None => {}
        }
        // Any order whose payment was captured, even if it was cancelled or
        // refunded since: the fulfilment workflow allocates the number before
        // it issues the invoice, and a number once given must end up on its
        // order, or the year's numbers would have a gap.
        if !self.payment_captured() {
            return Err(OrderError::NotPaid {
                status: self.status,
            });
        }
        Ok(vec![OrderEvent::InvoiceIssued {
            order_id,
            customer_id,
            invoice_number: invoice_number.to_string(),
            at: now,
        }])
    }

    fn change_status(
        &self,
        to: OrderStatus,
        tracking_number: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        self.ids()?;
        match to {
            OrderStatus::Processing => self.start_processing(now),
            OrderStatus::Shipped => match tracking_number {
                Some(tracking_number) => self.ship(tracking_number, None, now),
                // Asking again for `shipped` without a tracking number
                // changes nothing.
                None if self.status == OrderStatus::Shipped => Ok(vec![]),
                None => {
                    self.check_transition(OrderStatus::Shipped)?;
                    Err(OrderError::TrackingNumberRequired)
                }
            },
            OrderStatus::Delivered => self.deliver(now),
            OrderStatus::Cancelled => self.cancel(CancellationReason::Admin, now),
            OrderStatus::Pending | OrderStatus::Paid | OrderStatus::Refunded => {
                if self.status == to {
                    return Ok(vec![]);
                }
                self.check_transition(to)?;
                Err(OrderError::StatusNotSettable { to })
            }
        }
    }
}

fn in_currency(currency: &Currency, money: &Money) -> Result<(), OrderError> {
    if money.currency != *currency {
        return Err(OrderError::CurrencyMismatch {
            expected: currency.clone(),
            found: money.currency.clone(),
        });
    }
    if money.minor < 0 {
        return Err(OrderError::NegativeAmount);
    }
    Ok(())
}

fn required_payment_id(payment_id: &str) -> Result<String, OrderError> {
    let payment_id = payment_id.trim();
    if payment_id.is_empty() {
        Err(OrderError::PaymentIdRequired)
    } else {
        Ok(payment_id.to_string())
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            OrderCommand::Place {
                order_id,
                customer_id,
                lines,
                coupon,
                shipping_address,
                payment,
                expected_total,
                currency,
                now,
            } => self.place(
                order_id,
                customer_id,
                lines,
                coupon,
                shipping_address,
                payment,
                expected_total,
                currency,
                now,
            )?,
            OrderCommand::ConfirmStockReserved { now } => self.confirm_stock_reserved(now)?,
            OrderCommand::AuthorizePayment {
                payment_id,
                amount,
                now,
            } => self.authorize_payment(&payment_id, amount, now)?,
            OrderCommand::CapturePayment {
                payment_id,
                amount,
                now,
            } => self.capture_payment(&payment_id, amount, now)?,
            OrderCommand::FailPayment { reason, now } => self.fail_payment(&reason, now)?,
            OrderCommand::StartProcessing { now } => self.start_processing(now)?,
            OrderCommand::Ship {
                tracking_number,
                carrier,
                now,
            } => self.ship(&tracking_number, carrier.as_deref(), now)?,
            OrderCommand::Deliver { now } => self.deliver(now)?,
            OrderCommand::Cancel { reason, now } => self.cancel(reason, now)?,
            OrderCommand::Refund {
                amount,
                reason,
                now,
            } => self.refund(amount, &reason, now)?,
            OrderCommand::Expire { now } => self.expire(now)?,
            OrderCommand::IssueInvoice {
                invoice_number,
                now,
            } => self.issue_invoice(&invoice_number, now)?,
            OrderCommand::ChangeStatus {
                to,
                tracking_number,
                now,
            } => self.change_status(to, tracking_number.as_deref(), now)?,
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.updated_at = Some(event.at());
        match event {
            OrderEvent::OrderPlaced {
                order_id,
                customer_id,
                lines,
                subtotal,
                discount,
                total,
                currency,
                coupon_id,
                coupon_code,
                shipping_address,
                payment_method,
                placed_at,
                ..
            } => {
                self.order_id = Some(order_id);
                self.customer_id = customer_id;
                self.status = OrderStatus::Pending;
                self.payment_status = PaymentStatus::Pending;
                self.lines = lines;
                self.captured = Money::zero(currency.clone());
                self.refunded = Money::zero(currency.clone());
                self.currency = currency;
                self.subtotal = subtotal;
                self.discount = discount;
                self.total = total;
                self.coupon_id = coupon_id;
                self.coupon_code = coupon_code;
                self.shipping_address = shipping_address;
                self.payment_method = Some(payment_method);
                self.placed_at = Some(placed_at);
            }
            OrderEvent::StockReserved { .. } => self.stock_reserved = true,
            OrderEvent::PaymentAuthorized { payment_id, .. } => {
                self.payment_id = Some(payment_id);
                self.payment_status = PaymentStatus::Authorized;
            }
            OrderEvent::PaymentCaptured {
                payment_id,
                amount,
                at,
                ..
            } => {
                self.payment_id = Some(payment_id);
                self.captured = amount;
                self.payment_status = PaymentStatus::Captured;
                self.status = OrderStatus::Paid;
                self.paid_at = Some(at);
            }
            OrderEvent::PaymentFailed { reason, .. } => {
                self.payment_failure = Some(reason);
                self.payment_status = PaymentStatus::Failed;
            }
            OrderEvent::OrderProcessingStarted { .. } => self.status = OrderStatus::Processing,
            OrderEvent::OrderShipped {
                tracking_number,
                carrier,
                at,
                ..
            } => {
                self.status = OrderStatus::Shipped;
                self.tracking_number = Some(tracking_number);
                self.carrier = carrier;
                self.shipped_at = Some(at);
            }
            OrderEvent::OrderDelivered { at, .. } => {
                self.status = OrderStatus::Delivered;
                self.delivered_at = Some(at);
            }
            OrderEvent::OrderCancelled { reason, at, .. } => {
                self.status = OrderStatus::Cancelled;
                self.cancellation_reason = Some(reason);
                self.cancelled_at = Some(at);
            }
            OrderEvent::OrderRefunded {
                total_refunded,
                full,
                ..
            } => {
                self.refunded = total_refunded;
                if full {
                    self.status = OrderStatus::Refunded;
                    self.payment_status = PaymentStatus::Refunded;
                } else {
                    self.payment_status = PaymentStatus::PartiallyRefunded;
                }
            }
            OrderEvent::InvoiceIssued {
                invoice_number, at, ..
            } => {
                self.invoice_number = Some(invoice_number);
                self.invoiced_at = Some(at);
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for Order {}
