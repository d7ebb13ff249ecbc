//! Why a category command was refused.

use thiserror::Error;

use crate::lookup::LookupError;
use crate::values::{CategoryId, ValueError};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CategoryError {
    #[error("category {category_id} already exists")]
    AlreadyExists { category_id: CategoryId },
    #[error("category not found")]
    NotFound,
    #[error("invalid category name: {0}")]
    InvalidName(ValueError),
    #[error("parent category {parent} does not exist")]
    ParentNotFound { parent: CategoryId },
    #[error("category {category_id} cannot be placed under {parent}: that would make a cycle")]
    WouldCreateCycle {
        category_id: CategoryId,
        parent: CategoryId,
    },
    #[error("the category tree could not be consulted: {0}")]
    LookupFailed(String),
}

impl From<LookupError> for CategoryError {
    fn from(err: LookupError) -> Self {
        Self::LookupFailed(err.0)
    }
}

crate::error_codes!(CategoryError {
    Self::AlreadyExists { .. } => Conflict "category_already_exists",
    Self::NotFound => NotFound "category_not_found",
    Self::InvalidName(_) => Rule "invalid_category_name",
    Self::ParentNotFound { .. } => NotFound "parent_category_not_found",
    // A cycle depends on where the categories are now.
    Self::WouldCreateCycle { .. } => Conflict "category_cycle",
    Self::LookupFailed(_) => Unavailable "category_lookup_failed",
});
