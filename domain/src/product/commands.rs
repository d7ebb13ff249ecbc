//! What can be asked of a product.

use serde::{Deserialize, Serialize};

use crate::values::{CategoryId, Money, ProductId, ShopId, Sku};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductCommand {
    /// `name`: trimmed, 1 to 200 characters. `description`: trimmed, at most
    /// 5000 characters, may be empty. `price` above zero; its currency is the
    /// product's currency for good. `image_url`: blank means none, otherwise
    /// `http(s)://...`, at most 2048 characters. The category and the shop
    /// (if any) must exist. SKU uniqueness is checked outside the aggregate.
    Create {
        product_id: ProductId,
        name: String,
        description: String,
        price: Money,
        sku: Sku,
        image_url: Option<String>,
        category_id: CategoryId,
        shop_id: Option<ShopId>,
    },
    /// Change some details: `None` keeps a field. `image_url: Some("")`
    /// removes the image; `shop_id: Some(None)` detaches the product from its
    /// shop. Same rules as `Create`. Nothing changed: no event.
    UpdateDetails {
        name: Option<String>,
        description: Option<String>,
        sku: Option<Sku>,
        image_url: Option<String>,
        category_id: Option<CategoryId>,
        shop_id: Option<Option<ShopId>>,
    },
    /// A new price above zero, in the product's currency. Same price: no event.
    ChangePrice { price: Money },
    /// Take the product off sale for good. Again: no event.
    Discontinue,
}
