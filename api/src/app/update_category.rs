//! Renaming and moving a category: both or neither. Every command is
//! decided on a copy first, so a refused move does not leave a rename done
//! (and the other way round); the real execution decides again on fresh
//! state.

use std::sync::Arc;

use domain::category::{Category, CategoryCommand, CategoryError, CategoryServices};
use domain::values::CategoryId;
use projections::lookups::EventStoreLookups;
use uuid::Uuid;

use super::refusals::NotFound;
use super::{dry_run, use_case_error, Caller, StoreError};
use crate::app::state::AppState;

/// What changes; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct CategoryChange {
    pub name: Option<String>,
    /// `Some(None)`: move to the top level.
    pub parent: Option<Option<CategoryId>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateCategoryError {
    #[error(transparent)]
    NotFound(NotFound),
    #[error(transparent)]
    Category(CategoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(UpdateCategoryError {
    Self::NotFound(e) => nested(e: NotFound),
    Self::Category(e) => domain(e: CategoryError),
    Self::Store(e) => nested(e: StoreError),
});

/// Applies `change` to the category `id`; answers the position of the last
/// event written (0 when nothing changed).
pub async fn update_category(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    change: CategoryChange,
) -> Result<i64, UpdateCategoryError> {
    let current = state
        .categories
        .load(&id.to_string())
        .await
        .map_err(super::load_error)?
        .filter(Category::is_created)
        .ok_or_else(|| {
            UpdateCategoryError::NotFound(NotFound::new("There is no such category."))
        })?;
    let mut commands = Vec::new();
    if let Some(name) = change.name {
        commands.push(("RenameCategory", CategoryCommand::Rename { name }));
    }
    if let Some(new_parent) = change.parent {
        commands.push(("MoveCategory", CategoryCommand::Move { new_parent }));
    }
    let services = CategoryServices::new(Arc::new(EventStoreLookups::new(state.pool.clone())));
    let planned: Vec<CategoryCommand> = commands.iter().map(|(_, c)| c.clone()).collect();
    dry_run(&current, &services, planned)
        .await
        .map_err(UpdateCategoryError::Category)?;
    let aggregate_id = id.to_string();
    let mut position = 0;
    for (name, command) in commands {
        let committed = state
            .categories
            .execute_with_retry(&aggregate_id, command, &caller.meta(name))
            .await
            .map_err(|e| match StoreError::split(e) {
                Ok(e) => UpdateCategoryError::Category(e),
                Err(e) => UpdateCategoryError::Store(e),
            })?;
        position = committed.position;
    }
    Ok(position)
}
