use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::{ProductId, Sku};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SkuEvent {
    SkuClaimed { sku: Sku, product_id: ProductId },
    SkuReleased { sku: Sku, product_id: ProductId },
}

impl DomainEvent for SkuEvent {
    fn event_type(&self) -> String {
        match self {
            SkuEvent::SkuClaimed { .. } => "SkuClaimed",
            SkuEvent::SkuReleased { .. } => "SkuReleased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: SKUs are the catalog's.
impl crate::personal::PersonalData for SkuEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
