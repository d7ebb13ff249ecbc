use thiserror::Error;

use crate::error::{DomainError, ErrorKind};
use crate::values::Sku;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SkuError {
    #[error("SKU {sku} belongs to another product")]
    Taken { sku: Sku },
}

impl DomainError for SkuError {
    fn code(&self) -> String {
        match self {
            SkuError::Taken { .. } => "sku_taken".to_string(),
        }
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Conflict
    }
}
