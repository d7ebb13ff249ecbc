//! What happened to a shop.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::ShopId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShopEvent {
    ShopCreated {
        shop_id: ShopId,
        name: String,
        description: Option<String>,
        address: Option<String>,
    },
    /// Carries the whole new state, changed or not.
    ShopUpdated {
        shop_id: ShopId,
        name: String,
        description: Option<String>,
        address: Option<String>,
    },
}

impl DomainEvent for ShopEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ShopCreated { .. } => "ShopCreated",
            Self::ShopUpdated { .. } => "ShopUpdated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: a shop is a seller, its name and address a business's.
impl crate::personal::PersonalData for ShopEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
