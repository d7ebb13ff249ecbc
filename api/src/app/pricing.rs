//! Line pricing: the one rule for what a line costs, from the catalog as it
//! is now. Prices never come from the client. An order refuses a line it
//! cannot price; the cart shows it as unavailable.

use chrono::Utc;
use domain::cart::Cart;
use domain::order::{OrderError, OrderLine};
use domain::product::Product;
use domain::values::{Currency, Money, ProductId, Quantity};

use super::coupons::usable_discount;
use super::{use_case_error, StoreError};
use crate::app::state::AppState;

/// A product as the catalog has it now, or `None` when it was never
/// created.
pub async fn load_product(
    state: &AppState,
    product_id: ProductId,
) -> Result<Option<Product>, StoreError> {
    Ok(state
        .products
        .load(&product_id.to_string())
        .await
        .map_err(super::load_error)?
        .filter(Product::is_created))
}

/// One line priced from its product (if any).
#[derive(Debug, Clone)]
pub struct PricedLine {
    pub product_id: ProductId,
    /// The product's name; empty when there is no product.
    pub name: String,
    pub quantity: Quantity,
    /// Zero when the product has no price.
    pub unit_price: Money,
    pub line_total: Money,
    /// Whether the product exists.
    pub exists: bool,
    /// Whether it has a price.
    pub priced: bool,
    pub discontinued: bool,
}

/// The total does not fit.
#[derive(Debug, Clone, Copy)]
pub struct Overflow;

/// Prices `quantity` of the product.
pub fn price_line(
    product_id: ProductId,
    product: Option<&Product>,
    quantity: Quantity,
    currency: &Currency,
) -> Result<PricedLine, Overflow> {
    let price = product.and_then(|p| p.price().cloned());
    let priced = price.is_some();
    let unit_price = price.unwrap_or_else(|| Money::zero(currency.clone()));
    let line_total = unit_price.checked_mul(quantity).map_err(|_| Overflow)?;
    Ok(PricedLine {
        product_id,
        name: product
            .and_then(Product::name)
            .unwrap_or_default()
            .to_string(),
        quantity,
        unit_price,
        line_total,
        exists: product.is_some(),
        priced,
        discontinued: product.is_some_and(Product::is_discontinued),
    })
}

/// Why an order's lines cannot be priced.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("Product {0} does not exist.")]
    ProductNotFound(ProductId),
    #[error("Product {0} is no longer sold.")]
    ProductDiscontinued(ProductId),
    #[error(transparent)]
    Order(OrderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(PricingError {
    Self::ProductNotFound(_) => refused(NotFound, "product_not_found"),
    Self::ProductDiscontinued(_) => refused(Conflict, "product_discontinued"),
    Self::Order(e) => domain(e: OrderError),
    Self::Store(e) => nested(e: StoreError),
});

/// Prices every line of an order from the catalog as it is now: each line
/// must name a product that is for sale.
pub async fn order_lines(
    state: &AppState,
    requested: &[(ProductId, Quantity)],
) -> Result<Vec<OrderLine>, PricingError> {
    let mut lines = Vec::with_capacity(requested.len());
    for &(product_id, quantity) in requested {
        let product = load_product(state, product_id).await?;
        let line = price_line(product_id, product.as_ref(), quantity, &state.currency)
            .map_err(|Overflow| PricingError::Order(OrderError::AmountTooLarge))?;
        if !line.exists || !line.priced {
            return Err(PricingError::ProductNotFound(product_id));
        }
        if line.discontinued {
            return Err(PricingError::ProductDiscontinued(product_id));
        }
        lines.push(OrderLine {
            product_id,
            name: line.name,
            unit_price: line.unit_price,
            quantity,
            line_total: line.line_total,
        });
    }
    Ok(lines)
}

/// The sum of the lines' totals.
pub fn subtotal(lines: &[OrderLine], currency: &Currency) -> Result<Money, OrderError> {
    lines
        .iter()
        .try_fold(Money::zero(currency.clone()), |sum, l| {
            sum.checked_add(&l.line_total)
        })
        .map_err(|_| OrderError::AmountTooLarge)
}

/// A cart priced with the catalog's current prices and its coupon.
#[derive(Debug, Clone)]
pub struct PricedCart {
    pub lines: Vec<PricedLine>,
    pub subtotal: Money,
    pub discount: Money,
    pub total: Money,
    /// Whether the applied coupon may be used now; `None` without one.
    pub coupon_valid: Option<bool>,
}

/// Why a cart cannot be priced.
#[derive(Debug, thiserror::Error)]
pub enum CartPricingError {
    #[error("The cart's total is larger than can be represented.")]
    AmountTooLarge,
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(CartPricingError {
    Self::AmountTooLarge => refused(Rule, "amount_too_large"),
    Self::Store(e) => nested(e: StoreError),
});

/// Prices the cart. A line whose product is gone or has no price is shown
/// at zero (a line can only have been added for a product that exists, so
/// that would be a bug, shown rather than failing the whole cart).
pub async fn cart(state: &AppState, cart: &Cart) -> Result<PricedCart, CartPricingError> {
    let internal = |e: domain::values::ValueError| StoreError::Internal(e.to_string());
    let mut lines = Vec::with_capacity(cart.lines().len());
    let mut subtotal = Money::zero(state.currency.clone());
    for line in cart.lines() {
        let product = load_product(state, line.product_id).await?;
        let priced = price_line(
            line.product_id,
            product.as_ref(),
            line.quantity,
            &state.currency,
        )
        .map_err(|Overflow| CartPricingError::AmountTooLarge)?;
        subtotal = subtotal.checked_add(&priced.line_total).map_err(internal)?;
        lines.push(priced);
    }
    let mut discount = Money::zero(state.currency.clone());
    let mut coupon_valid = None;
    if let Some(applied) = cart.coupon() {
        let coupon = super::coupons::load(state, applied).await?;
        let usable = usable_discount(coupon.as_ref(), Utc::now()).ok();
        coupon_valid = Some(usable.is_some());
        if let Some(rule) = usable {
            discount = rule.apply(&subtotal).map_err(internal)?;
        }
    }
    let total = subtotal.saturating_sub(&discount).map_err(internal)?;
    Ok(PricedCart {
        lines,
        subtotal,
        discount,
        total,
        coupon_valid,
    })
}
