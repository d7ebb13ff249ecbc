//! SkuClaim: who holds a SKU. SKUs are unique across the catalog; the claim's
//! aggregate id is derived from the normalised SKU, so two products claiming
//! one SKU at the same moment meet at the same aggregate and one loses.

mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::SkuCommand;
pub use error::SkuError;
pub use events::SkuEvent;

use crate::values::{derived_id, ProductId, Sku};

/// The aggregate id of a SKU's claim.
pub fn claim_id(sku: &Sku) -> Uuid {
    derived_id("sku", sku.as_str())
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SkuClaim {
    holder: Option<ProductId>,
}

impl SkuClaim {
    pub fn holder(&self) -> Option<ProductId> {
        self.holder
    }
}

impl Aggregate for SkuClaim {
    const TYPE: &'static str = "SkuClaim";
    type Command = SkuCommand;
    type Event = SkuEvent;
    type Error = SkuError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            SkuCommand::Claim { sku, product_id } => match self.holder {
                None => {
                    sink.write(SkuEvent::SkuClaimed { sku, product_id }, self)
                        .await
                }
                Some(holder) if holder == product_id => {}
                Some(_) => return Err(SkuError::Taken { sku }),
            },
            SkuCommand::Release { sku, product_id } => {
                if self.holder == Some(product_id) {
                    sink.write(SkuEvent::SkuReleased { sku, product_id }, self)
                        .await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SkuEvent::SkuClaimed { product_id, .. } => self.holder = Some(product_id),
            SkuEvent::SkuReleased { .. } => self.holder = None,
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for SkuClaim {}
