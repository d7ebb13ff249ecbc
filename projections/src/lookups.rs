//! The domain's lookups (does this category exist? what are its ancestors?)
//! answered from the event store itself, so a rule never acts on a read model
//! that lags behind.

use async_trait::async_trait;
use cqrs_es::{Aggregate, AggregateError};
use domain::category::{Category, CategoryLookup};
use domain::lookup::LookupError;
use domain::product::CatalogLookup;
use domain::shop::Shop;
use domain::values::{CategoryId, ShopId};
use sqlx::PgPool;

use crate::event_store::load_aggregate;

/// Lookups over the event store.
#[derive(Clone)]
pub struct EventStoreLookups {
    pool: PgPool,
}

impl EventStoreLookups {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn load<A: Aggregate>(&self, id: &str) -> Result<Option<A>, LookupError> {
        load_aggregate::<A>(&self.pool, id, None)
            .await
            .map_err(|e: AggregateError<A::Error>| LookupError(e.to_string()))
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
