//! Creating a product: its SKU is claimed first (a `SkuClaim` aggregate per
//! SKU keeps SKUs unique), then the product is created; a product that
//! cannot be created gives the claim back (the compensation), so a failed
//! request leaves nothing behind. Under an `Idempotency-Key` a repeat of the
//! same body answers the first answer and claims nothing.

use cqrs_es::Aggregate;
use domain::product::{Product, ProductCommand, ProductError};
use domain::values::{CategoryId, Money, ProductId, ShopId, Sku, ValueError};

use super::products::{claim_sku, release_sku, ClaimSkuError};
use super::{replayed_creation, use_case_error, Caller, KeyReused, StoreError};
use crate::app::state::AppState;

/// What is asked for.
#[derive(Debug, Clone)]
pub struct NewProduct {
    /// From the `Idempotency-Key` (the same for a repeat under the same
    /// key), or a new random id.
    pub product_id: ProductId,
    pub name: String,
    pub description: String,
    /// Minor units of the shop's currency.
    pub price: i64,
    pub sku: String,
    pub image_url: Option<String>,
    pub category_id: CategoryId,
    pub shop_id: Option<ShopId>,
    /// The request body's hash, kept on `ProductCreated` when `keyed`.
    pub request_hash: String,
    /// Whether it came with an `Idempotency-Key`.
    pub keyed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateProductError {
    /// A SKU or price that is not one.
    #[error("{0}")]
    InvalidValue(ValueError),
    #[error(transparent)]
    Product(ProductError),
    #[error(transparent)]
    Claim(#[from] ClaimSkuError),
    #[error(transparent)]
    KeyReused(#[from] KeyReused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(CreateProductError {
    Self::InvalidValue(_) => refused(Rule, "invalid_value"),
    Self::Product(e) => domain(e: ProductError),
    Self::Claim(e) => nested(e: ClaimSkuError),
    Self::KeyReused(e) => nested(e: KeyReused),
    Self::Store(e) => nested(e: StoreError),
});

/// Creates the product; answers the position of its `ProductCreated` (the
/// first one's, for a repeat under the same key).
pub async fn create_product(
    state: &AppState,
    caller: &Caller,
    new: NewProduct,
) -> Result<i64, CreateProductError> {
    let sku = Sku::parse(&new.sku).map_err(CreateProductError::InvalidValue)?;
    let price =
        Money::new(new.price, state.currency.clone()).map_err(CreateProductError::InvalidValue)?;
    let id = new.product_id;
    // A replay is answered before anything is claimed: the SKU of a replayed
    // body may since have been given up by the product, and the SKU of
    // another body under the key must not be taken.
    if let Some(position) = replayed(state, &new).await? {
        return Ok(position);
    }
    let claim_meta = caller.meta("ClaimSku");
    claim_sku(state, &sku, id, &claim_meta).await?;
    let mut meta = caller.meta("CreateProduct");
    if new.keyed {
        meta = meta.with_request_hash(new.request_hash.clone());
    }
    let command = ProductCommand::Create {
        product_id: id,
        name: new.name.clone(),
        description: new.description.clone(),
        price,
        sku: sku.clone(),
        image_url: new.image_url.clone(),
        category_id: new.category_id,
        shop_id: new.shop_id,
    };
    let failure = match state
        .products
        .execute(&id.to_string(), command, &meta)
        .await
    {
        Ok(committed) => return Ok(committed.position),
        Err(e) => match StoreError::split(e) {
            Ok(e) => CreateProductError::Product(e),
            Err(e) => CreateProductError::Store(e),
        },
    };
    // Lost a race against the same key: answer like a replay.
    if let Some(position) = replayed(state, &new).await? {
        return Ok(position);
    }
    // Give the claim back unless the product exists with this SKU. When the
    // product cannot be read, keep the claim: releasing the SKU of a product
    // that has it would be worse than a stray claim.
    if product_sku(state, id)
        .await
        .is_some_and(|held| held.as_ref() != Some(&sku))
    {
        release_sku(state, &sku, id, &claim_meta).await;
    }
    Err(failure)
}

/// Under a key: the first request's position when the product exists.
async fn replayed(state: &AppState, new: &NewProduct) -> Result<Option<i64>, CreateProductError> {
    if !new.keyed {
        return Ok(None);
    }
    let found = replayed_creation(
        &state.pool,
        Product::TYPE,
        new.product_id.as_uuid(),
        &new.request_hash,
    )
    .await?;
    Ok(found.transpose()?)
}

/// The SKU of a created product (`Some(None)` when there is no such product);
/// `None` when the product could not be read.
async fn product_sku(state: &AppState, id: ProductId) -> Option<Option<Sku>> {
    state
        .products
        .load(&id.to_string())
        .await
        .ok()
        .map(|p| p.filter(Product::is_created).and_then(|p| p.sku().cloned()))
}
