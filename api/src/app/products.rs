//! Loading a product that must exist, and the SKU claims that keep SKUs
//! unique across products.

use domain::metadata::CommandMetadata;
use domain::product::Product;
use domain::sku::{claim_id, SkuCommand, SkuError};
use domain::values::{ProductId, Sku};

use super::{load_error, use_case_error, StoreError};
use crate::app::state::AppState;

/// A product that does not exist (or was never created).
#[derive(Debug, thiserror::Error)]
pub enum FindProductError {
    #[error("There is no such product.")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(FindProductError {
    Self::NotFound => refused(NotFound, super::refusals::NotFound::CODE),
    Self::Store(e) => nested(e: StoreError),
});

/// The product, which must exist.
pub async fn existing_product(
    state: &AppState,
    id: ProductId,
) -> Result<Product, FindProductError> {
    super::pricing::load_product(state, id)
        .await?
        .ok_or(FindProductError::NotFound)
}

/// Why a SKU could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimSkuError {
    #[error(transparent)]
    Sku(SkuError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(ClaimSkuError {
    Self::Sku(e) => domain(e: SkuError),
    Self::Store(e) => nested(e: StoreError),
});

/// Claims `sku` for `product`: refused when another product holds it.
pub async fn claim_sku(
    state: &AppState,
    sku: &Sku,
    product: ProductId,
    meta: &CommandMetadata,
) -> Result<(), ClaimSkuError> {
    let command = SkuCommand::Claim {
        sku: sku.clone(),
        product_id: product,
    };
    state
        .skus
        .execute_with_retry(&claim_id(sku).to_string(), command, meta)
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => ClaimSkuError::Sku(e),
            Err(e) => ClaimSkuError::Store(e),
        })?;
    Ok(())
}

/// Gives `product`'s claim on `sku` back: the compensation of a claim whose
/// product change did not go through, or the old SKU after a change. A
/// failure is logged; the claim then stays until an operator releases it.
pub async fn release_sku(state: &AppState, sku: &Sku, product: ProductId, meta: &CommandMetadata) {
    let command = SkuCommand::Release {
        sku: sku.clone(),
        product_id: product,
    };
    if let Err(e) = state
        .skus
        .execute_with_retry(&claim_id(sku).to_string(), command, meta)
        .await
    {
        tracing::error!(error = %load_error(e), sku = %sku, "could not release a SKU claim");
    }
}
