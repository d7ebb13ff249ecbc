use thiserror::Error;

use crate::values::Sku;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SkuError {
    #[error("SKU {sku} belongs to another product")]
    Taken { sku: Sku },
}

crate::error_codes!(SkuError {
    Self::Taken { .. } => Conflict "sku_taken",
});
