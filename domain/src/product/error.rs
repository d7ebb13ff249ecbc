//! Why a product command was refused.

use thiserror::Error;

use crate::lookup::LookupError;
use crate::values::{CategoryId, Currency, ProductId, ShopId, ValueError};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProductError {
    #[error("product {product_id} already exists")]
    AlreadyExists { product_id: ProductId },
    #[error("product not found")]
    NotFound,
    #[error("product {product_id} is discontinued")]
    Discontinued { product_id: ProductId },
    #[error("invalid product name: {0}")]
    InvalidName(ValueError),
    #[error("invalid product description: {0}")]
    InvalidDescription(ValueError),
    #[error("price must be above zero, got {minor} minor units")]
    NonPositivePrice { minor: i64 },
    #[error("price must be at most {max} minor units, got {minor}", max = super::PRICE_MAX)]
    PriceTooHigh { minor: i64 },
    #[error("price must stay in {current}, got {requested}")]
    CurrencyChange {
        current: Currency,
        requested: Currency,
    },
    #[error("image URL must start with http:// or https://, contain no spaces and be at most 2048 characters, got {0:?}")]
    InvalidImageUrl(String),
    #[error("category {category_id} does not exist")]
    CategoryNotFound { category_id: CategoryId },
    #[error("shop {shop_id} does not exist")]
    ShopNotFound { shop_id: ShopId },
    #[error("the catalog could not be consulted: {0}")]
    LookupFailed(String),
}

impl From<LookupError> for ProductError {
    fn from(err: LookupError) -> Self {
        Self::LookupFailed(err.0)
    }
}

crate::error_codes!(ProductError {
    Self::AlreadyExists { .. } => Conflict "product_already_exists",
    Self::NotFound => NotFound "product_not_found",
    Self::Discontinued { .. } => Conflict "product_discontinued",
    Self::InvalidName(_) => Rule "invalid_product_name",
    Self::InvalidDescription(_) => Rule "invalid_product_description",
    Self::NonPositivePrice { .. } => Rule "price_not_positive",
    Self::PriceTooHigh { .. } => Rule "price_too_high",
    Self::CurrencyChange { .. } => Rule "price_currency_change",
    Self::InvalidImageUrl(_) => Rule "invalid_image_url",
    Self::CategoryNotFound { .. } => NotFound "category_not_found",
    Self::ShopNotFound { .. } => NotFound "shop_not_found",
    Self::LookupFailed(_) => Unavailable "catalog_lookup_failed",
});
