//! A node of the category tree. Each category knows only its parent; the
//! tree-wide rules (the parent exists, no cycles) ask [`CategoryLookup`].

mod commands;
mod error;
mod events;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use commands::CategoryCommand;
pub use error::CategoryError;
pub use events::CategoryEvent;

use crate::lookup::LookupError;
use crate::values::{required_text, CategoryId};

/// Longest category name, in characters.
pub const NAME_MAX: usize = 100;

/// What the category rules need to know about other categories.
#[async_trait]
pub trait CategoryLookup: Send + Sync {
    /// Whether a category with this id has been created.
    async fn exists(&self, id: CategoryId) -> Result<bool, LookupError>;
    /// The parent chain of `id`: its parent, the parent's parent, ... up to a
    /// top-level category. Empty for a top-level (or unknown) category.
    async fn ancestors(&self, id: CategoryId) -> Result<Vec<CategoryId>, LookupError>;
}

#[derive(Clone)]
pub struct CategoryServices {
    pub lookup: Arc<dyn CategoryLookup>,
}

impl CategoryServices {
    pub fn new(lookup: Arc<dyn CategoryLookup>) -> Self {
        Self { lookup }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    created: bool,
    category_id: CategoryId,
    name: String,
    parent: Option<CategoryId>,
}

impl Category {
    pub fn is_created(&self) -> bool {
        self.created
    }
    pub fn category_id(&self) -> CategoryId {
        self.category_id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn parent(&self) -> Option<CategoryId> {
        self.parent
    }
}

fn parse_name(raw: &str) -> Result<String, CategoryError> {
    required_text("name", raw, NAME_MAX).map_err(CategoryError::InvalidName)
}

/// Checks that `category_id` may be placed under `parent`: the parent exists
/// and is neither the category itself nor one of its descendants.
async fn check_parent(
    lookup: &dyn CategoryLookup,
    category_id: CategoryId,
    parent: CategoryId,
) -> Result<(), CategoryError> {
    let cycle = CategoryError::WouldCreateCycle {
        category_id,
        parent,
    };
    if parent == category_id {
        return Err(cycle);
    }
    if !lookup.exists(parent).await? {
        return Err(CategoryError::ParentNotFound { parent });
    }
    if lookup.ancestors(parent).await?.contains(&category_id) {
        return Err(cycle);
    }
    Ok(())
}

impl Aggregate for Category {
    const TYPE: &'static str = "Category";
    type Command = CategoryCommand;
    type Event = CategoryEvent;
    type Error = CategoryError;
    type Services = CategoryServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            CategoryCommand::Create {
                category_id,
                name,
                parent,
            } => {
                if self.created {
                    return Err(CategoryError::AlreadyExists {
                        category_id: self.category_id,
                    });
                }
                let name = parse_name(&name)?;
                if let Some(parent) = parent {
                    check_parent(services.lookup.as_ref(), category_id, parent).await?;
                }
                let event = CategoryEvent::CategoryCreated {
                    category_id,
                    name,
                    parent,
                };
                sink.write(event, self).await;
            }
            CategoryCommand::Rename { name } => {
                if !self.created {
                    return Err(CategoryError::NotFound);
                }
                let name = parse_name(&name)?;
                if name == self.name {
                    return Ok(());
                }
                let event = CategoryEvent::CategoryRenamed {
                    category_id: self.category_id,
                    name,
                };
                sink.write(event, self).await;
            }
            CategoryCommand::Move { new_parent } => {
                if !self.created {
                    return Err(CategoryError::NotFound);
                }
                if new_parent == self.parent {
                    return Ok(());
                }
                if let Some(parent) = new_parent {
                    check_parent(services.lookup.as_ref(), self.category_id, parent).await?;
                }
                let event = CategoryEvent::CategoryMoved {
                    category_id: self.category_id,
                    old_parent: self.parent,
                    new_parent,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CategoryEvent::CategoryCreated {
                category_id,
                name,
                parent,
            } => {
                self.created = true;
                self.category_id = category_id;
                self.name = name;
                self.parent = parent;
            }
            CategoryEvent::CategoryRenamed { name, .. } => self.name = name,
            CategoryEvent::CategoryMoved { new_parent, .. } => self.parent = new_parent,
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for Category {}
