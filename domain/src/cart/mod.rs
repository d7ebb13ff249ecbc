//! The customer's cart.
//!
//! One cart per customer, for ever: the aggregate id is
//! [`cart_id_for`]`(customer)`, and checking out empties the cart so the same
//! aggregate serves the customer's next cart. The cart holds product ids and
//! quantities only; prices are not stored here, the read side shows current
//! prices and the order takes its prices from the catalog when it is placed.
//!
//! Rules that need outside facts ask [`ProductCatalog`] (does the product
//! exist, is it still sold?) and [`CouponLookup`] (is this code a coupon one
//! may use now?). Both are held in [`CartServices`].

mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::coupon::{self, Discount};
use crate::values::{
    derived_id, CartId, CouponId, CustomerId, Money, OrderId, ProductId, Quantity,
};

pub use commands::CartCommand;
pub use error::CartError;
pub use events::CartEvent;

/// An outside lookup did not answer; the text says why (for logs, not users).
/// Aggregates turn it into their `Unavailable` error (HTTP 503).
pub use crate::lookup::LookupError as LookupFailed;

/// What the cart needs to know about a catalog product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub product_id: ProductId,
    pub name: String,
    pub price: Money,
    pub discontinued: bool,
}

/// The catalog as the cart sees it.
#[async_trait]
pub trait ProductCatalog: Send + Sync {
    /// The product, or `None` when no such product was ever created.
    async fn product(&self, product_id: ProductId) -> Result<Option<ProductInfo>, LookupFailed>;
}

/// What the cart needs to know about a coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponInfo {
    pub coupon_id: CouponId,
    pub code: String,
    pub discount: Discount,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub usage_limit: Option<u32>,
    pub times_used: u32,
}

impl CouponInfo {
    /// Same window as the coupon aggregate: `valid_from <= now < valid_until`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        coupon::within_validity(self.valid_from, self.valid_until, now)
    }
    pub fn is_used_up(&self) -> bool {
        coupon::used_up(self.usage_limit, self.times_used)
    }
}

/// Coupons by code, as the cart sees them.
#[async_trait]
pub trait CouponLookup: Send + Sync {
    /// The coupon with this code (already trimmed and upper-cased by the
    /// caller), or `None` when there is none.
    async fn by_code(&self, code: &str) -> Result<Option<CouponInfo>, LookupFailed>;
}

/// The outside services the cart's rules need.
#[derive(Clone)]
pub struct CartServices {
    pub catalog: Arc<dyn ProductCatalog>,
    pub coupons: Arc<dyn CouponLookup>,
}

/// The id of `customer`'s cart: one cart per customer, derived so that no
/// lookup is needed to find it.
pub fn cart_id_for(customer_id: &CustomerId) -> CartId {
    CartId(derived_id("cart", &customer_id.to_string()))
}

/// One line of the cart: a product and how many of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

/// The coupon applied to the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedCoupon {
    pub coupon_id: CouponId,
    pub code: String,
}

/// The cart's state. Empty (and without ids) until the first item is added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    cart_id: Option<CartId>,
    customer_id: Option<CustomerId>,
    /// In the order the products were first added.
    lines: Vec<CartLine>,
    coupon: Option<AppliedCoupon>,
    /// The order the cart was last checked out into, so a repeated check-out
    /// for the same order does nothing.
    last_order_id: Option<OrderId>,
}

impl Cart {
    pub fn cart_id(&self) -> Option<CartId> {
        self.cart_id
    }
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.customer_id
    }
    pub fn lines(&self) -> &[CartLine] {
        &self.lines
    }
    pub fn coupon(&self) -> Option<&AppliedCoupon> {
        self.coupon.as_ref()
    }
    pub fn last_order_id(&self) -> Option<OrderId> {
        self.last_order_id
    }
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
    /// The quantity of `product_id` in the cart, 0 when it has no line.
    pub fn quantity_of(&self, product_id: ProductId) -> u32 {
        self.line(product_id).map_or(0, |l| l.quantity.get())
    }

    fn line(&self, product_id: ProductId) -> Option<&CartLine> {
        self.lines.iter().find(|l| l.product_id == product_id)
    }

    /// The cart's id, known once the first item was added. Commands other
    /// than `AddItem` only make sense on a cart that has (had) items.
    fn known_id(&self) -> Result<CartId, CartError> {
        self.cart_id.ok_or(CartError::EmptyCart)
    }

    async fn add_item(
        &self,
        customer_id: CustomerId,
        product_id: ProductId,
        quantity: Quantity,
        services: &CartServices,
    ) -> Result<Vec<CartEvent>, CartError> {
        if let Some(owner) = self.customer_id {
            if owner != customer_id {
                return Err(CartError::WrongCustomer);
            }
        }
        // A new line past the most one order may have could never be
        // ordered (more lines, from before this rule, may be changed or
        // removed, but not added to).
        if self.line(product_id).is_none() && self.lines.len() >= crate::order::MAX_LINES {
            return Err(CartError::TooManyLines {
                max: crate::order::MAX_LINES,
            });
        }
        match services.catalog.product(product_id).await? {
            None => return Err(CartError::ProductNotFound(product_id)),
            Some(p) if p.discontinued => return Err(CartError::ProductDiscontinued(product_id)),
            Some(_) => {}
        }
        let total = u64::from(self.quantity_of(product_id)) + u64::from(quantity.get());
        let line_quantity = u32::try_from(total)
            .ok()
            .and_then(|t| Quantity::try_from(t).ok())
            .ok_or(CartError::QuantityTooLarge { max: Quantity::MAX })?;
        Ok(vec![CartEvent::CartItemAdded {
            cart_id: self.cart_id.unwrap_or_else(|| cart_id_for(&customer_id)),
            customer_id,
            product_id,
            quantity,
            line_quantity,
        }])
    }

    fn change_quantity(
        &self,
        product_id: ProductId,
        quantity: u32,
    ) -> Result<Vec<CartEvent>, CartError> {
        let line = self
            .line(product_id)
            .ok_or(CartError::LineNotFound(product_id))?;
        let cart_id = self.known_id()?;
        if quantity == 0 {
            return Ok(vec![CartEvent::CartItemRemoved {
                cart_id,
                product_id,
            }]);
        }
        let quantity = Quantity::try_from(quantity)
            .map_err(|_| CartError::QuantityTooLarge { max: Quantity::MAX })?;
        if line.quantity == quantity {
            return Ok(vec![]);
        }
        Ok(vec![CartEvent::CartItemQuantityChanged {
            cart_id,
            product_id,
            quantity,
        }])
    }

    fn remove_item(&self, product_id: ProductId) -> Result<Vec<CartEvent>, CartError> {
        self.line(product_id)
            .ok_or(CartError::LineNotFound(product_id))?;
        Ok(vec![CartEvent::CartItemRemoved {
            cart_id: self.known_id()?,
            product_id,
        }])
    }

    fn empty(&self) -> Vec<CartEvent> {
        match self.cart_id {
            Some(cart_id) if !self.lines.is_empty() => vec![CartEvent::CartEmptied { cart_id }],
            _ => vec![],
        }
    }

    async fn apply_coupon(
        &self,
        code: &str,
        now: DateTime<Utc>,
        services: &CartServices,
    ) -> Result<Vec<CartEvent>, CartError> {
        let code = coupon::normalize_code(code);
        if self.lines.is_empty() {
            return Err(CartError::EmptyCart);
        }
        let cart_id = self.known_id()?;
        if code.is_empty() {
            return Err(CartError::CouponNotFound { code });
        }
        let info = services
            .coupons
            .by_code(&code)
            .await?
            .ok_or_else(|| CartError::CouponNotFound { code: code.clone() })?;
        if !info.is_valid_at(now) {
            return Err(CartError::CouponExpired { code });
        }
        if info.is_used_up() {
            return Err(CartError::CouponUsedUp { code });
        }
        if self
            .coupon
            .as_ref()
            .is_some_and(|c| c.coupon_id == info.coupon_id)
        {
            return Ok(vec![]);
        }
        Ok(vec![CartEvent::CouponApplied {
            cart_id,
            code: info.code,
            coupon_id: info.coupon_id,
        }])
    }

    fn remove_coupon(&self) -> Vec<CartEvent> {
        match (self.cart_id, &self.coupon) {
            (Some(cart_id), Some(c)) => vec![CartEvent::CouponRemoved {
                cart_id,
                code: c.code.clone(),
                coupon_id: c.coupon_id,
            }],
            _ => vec![],
        }
    }

    fn check_out(&self, order_id: OrderId) -> Result<Vec<CartEvent>, CartError> {
        if self.last_order_id == Some(order_id) {
            return Ok(vec![]);
        }
        let (Some(cart_id), Some(customer_id)) = (self.cart_id, self.customer_id) else {
            return Err(CartError::EmptyCart);
        };
        if self.lines.is_empty() {
            return Err(CartError::EmptyCart);
        }
        Ok(vec![CartEvent::CartCheckedOut {
            cart_id,
            customer_id,
            order_id,
            lines: self.lines.clone(),
            coupon: self.coupon.clone(),
        }])
    }
}

impl Aggregate for Cart {
    const TYPE: &'static str = "Cart";
    type Command = CartCommand;
    type Event = CartEvent;
    type Error = CartError;
    type Services = CartServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            CartCommand::AddItem {
                customer_id,
                product_id,
                quantity,
            } => {
                self.add_item(customer_id, product_id, quantity, services)
                    .await?
            }
            CartCommand::ChangeQuantity {
                product_id,
                quantity,
            } => self.change_quantity(product_id, quantity)?,
            CartCommand::RemoveItem { product_id } => self.remove_item(product_id)?,
            CartCommand::Empty => self.empty(),
            CartCommand::ApplyCoupon { code, now } => {
                self.apply_coupon(&code, now, services).await?
            }
            CartCommand::RemoveCoupon => self.remove_coupon(),
            CartCommand::CheckOut { order_id } => self.check_out(order_id)?,
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CartEvent::CartItemAdded {
                cart_id,
                customer_id,
                product_id,
                line_quantity,
                ..
            } => {
                self.cart_id = Some(cart_id);
                self.customer_id = Some(customer_id);
                match self.lines.iter_mut().find(|l| l.product_id == product_id) {
                    Some(line) => line.quantity = line_quantity,
                    None => self.lines.push(CartLine {
                        product_id,
                        quantity: line_quantity,
                    }),
                }
            }
            CartEvent::CartItemQuantityChanged {
                product_id,
                quantity,
                ..
            } => {
                if let Some(line) = self.lines.iter_mut().find(|l| l.product_id == product_id) {
                    line.quantity = quantity;
                }
            }
            CartEvent::CartItemRemoved { product_id, .. } => {
                self.lines.retain(|l| l.product_id != product_id);
            }
            CartEvent::CartEmptied { .. } => self.lines.clear(),
            CartEvent::CouponApplied {
                code, coupon_id, ..
            } => {
                self.coupon = Some(AppliedCoupon { coupon_id, code });
            }
            CartEvent::CouponRemoved { .. } => self.coupon = None,
            CartEvent::CartCheckedOut { order_id, .. } => {
                self.lines.clear();
                self.coupon = None;
                self.last_order_id = Some(order_id);
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for Cart {}
