//! What happened to a category.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::CategoryId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CategoryEvent {
    CategoryCreated {
        category_id: CategoryId,
        name: String,
        parent: Option<CategoryId>,
    },
    CategoryRenamed {
        category_id: CategoryId,
        name: String,
    },
    CategoryMoved {
        category_id: CategoryId,
        old_parent: Option<CategoryId>,
        new_parent: Option<CategoryId>,
    },
}

impl DomainEvent for CategoryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CategoryCreated { .. } => "CategoryCreated",
            Self::CategoryRenamed { .. } => "CategoryRenamed",
            Self::CategoryMoved { .. } => "CategoryMoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: categories are the shop's catalog.
impl crate::personal::PersonalData for CategoryEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
