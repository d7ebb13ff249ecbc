use thiserror::Error;

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

crate::error_codes!(CouponError {
    Self::AlreadyExists => Conflict "coupon_already_exists",
    Self::NotFound => NotFound "coupon_not_found",
    Self::InvalidCode(_) => Rule "invalid_coupon_code",
    Self::InvalidDiscount => Rule "invalid_discount",
    Self::InvalidUsageLimit => Rule "invalid_usage_limit",
    // Refused because of what the coupon is now.
    Self::Expired => Conflict "coupon_expired",
    Self::UsedUp => Conflict "coupon_used_up",
});
