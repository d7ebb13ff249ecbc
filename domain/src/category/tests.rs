use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::values::ValueError;

/// An in-memory category tree: id -> parent.
#[derive(Default)]
struct FakeTree {
    parents: HashMap<CategoryId, Option<CategoryId>>,
    down: bool,
}

#[async_trait]
impl CategoryLookup for FakeTree {
    async fn exists(&self, id: CategoryId) -> Result<bool, LookupError> {
        if self.down {
            return Err(LookupError("read model unavailable".into()));
        }
        Ok(self.parents.contains_key(&id))
    }

    async fn ancestors(&self, id: CategoryId) -> Result<Vec<CategoryId>, LookupError> {
        if self.down {
            return Err(LookupError("read model unavailable".into()));
        }
        let mut chain = Vec::new();
        let mut current = self.parents.get(&id).copied().flatten();
        while let Some(parent) = current {
            chain.push(parent);
            current = self.parents.get(&parent).copied().flatten();
        }
        Ok(chain)
    }
}

fn id(n: u128) -> CategoryId {
    CategoryId(Uuid::from_u128(n))
}

// The tree used by the tests: 1 > 2 > 3 (3 is the deepest), and 9 alone.
fn tree() -> CategoryServices {
    let parents = HashMap::from([
        (id(1), None),
        (id(2), Some(id(1))),
        (id(3), Some(id(2))),
        (id(9), None),
    ]);
    CategoryServices::new(Arc::new(FakeTree {
        parents,
        down: false,
    }))
}

fn unavailable_tree() -> CategoryServices {
    CategoryServices::new(Arc::new(FakeTree {
        parents: HashMap::new(),
        down: true,
    }))
}

fn created(n: u128, name: &str, parent: Option<CategoryId>) -> CategoryEvent {
    CategoryEvent::CategoryCreated {
        category_id: id(n),
        name: name.to_string(),
        parent,
    }
}

#[test]
fn a_top_level_category_can_be_created() {
    TestFramework::<Category>::with(tree())
        .given_no_previous_events()
        .when(CategoryCommand::Create {
            category_id: id(5),
            name: "  Books ".into(),
            parent: None,
        })
        .then_expect_events(vec![created(5, "Books", None)]);
}

#[test]
fn a_category_can_be_created_under_an_existing_parent() {
    TestFramework::<Category>::with(tree())
        .given_no_previous_events()
        .when(CategoryCommand::Create {
            category_id: id(5),
            name: "Novels".into(),
            parent: Some(id(3)),
        })
        .then_expect_events(vec![created(5, "Novels", Some(id(3)))]);
}

#[test]
fn a_category_cannot_be_created_under_a_missing_parent() {
    TestFramework::<Category>::with(tree())
        .given_no_previous_events()
        .when(CategoryCommand::Create {
            category_id: id(5),
            name: "Novels".into(),
            parent: Some(id(42)),
        })
        .then_expect_error(CategoryError::ParentNotFound { parent: id(42) });
}

#[test]
fn a_category_cannot_be_created_under_itself() {
    TestFramework::<Category>::with(tree())
        .given_no_previous_events()
        .when(CategoryCommand::Create {
            category_id: id(5),
            name: "Loop".into(),
            parent: Some(id(5)),
        })
        .then_expect_error(CategoryError::WouldCreateCycle {
            category_id: id(5),
            parent: id(5),
        });
}

#[test]
fn a_category_cannot_be_created_twice() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(5, "Books", None)])
        .when(CategoryCommand::Create {
            category_id: id(5),
            name: "Books".into(),
            parent: None,
        })
        .then_expect_error(CategoryError::AlreadyExists { category_id: id(5) });
}

#[test]
fn a_category_name_must_not_be_blank() {
    TestFramework::<Category>::with(tree())
        .given_no_previous_events()
        .when(CategoryCommand::Create {
            category_id: id(5),
            name: "   ".into(),
            parent: None,
        })
        .then_expect_error(CategoryError::InvalidName(ValueError::Empty {
            field: "name",
        }));
}

#[test]
fn a_category_name_is_at_most_100_characters() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(5, "Books", None)])
        .when(CategoryCommand::Rename {
            name: "x".repeat(101),
        })
        .then_expect_error(CategoryError::InvalidName(ValueError::TooLong {
            field: "name",
            max: 100,
        }));
}

#[test]
fn a_category_can_be_renamed() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(5, "Books", None)])
        .when(CategoryCommand::Rename {
            name: "Printed books".into(),
        })
        .then_expect_events(vec![CategoryEvent::CategoryRenamed {
            category_id: id(5),
            name: "Printed books".into(),
        }]);
}

#[test]
fn renaming_to_the_same_name_emits_nothing() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(5, "Books", None)])
        .when(CategoryCommand::Rename {
            name: " Books ".into(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_missing_category_cannot_be_renamed() {
    TestFramework::<Category>::with(tree())
        .given_no_previous_events()
        .when(CategoryCommand::Rename {
            name: "Books".into(),
        })
        .then_expect_error(CategoryError::NotFound);
}

#[test]
fn a_category_can_move_under_another_parent() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(2, "Fiction", Some(id(1)))])
        .when(CategoryCommand::Move {
            new_parent: Some(id(9)),
        })
        .then_expect_events(vec![CategoryEvent::CategoryMoved {
            category_id: id(2),
            old_parent: Some(id(1)),
            new_parent: Some(id(9)),
        }]);
}

#[test]
fn a_category_can_move_to_the_top_level() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(2, "Fiction", Some(id(1)))])
        .when(CategoryCommand::Move { new_parent: None })
        .then_expect_events(vec![CategoryEvent::CategoryMoved {
            category_id: id(2),
            old_parent: Some(id(1)),
            new_parent: None,
        }]);
}

#[test]
fn moving_to_the_same_parent_emits_nothing() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(2, "Fiction", Some(id(1)))])
        .when(CategoryCommand::Move {
            new_parent: Some(id(1)),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_category_cannot_move_under_a_missing_parent() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(2, "Fiction", Some(id(1)))])
        .when(CategoryCommand::Move {
            new_parent: Some(id(42)),
        })
        .then_expect_error(CategoryError::ParentNotFound { parent: id(42) });
}

#[test]
fn a_category_cannot_move_under_itself() {
    TestFramework::<Category>::with(tree())
        .given(vec![created(2, "Fiction", Some(id(1)))])
        .when(CategoryCommand::Move {
            new_parent: Some(id(2)),
        })
        .then_expect_error(CategoryError::WouldCreateCycle {
            category_id: id(2),
            parent: id(2),
        });
}

#[test]
fn a_category_cannot_move_under_its_own_descendant() {
    // 3 is a child of 2: moving 1 (the root of 1 > 2 > 3) under 3 is a cycle.
    TestFramework::<Category>::with(tree())
        .given(vec![created(1, "All", None)])
        .when(CategoryCommand::Move {
            new_parent: Some(id(3)),
        })
        .then_expect_error(CategoryError::WouldCreateCycle {
            category_id: id(1),
            parent: id(3),
        });
}

#[test]
fn a_missing_category_cannot_move() {
    TestFramework::<Category>::with(tree())
        .given_no_previous_events()
        .when(CategoryCommand::Move {
            new_parent: Some(id(1)),
        })
        .then_expect_error(CategoryError::NotFound);
}

#[test]
fn a_failing_tree_lookup_makes_the_command_unavailable() {
    use crate::error::{DomainError, ErrorKind};
    let err = TestFramework::<Category>::with(unavailable_tree())
        .given(vec![created(2, "Fiction", None)])
        .when(CategoryCommand::Move {
            new_parent: Some(id(1)),
        })
        .inspect_result()
        .unwrap_err();
    assert_eq!(
        err,
        CategoryError::LookupFailed("read model unavailable".into())
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.code(), "category_lookup_failed");
}

#[test]
fn category_events_are_named_by_their_variant() {
    use cqrs_es::DomainEvent;
    let event = created(5, "Books", None);
    assert_eq!(event.event_type(), "CategoryCreated");
    assert_eq!(event.event_version(), "1.0");
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["CategoryCreated"]["name"], "Books");
    assert_eq!(
        serde_json::from_value::<CategoryEvent>(json).unwrap(),
        event
    );
}
