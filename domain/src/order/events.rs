use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{CancellationReason, OrderLine, PaymentMethodKind, ShippingAddress};
use crate::values::{CouponId, Currency, CustomerId, Money, OrderId};

/// What happened to an order.
///
/// Every event carries the `order_id`, the `customer_id` (so projections such
/// as notifications need no lookup) and `at`, the time the command that
/// caused it was given (its `now`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// OrderPlaced carries the whole order; the others are small. Boxing it would
// change nothing in the stored JSON and make every reader clumsier.
#[allow(clippy::large_enum_variant)]
pub enum OrderEvent {
    /// The order as placed, with the totals computed from its lines.
    ///
    /// The card token is not part of `payment_method` (just `card` or
    /// `wallet`): for a card, `payment_token` carries the gateway's token
    /// (never a card number) so that the fulfilment workflow can charge it.
    /// Read models must not show it. `placed_at` equals `at`.
    OrderPlaced {
        order_id: OrderId,
        customer_id: CustomerId,
        lines: Vec<OrderLine>,
        subtotal: Money,
        discount: Money,
        total: Money,
        currency: Currency,
        coupon_id: Option<CouponId>,
        coupon_code: Option<String>,
        shipping_address: ShippingAddress,
        payment_method: PaymentMethodKind,
        payment_token: Option<String>,
        placed_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// Stock is held for every line.
    StockReserved {
        order_id: OrderId,
        customer_id: CustomerId,
        at: DateTime<Utc>,
    },
    PaymentAuthorized {
        order_id: OrderId,
        customer_id: CustomerId,
        payment_id: String,
        amount: Money,
        at: DateTime<Utc>,
    },
    /// The money was taken: the order is paid.
    PaymentCaptured {
        order_id: OrderId,
        customer_id: CustomerId,
        payment_id: String,
        amount: Money,
        at: DateTime<Utc>,
    },
    /// Always followed by `OrderCancelled` with reason `payment_failed`.
    PaymentFailed {
        order_id: OrderId,
        customer_id: CustomerId,
        reason: String,
        at: DateTime<Utc>,
    },
    OrderProcessingStarted {
        order_id: OrderId,
        customer_id: CustomerId,
        at: DateTime<Utc>,
    },
    OrderShipped {
        order_id: OrderId,
        customer_id: CustomerId,
        tracking_number: String,
        carrier: Option<String>,
        at: DateTime<Utc>,
    },
    OrderDelivered {
        order_id: OrderId,
        customer_id: CustomerId,
        at: DateTime<Utc>,
    },
    /// `refund_due` is the captured money not yet refunded, which the
    /// workflow should now refund: zero exactly when the order was cancelled
    /// before it was paid (then its coupon redemption, `coupon_id`, is given
    /// back). `stock_reserved`: stock was held for it and must be released.
    OrderCancelled {
        order_id: OrderId,
        customer_id: CustomerId,
        reason: CancellationReason,
        refund_due: Money,
        stock_reserved: bool,
        coupon_id: Option<CouponId>,
        at: DateTime<Utc>,
    },
    /// `amount` was given back; `total_refunded` is the sum of all refunds so
    /// far; `full` when that is all the captured money (the order is then
    /// `refunded`).
    OrderRefunded {
        order_id: OrderId,
        customer_id: CustomerId,
        amount: Money,
        total_refunded: Money,
        full: bool,
        reason: String,
        at: DateTime<Utc>,
    },
    InvoiceIssued {
        order_id: OrderId,
        customer_id: CustomerId,
        invoice_number: String,
        at: DateTime<Utc>,
    },
}

impl OrderEvent {
    pub fn order_id(&self) -> OrderId {
        match self {
            OrderEvent::OrderPlaced { order_id, .. }
            | OrderEvent::StockReserved { order_id, .. }
            | OrderEvent::PaymentAuthorized { order_id, .. }
            | OrderEvent::PaymentCaptured { order_id, .. }
            | OrderEvent::PaymentFailed { order_id, .. }
            | OrderEvent::OrderProcessingStarted { order_id, .. }
            | OrderEvent::OrderShipped { order_id, .. }
            | OrderEvent::OrderDelivered { order_id, .. }
            | OrderEvent::OrderCancelled { order_id, .. }
            | OrderEvent::OrderRefunded { order_id, .. }
            | OrderEvent::InvoiceIssued { order_id, .. } => *order_id,
        }
    }

    pub fn customer_id(&self) -> CustomerId {
        match self {
            OrderEvent::OrderPlaced { customer_id, .. }
            | OrderEvent::StockReserved { customer_id, .. }
            | OrderEvent::PaymentAuthorized { customer_id, .. }
            | OrderEvent::PaymentCaptured { customer_id, .. }
            | OrderEvent::PaymentFailed { customer_id, .. }
            | OrderEvent::OrderProcessingStarted { customer_id, .. }
            | OrderEvent::OrderShipped { customer_id, .. }
            | OrderEvent::OrderDelivered { customer_id, .. }
            | OrderEvent::OrderCancelled { customer_id, .. }
            | OrderEvent::OrderRefunded { customer_id, .. }
            | OrderEvent::InvoiceIssued { customer_id, .. } => *customer_id,
        }
    }

    /// When it happened (the causing command's `now`).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            OrderEvent::OrderPlaced { at, .. }
            | OrderEvent::StockReserved { at, .. }
            | OrderEvent::PaymentAuthorized { at, .. }
            | OrderEvent::PaymentCaptured { at, .. }
            | OrderEvent::PaymentFailed { at, .. }
            | OrderEvent::OrderProcessingStarted { at, .. }
            | OrderEvent::OrderShipped { at, .. }
            | OrderEvent::OrderDelivered { at, .. }
            | OrderEvent::OrderCancelled { at, .. }
            | OrderEvent::OrderRefunded { at, .. }
            | OrderEvent::InvoiceIssued { at, .. } => *at,
        }
    }
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::StockReserved { .. } => "StockReserved",
            OrderEvent::PaymentAuthorized { .. } => "PaymentAuthorized",
            OrderEvent::PaymentCaptured { .. } => "PaymentCaptured",
            OrderEvent::PaymentFailed { .. } => "PaymentFailed",
            OrderEvent::OrderProcessingStarted { .. } => "OrderProcessingStarted",
            OrderEvent::OrderShipped { .. } => "OrderShipped",
            OrderEvent::OrderDelivered { .. } => "OrderDelivered",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderRefunded { .. } => "OrderRefunded",
            OrderEvent::InvoiceIssued { .. } => "InvoiceIssued",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// An order's shipping address (with the recipient's name) is personal; the
/// rest is the order's (customer ids, amounts, tracking numbers).
impl crate::personal::PersonalData for OrderEvent {
    fn personal_fields(event_type: &str) -> &'static [&'static str] {
        match event_type {
            "OrderPlaced" => &["shipping_address"],
            _ => &[],
        }
    }
}
