use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{AppliedCoupon, CartLine};
use crate::values::{CartId, CouponId, CustomerId, OrderId, ProductId, Quantity};

/// What happened to a cart. Prices are not part of the cart's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartEvent {
    /// `quantity` is the amount added, `line_quantity` the line's new total.
    CartItemAdded {
        cart_id: CartId,
        customer_id: CustomerId,
        product_id: ProductId,
        quantity: Quantity,
        line_quantity: Quantity,
    },
    /// `quantity` is the line's new total.
    CartItemQuantityChanged {
        cart_id: CartId,
        product_id: ProductId,
        quantity: Quantity,
    },
    CartItemRemoved {
        cart_id: CartId,
        product_id: ProductId,
    },
    CartEmptied {
        cart_id: CartId,
    },
    /// `code` is the coupon's canonical (upper case) code.
    CouponApplied {
        cart_id: CartId,
        code: String,
        coupon_id: CouponId,
    },
    CouponRemoved {
        cart_id: CartId,
        code: String,
        coupon_id: CouponId,
    },
    /// The cart's content went into `order_id`; the cart is empty again.
    CartCheckedOut {
        cart_id: CartId,
        customer_id: CustomerId,
        order_id: OrderId,
        lines: Vec<CartLine>,
        coupon: Option<AppliedCoupon>,
    },
}

impl DomainEvent for CartEvent {
    fn event_type(&self) -> String {
        match self {
            CartEvent::CartItemAdded { .. } => "CartItemAdded",
            CartEvent::CartItemQuantityChanged { .. } => "CartItemQuantityChanged",
            CartEvent::CartItemRemoved { .. } => "CartItemRemoved",
            CartEvent::CartEmptied { .. } => "CartEmptied",
            CartEvent::CouponApplied { .. } => "CouponApplied",
            CartEvent::CouponRemoved { .. } => "CouponRemoved",
            CartEvent::CartCheckedOut { .. } => "CartCheckedOut",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: carts hold products and the customer's id only.
impl crate::personal::PersonalData for CartEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
