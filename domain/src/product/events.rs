//! What happened to a product.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::{CategoryId, Money, ProductId, ShopId, Sku};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductEvent {
    ProductCreated {
        product_id: ProductId,
        name: String,
        description: String,
        price: Money,
        sku: Sku,
        image_url: Option<String>,
        category_id: CategoryId,
        shop_id: Option<ShopId>,
    },
    /// Carries all the details after the change, changed or not.
    ProductDetailsUpdated {
        product_id: ProductId,
        name: String,
        description: String,
        sku: Sku,
        image_url: Option<String>,
        category_id: CategoryId,
        shop_id: Option<ShopId>,
    },
    ProductPriceChanged {
        product_id: ProductId,
        old_price: Money,
        new_price: Money,
    },
    ProductDiscontinued {
        product_id: ProductId,
    },
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ProductCreated { .. } => "ProductCreated",
            Self::ProductDetailsUpdated { .. } => "ProductDetailsUpdated",
            Self::ProductPriceChanged { .. } => "ProductPriceChanged",
            Self::ProductDiscontinued { .. } => "ProductDiscontinued",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: products are the shop's catalog.
impl crate::personal::PersonalData for ProductEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
