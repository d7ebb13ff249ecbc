//! Why a shop command was refused.

use thiserror::Error;

use crate::error::{DomainError, ErrorKind};
use crate::values::{ShopId, ValueError};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShopError {
    #[error("shop {shop_id} already exists")]
    AlreadyExists { shop_id: ShopId },
    #[error("shop not found")]
    NotFound,
    #[error("invalid shop name: {0}")]
    InvalidName(ValueError),
    #[error("invalid shop description: {0}")]
    InvalidDescription(ValueError),
    #[error("invalid shop address: {0}")]
    InvalidAddress(ValueError),
}

impl DomainError for ShopError {
    fn code(&self) -> String {
        match self {
            Self::AlreadyExists { .. } => "shop_already_exists",
            Self::NotFound => "shop_not_found",
            Self::InvalidName(_) => "invalid_shop_name",
            Self::InvalidDescription(_) => "invalid_shop_description",
            Self::InvalidAddress(_) => "invalid_shop_address",
        }
        .to_string()
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyExists { .. } => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
            Self::InvalidName(_) | Self::InvalidDescription(_) | Self::InvalidAddress(_) => {
                ErrorKind::Rule
            }
        }
    }
}
