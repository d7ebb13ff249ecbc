use thiserror::Error;

use super::OrderStatus;
use crate::values::{Currency, Money, ProductId, ValueError};

/// Why an order command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderError {
    #[error("there is no such order")]
    NotFound,
    #[error("the order has already been placed")]
    AlreadyPlaced,
    #[error("an order needs at least one line")]
    NoLines,
    #[error("an order has at most {max} lines")]
    TooManyLines { max: usize },
    #[error("product {0} appears on more than one line")]
    DuplicateLine(ProductId),
    #[error("amounts must be in {expected}, got {found}")]
    CurrencyMismatch { expected: Currency, found: Currency },
    #[error("an amount must not be negative")]
    NegativeAmount,
    #[error("the amount is too large")]
    AmountTooLarge,
    #[error("the line total of product {product_id} should be {expected}, got {given}")]
    LineTotalMismatch {
        product_id: ProductId,
        expected: i64,
        given: i64,
    },
    #[error("the discount is larger than the subtotal")]
    DiscountExceedsSubtotal,
    #[error("the expected total {expected} differs from the total {computed}")]
    TotalMismatch { expected: i64, computed: i64 },
    #[error("invalid shipping address: {0}")]
    InvalidShippingAddress(ValueError),
    #[error("country must be a two-letter ISO-3166 code, got {0:?}")]
    InvalidCountry(String),
    #[error("a card payment needs a card token")]
    PaymentTokenRequired,
    #[error("an order cannot go from {from} to {to}")]
    IllegalTransition { from: OrderStatus, to: OrderStatus },
    #[error("only a pending order can do this; the order is {status}")]
    NotPending { status: OrderStatus },
    #[error("only a paid order can do this; the order is {status}")]
    NotPaid { status: OrderStatus },
    #[error("status {to} is set by payment and refund commands, not by hand")]
    StatusNotSettable { to: OrderStatus },
    #[error("a payment id is required")]
    PaymentIdRequired,
    #[error("the payment is {expected:?}, not {got:?}")]
    PaymentIdMismatch { expected: String, got: String },
    #[error(
        "the payment amount {} {} differs from the order total {} {}",
        .got.minor, .got.currency, .expected.minor, .expected.currency
    )]
    AmountMismatch { expected: Money, got: Money },
    #[error("a tracking number is required to ship")]
    TrackingNumberRequired,
    #[error("an invoice number is required")]
    InvoiceNumberRequired,
    #[error("invoice {invoice_number} has already been issued for this order")]
    InvoiceAlreadyIssued { invoice_number: String },
    #[error("there is no captured money left to refund")]
    NothingToRefund,
    #[error("a refund must be a positive amount")]
    InvalidRefundAmount,
    #[error(
        "a refund of {} {} is more than the {} {} that can be refunded",
        .requested.minor, .requested.currency, .refundable.minor, .refundable.currency
    )]
    RefundExceedsPaid { requested: Money, refundable: Money },
    #[error("a refund needs a reason")]
    RefundReasonRequired,
}

crate::error_codes!(OrderError {
    Self::IllegalTransition { from, to } => Conflict
        "illegal_transition_<from>_to_<to>" as format!("illegal_transition_{from}_to_{to}"),
    Self::NotFound => NotFound "order_not_found",
    Self::AlreadyPlaced => Conflict "order_already_placed",
    Self::NoLines => Rule "order_has_no_lines",
    Self::TooManyLines { .. } => Rule "too_many_lines",
    Self::DuplicateLine(_) => Rule "duplicate_order_line",
    Self::CurrencyMismatch { .. } => Rule "currency_mismatch",
    Self::NegativeAmount => Rule "negative_amount",
    Self::AmountTooLarge => Rule "amount_too_large",
    Self::LineTotalMismatch { .. } => Rule "line_total_mismatch",
    Self::DiscountExceedsSubtotal => Rule "discount_exceeds_subtotal",
    // The client's total differs from today's prices; a refund
    // beyond what is paid now.
    Self::TotalMismatch { .. } => Conflict "total_mismatch",
    Self::InvalidShippingAddress(_) => Rule "invalid_shipping_address",
    Self::InvalidCountry(_) => Rule "invalid_country",
    Self::PaymentTokenRequired => Rule "payment_token_required",
    Self::NotPending { .. } => Conflict "order_not_pending",
    Self::NotPaid { .. } => Conflict "order_not_paid",
    // Paid and refunded follow from payments, not from a request.
    Self::StatusNotSettable { .. } => Conflict "status_not_settable",
    Self::PaymentIdRequired => Rule "payment_id_required",
    Self::PaymentIdMismatch { .. } => Conflict "payment_id_mismatch",
    Self::AmountMismatch { .. } => Rule "payment_amount_mismatch",
    Self::TrackingNumberRequired => Rule "tracking_number_required",
    Self::InvoiceNumberRequired => Rule "invoice_number_required",
    Self::InvoiceAlreadyIssued { .. } => Conflict "invoice_already_issued",
    Self::NothingToRefund => Conflict "nothing_to_refund",
    Self::InvalidRefundAmount => Rule "invalid_refund_amount",
    Self::RefundExceedsPaid { .. } => Conflict "refund_exceeds_paid",
    Self::RefundReasonRequired => Rule "refund_reason_required",
});
