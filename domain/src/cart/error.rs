use thiserror::Error;

use super::LookupFailed;
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

crate::error_codes!(CartError {
    Self::ProductNotFound(_) => NotFound "product_not_found",
    Self::ProductDiscontinued(_) => Conflict "product_discontinued",
    // Refused because of what the cart, product or coupon is now
    // (a line's quantity would pass the most one line holds).
    Self::QuantityTooLarge { .. } => Conflict "quantity_too_large",
    // The same rule as for an order's lines.
    Self::TooManyLines { .. } => Rule "too_many_lines",
    Self::LineNotFound(_) => NotFound "cart_line_not_found",
    Self::CouponNotFound { .. } => NotFound "unknown_coupon",
    Self::CouponExpired { .. } => Conflict "coupon_expired",
    Self::CouponUsedUp { .. } => Conflict "coupon_used_up",
    Self::EmptyCart => Conflict "empty_cart",
    Self::WrongCustomer => Conflict "cart_of_another_customer",
    Self::Unavailable(_) => Unavailable "service_unavailable",
});
