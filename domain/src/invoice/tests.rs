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
