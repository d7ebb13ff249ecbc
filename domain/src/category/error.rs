//! Why a category command was refused.

use thiserror::Error;

use crate::error::{DomainError, ErrorKind};
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

impl DomainError for CategoryError {
    fn code(&self) -> String {
        match self {
            Self::AlreadyExists { .. } => "category_already_exists",
            Self::NotFound => "category_not_found",
            Self::InvalidName(_) => "invalid_category_name",
            Self::ParentNotFound { .. } => "parent_category_not_found",
            Self::WouldCreateCycle { .. } => "category_cycle",
            Self::LookupFailed(_) => "category_lookup_failed",
        }
        .to_string()
    }

    fn kind(&self) -> ErrorKind {
        match self {
            // A cycle depends on where the categories are now.
            Self::AlreadyExists { .. } | Self::WouldCreateCycle { .. } => ErrorKind::Conflict,
            Self::NotFound | Self::ParentNotFound { .. } => ErrorKind::NotFound,
            Self::InvalidName(_) => ErrorKind::Rule,
            Self::LookupFailed(_) => ErrorKind::Unavailable,
        }
    }
}
