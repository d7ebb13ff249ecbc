//! What can be asked of a category.

use serde::{Deserialize, Serialize};

use crate::values::CategoryId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CategoryCommand {
    /// `name` is trimmed, 1 to 100 characters; `parent` must exist.
    Create {
        category_id: CategoryId,
        name: String,
        parent: Option<CategoryId>,
    },
    Rename {
        name: String,
    },
    /// Move under another parent (`None`: to the top level). The new parent
    /// must exist and must not be the category itself or one of its
    /// descendants.
    Move {
        new_parent: Option<CategoryId>,
    },
}
