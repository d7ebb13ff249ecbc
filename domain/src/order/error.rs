use thiserror::Error;

use super::OrderStatus;
use crate::error::{DomainError, ErrorKind};
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

impl DomainError for OrderError {
    fn code(&self) -> String {
        let code = match self {
            OrderError::IllegalTransition { from, to } => {
                return format!("illegal_transition_{from}_to_{to}");
            }
            OrderError::NotFound => "order_not_found",
            OrderError::AlreadyPlaced => "order_already_placed",
            OrderError::NoLines => "order_has_no_lines",
            OrderError::TooManyLines { .. } => "too_many_lines",
            OrderError::DuplicateLine(_) => "duplicate_order_line",
            OrderError::CurrencyMismatch { .. } => "currency_mismatch",
            OrderError::NegativeAmount => "negative_amount",
            OrderError::AmountTooLarge => "amount_too_large",
            OrderError::LineTotalMismatch { .. } => "line_total_mismatch",
            OrderError::DiscountExceedsSubtotal => "discount_exceeds_subtotal",
            OrderError::TotalMismatch { .. } => "total_mismatch",
            OrderError::InvalidShippingAddress(_) => "invalid_shipping_address",
            OrderError::InvalidCountry(_) => "invalid_country",
            OrderError::PaymentTokenRequired => "payment_token_required",
            OrderError::NotPending { .. } => "order_not_pending",
            OrderError::NotPaid { .. } => "order_not_paid",
            OrderError::StatusNotSettable { .. } => "status_not_settable",
            OrderError::PaymentIdRequired => "payment_id_required",
            OrderError::PaymentIdMismatch { .. } => "payment_id_mismatch",
            OrderError::AmountMismatch { .. } => "payment_amount_mismatch",
            OrderError::TrackingNumberRequired => "tracking_number_required",
            OrderError::InvoiceNumberRequired => "invoice_number_required",
            OrderError::InvoiceAlreadyIssued { .. } => "invoice_already_issued",
            OrderError::NothingToRefund => "nothing_to_refund",
            OrderError::InvalidRefundAmount => "invalid_refund_amount",
            OrderError::RefundExceedsPaid { .. } => "refund_exceeds_paid",
            OrderError::RefundReasonRequired => "refund_reason_required",
        };
        code.to_string()
    }

    fn kind(&self) -> ErrorKind {
        match self {
            OrderError::NotFound => ErrorKind::NotFound,
            OrderError::AlreadyPlaced
            | OrderError::IllegalTransition { .. }
            | OrderError::NotPending { .. }
            | OrderError::NotPaid { .. }
            | OrderError::PaymentIdMismatch { .. }
            | OrderError::InvoiceAlreadyIssued { .. }
            | OrderError::NothingToRefund
            // The client's total differs from today's prices; a refund
            // beyond what is paid now.
            | OrderError::TotalMismatch { .. }
            | OrderError::RefundExceedsPaid { .. }
            // Paid and refunded follow from payments, not from a request.
            | OrderError::StatusNotSettable { .. } => ErrorKind::Conflict,
            OrderError::NoLines
            | OrderError::TooManyLines { .. }
            | OrderError::DuplicateLine(_)
            | OrderError::CurrencyMismatch { .. }
            | OrderError::NegativeAmount
            | OrderError::AmountTooLarge
            | OrderError::LineTotalMismatch { .. }
            | OrderError::DiscountExceedsSubtotal
            | OrderError::InvalidShippingAddress(_)
            | OrderError::InvalidCountry(_)
            | OrderError::PaymentTokenRequired
            | OrderError::PaymentIdRequired
            | OrderError::AmountMismatch { .. }
            | OrderError::TrackingNumberRequired
            | OrderError::InvoiceNumberRequired
            | OrderError::InvalidRefundAmount
            | OrderError::RefundReasonRequired => ErrorKind::Rule,
        }
    }
}
