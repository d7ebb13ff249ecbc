use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    CancellationReason, OrderCoupon, OrderLine, OrderStatus, PaymentMethod, ShippingAddress,
};
use crate::values::{Currency, CustomerId, Money, OrderId};

/// What can be asked of an order: placing it (HTTP), the fulfilment
/// workflow's steps, and the admin's and customer's actions.
///
/// Every command carries `now`, which becomes the `at` of its events (the
/// order's `updated_at`, and the timestamps an `as_of` view shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// `Place` is much larger than the other commands; a command is built once per
// request and moved, so boxing it would only make it harder to write.
#[allow(clippy::large_enum_variant)]
pub enum OrderCommand {
    /// Places the order. Prices and line totals come from the catalog (the
    /// caller); the order checks that they add up: every line and the
    /// coupon's discount in `currency`, `line_total = unit_price * quantity`,
    /// `discount <= subtotal`, and `expected_total` (what the client saw),
    /// when given, equal to `subtotal - discount`.
    Place {
        order_id: OrderId,
        customer_id: CustomerId,
        lines: Vec<OrderLine>,
        coupon: Option<OrderCoupon>,
        shipping_address: ShippingAddress,
        payment: PaymentMethod,
        expected_total: Option<i64>,
        currency: Currency,
        now: DateTime<Utc>,
    },
    /// The workflow held stock for every line. Pending orders only;
    /// repeating it does nothing.
    ConfirmStockReserved { now: DateTime<Utc> },
    /// The gateway authorized `amount` (the order's total) as `payment_id`.
    /// Pending orders only; repeating it does nothing.
    AuthorizePayment {
        payment_id: String,
        amount: Money,
        now: DateTime<Utc>,
    },
    /// The gateway captured `amount` (the order's total): pending -> paid.
    /// Repeating it with the same `payment_id` does nothing.
    CapturePayment {
        payment_id: String,
        amount: Money,
        now: DateTime<Utc>,
    },
    /// The payment was declined or failed: the pending order is cancelled
    /// with reason `payment_failed`. Does nothing on a cancelled order.
    FailPayment { reason: String, now: DateTime<Utc> },
    /// paid -> processing.
    StartProcessing { now: DateTime<Utc> },
    /// processing -> shipped. Repeating it with the same tracking number does
    /// nothing.
    Ship {
        tracking_number: String,
        carrier: Option<String>,
        now: DateTime<Utc>,
    },
    /// shipped -> delivered.
    Deliver { now: DateTime<Utc> },
    /// pending, paid or processing -> cancelled. Does nothing on an order that
    /// is already cancelled.
    Cancel {
        reason: CancellationReason,
        now: DateTime<Utc>,
    },
    /// Gives back captured money: `amount` or, when `None`, everything not yet
    /// refunded. Refunding all captured money makes the order `refunded`.
    Refund {
        amount: Option<Money>,
        reason: String,
        now: DateTime<Utc>,
    },
    /// The unpaid order's time is up: a pending order is cancelled with reason
    /// `payment_timeout`; any other order is left as it is (no event).
    Expire { now: DateTime<Utc> },
    /// Records the invoice; once, and only for an order whose payment was
    /// captured (even if it was cancelled or refunded since, so that an
    /// allocated number always lands on its order). Repeating it with the
    /// same number does nothing.
    IssueInvoice {
        invoice_number: String,
        now: DateTime<Utc>,
    },
    /// The admin endpoint `PUT /v1/orders/{id}/status`: to `processing`
    /// (StartProcessing), `shipped` (Ship; needs `tracking_number`),
    /// `delivered` (Deliver) or `cancelled` (Cancel, reason `admin`). Asking
    /// for the current status does nothing; `paid` and `refunded` come only
    /// from payment and refund commands.
    ChangeStatus {
        to: OrderStatus,
        tracking_number: Option<String>,
        now: DateTime<Utc>,
    },
}
