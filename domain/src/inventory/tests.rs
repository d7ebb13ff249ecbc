use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type Fw = TestFramework<InventoryItem>;

fn fw() -> Fw {
    Fw::with(())
}

fn product_id() -> ProductId {
    ProductId(Uuid::from_u128(500))
}

fn owner(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn order(n: u128) -> OrderId {
    OrderId(Uuid::from_u128(n))
}

fn qty(n: i64) -> Quantity {
    Quantity::new(n).unwrap()
}

/// Noon on a fixed day, plus `minutes`.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn received(quantity: i64, on_hand_after: i64, held_after: i64) -> InventoryEvent {
    InventoryEvent::StockReceived {
        product_id: product_id(),
        quantity: qty(quantity),
        reason: None,
        on_hand_after,
        held_after,
    }
}

fn placed(
    owner_id: Uuid,
    quantity: i64,
    expires_at: Option<DateTime<Utc>>,
    on_hand_after: i64,
    held_after: i64,
) -> InventoryEvent {
    InventoryEvent::HoldPlaced {
        product_id: product_id(),
        owner_id,
        quantity: qty(quantity),
        expires_at,
        on_hand_after,
        held_after,
    }
}

fn place(owner_id: Uuid, quantity: i64, expires_at: Option<DateTime<Utc>>) -> InventoryCommand {
    InventoryCommand::PlaceHold {
        owner_id,
        quantity: qty(quantity),
        expires_at,
        now: at(0),
    }
}

fn committed(owner_id: Uuid, quantity: i64, on_hand_after: i64, held_after: i64) -> InventoryEvent {
    InventoryEvent::HoldCommitted {
        product_id: product_id(),
        owner_id,
        quantity: qty(quantity),
        on_hand_after,
        held_after,
    }
}

/// 10 on hand, 4 held by owner 1 until minute 30: 6 available.
fn ten_with_four_held() -> Vec<InventoryEvent> {
    vec![
        received(10, 10, 0),
        placed(owner(1), 4, Some(at(30)), 10, 4),
    ]
}

fn state_after(events: Vec<InventoryEvent>) -> InventoryItem {
    let mut item = InventoryItem::default();
    for event in events {
        item.apply(event);
    }
    item
}

// --- Receive ---------------------------------------------------------------

#[test]
fn received_stock_is_added_to_on_hand() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Receive {
            product_id: product_id(),
            quantity: qty(5),
            reason: Some(" restock from supplier ".into()),
        })
        .then_expect_events(vec![InventoryEvent::StockReceived {
            product_id: product_id(),
            quantity: qty(5),
            reason: Some("restock from supplier".into()),
            on_hand_after: 15,
            held_after: 4,
        }]);
}

#[test]
fn the_first_receipt_starts_tracking_the_product() {
    fw().given_no_previous_events()
        .when(InventoryCommand::Receive {
            product_id: product_id(),
            quantity: qty(3),
            reason: Some("  ".into()),
        })
        .then_expect_events(vec![received(3, 3, 0)]);
}

#[test]
fn stock_of_another_product_cannot_be_received() {
    let other = ProductId(Uuid::from_u128(501));
    fw().given(vec![received(10, 10, 0)])
        .when(InventoryCommand::Receive {
            product_id: other,
            quantity: qty(1),
            reason: None,
        })
        .then_expect_error(InventoryError::WrongProduct {
            expected: product_id(),
            got: other,
        });
}

#[test]
fn a_receipt_reason_is_at_most_500_characters() {
    fw().given_no_previous_events()
        .when(InventoryCommand::Receive {
            product_id: product_id(),
            quantity: qty(1),
            reason: Some("r".repeat(501)),
        })
        .then_expect_error(InventoryError::InvalidReason(ValueError::TooLong {
            field: "reason",
            max: 500,
        }));
}

// --- Adjust ----------------------------------------------------------------

#[test]
fn stock_can_be_adjusted_down_with_a_reason() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Adjust {
            delta: -2,
            reason: " broken in transit ".into(),
        })
        .then_expect_events(vec![InventoryEvent::StockAdjusted {
            product_id: product_id(),
            delta: -2,
            reason: "broken in transit".into(),
            on_hand_after: 8,
            held_after: 4,
        }]);
}

#[test]
fn stock_can_be_adjusted_up() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Adjust {
            delta: 3,
            reason: "found in stock count".into(),
        })
        .then_expect_events(vec![InventoryEvent::StockAdjusted {
            product_id: product_id(),
            delta: 3,
            reason: "found in stock count".into(),
            on_hand_after: 13,
            held_after: 4,
        }]);
}

#[test]
fn an_adjustment_needs_a_reason() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Adjust {
            delta: -1,
            reason: "   ".into(),
        })
        .then_expect_error(InventoryError::InvalidReason(ValueError::Empty {
            field: "reason",
        }));
}

#[test]
fn an_adjustment_cannot_be_zero() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Adjust {
            delta: 0,
            reason: "nothing".into(),
        })
        .then_expect_error(InventoryError::ZeroAdjustment);
}

#[test]
fn an_adjustment_cannot_take_available_below_zero() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Adjust {
            delta: -7,
            reason: "stolen".into(),
        })
        .then_expect_error(InventoryError::AvailableWouldGoNegative {
            delta: -7,
            available: 6,
        });
}

#[test]
fn an_adjustment_may_take_available_exactly_to_zero() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Adjust {
            delta: -6,
            reason: "stolen".into(),
        })
        .then_expect_events(vec![InventoryEvent::StockAdjusted {
            product_id: product_id(),
            delta: -6,
            reason: "stolen".into(),
            on_hand_after: 4,
            held_after: 4,
        }]);
}

#[test]
fn an_adjustment_that_overflows_is_refused() {
    fw().given(vec![received(10, 10, 0)])
        .when(InventoryCommand::Adjust {
            delta: i64::MAX,
            reason: "typo".into(),
        })
        .then_expect_error(InventoryError::Overflow);
}

#[test]
fn stock_never_received_cannot_be_adjusted() {
    fw().given_no_previous_events()
        .when(InventoryCommand::Adjust {
            delta: 5,
            reason: "initial count".into(),
        })
        .then_expect_error(InventoryError::NotStocked);
}

// --- PlaceHold -------------------------------------------------------------

#[test]
fn a_hold_can_be_placed_on_available_stock() {
    fw().given(ten_with_four_held())
        .when(place(owner(2), 6, Some(at(15))))
        .then_expect_events(vec![placed(owner(2), 6, Some(at(15)), 10, 10)]);
}

#[test]
fn a_hold_without_expiry_can_be_placed() {
    fw().given(vec![received(10, 10, 0)])
        .when(place(owner(2), 1, None))
        .then_expect_events(vec![placed(owner(2), 1, None, 10, 1)]);
}

#[test]
fn a_hold_cannot_exceed_available_stock() {
    fw().given(ten_with_four_held())
        .when(place(owner(2), 7, None))
        .then_expect_error(InventoryError::InsufficientStock {
            requested: 7,
            available: 6,
        });
}

#[test]
fn a_hold_on_stock_never_received_is_refused() {
    fw().given_no_previous_events()
        .when(place(owner(2), 1, None))
        .then_expect_error(InventoryError::InsufficientStock {
            requested: 1,
            available: 0,
        });
}

#[test]
fn placing_the_same_hold_again_emits_nothing() {
    fw().given(ten_with_four_held())
        .when(place(owner(1), 4, Some(at(30))))
        .then_expect_events(vec![]);
}

#[test]
fn placing_a_hold_of_another_quantity_for_the_same_owner_conflicts() {
    fw().given(ten_with_four_held())
        .when(place(owner(1), 5, Some(at(30))))
        .then_expect_error(InventoryError::HoldConflict {
            owner_id: owner(1),
            existing: 4,
            requested: 5,
        });
}

#[test]
fn a_hold_cannot_expire_before_it_is_placed() {
    fw().given(ten_with_four_held())
        .when(place(owner(2), 1, Some(at(0))))
        .then_expect_error(InventoryError::HoldExpiryInPast {
            expires_at: at(0),
            now: at(0),
        });
}

#[test]
fn due_holds_of_others_are_expired_to_make_room_for_a_new_hold() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::PlaceHold {
            owner_id: owner(2),
            quantity: qty(8),
            expires_at: None,
            now: at(30),
        })
        .then_expect_events(vec![
            InventoryEvent::HoldExpired {
                product_id: product_id(),
                owner_id: owner(1),
                quantity: qty(4),
                expires_at: at(30),
                on_hand_after: 10,
                held_after: 0,
            },
            placed(owner(2), 8, None, 10, 8),
        ]);
}

#[test]
fn holds_not_yet_due_still_block_a_new_hold() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::PlaceHold {
            owner_id: owner(2),
            quantity: qty(8),
            expires_at: None,
            now: at(29),
        })
        .then_expect_error(InventoryError::InsufficientStock {
            requested: 8,
            available: 6,
        });
}

#[test]
fn due_holds_are_left_alone_when_the_new_hold_fits_anyway() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::PlaceHold {
            owner_id: owner(2),
            quantity: qty(6),
            expires_at: None,
            now: at(60),
        })
        .then_expect_events(vec![placed(owner(2), 6, None, 10, 10)]);
}

// --- ReleaseHold -----------------------------------------------------------

#[test]
fn a_hold_can_be_released() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::ReleaseHold { owner_id: owner(1) })
        .then_expect_events(vec![InventoryEvent::HoldReleased {
            product_id: product_id(),
            owner_id: owner(1),
            quantity: qty(4),
            on_hand_after: 10,
            held_after: 0,
        }]);
}

#[test]
fn releasing_a_missing_hold_emits_nothing() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::ReleaseHold { owner_id: owner(2) })
        .then_expect_events(vec![]);
}

#[test]
fn released_stock_is_available_again() {
    let item = state_after(vec![
        received(10, 10, 0),
        placed(owner(1), 10, None, 10, 10),
        InventoryEvent::HoldReleased {
            product_id: product_id(),
            owner_id: owner(1),
            quantity: qty(10),
            on_hand_after: 10,
            held_after: 0,
        },
    ]);
    assert_eq!(item.available(), 10);
    assert!(item.can_hold(qty(10)));
}

// --- ExpireHold ------------------------------------------------------------

#[test]
fn a_due_hold_can_be_expired() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::ExpireHold {
            owner_id: owner(1),
            now: at(31),
        })
        .then_expect_events(vec![InventoryEvent::HoldExpired {
            product_id: product_id(),
            owner_id: owner(1),
            quantity: qty(4),
            expires_at: at(30),
            on_hand_after: 10,
            held_after: 0,
        }]);
}

#[test]
fn a_hold_is_expired_at_the_very_moment_it_ends() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::ExpireHold {
            owner_id: owner(1),
            now: at(30),
        })
        .then_expect_events(vec![InventoryEvent::HoldExpired {
            product_id: product_id(),
            owner_id: owner(1),
            quantity: qty(4),
            expires_at: at(30),
            on_hand_after: 10,
            held_after: 0,
        }]);
}

#[test]
fn a_hold_released_before_its_deadline_is_not_expired_again() {
    let mut given = ten_with_four_held();
    given.push(InventoryEvent::HoldReleased {
        product_id: product_id(),
        owner_id: owner(1),
        quantity: qty(4),
        on_hand_after: 10,
        held_after: 0,
    });
    fw().given(given)
        .when(InventoryCommand::ExpireHold {
            owner_id: owner(1),
            now: at(30),
        })
        .then_expect_events(vec![]);
}

#[test]
fn every_hold_placed_with_an_expiry_calls_for_a_deadline() {
    assert_eq!(
        hold_expiries(&placed(owner(1), 4, Some(at(30)), 10, 4)),
        vec![(owner(1), at(30))]
    );
    assert_eq!(hold_expiries(&placed(owner(1), 4, None, 10, 4)), vec![]);
    let many = InventoryEvent::HoldsPlaced {
        product_id: product_id(),
        holds: vec![
            PlacedHold {
                owner_id: owner(1),
                quantity: qty(1),
                expires_at: Some(at(5)),
            },
            PlacedHold {
                owner_id: owner(2),
                quantity: qty(1),
                expires_at: None,
            },
            PlacedHold {
                owner_id: owner(3),
                quantity: qty(1),
                expires_at: Some(at(9)),
            },
        ],
        on_hand_after: 10,
        held_after: 3,
    };
    assert_eq!(
        hold_expiries(&many),
        vec![(owner(1), at(5)), (owner(3), at(9))]
    );
    assert_eq!(hold_expiries(&received(10, 10, 0)), vec![]);
}

#[test]
fn a_hold_not_yet_due_cannot_be_expired() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::ExpireHold {
            owner_id: owner(1),
            now: at(29),
        })
        .then_expect_error(InventoryError::HoldNotExpired {
            owner_id: owner(1),
            expires_at: Some(at(30)),
        });
}

#[test]
fn a_hold_without_expiry_never_expires() {
    fw().given(vec![received(10, 10, 0), placed(owner(1), 4, None, 10, 4)])
        .when(InventoryCommand::ExpireHold {
            owner_id: owner(1),
            now: at(100_000),
        })
        .then_expect_error(InventoryError::HoldNotExpired {
            owner_id: owner(1),
            expires_at: None,
        });
}

#[test]
fn expiring_a_missing_hold_emits_nothing() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::ExpireHold {
            owner_id: owner(2),
            now: at(60),
        })
        .then_expect_events(vec![]);
}

// --- CommitHold ------------------------------------------------------------

#[test]
fn a_committed_hold_lowers_on_hand_and_held() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::CommitHold { owner_id: owner(1) })
        .then_expect_events(vec![committed(owner(1), 4, 6, 0)]);
}

#[test]
fn committing_a_hold_again_emits_nothing() {
    let mut history = ten_with_four_held();
    history.push(committed(owner(1), 4, 6, 0));
    fw().given(history)
        .when(InventoryCommand::CommitHold { owner_id: owner(1) })
        .then_expect_events(vec![]);
}

#[test]
fn committing_a_missing_hold_is_refused() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::CommitHold { owner_id: owner(2) })
        .then_expect_error(InventoryError::NoSuchHold { owner_id: owner(2) });
}

#[test]
fn placing_a_committed_owner_hold_again_emits_nothing() {
    let mut history = ten_with_four_held();
    history.push(committed(owner(1), 4, 6, 0));
    fw().given(history)
        .when(place(owner(1), 4, Some(at(30))))
        .then_expect_events(vec![]);
}

#[test]
fn placing_a_committed_owner_hold_with_another_quantity_conflicts() {
    let mut history = ten_with_four_held();
    history.push(committed(owner(1), 4, 6, 0));
    fw().given(history)
        .when(place(owner(1), 2, None))
        .then_expect_error(InventoryError::HoldConflict {
            owner_id: owner(1),
            existing: 4,
            requested: 2,
        });
}

// --- Decrement -------------------------------------------------------------

#[test]
fn stock_can_be_decremented_for_an_order() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Decrement {
            order_id: order(9),
            quantity: qty(6),
        })
        .then_expect_events(vec![InventoryEvent::StockDecremented {
            product_id: product_id(),
            order_id: order(9),
            quantity: qty(6),
            on_hand_after: 4,
            held_after: 4,
        }]);
}

#[test]
fn decrementing_for_the_same_order_again_emits_nothing() {
    let mut history = ten_with_four_held();
    history.push(InventoryEvent::StockDecremented {
        product_id: product_id(),
        order_id: order(9),
        quantity: qty(6),
        on_hand_after: 4,
        held_after: 4,
    });
    fw().given(history)
        .when(InventoryCommand::Decrement {
            order_id: order(9),
            quantity: qty(6),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_decrement_cannot_exceed_available_stock() {
    fw().given(ten_with_four_held())
        .when(InventoryCommand::Decrement {
            order_id: order(9),
            quantity: qty(7),
        })
        .then_expect_error(InventoryError::InsufficientStock {
            requested: 7,
            available: 6,
        });
}

// --- Queries -----------------------------------------------------------------

#[test]
fn can_hold_tells_whether_a_hold_would_fit() {
    let item = state_after(ten_with_four_held());
    assert_eq!(item.on_hand(), 10);
    assert_eq!(item.held(), 4);
    assert_eq!(item.available(), 6);
    assert!(item.can_hold(qty(6)));
    assert!(!item.can_hold(qty(7)));
    assert!(!item.can_hold_at(qty(10), at(29)));
    assert!(item.can_hold_at(qty(10), at(30)));
    assert_eq!(item.hold(owner(1)).map(|h| h.quantity), Some(qty(4)));
}

// --- Invariant -------------------------------------------------------------

/// Runs many pseudo-random commands (a fixed seed, so the test is
/// deterministic) and checks after each one that on hand never drops below
/// held, i.e. available never goes below zero.
#[test]
fn available_never_goes_below_zero() {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let mut history: Vec<InventoryEvent> = Vec::new();
    let mut accepted = 0;
    let mut refused = 0;
    for step in 0..400_i64 {
        let now = at(step);
        let who = owner(u128::from(next(6)));
        let n = qty(next(8) as i64 + 1);
        let command = match next(8) {
            0 => InventoryCommand::Receive {
                product_id: product_id(),
                quantity: n,
                reason: None,
            },
            1 => InventoryCommand::Adjust {
                delta: next(15) as i64 - 10,
                reason: "count".into(),
            },
            2 => InventoryCommand::PlaceHold {
                owner_id: who,
                quantity: n,
                expires_at: Some(now + Duration::minutes(next(10) as i64 + 1)),
                now,
            },
            3 => InventoryCommand::ReleaseHold { owner_id: who },
            4 => InventoryCommand::ExpireHold { owner_id: who, now },
            5 => InventoryCommand::CommitHold { owner_id: who },
            6 => InventoryCommand::ReturnOrderStock {
                order_id: OrderId(who),
            },
            _ => InventoryCommand::Decrement {
                order_id: order(u128::from(next(1000))),
                quantity: n,
            },
        };
        match fw().given(history.clone()).when(command).inspect_result() {
            Ok(events) => {
                accepted += 1;
                for event in &events {
                    let (on_hand_after, held_after) = match event {
                        InventoryEvent::StockReceived {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::StockAdjusted {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::HoldPlaced {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::HoldReleased {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::HoldExpired {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::HoldCommitted {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::StockDecremented {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::OrderStockReturned {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::HoldsPlaced {
                            on_hand_after,
                            held_after,
                            ..
                        }
                        | InventoryEvent::HoldsCommitted {
                            on_hand_after,
                            held_after,
                            ..
                        } => (*on_hand_after, *held_after),
                    };
                    history.push(event.clone());
                    let item = state_after(history.clone());
                    assert_eq!(item.on_hand(), on_hand_after, "on_hand_after of {event:?}");
                    assert_eq!(item.held(), held_after, "held_after of {event:?}");
                }
            }
            Err(_) => refused += 1,
        }
        let item = state_after(history.clone());
        assert!(item.available() >= 0, "available below zero at step {step}");
        assert!(item.held() >= 0);
    }
    assert!(
        accepted > 100 && refused > 10,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn inventory_events_are_named_by_their_variant() {
    use cqrs_es::DomainEvent;
    let event = placed(owner(1), 4, Some(at(30)), 10, 4);
    assert_eq!(event.event_type(), "HoldPlaced");
    assert_eq!(event.event_version(), "1.0");
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["HoldPlaced"]["quantity"], 4);
    assert_eq!(
        serde_json::from_value::<InventoryEvent>(json).unwrap(),
        event
    );
}

#[test]
fn the_item_state_round_trips_through_json() {
    let mut history = ten_with_four_held();
    history.push(committed(owner(1), 4, 6, 0));
    history.push(placed(owner(2), 1, None, 6, 1));
    let item = state_after(history);
    let json = serde_json::to_string(&item).unwrap();
    assert_eq!(serde_json::from_str::<InventoryItem>(&json).unwrap(), item);
}

#[test]
fn error_codes_and_kinds_are_stable() {
    use crate::error::{DomainError, ErrorKind};
    let insufficient = InventoryError::InsufficientStock {
        requested: 2,
        available: 1,
    };
    assert_eq!(insufficient.code(), "insufficient_stock");
    assert_eq!(insufficient.kind(), ErrorKind::Conflict);
    let conflict = InventoryError::HoldConflict {
        owner_id: owner(1),
        existing: 1,
        requested: 2,
    };
    assert_eq!(conflict.kind(), ErrorKind::Conflict);
    let missing = InventoryError::NoSuchHold { owner_id: owner(1) };
    assert_eq!(missing.code(), "no_such_hold");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

// --- ReturnOrderStock ----------------------------------------------------------

/// Order 1's hold of 4 committed: 6 on hand, nothing held.
fn order_one_committed() -> Vec<InventoryEvent> {
    let mut history = ten_with_four_held();
    history.push(committed(owner(1), 4, 6, 0));
    history
}

#[test]
fn a_cancelled_paid_orders_committed_stock_goes_back_on_hand() {
    fw().given(order_one_committed())
        .when(InventoryCommand::ReturnOrderStock { order_id: order(1) })
        .then_expect_events(vec![InventoryEvent::OrderStockReturned {
            product_id: product_id(),
            order_id: order(1),
            quantity: qty(4),
            on_hand_after: 10,
            held_after: 0,
        }]);
}

#[test]
fn a_cancelled_paid_orders_decrement_goes_back_on_hand() {
    let mut history = ten_with_four_held();
    history.push(InventoryEvent::StockDecremented {
        product_id: product_id(),
        order_id: order(9),
        quantity: qty(6),
        on_hand_after: 4,
        held_after: 4,
    });
    fw().given(history)
        .when(InventoryCommand::ReturnOrderStock { order_id: order(9) })
        .then_expect_events(vec![InventoryEvent::OrderStockReturned {
            product_id: product_id(),
            order_id: order(9),
            quantity: qty(6),
            on_hand_after: 10,
            held_after: 4,
        }]);
}

#[test]
fn stock_goes_back_once_per_order() {
    let mut history = order_one_committed();
    history.push(InventoryEvent::OrderStockReturned {
        product_id: product_id(),
        order_id: order(1),
        quantity: qty(4),
        on_hand_after: 10,
        held_after: 0,
    });
    fw().given(history)
        .when(InventoryCommand::ReturnOrderStock { order_id: order(1) })
        .then_expect_events(vec![]);
}

#[test]
fn an_order_that_took_nothing_gives_nothing_back() {
    // A hold that was never committed is released, not returned.
    fw().given(ten_with_four_held())
        .when(InventoryCommand::ReturnOrderStock { order_id: order(1) })
        .then_expect_events(vec![]);
}

// --- PlaceHolds ------------------------------------------------------------

fn request(owner_id: Uuid, quantity: i64, expires_at: Option<DateTime<Utc>>) -> HoldRequest {
    HoldRequest {
        owner_id,
        quantity: qty(quantity),
        expires_at,
    }
}

fn place_all(holds: Vec<HoldRequest>, now: DateTime<Utc>) -> InventoryCommand {
    InventoryCommand::PlaceHolds { holds, now }
}

fn a_placed(owner_id: Uuid, quantity: i64, expires_at: Option<DateTime<Utc>>) -> PlacedHold {
    PlacedHold {
        owner_id,
        quantity: qty(quantity),
        expires_at,
    }
}

fn holds_placed(holds: Vec<PlacedHold>, on_hand_after: i64, held_after: i64) -> InventoryEvent {
    InventoryEvent::HoldsPlaced {
        product_id: product_id(),
        holds,
        on_hand_after,
        held_after,
    }
}

#[test]
fn many_holds_are_placed_in_one_event() {
    fw().given(ten_with_four_held())
        .when(place_all(
            vec![
                request(owner(2), 2, Some(at(15))),
                request(owner(3), 3, None),
            ],
            at(0),
        ))
        .then_expect_events(vec![holds_placed(
            vec![
                a_placed(owner(2), 2, Some(at(15))),
                a_placed(owner(3), 3, None),
            ],
            10,
            9,
        )]);
}

#[test]
fn holds_that_do_not_fit_are_left_out_in_the_order_given() {
    // 6 available: 4 fits, 5 no longer does, 2 still does.
    fw().given(ten_with_four_held())
        .when(place_all(
            vec![
                request(owner(2), 4, None),
                request(owner(3), 5, None),
                request(owner(4), 2, None),
            ],
            at(0),
        ))
        .then_expect_events(vec![holds_placed(
            vec![a_placed(owner(2), 4, None), a_placed(owner(4), 2, None)],
            10,
            10,
        )]);
}

#[test]
fn holds_of_which_none_fits_emit_nothing() {
    fw().given(ten_with_four_held())
        .when(place_all(vec![request(owner(2), 7, None)], at(0)))
        .then_expect_events(vec![]);
}

#[test]
fn no_holds_asked_for_emit_nothing() {
    fw().given(ten_with_four_held())
        .when(place_all(vec![], at(0)))
        .then_expect_events(vec![]);
}

#[test]
fn holds_on_stock_never_received_are_refused() {
    fw().given_no_previous_events()
        .when(place_all(vec![request(owner(2), 1, None)], at(0)))
        .then_expect_error(InventoryError::NotStocked);
}

#[test]
fn an_owner_holding_the_same_quantity_is_not_placed_again() {
    fw().given(ten_with_four_held())
        .when(place_all(
            vec![
                request(owner(1), 4, Some(at(30))),
                request(owner(2), 1, None),
            ],
            at(0),
        ))
        .then_expect_events(vec![holds_placed(vec![a_placed(owner(2), 1, None)], 10, 5)]);
}

#[test]
fn an_owner_holding_another_quantity_is_not_placed() {
    fw().given(ten_with_four_held())
        .when(place_all(vec![request(owner(1), 2, None)], at(0)))
        .then_expect_events(vec![]);
}

#[test]
fn an_owner_whose_hold_was_committed_is_not_placed_again() {
    fw().given(order_one_committed())
        .when(place_all(
            vec![request(owner(1), 4, None), request(owner(2), 1, None)],
            at(0),
        ))
        .then_expect_events(vec![holds_placed(vec![a_placed(owner(2), 1, None)], 6, 1)]);
}

#[test]
fn an_owner_named_twice_in_one_command_is_placed_once() {
    fw().given(ten_with_four_held())
        .when(place_all(
            vec![request(owner(2), 1, None), request(owner(2), 1, None)],
            at(0),
        ))
        .then_expect_events(vec![holds_placed(vec![a_placed(owner(2), 1, None)], 10, 5)]);
}

#[test]
fn a_hold_expiring_before_now_is_not_placed() {
    fw().given(ten_with_four_held())
        .when(place_all(
            vec![
                request(owner(2), 1, Some(at(0))),
                request(owner(3), 1, None),
            ],
            at(0),
        ))
        .then_expect_events(vec![holds_placed(vec![a_placed(owner(3), 1, None)], 10, 5)]);
}

#[test]
fn due_holds_are_expired_first_to_make_room_for_the_holds_that_need_it() {
    // At minute 30 owner 1's 4 are due: 6 available, 10 once it expires.
    fw().given(ten_with_four_held())
        .when(place_all(
            vec![request(owner(2), 5, None), request(owner(3), 5, None)],
            at(30),
        ))
        .then_expect_events(vec![
            InventoryEvent::HoldExpired {
                product_id: product_id(),
                owner_id: owner(1),
                quantity: qty(4),
                expires_at: at(30),
                on_hand_after: 10,
                held_after: 0,
            },
            holds_placed(
                vec![a_placed(owner(2), 5, None), a_placed(owner(3), 5, None)],
                10,
                10,
            ),
        ]);
}

#[test]
fn due_holds_are_left_alone_when_the_holds_fit_anyway() {
    fw().given(ten_with_four_held())
        .when(place_all(vec![request(owner(2), 6, None)], at(60)))
        .then_expect_events(vec![holds_placed(
            vec![a_placed(owner(2), 6, None)],
            10,
            10,
        )]);
}

#[test]
fn holds_placed_together_are_open_holds_like_single_ones() {
    let mut history = ten_with_four_held();
    history.push(holds_placed(
        vec![
            a_placed(owner(2), 2, None),
            a_placed(owner(3), 3, Some(at(20))),
        ],
        10,
        9,
    ));
    let item = state_after(history.clone());
    assert_eq!(item.held(), 9);
    assert_eq!(item.available(), 1);
    assert_eq!(item.hold(owner(3)).map(|h| h.quantity), Some(qty(3)));
    fw().given(history)
        .when(InventoryCommand::ReleaseHold { owner_id: owner(3) })
        .then_expect_events(vec![InventoryEvent::HoldReleased {
            product_id: product_id(),
            owner_id: owner(3),
            quantity: qty(3),
            on_hand_after: 10,
            held_after: 6,
        }]);
}

// --- CommitHolds -----------------------------------------------------------

fn commit_all(owners: &[u128]) -> InventoryCommand {
    InventoryCommand::CommitHolds {
        owner_ids: owners.iter().map(|n| owner(*n)).collect(),
    }
}

fn a_commit(owner_id: Uuid, quantity: i64) -> CommittedHold {
    CommittedHold {
        owner_id,
        quantity: qty(quantity),
    }
}

fn holds_committed(
    commits: Vec<CommittedHold>,
    on_hand_after: i64,
    held_after: i64,
) -> InventoryEvent {
    InventoryEvent::HoldsCommitted {
        product_id: product_id(),
        commits,
        on_hand_after,
        held_after,
    }
}

/// 10 on hand; owner 1 holds 4, owner 2 holds 3, owner 3 holds 1.
fn three_holds() -> Vec<InventoryEvent> {
    let mut history = ten_with_four_held();
    history.push(placed(owner(2), 3, None, 10, 7));
    history.push(placed(owner(3), 1, None, 10, 8));
    history
}

#[test]
fn many_holds_are_committed_in_one_event() {
    fw().given(three_holds())
        .when(commit_all(&[1, 2]))
        .then_expect_events(vec![holds_committed(
            vec![a_commit(owner(1), 4), a_commit(owner(2), 3)],
            3,
            1,
        )]);
}

#[test]
fn owners_without_an_open_hold_are_skipped() {
    let mut history = three_holds();
    history.push(committed(owner(1), 4, 6, 4));
    // Owner 1 was committed before, owner 9 never held.
    fw().given(history)
        .when(commit_all(&[1, 9, 3]))
        .then_expect_events(vec![holds_committed(vec![a_commit(owner(3), 1)], 5, 3)]);
}

#[test]
fn committing_holds_of_which_none_is_open_emits_nothing() {
    fw().given(order_one_committed())
        .when(commit_all(&[1, 9]))
        .then_expect_events(vec![]);
}

#[test]
fn an_owner_named_twice_is_committed_once() {
    fw().given(three_holds())
        .when(commit_all(&[2, 2]))
        .then_expect_events(vec![holds_committed(vec![a_commit(owner(2), 3)], 7, 5)]);
}

#[test]
fn holds_committed_together_count_as_committed_one_by_one() {
    let mut history = three_holds();
    history.push(holds_committed(
        vec![a_commit(owner(1), 4), a_commit(owner(2), 3)],
        3,
        1,
    ));
    let item = state_after(history.clone());
    assert_eq!((item.on_hand(), item.held()), (3, 1));
    assert!(item.is_committed(owner(1)) && item.is_committed(owner(2)));
    assert_eq!(item.committed_quantity(owner(2)), Some(qty(3)));
    fw().given(history.clone())
        .when(InventoryCommand::CommitHold { owner_id: owner(2) })
        .then_expect_events(vec![]);
    fw().given(history)
        .when(InventoryCommand::ReturnOrderStock { order_id: order(2) })
        .then_expect_events(vec![InventoryEvent::OrderStockReturned {
            product_id: product_id(),
            order_id: order(2),
            quantity: qty(3),
            on_hand_after: 6,
            held_after: 1,
        }]);
}

#[test]
fn grouped_events_are_named_by_their_variant() {
    use cqrs_es::DomainEvent;
    let events = [
        holds_placed(vec![a_placed(owner(2), 1, None)], 10, 1),
        holds_committed(vec![a_commit(owner(2), 1)], 9, 0),
    ];
    assert_eq!(events[0].event_type(), "HoldsPlaced");
    assert_eq!(events[1].event_type(), "HoldsCommitted");
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            serde_json::from_value::<InventoryEvent>(json).unwrap(),
            event
        );
    }
}

#[test]
fn events_stored_before_keyed_memory_still_load() {
    let stored = serde_json::json!({"HoldCommitted": {
        "product_id": product_id(),
        "owner_id": owner(1),
        "quantity": 4,
        "on_hand_after": 6,
        "held_after": 0,
    }});
    assert_eq!(
        serde_json::from_value::<InventoryEvent>(stored).unwrap(),
        committed(owner(1), 4, 6, 0)
    );
}

// --- Keyed memory ----------------------------------------------------------

use crate::stored::testing::{decide, loaded_for, rebuilt, stored_entries};
use crate::stored::StoredAggregate;

/// The state a snapshot holds after [`order_one_committed`] (6 on hand,
/// nothing held), built without its events: it knows no commit.
fn six_on_hand_from_a_snapshot() -> InventoryItem {
    InventoryItem {
        product_id: Some(product_id()),
        on_hand: 6,
        ..Default::default()
    }
}

/// [`six_on_hand_from_a_snapshot`] that recalled order 1's commit of 4.
fn six_on_hand_recalling_order_one_committed() -> InventoryItem {
    let mut item = six_on_hand_from_a_snapshot();
    item.recall(vec![(committed_key(owner(1)), serde_json::json!(4))]);
    item
}

/// Decides `command` on a recalled item and on one rebuilt from `history`,
/// and answers the outcome after checking that both agree.
fn decided_alike(
    recalled: InventoryItem,
    history: Vec<InventoryEvent>,
    command: InventoryCommand,
) -> Result<Vec<InventoryEvent>, InventoryError> {
    let replayed = fw().given(history).when(command.clone()).inspect_result();
    let outcome = decide(recalled, command, &());
    assert_eq!(outcome, replayed);
    outcome
}

#[test]
fn a_recalled_commit_makes_placing_the_same_hold_again_emit_nothing() {
    let outcome = decided_alike(
        six_on_hand_recalling_order_one_committed(),
        order_one_committed(),
        place(owner(1), 4, None),
    );
    assert_eq!(outcome, Ok(vec![]));
}

#[test]
fn a_recalled_commit_makes_a_hold_of_another_quantity_conflict() {
    let outcome = decided_alike(
        six_on_hand_recalling_order_one_committed(),
        order_one_committed(),
        place(owner(1), 2, None),
    );
    assert_eq!(
        outcome,
        Err(InventoryError::HoldConflict {
            owner_id: owner(1),
            existing: 4,
            requested: 2,
        })
    );
}

#[test]
fn a_recalled_commit_makes_committing_again_emit_nothing() {
    let outcome = decided_alike(
        six_on_hand_recalling_order_one_committed(),
        order_one_committed(),
        InventoryCommand::CommitHold { owner_id: owner(1) },
    );
    assert_eq!(outcome, Ok(vec![]));
}

#[test]
fn a_recalled_commit_keeps_its_owner_out_of_grouped_holds() {
    let outcome = decided_alike(
        six_on_hand_recalling_order_one_committed(),
        order_one_committed(),
        place_all(
            vec![request(owner(1), 4, None), request(owner(2), 1, None)],
            at(0),
        ),
    );
    assert_eq!(
        outcome,
        Ok(vec![holds_placed(vec![a_placed(owner(2), 1, None)], 6, 1)])
    );
}

#[test]
fn a_recalled_commit_is_what_goes_back_on_hand() {
    let outcome = decided_alike(
        six_on_hand_recalling_order_one_committed(),
        order_one_committed(),
        InventoryCommand::ReturnOrderStock { order_id: order(1) },
    );
    assert_eq!(
        outcome,
        Ok(vec![InventoryEvent::OrderStockReturned {
            product_id: product_id(),
            order_id: order(1),
            quantity: qty(4),
            on_hand_after: 10,
            held_after: 0,
        }])
    );
}

#[test]
fn a_recalled_decrement_is_not_taken_again() {
    let mut history = ten_with_four_held();
    history.push(InventoryEvent::StockDecremented {
        product_id: product_id(),
        order_id: order(9),
        quantity: qty(6),
        on_hand_after: 4,
        held_after: 4,
    });
    let mut item = InventoryItem {
        product_id: Some(product_id()),
        on_hand: 4,
        ..Default::default()
    };
    item.add_hold(
        owner(1),
        Hold {
            quantity: qty(4),
            expires_at: Some(at(30)),
        },
    );
    item.recall(vec![(decremented_key(order(9)), serde_json::json!(6))]);
    let outcome = decided_alike(
        item.clone(),
        history.clone(),
        InventoryCommand::Decrement {
            order_id: order(9),
            quantity: qty(6),
        },
    );
    assert_eq!(outcome, Ok(vec![]));
    let outcome = decided_alike(
        item,
        history,
        InventoryCommand::ReturnOrderStock { order_id: order(9) },
    );
    assert_eq!(
        outcome,
        Ok(vec![InventoryEvent::OrderStockReturned {
            product_id: product_id(),
            order_id: order(9),
            quantity: qty(6),
            on_hand_after: 10,
            held_after: 4,
        }])
    );
}

#[test]
fn a_recalled_return_is_not_given_back_again() {
    let mut history = order_one_committed();
    history.push(InventoryEvent::OrderStockReturned {
        product_id: product_id(),
        order_id: order(1),
        quantity: qty(4),
        on_hand_after: 10,
        held_after: 0,
    });
    let mut item = InventoryItem {
        product_id: Some(product_id()),
        on_hand: 10,
        ..Default::default()
    };
    item.recall(vec![
        (committed_key(owner(1)), serde_json::json!(4)),
        (returned_key(order(1)), serde_json::json!(4)),
    ]);
    let outcome = decided_alike(
        item,
        history,
        InventoryCommand::ReturnOrderStock { order_id: order(1) },
    );
    assert_eq!(outcome, Ok(vec![]));
}

#[test]
fn a_snapshot_that_recalled_nothing_knows_no_commit() {
    // Why the entries are recalled: without them the commit is forgotten.
    assert_eq!(
        decide(
            six_on_hand_from_a_snapshot(),
            InventoryCommand::CommitHold { owner_id: owner(1) },
            &()
        ),
        Err(InventoryError::NoSuchHold { owner_id: owner(1) })
    );
}

#[test]
fn each_command_recalls_the_entries_its_rules_read() {
    let keys = |command| InventoryItem::recall_keys(&command);
    let one = owner(1).to_string();
    assert_eq!(
        keys(place(owner(1), 1, None)),
        vec![format!("committed:{one}")]
    );
    assert_eq!(
        keys(InventoryCommand::CommitHold { owner_id: owner(1) }),
        vec![format!("committed:{one}")]
    );
    assert_eq!(
        keys(place_all(
            vec![request(owner(2), 1, None), request(owner(1), 1, None)],
            at(0)
        )),
        vec![
            format!("committed:{one}"),
            format!("committed:{}", owner(2))
        ]
    );
    assert_eq!(
        keys(InventoryCommand::Decrement {
            order_id: order(1),
            quantity: qty(1)
        }),
        vec![format!("decremented:{one}")]
    );
    assert_eq!(
        keys(InventoryCommand::ReturnOrderStock { order_id: order(1) }),
        vec![
            format!("returned:{one}"),
            format!("committed:{one}"),
            format!("decremented:{one}"),
        ]
    );
    assert!(keys(commit_all(&[1, 2])).is_empty());
    assert!(keys(InventoryCommand::ReleaseHold { owner_id: owner(1) }).is_empty());
}

/// Every kind of event that writes an entry, and some that write none.
fn history_with_every_entry() -> Vec<InventoryEvent> {
    let mut history = three_holds();
    history.push(committed(owner(1), 4, 6, 4));
    history.push(holds_committed(vec![a_commit(owner(2), 3)], 3, 1));
    history.push(InventoryEvent::StockDecremented {
        product_id: product_id(),
        order_id: order(9),
        quantity: qty(2),
        on_hand_after: 1,
        held_after: 1,
    });
    history.push(InventoryEvent::OrderStockReturned {
        product_id: product_id(),
        order_id: order(1),
        quantity: qty(4),
        on_hand_after: 5,
        held_after: 1,
    });
    history.push(holds_placed(vec![a_placed(owner(4), 2, None)], 5, 3));
    history
}

#[test]
fn apply_remembers_exactly_what_remembers_says() {
    let history = history_with_every_entry();
    let item = rebuilt::<InventoryItem>(&history);
    assert_eq!(
        item.memory.entries(),
        &stored_entries::<InventoryItem>(&history)
    );
    let json = |n: u32| serde_json::json!(n);
    let expected: BTreeMap<String, serde_json::Value> = [
        (committed_key(owner(1)), json(4)),
        (committed_key(owner(2)), json(3)),
        (decremented_key(order(9)), json(2)),
        (returned_key(order(1)), json(4)),
    ]
    .into_iter()
    .collect();
    assert_eq!(item.memory.entries(), &expected);
}

#[test]
fn the_serialized_state_holds_no_memory() {
    let history = history_with_every_entry();
    let item = rebuilt::<InventoryItem>(&history);
    let json = serde_json::to_value(&item).unwrap();
    let fields: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(fields, vec!["held", "holds", "on_hand", "product_id"]);
    let from_snapshot: InventoryItem = serde_json::from_value(json.clone()).unwrap();
    assert!(from_snapshot.memory.entries().is_empty());
    assert_eq!(serde_json::to_value(&from_snapshot).unwrap(), json);
}

/// Like [`available_never_goes_below_zero`], every command of a long
/// pseudo-random run is decided twice: on the item rebuilt from all events
/// (as `TestFramework` does) and on the item as the event store loads it (a
/// snapshot through JSON plus the entries the command recalls). Both must
/// decide alike, and their serialized states must stay equal.
#[test]
fn a_snapshot_with_recalled_entries_decides_like_the_whole_history() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let mut history: Vec<InventoryEvent> = Vec::new();
    let mut kinds = BTreeSet::new();
    for step in 0..400_i64 {
        let now = at(step);
        let who = owner(u128::from(next(8)));
        let n = qty(next(6) as i64 + 1);
        let expires_at = Some(now + Duration::minutes(next(10) as i64 + 1));
        let command = match next(10) {
            0 => InventoryCommand::Receive {
                product_id: product_id(),
                quantity: qty(next(12) as i64 + 1),
                reason: None,
            },
            1 => InventoryCommand::PlaceHold {
                owner_id: who,
                quantity: n,
                expires_at,
                now,
            },
            2 => InventoryCommand::ReleaseHold { owner_id: who },
            3 => InventoryCommand::ExpireHold { owner_id: who, now },
            4 => InventoryCommand::CommitHold { owner_id: who },
            5 => InventoryCommand::ReturnOrderStock {
                order_id: OrderId(who),
            },
            6 => InventoryCommand::Decrement {
                order_id: OrderId(who),
                quantity: n,
            },
            7 => InventoryCommand::PlaceHolds {
                holds: (0..next(4) + 1)
                    .map(|_| request(owner(u128::from(next(8))), next(6) as i64 + 1, expires_at))
                    .collect(),
                now,
            },
            8 => InventoryCommand::CommitHolds {
                owner_ids: (0..next(4) + 1)
                    .map(|_| owner(u128::from(next(8))))
                    .collect(),
            },
            _ => InventoryCommand::Adjust {
                delta: next(7) as i64 - 3,
                reason: "count".into(),
            },
        };
        let replayed = fw()
            .given(history.clone())
            .when(command.clone())
            .inspect_result();
        let loaded = decide(
            loaded_for::<InventoryItem>(&history, &command),
            command,
            &(),
        );
        assert_eq!(loaded, replayed, "step {step}");
        if let Ok(events) = replayed {
            for event in events {
                kinds.insert(cqrs_es::DomainEvent::event_type(&event));
                history.push(event);
            }
        }
        let whole = rebuilt::<InventoryItem>(&history);
        assert!(
            whole.available() >= 0,
            "available below zero at step {step}"
        );
        assert_eq!(
            whole.held(),
            whole
                .holds()
                .values()
                .map(|h| i64::from(h.quantity.get()))
                .sum::<i64>()
        );
    }
    // The run went through every kind of event.
    assert_eq!(kinds.len(), 10, "{kinds:?}");
}

// ---- the all-or-nothing hold ----

fn hold_all_now(
    items: &BTreeMap<ProductId, InventoryItem>,
    lines: &[(ProductId, Quantity)],
) -> Result<BTreeMap<ProductId, InventoryItem>, (ProductId, InventoryError)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a test runtime");
    runtime.block_on(hold_all(|p| items.get(&p), owner(1), lines, at(0)))
}

fn stocked(quantity: i64) -> InventoryItem {
    let mut item = InventoryItem::default();
    item.apply(received(quantity, quantity, 0));
    item
}

#[test]
fn hold_all_holds_every_line_on_copies() {
    let items = BTreeMap::from([(product_id(), stocked(5))]);
    let held = hold_all_now(&items, &[(product_id(), qty(2))]).expect("it fits");
    assert!(held[&product_id()].hold(owner(1)).is_some());
    assert!(
        items[&product_id()].hold(owner(1)).is_none(),
        "nothing changes the items given"
    );
}

#[test]
fn hold_all_holds_nothing_when_one_line_does_not_fit() {
    let other = ProductId(Uuid::from_u128(501));
    let items = BTreeMap::from([(product_id(), stocked(5))]);
    let short = hold_all_now(&items, &[(product_id(), qty(2)), (other, qty(1))]);
    assert!(matches!(short, Err((p, InventoryError::NotStocked)) if p == other));
    let short = hold_all_now(&items, &[(product_id(), qty(6))]);
    assert!(matches!(
        short,
        Err((_, InventoryError::InsufficientStock { .. }))
    ));
}
