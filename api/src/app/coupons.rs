//! Whether a coupon may be used now: the one check the cart's price, the
//! coupon's admin view and placing an order all make (the same checks
//! redeeming it makes).

use chrono::{DateTime, Utc};
use domain::cart::{AppliedCoupon, CartError};
use domain::coupon::{redeemed_key, used_up, within_validity, Coupon, CouponError, Discount};
use domain::order::OrderCoupon;
use domain::values::{Money, OrderId};
use projections::event_store::streams;

use super::{use_case_error, StoreError};
use crate::app::state::AppState;

/// Why a coupon cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// There is no such coupon (or it was never created).
    Unknown,
    /// Outside its validity window.
    Expired,
    /// Its uses are all taken.
    UsedUp,
}

/// The coupon's discount if it may be used at `now`.
pub fn usable_discount(coupon: Option<&Coupon>, now: DateTime<Utc>) -> Result<&Discount, Unusable> {
    let details = coupon.and_then(|c| {
        Some((
            c.discount()?,
            c.valid_from()?,
            c.valid_until()?,
            used_up(c.usage_limit(), c.times_used()),
        ))
    });
    let Some((rule, from, until, is_used_up)) = details else {
        return Err(Unusable::Unknown);
    };
    if !within_validity(from, until, now) {
        return Err(Unusable::Expired);
    }
    if is_used_up {
        return Err(Unusable::UsedUp);
    }
    Ok(rule)
}

/// Whether the coupon may be used at `now`.
pub fn is_usable(coupon: &Coupon, now: DateTime<Utc>) -> bool {
    usable_discount(Some(coupon), now).is_ok()
}

/// Loads a coupon as it is now.
pub async fn load(state: &AppState, applied: &AppliedCoupon) -> Result<Option<Coupon>, StoreError> {
    state
        .coupons
        .load(&applied.coupon_id.to_string())
        .await
        .map_err(super::load_error)
}

/// Why the cart's coupon cannot go on an order.
#[derive(Debug, thiserror::Error)]
pub enum OrderCouponError {
    #[error(transparent)]
    Unknown(CartError),
    #[error(transparent)]
    Refused(CouponError),
    #[error("The coupon cannot apply: {0}")]
    InvalidDiscount(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(OrderCouponError {
    Self::Unknown(e) => domain(e: CartError),
    Self::Refused(e) => domain(e: CouponError),
    Self::InvalidDiscount(_) => refused(Rule, "invalid_discount"),
    Self::Store(e) => nested(e: StoreError),
});

/// The cart's coupon as the order `order_id` takes it, after checking that
/// it may be used now. A coupon this order holds a use of already (a retry
/// of the same order) is not used up for it. Whether a use is left is
/// decided for good when the use is taken (`Redeem`).
pub async fn order_coupon(
    state: &AppState,
    applied: &AppliedCoupon,
    order_id: OrderId,
    subtotal: &Money,
    now: DateTime<Utc>,
) -> Result<OrderCoupon, OrderCouponError> {
    let loaded = streams::load::<Coupon>(
        &state.pool,
        &applied.coupon_id.to_string(),
        &[redeemed_key(order_id)],
    )
    .await
    .map_err(StoreError::from)?;
    let coupon = loaded.exists().then_some(loaded.aggregate);
    let held = coupon
        .as_ref()
        .filter(|c| c.is_redeemed_by(order_id))
        .and_then(Coupon::discount);
    let rule = match (usable_discount(coupon.as_ref(), now), held) {
        (Err(Unusable::UsedUp), Some(rule)) => Ok(rule),
        (usable, _) => usable,
    };
    let rule = rule.map_err(|why| match why {
        Unusable::Unknown => OrderCouponError::Unknown(CartError::CouponNotFound {
            code: applied.code.clone(),
        }),
        Unusable::Expired => OrderCouponError::Refused(CouponError::Expired),
        Unusable::UsedUp => OrderCouponError::Refused(CouponError::UsedUp),
    })?;
    let discount = rule
        .apply(subtotal)
        .map_err(|e| OrderCouponError::InvalidDiscount(e.to_string()))?;
    Ok(OrderCoupon {
        coupon_id: applied.coupon_id,
        code: applied.code.clone(),
        discount,
    })
}
