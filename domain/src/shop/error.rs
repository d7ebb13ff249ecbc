//! Why a shop command was refused.

use thiserror::Error;

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

crate::error_codes!(ShopError {
    Self::AlreadyExists { .. } => Conflict "shop_already_exists",
    Self::NotFound => NotFound "shop_not_found",
    Self::InvalidName(_) => Rule "invalid_shop_name",
    Self::InvalidDescription(_) => Rule "invalid_shop_description",
    Self::InvalidAddress(_) => Rule "invalid_shop_address",
});
