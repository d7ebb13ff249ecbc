use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::values::ValueError;

fn shop_id() -> ShopId {
    ShopId(Uuid::from_u128(7))
}

fn created() -> ShopEvent {
    ShopEvent::ShopCreated {
        shop_id: shop_id(),
        name: "Corner Books".into(),
        description: Some("Second-hand books".into()),
        address: None,
    }
}

fn update(name: Option<&str>, description: Option<&str>, address: Option<&str>) -> ShopCommand {
    ShopCommand::Update {
        name: name.map(Into::into),
        description: description.map(Into::into),
        address: address.map(Into::into),
    }
}

#[test]
fn a_shop_can_be_created() {
    TestFramework::<Shop>::with(())
        .given_no_previous_events()
        .when(ShopCommand::Create {
            shop_id: shop_id(),
            name: " Corner Books ".into(),
            description: Some(" Second-hand books ".into()),
            address: Some("  ".into()),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn a_shop_cannot_be_created_twice() {
    TestFramework::<Shop>::with(())
        .given(vec![created()])
        .when(ShopCommand::Create {
            shop_id: shop_id(),
            name: "Corner Books".into(),
            description: None,
            address: None,
        })
        .then_expect_error(ShopError::AlreadyExists { shop_id: shop_id() });
}

#[test]
fn a_shop_name_must_not_be_blank() {
    TestFramework::<Shop>::with(())
        .given_no_previous_events()
        .when(ShopCommand::Create {
            shop_id: shop_id(),
            name: " ".into(),
            description: None,
            address: None,
        })
        .then_expect_error(ShopError::InvalidName(ValueError::Empty { field: "name" }));
}

#[test]
fn a_shop_description_is_at_most_2000_characters() {
    TestFramework::<Shop>::with(())
        .given(vec![created()])
        .when(update(None, Some(&"d".repeat(2001)), None))
        .then_expect_error(ShopError::InvalidDescription(ValueError::TooLong {
            field: "description",
            max: 2000,
        }));
}

#[test]
fn a_shop_address_is_at_most_500_characters() {
    TestFramework::<Shop>::with(())
        .given(vec![created()])
        .when(update(None, None, Some(&"a".repeat(501))))
        .then_expect_error(ShopError::InvalidAddress(ValueError::TooLong {
            field: "address",
            max: 500,
        }));
}

#[test]
fn an_update_carries_the_full_new_state() {
    TestFramework::<Shop>::with(())
        .given(vec![created()])
        .when(update(None, None, Some("1 Main St")))
        .then_expect_events(vec![ShopEvent::ShopUpdated {
            shop_id: shop_id(),
            name: "Corner Books".into(),
            description: Some("Second-hand books".into()),
            address: Some("1 Main St".into()),
        }]);
}

#[test]
fn a_blank_description_clears_it() {
    TestFramework::<Shop>::with(())
        .given(vec![created()])
        .when(update(None, Some(""), None))
        .then_expect_events(vec![ShopEvent::ShopUpdated {
            shop_id: shop_id(),
            name: "Corner Books".into(),
            description: None,
            address: None,
        }]);
}

#[test]
fn an_update_that_changes_nothing_emits_nothing() {
    TestFramework::<Shop>::with(())
        .given(vec![created()])
        .when(update(
            Some(" Corner Books"),
            Some("Second-hand books"),
            Some(""),
        ))
        .then_expect_events(vec![]);
}

#[test]
fn a_missing_shop_cannot_be_updated() {
    TestFramework::<Shop>::with(())
        .given_no_previous_events()
        .when(update(Some("New"), None, None))
        .then_expect_error(ShopError::NotFound);
}

#[test]
fn shop_events_are_named_by_their_variant() {
    use cqrs_es::DomainEvent;
    assert_eq!(created().event_type(), "ShopCreated");
    assert_eq!(created().event_version(), "1.0");
    let json = serde_json::to_value(created()).unwrap();
    assert_eq!(json["ShopCreated"]["name"], "Corner Books");
    assert_eq!(
        serde_json::from_value::<ShopEvent>(json).unwrap(),
        created()
    );
}
