use thiserror::Error;

use crate::error::{DomainError, ErrorKind};

/// Why a coupon command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CouponError {
    #[error("a coupon with this code already exists")]
    AlreadyExists,
    #[error("there is no such coupon")]
    NotFound,
    #[error("a coupon code is 3 to 32 letters, digits, '-' or '_', got {0:?}")]
    InvalidCode(String),
    #[error("a discount is 1 to 100 percent or a positive amount")]
    InvalidDiscount,
    #[error("a usage limit must be at least 1")]
    InvalidUsageLimit,
    #[error("the coupon is not valid at this time")]
    Expired,
    #[error("the coupon has been used up")]
    UsedUp,
}

impl DomainError for CouponError {
    fn code(&self) -> String {
        match self {
            CouponError::AlreadyExists => "coupon_already_exists",
            CouponError::NotFound => "coupon_not_found",
            CouponError::InvalidCode(_) => "invalid_coupon_code",
            CouponError::InvalidDiscount => "invalid_discount",
            CouponError::InvalidUsageLimit => "invalid_usage_limit",
            CouponError::Expired => "coupon_expired",
            CouponError::UsedUp => "coupon_used_up",
        }
        .to_string()
    }

    fn kind(&self) -> ErrorKind {
        match self {
            CouponError::AlreadyExists => ErrorKind::Conflict,
            CouponError::NotFound => ErrorKind::NotFound,
            CouponError::InvalidCode(_)
            | CouponError::InvalidDiscount
            | CouponError::InvalidUsageLimit => ErrorKind::Rule,
            // Refused because of what the coupon is now.
            CouponError::Expired | CouponError::UsedUp => ErrorKind::Conflict,
        }
    }
}
