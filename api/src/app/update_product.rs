//! Changing a product: details, SKU and price in one request, all checked
//! before anything is written. A new SKU is claimed first; when the product
//! change then fails, the claim is given back (the compensation), and after
//! a change the old SKU is released.

use std::sync::Arc;

use domain::product::{ProductCommand, ProductError, ProductServices};
use domain::values::{CategoryId, Money, ProductId, ShopId, Sku, ValueError};
use projections::lookups::EventStoreLookups;

use super::products::{claim_sku, existing_product, release_sku, ClaimSkuError, FindProductError};
use super::{use_case_error, Caller, StoreError};
use crate::app::state::AppState;

/// The fields to change; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ProductChange {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Minor units.
    pub price: Option<i64>,
    pub sku: Option<String>,
    pub image_url: Option<String>,
    pub category_id: Option<CategoryId>,
    /// `Some(None)`: no shop.
    pub shop_id: Option<Option<ShopId>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateProductError {
    #[error(transparent)]
    Find(#[from] FindProductError),
    /// A SKU or price that is not one.
    #[error("{0}")]
    InvalidValue(ValueError),
    #[error(transparent)]
    Product(ProductError),
    #[error(transparent)]
    Claim(#[from] ClaimSkuError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(UpdateProductError {
    Self::Find(e) => nested(e: FindProductError),
    Self::InvalidValue(_) => refused(Rule, "invalid_value"),
    Self::Product(e) => domain(e: ProductError),
    Self::Claim(e) => nested(e: ClaimSkuError),
    Self::Store(e) => nested(e: StoreError),
});

fn product_failed(e: cqrs_es::AggregateError<ProductError>) -> UpdateProductError {
    match StoreError::split(e) {
        Ok(e) => UpdateProductError::Product(e),
        Err(e) => UpdateProductError::Store(e),
    }
}

/// Changes the product; answers the position of the last event written.
pub async fn update_product(
    state: &AppState,
    caller: &Caller,
    product_id: ProductId,
    change: ProductChange,
) -> Result<i64, UpdateProductError> {
    let current = existing_product(state, product_id).await?;
    let new_sku = change
        .sku
        .as_deref()
        .map(Sku::parse)
        .transpose()
        .map_err(UpdateProductError::InvalidValue)?
        .filter(|sku| Some(sku) != current.sku());
    let price = change
        .price
        .map(|minor| Money::new(minor, state.currency.clone()))
        .transpose()
        .map_err(UpdateProductError::InvalidValue)?;
    let aggregate_id = product_id.to_string();
    let mut position = 0;
    let details = ProductCommand::UpdateDetails {
        name: change.name,
        description: change.description,
        sku: new_sku.clone(),
        image_url: change.image_url,
        category_id: change.category_id,
        shop_id: change.shop_id,
    };
    // Every field is checked before anything is claimed or written, so a
    // refused price does not leave new details (or a claimed SKU) behind.
    // (The real execution decides again on fresh state.)
    let services = ProductServices::new(Arc::new(EventStoreLookups::new(state.pool.clone())));
    let planned = std::iter::once(details.clone()).chain(
        price
            .clone()
            .map(|price| ProductCommand::ChangePrice { price }),
    );
    super::dry_run(&current, &services, planned)
        .await
        .map_err(UpdateProductError::Product)?;

    let claim_meta = caller.meta("ClaimSku");
    if let Some(sku) = &new_sku {
        claim_sku(state, sku, product_id, &claim_meta).await?;
    }
    let meta = caller.meta("UpdateProductDetails");
    match state
        .products
        .execute_with_retry(&aggregate_id, details, &meta)
        .await
    {
        Ok(committed) => position = position.max(committed.position),
        Err(e) => {
            if let Some(sku) = &new_sku {
                release_sku(state, sku, product_id, &claim_meta).await;
            }
            return Err(product_failed(e));
        }
    }
    if let (Some(new), Some(old)) = (&new_sku, current.sku()) {
        if new != old {
            release_sku(state, old, product_id, &caller.meta("ReleaseSku")).await;
        }
    }
    if let Some(price) = price {
        let meta = caller.meta("ChangeProductPrice");
        let committed = state
            .products
            .execute_with_retry(&aggregate_id, ProductCommand::ChangePrice { price }, &meta)
            .await
            .map_err(product_failed)?;
        position = position.max(committed.position);
    }
    Ok(position)
}
