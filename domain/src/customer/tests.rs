use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;

use super::*;

type Fw = TestFramework<Customer>;

fn username() -> Username {
    Username::parse("Alice_1").unwrap()
}

fn customer_id() -> CustomerId {
    username().customer_id()
}

fn register(name: &str, role: Role) -> CustomerCommand {
    CustomerCommand::Register {
        customer_id: Username::parse(name).unwrap().customer_id(),
        username: Username::parse(name).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string(),
        fullname: Fullname::parse("Alice Liddell").unwrap(),
        email: Email::parse("alice@example.com").unwrap(),
        phone: Phone::parse("+44 20-7946-0000").unwrap(),
        role,
    }
}

fn registered(role: Role) -> CustomerEvent {
    CustomerEvent::CustomerRegistered {
        customer_id: customer_id(),
        username: username(),
        fullname: Fullname::parse("Alice Liddell").unwrap(),
        email: Email::parse("alice@example.com").unwrap(),
        phone: Phone::parse("+442079460000").unwrap(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string(),
    }
}

#[test]
fn a_new_username_can_register() {
    Fw::with(())
        .given_no_previous_events()
        .when(register("Alice_1", Role::Customer))
        .then_expect_events(vec![registered(Role::Customer)]);
}

#[test]
fn a_username_cannot_be_registered_twice() {
    Fw::with(())
        .given(vec![registered(Role::Customer)])
        .when(register("Alice_1", Role::Customer))
        .then_expect_error(CustomerError::UsernameTaken {
            username: "Alice_1".to_string(),
        });
}

#[test]
fn a_username_in_another_letter_case_is_taken_too() {
    // Both spellings derive the same aggregate id, so the second registration
    // is handled by the already registered aggregate.
    assert_eq!(
        Username::parse("ALICE_1").unwrap().customer_id(),
        customer_id()
    );
    Fw::with(())
        .given(vec![registered(Role::Customer)])
        .when(register("ALICE_1", Role::Customer))
        .then_expect_error(CustomerError::UsernameTaken {
            username: "ALICE_1".to_string(),
        });
}

#[test]
fn registration_needs_a_password_hash() {
    let mut command = register("Alice_1", Role::Customer);
    if let CustomerCommand::Register { password_hash, .. } = &mut command {
        *password_hash = " ".to_string();
    }
    Fw::with(())
        .given_no_previous_events()
        .when(command)
        .then_expect_error(CustomerError::MissingPasswordHash);
}

#[test]
fn a_role_can_be_changed() {
    Fw::with(())
        .given(vec![registered(Role::Customer)])
        .when(CustomerCommand::ChangeRole { role: Role::Admin })
        .then_expect_events(vec![CustomerEvent::RoleChanged {
            customer_id: customer_id(),
            from: Role::Customer,
            to: Role::Admin,
        }]);
}

#[test]
fn changing_to_the_same_role_emits_nothing() {
    Fw::with(())
        .given(vec![
            registered(Role::Customer),
            CustomerEvent::RoleChanged {
                customer_id: customer_id(),
                from: Role::Customer,
                to: Role::Operator,
            },
        ])
        .when(CustomerCommand::ChangeRole {
            role: Role::Operator,
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_role_of_an_unregistered_account_cannot_change() {
    Fw::with(())
        .given_no_previous_events()
        .when(CustomerCommand::ChangeRole { role: Role::Admin })
        .then_expect_error(CustomerError::NotRegistered);
}

const OPERATOR_CHOSEN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$b3BlcmF0b3I";

#[test]
fn promoting_an_account_replaces_its_password_and_sets_the_role() {
    Fw::with(())
        .given(vec![registered(Role::Customer)])
        .when(CustomerCommand::Promote {
            role: Role::Admin,
            password_hash: OPERATOR_CHOSEN_HASH.to_string(),
        })
        .then_expect_events(vec![
            CustomerEvent::PasswordChanged {
                customer_id: customer_id(),
                password_hash: OPERATOR_CHOSEN_HASH.to_string(),
            },
            CustomerEvent::RoleChanged {
                customer_id: customer_id(),
                from: Role::Customer,
                to: Role::Admin,
            },
        ]);
}

#[test]
fn promoting_to_the_role_it_has_still_replaces_the_password() {
    Fw::with(())
        .given(vec![registered(Role::Admin)])
        .when(CustomerCommand::Promote {
            role: Role::Admin,
            password_hash: OPERATOR_CHOSEN_HASH.to_string(),
        })
        .then_expect_events(vec![CustomerEvent::PasswordChanged {
            customer_id: customer_id(),
            password_hash: OPERATOR_CHOSEN_HASH.to_string(),
        }]);
}

#[test]
fn promotion_needs_a_password_hash() {
    Fw::with(())
        .given(vec![registered(Role::Customer)])
        .when(CustomerCommand::Promote {
            role: Role::Admin,
            password_hash: " ".to_string(),
        })
        .then_expect_error(CustomerError::MissingPasswordHash);
}

#[test]
fn an_unregistered_account_cannot_be_promoted() {
    Fw::with(())
        .given_no_previous_events()
        .when(CustomerCommand::Promote {
            role: Role::Admin,
            password_hash: OPERATOR_CHOSEN_HASH.to_string(),
        })
        .then_expect_error(CustomerError::NotRegistered);
}

#[test]
fn a_promoted_account_signs_in_with_the_new_password_only() {
    let mut customer = Customer::default();
    customer.apply(registered(Role::Customer));
    customer.apply(CustomerEvent::PasswordChanged {
        customer_id: customer_id(),
        password_hash: OPERATOR_CHOSEN_HASH.to_string(),
    });
    assert_eq!(customer.password_hash(), Some(OPERATOR_CHOSEN_HASH));
}

#[test]
fn a_registered_account_exposes_what_login_needs() {
    let mut customer = Customer::default();
    assert!(!customer.is_registered());
    assert_eq!(customer.password_hash(), None);
    customer.apply(registered(Role::Customer));
    customer.apply(CustomerEvent::RoleChanged {
        customer_id: customer_id(),
        from: Role::Customer,
        to: Role::Auditor,
    });
    assert!(customer.is_registered());
    assert_eq!(customer.customer_id(), Some(customer_id()));
    assert_eq!(customer.username().map(Username::as_str), Some("Alice_1"));
    assert!(customer
        .password_hash()
        .is_some_and(|h| h.starts_with("$argon2id$")));
    assert_eq!(customer.role(), Some(Role::Auditor));
    assert_eq!(
        customer.email().map(Email::as_str),
        Some("alice@example.com")
    );
    assert_eq!(customer.phone().map(Phone::as_str), Some("+442079460000"));
    assert_eq!(
        customer.fullname().map(Fullname::as_str),
        Some("Alice Liddell")
    );
}

#[test]
fn events_are_externally_tagged_and_versioned() {
    use cqrs_es::DomainEvent;
    let event = registered(Role::Admin);
    assert_eq!(event.event_type(), "CustomerRegistered");
    assert_eq!(event.event_version(), "1.0");
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["CustomerRegistered"]["role"], "admin");
    assert_eq!(json["CustomerRegistered"]["phone"], "+442079460000");
    assert_eq!(
        serde_json::from_value::<CustomerEvent>(json).unwrap(),
        event
    );
}

#[test]
fn error_codes_and_kinds_are_stable() {
    use crate::error::{DomainError, ErrorKind};
    let taken = CustomerError::UsernameTaken {
        username: "a".into(),
    };
    assert_eq!(taken.code(), "username_taken");
    assert_eq!(taken.kind(), ErrorKind::Conflict);
    assert_eq!(CustomerError::NotRegistered.kind(), ErrorKind::NotFound);
    assert_eq!(CustomerValueError::BadPassword.code(), "invalid_password");
}

#[test]
fn revoking_tokens_raises_the_token_version() {
    Fw::with(())
        .given(vec![registered(Role::Admin)])
        .when(CustomerCommand::RevokeTokens)
        .then_expect_events(vec![CustomerEvent::TokensRevoked {
            customer_id: customer_id(),
            token_version: 1,
        }]);
}

#[test]
fn tokens_of_an_unregistered_account_cannot_be_revoked() {
    Fw::with(())
        .given_no_previous_events()
        .when(CustomerCommand::RevokeTokens)
        .then_expect_error(CustomerError::NotRegistered);
}

#[test]
fn a_role_change_a_password_change_and_a_revocation_each_end_older_tokens() {
    let mut customer = Customer::default();
    customer.apply(registered(Role::Admin));
    assert_eq!(customer.token_version(), Some(0));
    customer.apply(CustomerEvent::RoleChanged {
        customer_id: customer_id(),
        from: Role::Admin,
        to: Role::Customer,
    });
    assert_eq!(customer.token_version(), Some(1));
    customer.apply(CustomerEvent::PasswordChanged {
        customer_id: customer_id(),
        password_hash: OPERATOR_CHOSEN_HASH.to_string(),
    });
    assert_eq!(customer.token_version(), Some(2));
    customer.apply(CustomerEvent::TokensRevoked {
        customer_id: customer_id(),
        token_version: 3,
    });
    assert_eq!(customer.token_version(), Some(3));
}

fn forgotten() -> CustomerEvent {
    CustomerEvent::CustomerForgotten {
        customer_id: customer_id(),
    }
}

#[test]
fn a_registered_customer_can_be_forgotten() {
    Fw::with(())
        .given(vec![registered(Role::Customer)])
        .when(CustomerCommand::Forget)
        .then_expect_events(vec![forgotten()]);
}

#[test]
fn forgetting_a_forgotten_customer_again_changes_nothing() {
    Fw::with(())
        .given(vec![registered(Role::Customer), forgotten()])
        .when(CustomerCommand::Forget)
        .then_expect_events(vec![]);
}

#[test]
fn an_account_that_was_never_registered_cannot_be_forgotten() {
    Fw::with(())
        .given_no_previous_events()
        .when(CustomerCommand::Forget)
        .then_expect_error(CustomerError::NotRegistered);
}

#[test]
fn a_forgotten_account_has_no_password_and_is_no_longer_registered() {
    let mut customer = Customer::default();
    customer.apply(registered(Role::Customer));
    customer.apply(forgotten());
    assert!(!customer.is_registered());
    assert!(customer.is_forgotten());
    assert_eq!(customer.password_hash(), None);
}

#[test]
fn a_forgotten_username_stays_taken() {
    Fw::with(())
        .given(vec![registered(Role::Customer), forgotten()])
        .when(register("Alice_1", Role::Customer))
        .then_expect_error(CustomerError::UsernameTaken {
            username: "Alice_1".to_string(),
        });
}

#[test]
fn a_registration_whose_personal_data_was_erased_still_reads() {
    let erased = crate::personal::ERASED;
    let stored = serde_json::json!({"CustomerRegistered": {
        "customer_id": customer_id(), "username": erased, "fullname": erased,
        "email": erased, "phone": erased, "role": "customer", "password_hash": "x"}});
    let event: CustomerEvent = serde_json::from_value(stored).unwrap();
    let mut customer = Customer::default();
    customer.apply(event);
    assert_eq!(customer.username().map(Username::as_str), Some(erased));
    assert_eq!(customer.email().map(Email::as_str), Some(erased));
    // A client still cannot choose the placeholder as a username or email.
    assert!(Username::parse(erased).is_err());
    assert!(Email::parse(erased).is_err());
}
