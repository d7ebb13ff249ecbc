use serde::{Deserialize, Serialize};

use crate::values::{ProductId, Sku};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SkuCommand {
    /// Reserve the SKU for a product; the same product again changes nothing.
    Claim { sku: Sku, product_id: ProductId },
    /// Give the SKU up; only its holder can, and doing it twice changes nothing.
    Release { sku: Sku, product_id: ProductId },
}
