use cqrs_es::test::TestFramework;

use super::*;

type Given = TestFramework<Wallet>;

fn alice() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}
fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::usd()).unwrap()
}
fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}
fn credit(reference: &str, amount: Money) -> WalletCommand {
    WalletCommand::Credit {
        customer_id: alice(),
        reference: reference.to_string(),
        amount,
    }
}
fn debit(reference: &str, amount: Money) -> WalletCommand {
    WalletCommand::Debit {
        customer_id: alice(),
        reference: reference.to_string(),
        amount,
    }
}
fn credited(reference: &str, amount: i64, balance: i64) -> WalletEvent {
    WalletEvent::WalletCredited {
        customer_id: alice(),
        reference: reference.to_string(),
        amount: usd(amount),
        balance: usd(balance),
    }
}
fn debited(reference: &str, amount: i64, balance: i64) -> WalletEvent {
    WalletEvent::WalletDebited {
        customer_id: alice(),
        reference: reference.to_string(),
        amount: usd(amount),
        balance: usd(balance),
    }
}

#[test]
fn a_top_up_credits_the_balance() {
    Given::with(())
        .given_no_previous_events()
        .when(credit("topup:1", usd(5000)))
        .then_expect_events(vec![credited("topup:1", 5000, 5000)]);
}

#[test]
fn the_same_credit_twice_counts_once() {
    Given::with(())
        .given(vec![credited("topup:1", 5000, 5000)])
        .when(credit("topup:1", usd(5000)))
        .then_expect_events(vec![]);
}

#[test]
fn an_order_is_debited_from_the_balance() {
    Given::with(())
        .given(vec![credited("topup:1", 5000, 5000)])
        .when(debit("order:1", usd(1200)))
        .then_expect_events(vec![debited("order:1", 1200, 3800)]);
}

#[test]
fn the_same_debit_twice_counts_once() {
    Given::with(())
        .given(vec![
            credited("topup:1", 5000, 5000),
            debited("order:1", 1200, 3800),
        ])
        .when(debit("order:1", usd(1200)))
        .then_expect_events(vec![]);
}

#[test]
fn the_balance_never_goes_negative() {
    Given::with(())
        .given(vec![credited("topup:1", 1000, 1000)])
        .when(debit("order:1", usd(1001)))
        .then_expect_error(WalletError::InsufficientFunds {
            balance: 1000,
            requested: 1001,
        });
}

#[test]
fn an_empty_wallet_cannot_pay() {
    Given::with(())
        .given_no_previous_events()
        .when(debit("order:1", usd(1)))
        .then_expect_error(WalletError::InsufficientFunds {
            balance: 0,
            requested: 1,
        });
}

#[test]
fn the_whole_balance_can_be_spent() {
    Given::with(())
        .given(vec![credited("topup:1", 1000, 1000)])
        .when(debit("order:1", usd(1000)))
        .then_expect_events(vec![debited("order:1", 1000, 0)]);
}

#[test]
fn amounts_must_be_positive() {
    Given::with(())
        .given_no_previous_events()
        .when(credit("topup:1", usd(0)))
        .then_expect_error(WalletError::InvalidAmount);
    Given::with(())
        .given(vec![credited("topup:1", 1000, 1000)])
        .when(debit("order:1", usd(0)))
        .then_expect_error(WalletError::InvalidAmount);
}

#[test]
fn an_entry_needs_a_reference() {
    Given::with(())
        .given_no_previous_events()
        .when(credit("  ", usd(100)))
        .then_expect_error(WalletError::ReferenceRequired);
}

#[test]
fn a_wallet_keeps_one_currency() {
    Given::with(())
        .given(vec![credited("topup:1", 1000, 1000)])
        .when(credit("topup:2", eur(100)))
        .then_expect_error(WalletError::CurrencyMismatch {
            wallet: Currency::usd(),
            got: Currency::parse("EUR").unwrap(),
        });
}

#[test]
fn a_wallet_belongs_to_one_customer() {
    Given::with(())
        .given(vec![credited("topup:1", 1000, 1000)])
        .when(WalletCommand::Credit {
            customer_id: CustomerId(Uuid::from_u128(2)),
            reference: "topup:2".to_string(),
            amount: usd(100),
        })
        .then_expect_error(WalletError::WrongCustomer);
}

#[test]
fn a_refund_after_a_debit_restores_the_balance() {
    Given::with(())
        .given(vec![
            credited("topup:1", 5000, 5000),
            debited("order:1", 1200, 3800),
        ])
        .when(credit("refund:order:1", usd(1200)))
        .then_expect_events(vec![credited("refund:order:1", 1200, 5000)]);
}

#[test]
fn the_wallet_id_is_derived_from_the_customer() {
    assert_eq!(wallet_id(alice()), wallet_id(alice()));
    assert_ne!(
        wallet_id(alice()),
        wallet_id(CustomerId(Uuid::from_u128(2)))
    );
}

// --- Keyed memory ----------------------------------------------------------

use crate::stored::testing::{decide, loaded_for, rebuilt, stored_entries};
use crate::stored::StoredAggregate;

/// The state a snapshot holds after `topup:1` (5000) and `order:1` (1200),
/// built without their events.
fn from_a_snapshot() -> Wallet {
    Wallet {
        customer_id: Some(alice()),
        currency: Some(Currency::usd()),
        balance: 3800,
        ..Default::default()
    }
}

fn history() -> Vec<WalletEvent> {
    vec![
        credited("topup:1", 5000, 5000),
        debited("order:1", 1200, 3800),
    ]
}

#[test]
fn a_recalled_reference_makes_a_repeated_entry_count_once() {
    for command in [credit("topup:1", usd(5000)), debit(" order:1 ", usd(1200))] {
        let mut wallet = from_a_snapshot();
        wallet.recall(
            Wallet::recall_keys(&command)
                .into_iter()
                .map(|key| (key, serde_json::json!(true)))
                .collect(),
        );
        let replayed = Given::with(())
            .given(history())
            .when(command.clone())
            .inspect_result();
        let outcome = decide(wallet, command, &());
        assert_eq!(outcome, replayed);
        assert_eq!(outcome, Ok(vec![]));
    }
}

#[test]
fn a_reference_not_recalled_is_a_new_entry() {
    let command = credit("refund:order:1", usd(1200));
    assert_eq!(
        decide(loaded_for::<Wallet>(&history(), &command), command, &()),
        Ok(vec![credited("refund:order:1", 1200, 5000)])
    );
}

#[test]
fn entries_recall_their_trimmed_reference() {
    assert_eq!(
        Wallet::recall_keys(&debit(" order:1 ", usd(1))),
        vec!["reference:order:1".to_string()]
    );
    assert!(Wallet::recall_keys(&credit("  ", usd(1))).is_empty());
}

#[test]
fn apply_remembers_exactly_what_remembers_says() {
    let wallet = rebuilt::<Wallet>(&history());
    let expected: std::collections::BTreeMap<String, serde_json::Value> = [
        ("reference:order:1".to_string(), serde_json::json!(true)),
        ("reference:topup:1".to_string(), serde_json::json!(true)),
    ]
    .into_iter()
    .collect();
    assert_eq!(wallet.memory.entries(), &expected);
    assert_eq!(stored_entries::<Wallet>(&history()), expected);
    assert!(wallet.has_applied("topup:1") && !wallet.has_applied("topup:2"));
}

#[test]
fn the_serialized_state_holds_no_memory() {
    let wallet = rebuilt::<Wallet>(&history());
    let json = serde_json::to_value(&wallet).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"customer_id": alice(), "currency": "USD", "balance": 3800})
    );
    let from_snapshot: Wallet = serde_json::from_value(json).unwrap();
    assert!(!from_snapshot.has_applied("topup:1"));
    assert_eq!(from_snapshot, from_a_snapshot());
}
