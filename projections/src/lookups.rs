//! The domain's lookups (does this category exist? what are its ancestors?)
//! answered from the event store itself, so a rule never acts on a read model
//! that lags behind.

use async_trait::async_trait;
use domain::cart::{CouponInfo, CouponLookup, ProductCatalog, ProductInfo};
use domain::category::{Category, CategoryLookup};
use domain::coupon::{coupon_id_for, Coupon};
use domain::lookup::LookupError;
use domain::product::{CatalogLookup, Product};
use domain::shop::Shop;
use domain::stored::StoredAggregate;
use domain::values::{CategoryId, ProductId, ShopId};
use sqlx::PgPool;

use crate::event_store::streams;

/// Lookups over the event store.
#[derive(Clone)]
pub struct EventStoreLookups {
    pool: PgPool,
}

impl EventStoreLookups {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The aggregate as it is now (from its snapshot and later events).
    async fn load<A: StoredAggregate>(&self, id: &str) -> Result<Option<A>, LookupError> {
        let loaded = streams::load::<A>(&self.pool, id, &[])
            .await
            .map_err(|e| LookupError(e.to_string()))?;
        Ok(loaded.exists().then_some(loaded.aggregate))
    }

    async fn category(&self, id: CategoryId) -> Result<Option<Category>, LookupError> {
        Ok(self
            .load::<Category>(&id.to_string())
            .await?
            .filter(Category::is_created))
    }
}

/// The deepest category tree walked before giving up (a cycle can only come
/// from a bug, but a lookup must never loop forever).
const MAX_DEPTH: usize = 256;

#[async_trait]
impl CategoryLookup for EventStoreLookups {
    async fn exists(&self, id: CategoryId) -> Result<bool, LookupError> {
        Ok(self.category(id).await?.is_some())
    }

    async fn ancestors(&self, id: CategoryId) -> Result<Vec<CategoryId>, LookupError> {
        let mut chain = Vec::new();
        let mut current = self.category(id).await?.and_then(|c| c.parent());
        while let Some(parent) = current {
            if chain.len() >= MAX_DEPTH || chain.contains(&parent) {
                return Err(LookupError(format!(
                    "category {id} has a parent chain deeper than {MAX_DEPTH} or a cycle"
                )));
            }
            chain.push(parent);
            current = self.category(parent).await?.and_then(|c| c.parent());
        }
        Ok(chain)
    }
}

#[async_trait]
impl CatalogLookup for EventStoreLookups {
    async fn category_exists(&self, id: CategoryId) -> Result<bool, LookupError> {
        CategoryLookup::exists(self, id).await
    }

    async fn shop_exists(&self, id: ShopId) -> Result<bool, LookupError> {
        Ok(self
            .load::<Shop>(&id.to_string())
            .await?
            .is_some_and(|s| s.is_created()))
    }
}

#[async_trait]
impl ProductCatalog for EventStoreLookups {
    async fn product(&self, product_id: ProductId) -> Result<Option<ProductInfo>, LookupError> {
        let Some(product) = self
            .load::<Product>(&product_id.to_string())
            .await?
            .filter(Product::is_created)
        else {
            return Ok(None);
        };
        let (Some(name), Some(price)) = (product.name(), product.price()) else {
            return Ok(None);
        };
        Ok(Some(ProductInfo {
            product_id,
            name: name.to_string(),
            price: price.clone(),
            discontinued: product.is_discontinued(),
        }))
    }
}

#[async_trait]
impl CouponLookup for EventStoreLookups {
    async fn by_code(&self, code: &str) -> Result<Option<CouponInfo>, LookupError> {
        let id = coupon_id_for(code);
        let Some(coupon) = self.load::<Coupon>(&id.to_string()).await? else {
            return Ok(None);
        };
        let (Some(coupon_id), Some(discount), Some(valid_from), Some(valid_until)) = (
            coupon.coupon_id(),
            coupon.discount(),
            coupon.valid_from(),
            coupon.valid_until(),
        ) else {
            return Ok(None);
        };
        Ok(Some(CouponInfo {
            coupon_id,
            code: coupon.code().to_string(),
            discount: discount.clone(),
            valid_from,
            valid_until,
            usage_limit: coupon.usage_limit(),
            times_used: coupon.times_used(),
        }))
    }
}
