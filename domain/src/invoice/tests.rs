use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type NumberingTest = TestFramework<InvoiceNumbering>;

fn order(n: u128) -> OrderId {
    OrderId(Uuid::from_u128(n))
}
fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, minute, 0).unwrap()
}
fn allocate(order_id: OrderId) -> InvoiceNumberingCommand {
    InvoiceNumberingCommand::Allocate {
        year: 2026,
        order_id,
        now: t(5),
    }
}
fn allocated(n: u128, number: u64) -> InvoiceNumberingEvent {
    InvoiceNumberingEvent::InvoiceNumberAllocated {
        year: 2026,
        number,
        invoice_number: format_invoice_number(2026, number),
        order_id: order(n),
        at: t(1),
    }
}

#[test]
fn the_first_invoice_of_a_year_gets_number_one() {
    NumberingTest::with(())
        .given_no_previous_events()
        .when(allocate(order(1)))
        .then_expect_events(vec![InvoiceNumberingEvent::InvoiceNumberAllocated {
            year: 2026,
            number: 1,
            invoice_number: "2026-000001".to_string(),
            order_id: order(1),
            at: t(5),
        }]);
}

#[test]
fn the_next_order_gets_the_next_number() {
    NumberingTest::with(())
        .given(vec![allocated(1, 1), allocated(2, 2)])
        .when(allocate(order(3)))
        .then_expect_events(vec![InvoiceNumberingEvent::InvoiceNumberAllocated {
            year: 2026,
            number: 3,
            invoice_number: "2026-000003".to_string(),
            order_id: order(3),
            at: t(5),
        }]);
}

#[test]
fn an_order_that_has_a_number_keeps_it() {
    NumberingTest::with(())
        .given(vec![allocated(1, 1), allocated(2, 2)])
        .when(allocate(order(1)))
        .then_expect_events(vec![]);
    let mut numbering = InvoiceNumbering::default();
    numbering.apply(allocated(1, 1));
    numbering.apply(allocated(2, 2));
    assert_eq!(
        numbering.invoice_number_of(order(1)).as_deref(),
        Some("2026-000001")
    );
    assert_eq!(numbering.invoice_number_of(order(3)), None);
    assert_eq!(numbering.last(), 2);
}

#[test]
fn a_year_s_numbering_gives_no_number_of_another_year() {
    NumberingTest::with(())
        .given(vec![allocated(1, 1)])
        .when(InvoiceNumberingCommand::Allocate {
            year: 2027,
            order_id: order(2),
            now: t(5),
        })
        .then_expect_error(InvoiceNumberingError::YearMismatch {
            numbering: 2026,
            requested: 2027,
        });
}

#[test]
fn a_year_out_of_range_is_refused() {
    NumberingTest::with(())
        .given_no_previous_events()
        .when(InvoiceNumberingCommand::Allocate {
            year: 0,
            order_id: order(1),
            now: t(5),
        })
        .then_expect_error(InvoiceNumberingError::InvalidYear(0));
}

#[test]
fn every_year_has_its_own_numbering() {
    assert_ne!(numbering_id(2026), numbering_id(2027));
    assert_eq!(numbering_id(2026), numbering_id(2026));
    assert_eq!(format_invoice_number(2027, 12), "2027-000012");
}

#[test]
fn the_state_survives_a_snapshot() {
    let mut numbering = InvoiceNumbering::default();
    numbering.apply(allocated(7, 1));
    let json = serde_json::to_value(&numbering).unwrap();
    let back: InvoiceNumbering = serde_json::from_value(json).unwrap();
    assert_eq!(back, numbering);
}

// --- AllocateRun -------------------------------------------------------------

fn allocate_run(orders: &[u128]) -> InvoiceNumberingCommand {
    InvoiceNumberingCommand::AllocateRun {
        year: 2026,
        orders: orders.iter().map(|n| order(*n)).collect(),
        now: t(5),
    }
}

fn run_allocated(first: u64, orders: &[u128], at: DateTime<Utc>) -> InvoiceNumberingEvent {
    InvoiceNumberingEvent::InvoiceNumbersAllocated {
        year: 2026,
        first,
        orders: orders.iter().map(|n| order(*n)).collect(),
        at,
    }
}

#[test]
fn a_run_of_orders_gets_the_next_numbers_in_one_event() {
    NumberingTest::with(())
        .given(vec![allocated(1, 1), allocated(2, 2)])
        .when(allocate_run(&[5, 3, 4]))
        .then_expect_events(vec![run_allocated(3, &[5, 3, 4], t(5))]);
}

#[test]
fn the_first_run_of_a_year_starts_at_number_one() {
    NumberingTest::with(())
        .given_no_previous_events()
        .when(allocate_run(&[1, 2]))
        .then_expect_events(vec![run_allocated(1, &[1, 2], t(5))]);
}

#[test]
fn orders_of_a_run_that_have_a_number_keep_it() {
    NumberingTest::with(())
        .given(vec![allocated(1, 1), allocated(2, 2)])
        .when(allocate_run(&[2, 3, 1, 4]))
        .then_expect_events(vec![run_allocated(3, &[3, 4], t(5))]);
}

#[test]
fn an_order_named_twice_in_a_run_gets_one_number() {
    NumberingTest::with(())
        .given_no_previous_events()
        .when(allocate_run(&[1, 2, 1]))
        .then_expect_events(vec![run_allocated(1, &[1, 2], t(5))]);
}

#[test]
fn a_run_whose_orders_all_have_numbers_emits_nothing() {
    NumberingTest::with(())
        .given(vec![allocated(1, 1), allocated(2, 2)])
        .when(allocate_run(&[2, 1]))
        .then_expect_events(vec![]);
    NumberingTest::with(())
        .given(vec![allocated(1, 1)])
        .when(allocate_run(&[]))
        .then_expect_events(vec![]);
}

#[test]
fn a_run_gives_no_number_of_another_year() {
    NumberingTest::with(())
        .given(vec![allocated(1, 1)])
        .when(InvoiceNumberingCommand::AllocateRun {
            year: 2027,
            orders: vec![order(2)],
            now: t(5),
        })
        .then_expect_error(InvoiceNumberingError::YearMismatch {
            numbering: 2026,
            requested: 2027,
        });
}

#[test]
fn a_run_of_a_year_out_of_range_is_refused() {
    NumberingTest::with(())
        .given_no_previous_events()
        .when(InvoiceNumberingCommand::AllocateRun {
            year: 10_000,
            orders: vec![order(1)],
            now: t(5),
        })
        .then_expect_error(InvoiceNumberingError::InvalidYear(10_000));
}

#[test]
fn numbers_given_by_a_run_are_known_by_order_and_followed_by_the_next() {
    let history = vec![allocated(1, 1), run_allocated(2, &[7, 8], t(2))];
    let numbering = rebuilt::<InvoiceNumbering>(&history);
    assert_eq!(numbering.last(), 3);
    assert_eq!(
        numbering.invoice_number_of(order(8)).as_deref(),
        Some("2026-000003")
    );
    NumberingTest::with(())
        .given(history.clone())
        .when(allocate(order(8)))
        .then_expect_events(vec![]);
    NumberingTest::with(())
        .given(history)
        .when(allocate(order(9)))
        .then_expect_events(vec![InvoiceNumberingEvent::InvoiceNumberAllocated {
            year: 2026,
            number: 4,
            invoice_number: "2026-000004".to_string(),
            order_id: order(9),
            at: t(5),
        }]);
}

#[test]
fn a_run_event_tells_which_order_got_which_number() {
    assert_eq!(
        run_allocated(4, &[9, 3], t(1)).allocations(),
        vec![(order(9), 4), (order(3), 5)]
    );
    assert_eq!(allocated(2, 7).allocations(), vec![(order(2), 7)]);
    use cqrs_es::DomainEvent;
    assert_eq!(
        run_allocated(4, &[9], t(1)).event_type(),
        "InvoiceNumbersAllocated"
    );
}

#[test]
fn numbers_allocated_before_runs_existed_still_load() {
    let stored = serde_json::json!({"InvoiceNumberAllocated": {
        "year": 2026,
        "number": 1,
        "invoice_number": "2026-000001",
        "order_id": order(1),
        "at": t(1),
    }});
    assert_eq!(
        serde_json::from_value::<InvoiceNumberingEvent>(stored).unwrap(),
        allocated(1, 1)
    );
}

// --- Keyed memory ----------------------------------------------------------

use crate::stored::testing::{decide, loaded_for, rebuilt, stored_entries};
use crate::stored::StoredAggregate;

/// The state a snapshot holds after orders 1 and 2 were numbered, built
/// without their events, recalling order 1's number.
fn snapshot_recalling_order_one() -> InvoiceNumbering {
    let mut numbering = InvoiceNumbering {
        year: Some(2026),
        last: 2,
        ..Default::default()
    };
    numbering.recall(vec![(invoice_key(order(1)), serde_json::json!(1))]);
    numbering
}

#[test]
fn a_recalled_number_is_kept_like_one_seen_in_the_events() {
    let history = vec![allocated(1, 1), allocated(2, 2)];
    for command in [allocate(order(1)), allocate_run(&[1, 3])] {
        let replayed = NumberingTest::with(())
            .given(history.clone())
            .when(command.clone())
            .inspect_result();
        assert_eq!(
            decide(snapshot_recalling_order_one(), command, &()),
            replayed
        );
    }
    assert_eq!(
        snapshot_recalling_order_one()
            .invoice_number_of(order(1))
            .as_deref(),
        Some("2026-000001")
    );
}

#[test]
fn allocations_recall_the_numbers_of_their_orders() {
    let one = order(1).as_uuid();
    assert_eq!(
        InvoiceNumbering::recall_keys(&allocate(order(1))),
        vec![format!("invoice:{one}")]
    );
    assert_eq!(
        InvoiceNumbering::recall_keys(&allocate_run(&[2, 1, 2])),
        vec![format!("invoice:{one}"), format!("invoice:{}", order(2))]
    );
}

#[test]
fn apply_remembers_exactly_what_remembers_says() {
    let history = vec![allocated(1, 1), run_allocated(2, &[7, 8], t(2))];
    let numbering = rebuilt::<InvoiceNumbering>(&history);
    let expected: std::collections::BTreeMap<String, serde_json::Value> = [
        (invoice_key(order(1)), serde_json::json!(1)),
        (invoice_key(order(7)), serde_json::json!(2)),
        (invoice_key(order(8)), serde_json::json!(3)),
    ]
    .into_iter()
    .collect();
    assert_eq!(numbering.memory.entries(), &expected);
    assert_eq!(stored_entries::<InvoiceNumbering>(&history), expected);
}

#[test]
fn the_serialized_state_is_the_year_and_the_last_number() {
    let history = vec![allocated(1, 1), run_allocated(2, &[7, 8], t(2))];
    let numbering = rebuilt::<InvoiceNumbering>(&history);
    assert_eq!(
        serde_json::to_value(&numbering).unwrap(),
        serde_json::json!({"year": 2026, "last": 3})
    );
}

#[test]
fn a_numbering_loaded_from_a_snapshot_knows_only_the_numbers_it_recalled() {
    let history = vec![allocated(1, 1), run_allocated(2, &[7, 8], t(2))];
    let loaded = loaded_for::<InvoiceNumbering>(&history, &allocate(order(8)));
    assert_eq!(
        loaded.invoice_number_of(order(8)).as_deref(),
        Some("2026-000003")
    );
    assert_eq!(loaded.invoice_number_of(order(7)), None);
}
