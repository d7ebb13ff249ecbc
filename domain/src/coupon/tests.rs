use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use uuid::Uuid;

use super::*;
use crate::error::{DomainError, ErrorKind};
use crate::values::Currency;

type CouponTest = TestFramework<Coupon>;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, day, 12, 0, 0).unwrap()
}
fn coupon_id() -> CouponId {
    coupon_id_for("SUMMER10")
}
fn order(n: u128) -> OrderId {
    OrderId(Uuid::from_u128(n))
}
fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::usd()).unwrap()
}
fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}

fn create(code: &str) -> CouponCommand {
    CouponCommand::Create {
        coupon_id: coupon_id(),
        code: code.to_string(),
        discount: Discount::Percent(10),
        valid_from: at(1),
        valid_until: at(20),
        usage_limit: Some(2),
    }
}

fn created() -> CouponEvent {
    CouponEvent::CouponCreated {
        coupon_id: coupon_id(),
        code: "SUMMER10".to_string(),
        discount: Discount::Percent(10),
        valid_from: at(1),
        valid_until: at(20),
        usage_limit: Some(2),
    }
}

fn redeemed(order_n: u128, times_used: u32) -> CouponEvent {
    CouponEvent::CouponRedeemed {
        coupon_id: coupon_id(),
        order_id: order(order_n),
        times_used,
    }
}

fn redeem(order_n: u128, day: u32) -> CouponCommand {
    CouponCommand::Redeem {
        order_id: order(order_n),
        now: at(day),
    }
}

#[test]
fn a_coupon_is_created_with_its_code_in_upper_case() {
    CouponTest::with(())
        .given_no_previous_events()
        .when(create(" summer10 "))
        .then_expect_events(vec![created()]);
}

#[test]
fn the_coupon_id_is_derived_from_the_normalised_code() {
    assert_eq!(coupon_id_for(" summer10"), coupon_id_for("SUMMER10"));
    assert_eq!(
        coupon_id_for("SUMMER10").0,
        derived_id("coupon", "SUMMER10")
    );
    assert_ne!(coupon_id_for("SUMMER10"), coupon_id_for("SUMMER11"));
}

#[test]
fn a_coupon_cannot_be_created_twice() {
    CouponTest::with(())
        .given(vec![created()])
        .when(create("SUMMER10"))
        .then_expect_error(CouponError::AlreadyExists);
}

#[test]
fn a_code_is_three_to_thirty_two_letters_digits_dashes_or_underscores() {
    for bad in ["AB", "", "WITH SPACE", "ÄPFEL", "SALE!", &"X".repeat(33)] {
        CouponTest::with(())
            .given_no_previous_events()
            .when(create(bad))
            .then_expect_error(CouponError::InvalidCode(bad.to_string()));
    }
    for good in ["ABC", "a-b_c-2025", &"X".repeat(32)] {
        assert!(parse_code(good).is_ok(), "{good}");
    }
}

#[test]
fn a_discount_is_one_to_one_hundred_percent_or_a_positive_amount_up_to_the_highest_price() {
    for discount in [
        Discount::Percent(0),
        Discount::Percent(101),
        Discount::Fixed(usd(0)),
        Discount::Fixed(usd(AMOUNT_OFF_MAX + 1)),
    ] {
        CouponTest::with(())
            .given_no_previous_events()
            .when(CouponCommand::Create {
                coupon_id: coupon_id(),
                code: "SUMMER10".to_string(),
                discount,
                valid_from: at(1),
                valid_until: at(20),
                usage_limit: None,
            })
            .then_expect_error(CouponError::InvalidDiscount);
    }
}

#[test]
fn a_coupon_whose_window_ends_before_it_starts_is_never_redeemable() {
    let empty_window = CouponEvent::CouponCreated {
        coupon_id: coupon_id(),
        code: "SUMMER10".to_string(),
        discount: Discount::Percent(10),
        valid_from: at(5),
        valid_until: at(5),
        usage_limit: None,
    };
    CouponTest::with(())
        .given_no_previous_events()
        .when(CouponCommand::Create {
            coupon_id: coupon_id(),
            code: "SUMMER10".to_string(),
            discount: Discount::Percent(10),
            valid_from: at(5),
            valid_until: at(5),
            usage_limit: None,
        })
        .then_expect_events(vec![empty_window.clone()]);
    CouponTest::with(())
        .given(vec![empty_window])
        .when(redeem(1, 5))
        .then_expect_error(CouponError::Expired);
}

#[test]
fn a_usage_limit_must_be_at_least_one() {
    CouponTest::with(())
        .given_no_previous_events()
        .when(CouponCommand::Create {
            coupon_id: coupon_id(),
            code: "SUMMER10".to_string(),
            discount: Discount::Percent(10),
            valid_from: at(1),
            valid_until: at(20),
            usage_limit: Some(0),
        })
        .then_expect_error(CouponError::InvalidUsageLimit);
}

#[test]
fn redeeming_counts_a_use() {
    CouponTest::with(())
        .given(vec![created()])
        .when(redeem(1, 10))
        .then_expect_events(vec![redeemed(1, 1)]);
}

#[test]
fn redeeming_again_for_the_same_order_records_nothing() {
    CouponTest::with(())
        .given(vec![created(), redeemed(1, 1)])
        .when(redeem(1, 10))
        .then_expect_events(vec![]);
}

#[test]
fn a_coupon_cannot_be_redeemed_after_it_expired() {
    CouponTest::with(())
        .given(vec![created()])
        .when(redeem(1, 20))
        .then_expect_error(CouponError::Expired);
}

#[test]
fn a_coupon_cannot_be_redeemed_before_it_is_valid() {
    CouponTest::with(())
        .given(vec![created()])
        .when(CouponCommand::Redeem {
            order_id: order(1),
            now: Utc.with_ymd_and_hms(2025, 6, 1, 11, 59, 59).unwrap(),
        })
        .then_expect_error(CouponError::Expired);
}

#[test]
fn a_used_up_coupon_cannot_be_redeemed() {
    CouponTest::with(())
        .given(vec![created(), redeemed(1, 1), redeemed(2, 2)])
        .when(redeem(3, 10))
        .then_expect_error(CouponError::UsedUp);
}

#[test]
fn a_coupon_without_limit_is_never_used_up() {
    let unlimited = CouponEvent::CouponCreated {
        coupon_id: coupon_id(),
        code: "SUMMER10".to_string(),
        discount: Discount::Percent(10),
        valid_from: at(1),
        valid_until: at(20),
        usage_limit: None,
    };
    CouponTest::with(())
        .given(vec![unlimited, redeemed(1, 1), redeemed(2, 2)])
        .when(redeem(3, 10))
        .then_expect_events(vec![redeemed(3, 3)]);
}

#[test]
fn a_coupon_that_does_not_exist_cannot_be_redeemed() {
    CouponTest::with(())
        .given_no_previous_events()
        .when(redeem(1, 10))
        .then_expect_error(CouponError::NotFound);
}

#[test]
fn releasing_a_redemption_gives_the_use_back() {
    CouponTest::with(())
        .given(vec![created(), redeemed(1, 1), redeemed(2, 2)])
        .when(CouponCommand::ReleaseRedemption { order_id: order(1) })
        .then_expect_events(vec![CouponEvent::CouponRedemptionReleased {
            coupon_id: coupon_id(),
            order_id: order(1),
            times_used: 1,
        }]);
    CouponTest::with(())
        .given(vec![
            created(),
            redeemed(1, 1),
            redeemed(2, 2),
            CouponEvent::CouponRedemptionReleased {
                coupon_id: coupon_id(),
                order_id: order(1),
                times_used: 1,
            },
        ])
        .when(redeem(3, 10))
        .then_expect_events(vec![redeemed(3, 2)]);
}

#[test]
fn releasing_a_redemption_the_order_does_not_hold_records_nothing() {
    CouponTest::with(())
        .given(vec![created(), redeemed(1, 1)])
        .when(CouponCommand::ReleaseRedemption { order_id: order(9) })
        .then_expect_events(vec![]);
}

#[test]
fn the_state_counts_the_redemptions_held() {
    let mut coupon = Coupon::default();
    for e in [created(), redeemed(1, 1), redeemed(2, 2)] {
        coupon.apply(e);
    }
    assert_eq!(coupon.times_used(), 2);
    assert!(coupon.is_redeemed_by(order(2)));
    assert_eq!(coupon.code(), "SUMMER10");
}

#[test]
fn a_percentage_discount_rounds_down_to_whole_minor_units() {
    assert_eq!(Discount::Percent(10).apply(&usd(1999)), Ok(usd(199)));
    assert_eq!(Discount::Percent(33).apply(&usd(100)), Ok(usd(33)));
    assert_eq!(Discount::Percent(100).apply(&usd(1999)), Ok(usd(1999)));
    assert_eq!(
        Discount::Percent(50).apply(&usd(i64::MAX)),
        Ok(usd(i64::MAX / 2))
    );
}

#[test]
fn a_fixed_discount_is_never_more_than_the_subtotal() {
    assert_eq!(Discount::Fixed(usd(500)).apply(&usd(2000)), Ok(usd(500)));
    assert_eq!(Discount::Fixed(usd(500)).apply(&usd(300)), Ok(usd(300)));
}

#[test]
fn a_fixed_discount_in_another_currency_is_an_error() {
    assert_eq!(
        Discount::Fixed(eur(500)).apply(&usd(2000)),
        Err(ValueError::CurrencyMismatch(
            Currency::parse("EUR").unwrap(),
            Currency::usd()
        ))
    );
}

#[test]
fn errors_have_stable_codes_and_kinds() {
    let cases = [
        (
            CouponError::AlreadyExists,
            "coupon_already_exists",
            ErrorKind::Conflict,
        ),
        (
            CouponError::NotFound,
            "coupon_not_found",
            ErrorKind::NotFound,
        ),
        (
            CouponError::InvalidCode("x".into()),
            "invalid_coupon_code",
            ErrorKind::Rule,
        ),
        (
            CouponError::InvalidDiscount,
            "invalid_discount",
            ErrorKind::Rule,
        ),
        (
            CouponError::InvalidUsageLimit,
            "invalid_usage_limit",
            ErrorKind::Rule,
        ),
        (CouponError::Expired, "coupon_expired", ErrorKind::Conflict),
        (CouponError::UsedUp, "coupon_used_up", ErrorKind::Conflict),
    ];
    for (error, code, kind) in cases {
        assert_eq!(error.code(), code);
        assert_eq!(error.kind(), kind);
    }
}

#[test]
fn events_are_named_after_their_variant_at_version_one() {
    let events = [
        (created(), "CouponCreated"),
        (redeemed(1, 1), "CouponRedeemed"),
        (
            CouponEvent::CouponRedemptionReleased {
                coupon_id: coupon_id(),
                order_id: order(1),
                times_used: 0,
            },
            "CouponRedemptionReleased",
        ),
    ];
    for (event, name) in events {
        assert_eq!(event.event_type(), name);
        assert_eq!(event.event_version(), "1.0");
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get(name).is_some(), "externally tagged: {json}");
        assert_eq!(serde_json::from_value::<CouponEvent>(json).unwrap(), event);
    }
}

// --- Keyed memory ----------------------------------------------------------

use crate::stored::testing::{decide, loaded_for, rebuilt, stored_entries};
use crate::stored::StoredAggregate;

fn released(order_n: u128, times_used: u32) -> CouponEvent {
    CouponEvent::CouponRedemptionReleased {
        coupon_id: coupon_id(),
        order_id: order(order_n),
        times_used,
    }
}

/// The state a snapshot holds after [`created`] and orders 1 and 2 redeemed
/// (the limit of 2 reached), built without the redemptions' events.
fn used_up_from_a_snapshot() -> Coupon {
    let mut coupon = rebuilt::<Coupon>(&[created()]);
    coupon.times_used = 2;
    coupon
}

/// Decides `command` on `recalled` and on the coupon rebuilt from `history`,
/// and answers the outcome after checking that both agree.
fn decided_alike(
    recalled: Coupon,
    history: Vec<CouponEvent>,
    command: CouponCommand,
) -> Result<Vec<CouponEvent>, CouponError> {
    let replayed = CouponTest::with(())
        .given(history)
        .when(command.clone())
        .inspect_result();
    let outcome = decide(recalled, command, &());
    assert_eq!(outcome, replayed);
    outcome
}

#[test]
fn a_recalled_redemption_makes_redeeming_again_record_nothing_even_when_used_up() {
    let mut coupon = used_up_from_a_snapshot();
    coupon.recall(vec![(redeemed_key(order(1)), serde_json::json!(true))]);
    let outcome = decided_alike(
        coupon,
        vec![created(), redeemed(1, 1), redeemed(2, 2)],
        redeem(1, 10),
    );
    assert_eq!(outcome, Ok(vec![]));
}

#[test]
fn an_order_with_no_recalled_redemption_finds_the_coupon_used_up() {
    let outcome = decided_alike(
        used_up_from_a_snapshot(),
        vec![created(), redeemed(1, 1), redeemed(2, 2)],
        redeem(3, 10),
    );
    assert_eq!(outcome, Err(CouponError::UsedUp));
}

#[test]
fn a_recalled_redemption_can_be_released() {
    let mut coupon = used_up_from_a_snapshot();
    coupon.recall(vec![(redeemed_key(order(2)), serde_json::json!(true))]);
    let outcome = decided_alike(
        coupon,
        vec![created(), redeemed(1, 1), redeemed(2, 2)],
        CouponCommand::ReleaseRedemption { order_id: order(2) },
    );
    assert_eq!(outcome, Ok(vec![released(2, 1)]));
}

#[test]
fn a_released_redemption_is_forgotten_so_the_order_may_redeem_again() {
    let history = vec![created(), redeemed(1, 1), released(1, 0)];
    assert!(stored_entries::<Coupon>(&history).is_empty());
    let coupon = loaded_for::<Coupon>(&history, &redeem(1, 10));
    assert_eq!(coupon.times_used(), 0);
    assert!(!coupon.is_redeemed_by(order(1)));
    assert_eq!(decide(coupon, redeem(1, 10), &()), Ok(vec![redeemed(1, 1)]));
}

#[test]
fn redeeming_and_releasing_recall_the_order_s_redemption() {
    let key = format!("redeemed:{}", order(1).as_uuid());
    assert_eq!(Coupon::recall_keys(&redeem(1, 10)), vec![key.clone()]);
    assert_eq!(
        Coupon::recall_keys(&CouponCommand::ReleaseRedemption { order_id: order(1) }),
        vec![key]
    );
    assert!(Coupon::recall_keys(&create("SUMMER10")).is_empty());
}

#[test]
fn apply_remembers_exactly_what_remembers_says() {
    let history = vec![created(), redeemed(1, 1), redeemed(2, 2), released(1, 1)];
    let coupon = rebuilt::<Coupon>(&history);
    let expected: std::collections::BTreeMap<String, serde_json::Value> =
        [(redeemed_key(order(2)), serde_json::json!(true))]
            .into_iter()
            .collect();
    assert_eq!(coupon.memory.entries(), &expected);
    assert_eq!(stored_entries::<Coupon>(&history), expected);
}

#[test]
fn the_serialized_state_counts_uses_and_holds_no_memory() {
    let coupon = rebuilt::<Coupon>(&[created(), redeemed(1, 1), redeemed(2, 2)]);
    let json = serde_json::to_value(&coupon).unwrap();
    assert_eq!(json["times_used"], 2);
    assert!(json.get("memory").is_none() && json.get("redemptions").is_none());
    let from_snapshot: Coupon = serde_json::from_value(json).unwrap();
    assert_eq!(from_snapshot.times_used(), 2);
    assert!(!from_snapshot.is_redeemed_by(order(1)));
    assert_eq!(from_snapshot, coupon);
}
