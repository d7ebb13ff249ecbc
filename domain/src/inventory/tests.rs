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
