use thiserror::Error;

use super::LookupFailed;
use crate::error::{DomainError, ErrorKind};
use crate::values::ProductId;

/// Why a cart command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CartError {
    #[error("product {0} does not exist")]
    ProductNotFound(ProductId),
    #[error("product {0} is no longer sold")]
    ProductDiscontinued(ProductId),
    #[error("a cart line holds at most {max} items")]
    QuantityTooLarge { max: u32 },
    #[error("a cart has at most {max} lines, as many as one order")]
    TooManyLines { max: usize },
    #[error("the cart has no line for product {0}")]
    LineNotFound(ProductId),
    #[error("there is no coupon {code:?}")]
    CouponNotFound { code: String },
    #[error("coupon {code:?} is not valid at this time")]
    CouponExpired { code: String },
    #[error("coupon {code:?} has been used up")]
    CouponUsedUp { code: String },
    #[error("the cart is empty")]
    EmptyCart,
    #[error("this cart belongs to another customer")]
    WrongCustomer,
    #[error("a service the cart needs did not answer: {0}")]
    Unavailable(String),
}

impl From<LookupFailed> for CartError {
    fn from(e: LookupFailed) -> Self {
        CartError::Unavailable(e.0)
    }
}

impl DomainError for CartError {
    fn code(&self) -> String {
        match self {
            CartError::ProductNotFound(_) => "product_not_found",
            CartError::ProductDiscontinued(_) => "product_discontinued",
            CartError::QuantityTooLarge { .. } => "quantity_too_large",
            CartError::TooManyLines { .. } => "too_many_lines",
            CartError::LineNotFound(_) => "cart_line_not_found",
            CartError::CouponNotFound { .. } => "unknown_coupon",
            CartError::CouponExpired { .. } => "coupon_expired",
            CartError::CouponUsedUp { .. } => "coupon_used_up",
            CartError::EmptyCart => "empty_cart",
            CartError::WrongCustomer => "cart_of_another_customer",
            CartError::Unavailable(_) => "service_unavailable",
        }
        .to_string()
    }

    fn kind(&self) -> ErrorKind {
        match self {
            CartError::ProductNotFound(_)
            | CartError::LineNotFound(_)
            | CartError::CouponNotFound { .. } => ErrorKind::NotFound,
            // Refused because of what the cart, product or coupon is now
            // (a line's quantity would pass the most one line holds).
            CartError::QuantityTooLarge { .. }
            | CartError::ProductDiscontinued(_)
            | CartError::CouponExpired { .. }
            | CartError::CouponUsedUp { .. }
            | CartError::EmptyCart
            | CartError::WrongCustomer => ErrorKind::Conflict,
            // The same rule as for an order's lines.
            CartError::TooManyLines { .. } => ErrorKind::Rule,
            CartError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}
