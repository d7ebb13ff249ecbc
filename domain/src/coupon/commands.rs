use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Discount;
use crate::values::{CouponId, OrderId};

/// What can be asked of a coupon. The aggregate id is
/// [`super::coupon_id_for`] of the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CouponCommand {
    /// `code`: 3 to 32 of `A-Z 0-9 - _` (stored upper case). `valid_until`
    /// must be after `valid_from`; `usage_limit`, when given, at least 1.
    Create {
        coupon_id: CouponId,
        code: String,
        discount: Discount,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
        usage_limit: Option<u32>,
    },
    /// `order_id` uses the coupon. Idempotent per order.
    Redeem {
        order_id: OrderId,
        now: DateTime<Utc>,
    },
    /// `order_id` was cancelled before payment and gives its use back.
    /// Nothing happens when the order holds no redemption.
    ReleaseRedemption { order_id: OrderId },
}
