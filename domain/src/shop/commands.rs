//! What can be asked of a shop.

use serde::{Deserialize, Serialize};

use crate::values::ShopId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShopCommand {
    /// `name`: trimmed, 1 to 100 characters. `description` (at most 2000
    /// characters) and `address` (at most 500) are trimmed; blank means none.
    Create {
        shop_id: ShopId,
        name: String,
        description: Option<String>,
        address: Option<String>,
    },
    /// Change some fields: `None` keeps a field as it is; for `description`
    /// and `address`, `Some` of a blank string clears it. Nothing changed:
    /// no event.
    Update {
        name: Option<String>,
        description: Option<String>,
        address: Option<String>,
    },
}
