//! The customer's cart: loading it and pricing it (the pricing rule itself
//! is `super::pricing`).

use domain::cart::{cart_id_for, Cart};
use domain::values::CustomerId;

use super::pricing::{self, CartPricingError, PricedCart};
use super::StoreError;
use crate::app::state::AppState;

/// The customer's cart; an empty one when it never had an item.
pub async fn load_cart(state: &AppState, customer: CustomerId) -> Result<Cart, StoreError> {
    Ok(state
        .carts
        .load(&cart_id_for(&customer).to_string())
        .await
        .map_err(super::load_error)?
        .unwrap_or_default())
}

/// The customer's cart with the catalog's current prices and its coupon.
pub async fn priced_cart(
    state: &AppState,
    customer: CustomerId,
) -> Result<(Cart, PricedCart), CartPricingError> {
    let cart = load_cart(state, customer).await?;
    let priced = pricing::cart(state, &cart).await?;
    Ok((cart, priced))
}
