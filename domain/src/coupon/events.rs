use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::Discount;
use crate::values::{CouponId, OrderId};

/// What happened to a coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CouponEvent {
    CouponCreated {
        coupon_id: CouponId,
        /// Upper case.
        code: String,
        discount: Discount,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
        usage_limit: Option<u32>,
    },
    /// `times_used` counts the redemptions held after this one.
    CouponRedeemed {
        coupon_id: CouponId,
        order_id: OrderId,
        times_used: u32,
    },
    /// `times_used` counts the redemptions held after the release.
    CouponRedemptionReleased {
        coupon_id: CouponId,
        order_id: OrderId,
        times_used: u32,
    },
}

impl DomainEvent for CouponEvent {
    fn event_type(&self) -> String {
        match self {
            CouponEvent::CouponCreated { .. } => "CouponCreated",
            CouponEvent::CouponRedeemed { .. } => "CouponRedeemed",
            CouponEvent::CouponRedemptionReleased { .. } => "CouponRedemptionReleased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: coupons name codes and amounts.
impl crate::personal::PersonalData for CouponEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
