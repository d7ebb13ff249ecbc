//! The order's statuses and the state machine between them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an order is in its life. Serialized (and displayed) snake_case, as
/// the HTTP API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed; stock and payment in progress.
    #[default]
    Pending,
    Paid,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Processing,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Processing => "processing",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the order's money is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    Pending,
    Authorized,
    Captured,
    Failed,
    Refunded,
    PartiallyRefunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Pending,
        PaymentStatus::Authorized,
        PaymentStatus::Captured,
        PaymentStatus::Failed,
        PaymentStatus::Refunded,
        PaymentStatus::PartiallyRefunded,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    CustomerRequest,
    OutOfStock,
    PaymentFailed,
    PaymentTimeout,
    Admin,
}

impl CancellationReason {
    pub const ALL: [CancellationReason; 5] = [
        CancellationReason::CustomerRequest,
        CancellationReason::OutOfStock,
        CancellationReason::PaymentFailed,
        CancellationReason::PaymentTimeout,
        CancellationReason::Admin,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CancellationReason::CustomerRequest => "customer_request",
            CancellationReason::OutOfStock => "out_of_stock",
            CancellationReason::PaymentFailed => "payment_failed",
            CancellationReason::PaymentTimeout => "payment_timeout",
            CancellationReason::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<CancellationReason> {
        CancellationReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for CancellationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an order may move from `from` to `to`. Staying in the same status
/// is not a transition (`false`); commands that would only repeat the
/// current status are answered with no event instead.
///
/// ```text
///             CapturePayment       StartProcessing           Ship             Deliver
///  pending -----------------> paid ---------------> processing ------> shipped ------> delivered
///     |                        |  :                   |  :               :               :
///     | Cancel, Expire,        |  :                   |  :               :               :
///     | FailPayment     Cancel |  :            Cancel |  :               :               :
///     v                        v  :                   v  :               :               :
///  cancelled <-----------------+--:-------------------+  :               :               :
///     :                           :                      :               :               :
///     :...........................:......................:...............:...............:
///                                          |
///                                          | Refund of all captured money
///                                          v
///                                      refunded
/// ```
///
/// Solid lines are status changes by the command named on them; the dotted
/// ones all lead to `refunded`.
///
/// `paid` is reached only by capturing the payment and `refunded` only by
/// refunding all captured money; a partial refund leaves the status as it is
/// (payment status `partially_refunded`). `refunded` is final; `delivered`
/// and `cancelled` only move on by a refund (a cancelled order only when
/// money was captured before it was cancelled).
pub fn legal_transition(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::{Cancelled, Delivered, Paid, Pending, Processing, Refunded, Shipped};
    matches!(
        (from, to),
        (Pending, Paid | Cancelled)
            | (Paid, Processing | Cancelled | Refunded)
            | (Processing, Shipped | Cancelled | Refunded)
            | (Shipped, Delivered | Refunded)
            | (Delivered, Refunded)
            | (Cancelled, Refunded)
    )
}
