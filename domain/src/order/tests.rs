use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use uuid::Uuid;

use super::*;
use crate::error::{DomainError, ErrorKind};
use crate::values::ValueError;

type OrderTest = TestFramework<Order>;

// ---- fixtures -------------------------------------------------------------

fn order_id() -> OrderId {
    OrderId(Uuid::from_u128(100))
}
fn customer() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}
fn mug() -> ProductId {
    ProductId(Uuid::from_u128(10))
}
fn pen() -> ProductId {
    ProductId(Uuid::from_u128(11))
}
fn coupon_id() -> CouponId {
    CouponId(Uuid::from_u128(200))
}
fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 10, hour, 0, 0).unwrap()
}
fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::usd()).unwrap()
}
fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}
fn q(n: u32) -> Quantity {
    Quantity::try_from(n).unwrap()
}

fn line(product_id: ProductId, name: &str, unit: i64, quantity: u32) -> OrderLine {
    OrderLine {
        product_id,
        name: name.to_string(),
        unit_price: usd(unit),
        quantity: q(quantity),
        line_total: usd(unit * i64::from(quantity)),
    }
}

/// Mug 2 x 12.50 + pen 1 x 3.00 = 28.00, coupon -2.80, total 25.20.
fn lines() -> Vec<OrderLine> {
    vec![line(mug(), "Mug", 1250, 2), line(pen(), "Pen", 300, 1)]
}
const SUBTOTAL: i64 = 2800;
const DISCOUNT: i64 = 280;
const TOTAL: i64 = 2520;

fn coupon() -> Option<OrderCoupon> {
    Some(OrderCoupon {
        coupon_id: coupon_id(),
        code: "summer10".to_string(),
        discount: usd(DISCOUNT),
    })
}

fn address() -> ShippingAddress {
    ShippingAddress {
        name: "Ada Lovelace".to_string(),
        line1: "12 St James's Square".to_string(),
        line2: None,
        city: "London".to_string(),
        postal_code: "SW1Y 4JH".to_string(),
        country: "GB".to_string(),
    }
}

fn card() -> PaymentMethod {
    PaymentMethod::Card {
        token: "tok_visa".to_string(),
    }
}

struct Place {
    lines: Vec<OrderLine>,
    coupon: Option<OrderCoupon>,
    shipping_address: ShippingAddress,
    payment: PaymentMethod,
    expected_total: Option<i64>,
    currency: Currency,
}

impl Place {
    fn new() -> Self {
        Place {
            lines: lines(),
            coupon: coupon(),
            shipping_address: address(),
            payment: card(),
            expected_total: None,
            currency: Currency::usd(),
        }
    }
    fn command(self) -> OrderCommand {
        OrderCommand::Place {
            order_id: order_id(),
            customer_id: customer(),
            lines: self.lines,
            coupon: self.coupon,
            shipping_address: self.shipping_address,
            payment: self.payment,
            expected_total: self.expected_total,
            currency: self.currency,
            now: t(8),
        }
    }
}

fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id: order_id(),
        customer_id: customer(),
        lines: lines(),
        subtotal: usd(SUBTOTAL),
        discount: usd(DISCOUNT),
        total: usd(TOTAL),
        currency: Currency::usd(),
        coupon_id: Some(coupon_id()),
        coupon_code: Some("SUMMER10".to_string()),
        shipping_address: address(),
        payment_method: PaymentMethodKind::Card,
        payment_token: Some("tok_visa".to_string()),
        placed_at: t(8),
        at: t(8),
    }
}

fn stock_reserved() -> OrderEvent {
    OrderEvent::StockReserved {
        order_id: order_id(),
        customer_id: customer(),
        at: t(9),
    }
}

fn authorized(payment_id: &str) -> OrderEvent {
    OrderEvent::PaymentAuthorized {
        order_id: order_id(),
        customer_id: customer(),
        payment_id: payment_id.to_string(),
        amount: usd(TOTAL),
        at: t(10),
    }
}

fn captured(payment_id: &str) -> OrderEvent {
    OrderEvent::PaymentCaptured {
        order_id: order_id(),
        customer_id: customer(),
        payment_id: payment_id.to_string(),
        amount: usd(TOTAL),
        at: t(11),
    }
}

fn processing() -> OrderEvent {
    OrderEvent::OrderProcessingStarted {
        order_id: order_id(),
        customer_id: customer(),
        at: t(12),
    }
}

fn shipped() -> OrderEvent {
    OrderEvent::OrderShipped {
        order_id: order_id(),
        customer_id: customer(),
        tracking_number: "TRACK-1".to_string(),
        carrier: Some("DHL".to_string()),
        at: t(13),
    }
}

fn delivered() -> OrderEvent {
    OrderEvent::OrderDelivered {
        order_id: order_id(),
        customer_id: customer(),
        at: t(14),
    }
}

fn cancelled(reason: CancellationReason, refund_due: i64, at: DateTime<Utc>) -> OrderEvent {
    OrderEvent::OrderCancelled {
        order_id: order_id(),
        customer_id: customer(),
        reason,
        refund_due: usd(refund_due),
        stock_reserved: true,
        coupon_id: Some(coupon_id()),
        at,
    }
}

fn refunded(amount: i64, total_refunded: i64, full: bool, at: DateTime<Utc>) -> OrderEvent {
    OrderEvent::OrderRefunded {
        order_id: order_id(),
        customer_id: customer(),
        amount: usd(amount),
        total_refunded: usd(total_refunded),
        full,
        reason: "returned".to_string(),
        at,
    }
}

fn invoice_issued(number: &str) -> OrderEvent {
    OrderEvent::InvoiceIssued {
        order_id: order_id(),
        customer_id: customer(),
        invoice_number: number.to_string(),
        at: t(15),
    }
}

fn pending() -> Vec<OrderEvent> {
    vec![placed(), stock_reserved()]
}
fn paid() -> Vec<OrderEvent> {
    let mut e = pending();
    e.extend([authorized("pay-1"), captured("pay-1")]);
    e
}
fn in_processing() -> Vec<OrderEvent> {
    let mut e = paid();
    e.push(processing());
    e
}
fn in_shipping() -> Vec<OrderEvent> {
    let mut e = in_processing();
    e.push(shipped());
    e
}
fn at_customer() -> Vec<OrderEvent> {
    let mut e = in_shipping();
    e.push(delivered());
    e
}

/// Events that bring an order to `status`. `cancelled` is reached after
/// payment, so that a refund is possible from it.
fn events_to(status: OrderStatus) -> Vec<OrderEvent> {
    match status {
        OrderStatus::Pending => pending(),
        OrderStatus::Paid => paid(),
        OrderStatus::Processing => in_processing(),
        OrderStatus::Shipped => in_shipping(),
        OrderStatus::Delivered => at_customer(),
        OrderStatus::Cancelled => {
            let mut e = paid();
            e.push(cancelled(CancellationReason::Admin, TOTAL, t(16)));
            e
        }
        OrderStatus::Refunded => {
            let mut e = paid();
            e.push(refunded(TOTAL, TOTAL, true, t(16)));
            e
        }
    }
}

/// The command that moves an order to `to` (with new content where the
/// command is idempotent, so that a repeat is not mistaken for a move).
fn command_to(to: OrderStatus) -> OrderCommand {
    let now = t(20);
    match to {
        OrderStatus::Pending => OrderCommand::ChangeStatus {
            to,
            tracking_number: None,
            now,
        },
        OrderStatus::Paid => OrderCommand::CapturePayment {
            payment_id: "pay-2".to_string(),
            amount: usd(TOTAL),
            now,
        },
        OrderStatus::Processing => OrderCommand::StartProcessing { now },
        OrderStatus::Shipped => OrderCommand::Ship {
            tracking_number: "TRACK-2".to_string(),
            carrier: None,
            now,
        },
        OrderStatus::Delivered => OrderCommand::Deliver { now },
        OrderStatus::Cancelled => OrderCommand::Cancel {
            reason: CancellationReason::Admin,
            now,
        },
        OrderStatus::Refunded => OrderCommand::Refund {
            amount: None,
            reason: "returned".to_string(),
            now,
        },
    }
}

fn run(given: Vec<OrderEvent>, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
    OrderTest::with(())
        .given(given)
        .when(command)
        .inspect_result()
}

fn state(events: Vec<OrderEvent>) -> Order {
    let mut order = Order::default();
    for e in events {
        order.apply(e);
    }
    order
}

fn then(mut given: Vec<OrderEvent>, new: Vec<OrderEvent>) -> Order {
    given.extend(new);
    state(given)
}

// ---- the state machine ----------------------------------------------------

#[test]
fn exactly_these_transitions_are_legal() {
    use OrderStatus::*;
    let legal = [
        (Pending, Paid),
        (Pending, Cancelled),
        (Paid, Processing),
        (Paid, Cancelled),
        (Paid, Refunded),
        (Processing, Shipped),
        (Processing, Cancelled),
        (Processing, Refunded),
        (Shipped, Delivered),
        (Shipped, Refunded),
        (Delivered, Refunded),
        (Cancelled, Refunded),
    ];
    for from in OrderStatus::ALL {
        for to in OrderStatus::ALL {
            assert_eq!(
                legal_transition(from, to),
                legal.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
    }
}

#[test]
fn every_transition_command_moves_the_order_only_when_the_transition_is_legal() {
    for from in OrderStatus::ALL {
        for to in OrderStatus::ALL {
            if from == to {
                continue;
            }
            let result = run(events_to(from), command_to(to));
            if legal_transition(from, to) {
                let events = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert!(!events.is_empty(), "{from} -> {to}: no event");
                assert_eq!(then(events_to(from), events).status(), to, "{from} -> {to}");
            } else {
                assert_eq!(
                    result,
                    Err(OrderError::IllegalTransition { from, to }),
                    "{from} -> {to}"
                );
            }
        }
    }
}

#[test]
fn repeating_the_command_of_the_current_status_records_nothing() {
    let now = t(20);
    let repeats = [
        (
            OrderStatus::Pending,
            OrderCommand::ChangeStatus {
                to: OrderStatus::Pending,
                tracking_number: None,
                now,
            },
        ),
        (
            OrderStatus::Paid,
            OrderCommand::CapturePayment {
                payment_id: "pay-1".to_string(),
                amount: usd(TOTAL),
                now,
            },
        ),
        (
            OrderStatus::Processing,
            OrderCommand::StartProcessing { now },
        ),
        (
            OrderStatus::Shipped,
            OrderCommand::Ship {
                tracking_number: "TRACK-1".to_string(),
                carrier: None,
                now,
            },
        ),
        (OrderStatus::Delivered, OrderCommand::Deliver { now }),
        (
            OrderStatus::Cancelled,
            OrderCommand::Cancel {
                reason: CancellationReason::CustomerRequest,
                now,
            },
        ),
    ];
    for (status, command) in repeats {
        assert_eq!(run(events_to(status), command), Ok(vec![]), "{status}");
    }
}

#[test]
fn the_admin_status_change_follows_the_state_machine() {
    for from in OrderStatus::ALL {
        for to in OrderStatus::ALL {
            let command = OrderCommand::ChangeStatus {
                to,
                tracking_number: Some("TRACK-1".to_string()),
                now: t(20),
            };
            let result = run(events_to(from), command);
            if from == to {
                assert_eq!(result, Ok(vec![]), "{from} -> {to}");
            } else if !legal_transition(from, to) {
                assert_eq!(
                    result,
                    Err(OrderError::IllegalTransition { from, to }),
                    "{from} -> {to}"
                );
            } else if matches!(to, OrderStatus::Paid | OrderStatus::Refunded) {
                assert_eq!(
                    result,
                    Err(OrderError::StatusNotSettable { to }),
                    "{from} -> {to}"
                );
            } else {
                let events = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(then(events_to(from), events).status(), to, "{from} -> {to}");
            }
        }
    }
}

#[test]
fn an_illegal_transition_is_a_conflict_named_after_both_statuses() {
    let error = OrderError::IllegalTransition {
        from: OrderStatus::Delivered,
        to: OrderStatus::Cancelled,
    };
    assert_eq!(error.code(), "illegal_transition_delivered_to_cancelled");
    assert_eq!(error.kind(), ErrorKind::Conflict);
}

#[test]
fn an_order_cannot_be_cancelled_after_it_shipped() {
    OrderTest::with(())
        .given(in_shipping())
        .when(OrderCommand::Cancel {
            reason: CancellationReason::CustomerRequest,
            now: t(20),
        })
        .then_expect_error(OrderError::IllegalTransition {
            from: OrderStatus::Shipped,
            to: OrderStatus::Cancelled,
        });
}

#[test]
fn the_admin_cancels_with_reason_admin() {
    OrderTest::with(())
        .given(in_processing())
        .when(OrderCommand::ChangeStatus {
            to: OrderStatus::Cancelled,
            tracking_number: None,
            now: t(20),
        })
        .then_expect_events(vec![cancelled(CancellationReason::Admin, TOTAL, t(20))]);
}

#[test]
fn the_admin_ships_with_a_tracking_number_only() {
    OrderTest::with(())
        .given(in_processing())
        .when(OrderCommand::ChangeStatus {
            to: OrderStatus::Shipped,
            tracking_number: None,
            now: t(20),
        })
        .then_expect_error(OrderError::TrackingNumberRequired);
    OrderTest::with(())
        .given(in_processing())
        .when(OrderCommand::ChangeStatus {
            to: OrderStatus::Shipped,
            tracking_number: Some(" TRACK-9 ".to_string()),
            now: t(20),
        })
        .then_expect_events(vec![OrderEvent::OrderShipped {
            order_id: order_id(),
            customer_id: customer(),
            tracking_number: "TRACK-9".to_string(),
            carrier: None,
            at: t(20),
        }]);
}

#[test]
fn paid_and_refunded_cannot_be_set_by_hand() {
    OrderTest::with(())
        .given(pending())
        .when(OrderCommand::ChangeStatus {
            to: OrderStatus::Paid,
            tracking_number: None,
            now: t(20),
        })
        .then_expect_error(OrderError::StatusNotSettable {
            to: OrderStatus::Paid,
        });
}

// ---- placing --------------------------------------------------------------

#[test]
fn placing_an_order_records_its_lines_and_totals() {
    OrderTest::with(())
        .given_no_previous_events()
        .when(Place::new().command())
        .then_expect_events(vec![placed()]);
    let order = state(vec![placed()]);
    assert_eq!(order.status(), OrderStatus::Pending);
    assert_eq!(order.payment_status(), PaymentStatus::Pending);
    assert_eq!(order.subtotal(), &usd(SUBTOTAL));
    assert_eq!(order.discount(), &usd(DISCOUNT));
    assert_eq!(order.total(), &usd(TOTAL));
    assert_eq!(order.placed_at(), Some(t(8)));
    assert_eq!(order.updated_at(), Some(t(8)));
}

#[test]
fn an_order_without_coupon_costs_its_subtotal() {
    let mut place = Place::new();
    place.coupon = None;
    place.expected_total = Some(SUBTOTAL);
    let events = run(vec![], place.command()).unwrap();
    let order = state(events);
    assert_eq!(order.discount(), &usd(0));
    assert_eq!(order.total(), &usd(SUBTOTAL));
    assert_eq!(order.coupon_code(), None);
}

#[test]
fn the_shipping_address_is_stored_trimmed_with_an_upper_case_country() {
    let mut place = Place::new();
    place.shipping_address = ShippingAddress {
        name: "  Ada Lovelace ".to_string(),
        line1: " 12 St James's Square".to_string(),
        line2: Some("   ".to_string()),
        city: "London ".to_string(),
        postal_code: " SW1Y 4JH ".to_string(),
        country: " gb ".to_string(),
    };
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_events(vec![placed()]);
}

#[test]
fn a_shipping_address_needs_every_field_but_the_second_line() {
    let mut place = Place::new();
    place.shipping_address.city = "  ".to_string();
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::InvalidShippingAddress(ValueError::Empty {
            field: "city",
        }));
}

#[test]
fn an_order_with_a_one_line_address_keeps_the_line_as_written_and_the_rest_empty() {
    let line = "Ada Lovelace, 12 St James's Square, London SW1Y 4JH, GB";
    let mut place = Place::new();
    place.shipping_address = ShippingAddress::one_line(&format!("  {line} "));
    let mut expected = placed();
    if let OrderEvent::OrderPlaced {
        shipping_address, ..
    } = &mut expected
    {
        *shipping_address = ShippingAddress::one_line(line);
    }
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_events(vec![expected]);
}

#[test]
fn a_one_line_address_cannot_be_blank_or_longer_than_200_characters() {
    for (line, error) in [
        ("   ".to_string(), ValueError::Empty { field: "line1" }),
        (
            "x".repeat(201),
            ValueError::TooLong {
                field: "line1",
                max: 200,
            },
        ),
    ] {
        let mut place = Place::new();
        place.shipping_address = ShippingAddress::one_line(&line);
        OrderTest::with(())
            .given_no_previous_events()
            .when(place.command())
            .then_expect_error(OrderError::InvalidShippingAddress(error));
    }
}

#[test]
fn an_address_with_a_name_and_a_country_but_no_city_is_not_taken_for_one_line() {
    let mut place = Place::new();
    place.shipping_address = ShippingAddress {
        name: "Ada Lovelace".to_string(),
        country: "GB".to_string(),
        ..ShippingAddress::one_line("12 St James's Square")
    };
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::InvalidShippingAddress(ValueError::Empty {
            field: "city",
        }));
}

#[test]
fn a_country_is_a_two_letter_code() {
    let mut place = Place::new();
    place.shipping_address.country = "GBR".to_string();
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::InvalidCountry("GBR".to_string()));
}

#[test]
fn the_card_token_is_kept_apart_from_the_payment_method() {
    let json = serde_json::to_value(placed()).unwrap();
    assert_eq!(json["OrderPlaced"]["payment_method"], "card");
    assert_eq!(json["OrderPlaced"]["payment_token"], "tok_visa");
    let view = serde_json::to_string(&state(vec![placed()]).view().unwrap()).unwrap();
    assert!(!view.contains("tok_visa"));
    let snapshot = serde_json::to_string(&state(vec![placed()])).unwrap();
    assert!(!snapshot.contains("tok_visa"));
}

#[test]
fn a_wallet_order_has_no_payment_token() {
    let mut place = Place::new();
    place.payment = PaymentMethod::Wallet;
    let events = run(vec![], place.command()).unwrap();
    assert!(matches!(
        &events[..],
        [OrderEvent::OrderPlaced {
            payment_method: PaymentMethodKind::Wallet,
            payment_token: None,
            ..
        }]
    ));
}

#[test]
fn a_card_payment_needs_a_token() {
    let mut place = Place::new();
    place.payment = PaymentMethod::Card {
        token: " ".to_string(),
    };
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::PaymentTokenRequired);
}

#[test]
fn the_payment_method_reads_as_the_api_sends_it() {
    let card: PaymentMethod =
        serde_json::from_str(r#"{"method":"card","token":"tok_visa"}"#).unwrap();
    assert_eq!(card, self::card());
    let wallet: PaymentMethod = serde_json::from_str(r#"{"method":"wallet"}"#).unwrap();
    assert_eq!(wallet, PaymentMethod::Wallet);
}

#[test]
fn an_order_cannot_be_placed_twice() {
    OrderTest::with(())
        .given(vec![placed()])
        .when(Place::new().command())
        .then_expect_error(OrderError::AlreadyPlaced);
}

#[test]
fn an_order_needs_at_least_one_line() {
    let mut place = Place::new();
    place.lines = vec![];
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::NoLines);
}

/// `count` lines of one unit at 1.00, each of its own product.
fn many_lines(count: usize) -> Vec<OrderLine> {
    (0..count)
        .map(|i| line(ProductId(Uuid::from_u128(1000 + i as u128)), "Tea", 100, 1))
        .collect()
}

#[test]
fn an_order_has_at_most_a_hundred_lines() {
    let mut place = Place::new();
    place.lines = many_lines(MAX_LINES + 1);
    place.coupon = None;
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::TooManyLines { max: 100 });
}

#[test]
fn an_order_of_a_hundred_lines_is_placed() {
    let mut place = Place::new();
    place.lines = many_lines(MAX_LINES);
    place.coupon = None;
    let events = OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .inspect_result()
        .expect("placed");
    assert!(
        matches!(&events[..], [OrderEvent::OrderPlaced { lines, .. }] if lines.len() == 100),
        "{events:?}"
    );
}

#[test]
fn the_line_count_can_be_checked_before_the_lines_are_priced() {
    assert_eq!(check_line_count(0), Ok(()));
    assert_eq!(check_line_count(100), Ok(()));
    assert_eq!(
        check_line_count(101),
        Err(OrderError::TooManyLines { max: 100 })
    );
}

#[test]
fn every_line_is_in_the_order_currency() {
    let mut place = Place::new();
    place.lines[1].unit_price = eur(300);
    place.lines[1].line_total = eur(300);
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::CurrencyMismatch {
            expected: Currency::usd(),
            found: Currency::parse("EUR").unwrap(),
        });
}

#[test]
fn a_line_total_is_the_unit_price_times_the_quantity() {
    let mut place = Place::new();
    place.lines[0].line_total = usd(2499);
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::LineTotalMismatch {
            product_id: mug(),
            expected: 2500,
            given: 2499,
        });
}

#[test]
fn a_product_appears_on_one_line_only() {
    let mut place = Place::new();
    place.lines.push(line(mug(), "Mug", 1250, 1));
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::DuplicateLine(mug()));
}

#[test]
fn a_negative_price_is_refused() {
    let mut place = Place::new();
    place.lines[0].unit_price.minor = -1;
    place.lines[0].line_total.minor = -2;
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::NegativeAmount);
}

#[test]
fn totals_that_do_not_fit_are_refused() {
    let mut place = Place::new();
    place.lines = vec![
        line(mug(), "Mug", i64::MAX / 2, 1),
        line(pen(), "Pen", i64::MAX / 2, 1),
        line(ProductId(Uuid::from_u128(12)), "Cup", 2, 1),
    ];
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::AmountTooLarge);
}

#[test]
fn the_discount_cannot_exceed_the_subtotal() {
    let mut place = Place::new();
    place.coupon = Some(OrderCoupon {
        coupon_id: coupon_id(),
        code: "BIG".to_string(),
        discount: usd(SUBTOTAL + 1),
    });
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::DiscountExceedsSubtotal);
}

#[test]
fn the_discount_is_in_the_order_currency() {
    let mut place = Place::new();
    place.coupon = Some(OrderCoupon {
        coupon_id: coupon_id(),
        code: "EURO".to_string(),
        discount: eur(100),
    });
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::CurrencyMismatch {
            expected: Currency::usd(),
            found: Currency::parse("EUR").unwrap(),
        });
}

#[test]
fn an_expected_total_that_differs_from_the_total_is_refused() {
    let mut place = Place::new();
    place.expected_total = Some(SUBTOTAL);
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_error(OrderError::TotalMismatch {
            expected: SUBTOTAL,
            computed: TOTAL,
        });
}

#[test]
fn an_expected_total_equal_to_the_total_is_accepted() {
    let mut place = Place::new();
    place.expected_total = Some(TOTAL);
    OrderTest::with(())
        .given_no_previous_events()
        .when(place.command())
        .then_expect_events(vec![placed()]);
}

#[test]
fn commands_for_an_order_never_placed_are_not_found() {
    for status in OrderStatus::ALL {
        OrderTest::with(())
            .given_no_previous_events()
            .when(command_to(status))
            .then_expect_error(OrderError::NotFound);
    }
    OrderTest::with(())
        .given_no_previous_events()
        .when(OrderCommand::Expire { now: t(20) })
        .then_expect_error(OrderError::NotFound);
}

// ---- stock and payment ----------------------------------------------------

#[test]
fn confirming_the_stock_records_it_once() {
    OrderTest::with(())
        .given(vec![placed()])
        .when(OrderCommand::ConfirmStockReserved { now: t(9) })
        .then_expect_events(vec![stock_reserved()]);
    OrderTest::with(())
        .given(pending())
        .when(OrderCommand::ConfirmStockReserved { now: t(9) })
        .then_expect_events(vec![]);
}

#[test]
fn stock_cannot_be_confirmed_for_a_cancelled_order() {
    OrderTest::with(())
        .given(vec![
            placed(),
            cancelled(CancellationReason::PaymentTimeout, 0, t(9)),
        ])
        .when(OrderCommand::ConfirmStockReserved { now: t(10) })
        .then_expect_error(OrderError::NotPending {
            status: OrderStatus::Cancelled,
        });
}

#[test]
fn authorizing_the_total_records_it_once() {
    let authorize = || OrderCommand::AuthorizePayment {
        payment_id: "pay-1".to_string(),
        amount: usd(TOTAL),
        now: t(10),
    };
    OrderTest::with(())
        .given(pending())
        .when(authorize())
        .then_expect_events(vec![authorized("pay-1")]);
    let mut given = pending();
    given.push(authorized("pay-1"));
    assert_eq!(
        state(given.clone()).payment_status(),
        PaymentStatus::Authorized
    );
    OrderTest::with(())
        .given(given)
        .when(authorize())
        .then_expect_events(vec![]);
}

#[test]
fn an_authorization_of_another_amount_is_refused() {
    OrderTest::with(())
        .given(pending())
        .when(OrderCommand::AuthorizePayment {
            payment_id: "pay-1".to_string(),
            amount: usd(TOTAL - 1),
            now: t(10),
        })
        .then_expect_error(OrderError::AmountMismatch {
            expected: usd(TOTAL),
            got: usd(TOTAL - 1),
        });
}

#[test]
fn a_second_authorization_of_another_payment_is_refused() {
    let mut given = pending();
    given.push(authorized("pay-1"));
    OrderTest::with(())
        .given(given)
        .when(OrderCommand::AuthorizePayment {
            payment_id: "pay-2".to_string(),
            amount: usd(TOTAL),
            now: t(10),
        })
        .then_expect_error(OrderError::PaymentIdMismatch {
            expected: "pay-1".to_string(),
            got: "pay-2".to_string(),
        });
}

#[test]
fn capturing_the_total_makes_the_order_paid() {
    let mut given = pending();
    given.push(authorized("pay-1"));
    OrderTest::with(())
        .given(given)
        .when(OrderCommand::CapturePayment {
            payment_id: "pay-1".to_string(),
            amount: usd(TOTAL),
            now: t(11),
        })
        .then_expect_events(vec![captured("pay-1")]);
    let order = state(paid());
    assert_eq!(order.status(), OrderStatus::Paid);
    assert_eq!(order.payment_status(), PaymentStatus::Captured);
    assert_eq!(order.captured(), &usd(TOTAL));
    assert_eq!(order.paid_at(), Some(t(11)));
}

#[test]
fn capturing_twice_records_nothing() {
    for status in [
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Refunded,
    ] {
        OrderTest::with(())
            .given(events_to(status))
            .when(OrderCommand::CapturePayment {
                payment_id: "pay-1".to_string(),
                amount: usd(TOTAL),
                now: t(20),
            })
            .then_expect_events(vec![]);
    }
}

#[test]
fn a_capture_must_be_the_order_total() {
    OrderTest::with(())
        .given(pending())
        .when(OrderCommand::CapturePayment {
            payment_id: "pay-1".to_string(),
            amount: eur(TOTAL),
            now: t(11),
        })
        .then_expect_error(OrderError::AmountMismatch {
            expected: usd(TOTAL),
            got: eur(TOTAL),
        });
}

#[test]
fn a_capture_must_be_of_the_authorized_payment() {
    let mut given = pending();
    given.push(authorized("pay-1"));
    OrderTest::with(())
        .given(given)
        .when(OrderCommand::CapturePayment {
            payment_id: "pay-2".to_string(),
            amount: usd(TOTAL),
            now: t(11),
        })
        .then_expect_error(OrderError::PaymentIdMismatch {
            expected: "pay-1".to_string(),
            got: "pay-2".to_string(),
        });
}

#[test]
fn a_payment_needs_an_id() {
    OrderTest::with(())
        .given(pending())
        .when(OrderCommand::CapturePayment {
            payment_id: "  ".to_string(),
            amount: usd(TOTAL),
            now: t(11),
        })
        .then_expect_error(OrderError::PaymentIdRequired);
}

#[test]
fn a_cancelled_order_cannot_be_paid() {
    OrderTest::with(())
        .given(vec![
            placed(),
            cancelled(CancellationReason::PaymentTimeout, 0, t(9)),
        ])
        .when(OrderCommand::CapturePayment {
            payment_id: "pay-1".to_string(),
            amount: usd(TOTAL),
            now: t(11),
        })
        .then_expect_error(OrderError::IllegalTransition {
            from: OrderStatus::Cancelled,
            to: OrderStatus::Paid,
        });
}

#[test]
fn a_failed_payment_cancels_the_order() {
    OrderTest::with(())
        .given(pending())
        .when(OrderCommand::FailPayment {
            reason: "card_declined".to_string(),
            now: t(10),
        })
        .then_expect_events(vec![
            OrderEvent::PaymentFailed {
                order_id: order_id(),
                customer_id: customer(),
                reason: "card_declined".to_string(),
                at: t(10),
            },
            cancelled(CancellationReason::PaymentFailed, 0, t(10)),
        ]);
    let order = then(pending(), run(pending(), command_fail()).unwrap());
    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert_eq!(order.payment_status(), PaymentStatus::Failed);
    assert_eq!(
        order.cancellation_reason(),
        Some(CancellationReason::PaymentFailed)
    );
}

fn command_fail() -> OrderCommand {
    OrderCommand::FailPayment {
        reason: "card_declined".to_string(),
        now: t(10),
    }
}

#[test]
fn a_failed_payment_on_a_cancelled_order_records_nothing() {
    OrderTest::with(())
        .given(vec![
            placed(),
            cancelled(CancellationReason::PaymentTimeout, 0, t(9)),
        ])
        .when(command_fail())
        .then_expect_events(vec![]);
}

#[test]
fn a_payment_cannot_fail_after_it_was_captured() {
    OrderTest::with(())
        .given(paid())
        .when(command_fail())
        .then_expect_error(OrderError::NotPending {
            status: OrderStatus::Paid,
        });
}

#[test]
fn an_unpaid_order_expires() {
    OrderTest::with(())
        .given(pending())
        .when(OrderCommand::Expire { now: t(20) })
        .then_expect_events(vec![cancelled(
            CancellationReason::PaymentTimeout,
            0,
            t(20),
        )]);
}

#[test]
fn only_a_pending_order_expires() {
    for status in OrderStatus::ALL
        .into_iter()
        .filter(|s| *s != OrderStatus::Pending)
    {
        assert_eq!(
            run(events_to(status), OrderCommand::Expire { now: t(20) }),
            Ok(vec![]),
            "{status}"
        );
    }
}

// ---- cancelling -----------------------------------------------------------

#[test]
fn cancelling_an_unpaid_order_owes_no_refund() {
    OrderTest::with(())
        .given(pending())
        .when(OrderCommand::Cancel {
            reason: CancellationReason::CustomerRequest,
            now: t(20),
        })
        .then_expect_events(vec![cancelled(
            CancellationReason::CustomerRequest,
            0,
            t(20),
        )]);
}

#[test]
fn cancelling_a_paid_order_says_what_must_be_refunded() {
    let mut given = paid();
    given.push(refunded(520, 520, false, t(12)));
    OrderTest::with(())
        .given(given)
        .when(OrderCommand::Cancel {
            reason: CancellationReason::OutOfStock,
            now: t(20),
        })
        .then_expect_events(vec![cancelled(
            CancellationReason::OutOfStock,
            TOTAL - 520,
            t(20),
        )]);
}

#[test]
fn cancelling_says_whether_stock_must_be_released() {
    OrderTest::with(())
        .given(vec![placed()])
        .when(OrderCommand::Cancel {
            reason: CancellationReason::OutOfStock,
            now: t(20),
        })
        .then_expect_events(vec![OrderEvent::OrderCancelled {
            order_id: order_id(),
            customer_id: customer(),
            reason: CancellationReason::OutOfStock,
            refund_due: usd(0),
            stock_reserved: false,
            coupon_id: Some(coupon_id()),
            at: t(20),
        }]);
}

// ---- refunds --------------------------------------------------------------

fn refund(amount: Option<Money>) -> OrderCommand {
    OrderCommand::Refund {
        amount,
        reason: "returned".to_string(),
        now: t(20),
    }
}

#[test]
fn a_full_refund_makes_the_order_refunded() {
    OrderTest::with(())
        .given(at_customer())
        .when(refund(None))
        .then_expect_events(vec![refunded(TOTAL, TOTAL, true, t(20))]);
    let order = then(at_customer(), vec![refunded(TOTAL, TOTAL, true, t(20))]);
    assert_eq!(order.status(), OrderStatus::Refunded);
    assert_eq!(order.payment_status(), PaymentStatus::Refunded);
    assert_eq!(order.refundable(), usd(0));
}

#[test]
fn a_partial_refund_keeps_the_status() {
    OrderTest::with(())
        .given(in_shipping())
        .when(refund(Some(usd(1000))))
        .then_expect_events(vec![refunded(1000, 1000, false, t(20))]);
    let order = then(in_shipping(), vec![refunded(1000, 1000, false, t(20))]);
    assert_eq!(order.status(), OrderStatus::Shipped);
    assert_eq!(order.payment_status(), PaymentStatus::PartiallyRefunded);
}

#[test]
fn refunding_the_rest_after_a_partial_refund_is_a_full_refund() {
    let mut given = paid();
    given.push(refunded(1000, 1000, false, t(12)));
    OrderTest::with(())
        .given(given)
        .when(refund(None))
        .then_expect_events(vec![refunded(TOTAL - 1000, TOTAL, true, t(20))]);
}

#[test]
fn a_refund_cannot_exceed_what_was_paid_and_not_yet_refunded() {
    OrderTest::with(())
        .given(paid())
        .when(refund(Some(usd(TOTAL + 1))))
        .then_expect_error(OrderError::RefundExceedsPaid {
            requested: usd(TOTAL + 1),
            refundable: usd(TOTAL),
        });
    let mut given = paid();
    given.push(refunded(1000, 1000, false, t(12)));
    OrderTest::with(())
        .given(given)
        .when(refund(Some(usd(TOTAL - 999))))
        .then_expect_error(OrderError::RefundExceedsPaid {
            requested: usd(TOTAL - 999),
            refundable: usd(TOTAL - 1000),
        });
}

#[test]
fn an_unpaid_order_cannot_be_refunded() {
    OrderTest::with(())
        .given(pending())
        .when(refund(None))
        .then_expect_error(OrderError::IllegalTransition {
            from: OrderStatus::Pending,
            to: OrderStatus::Refunded,
        });
}

#[test]
fn an_order_cancelled_before_payment_has_nothing_to_refund() {
    OrderTest::with(())
        .given(vec![
            placed(),
            cancelled(CancellationReason::PaymentTimeout, 0, t(9)),
        ])
        .when(refund(None))
        .then_expect_error(OrderError::NothingToRefund);
}

#[test]
fn an_order_cancelled_after_payment_is_refunded_in_full() {
    OrderTest::with(())
        .given(events_to(OrderStatus::Cancelled))
        .when(refund(None))
        .then_expect_events(vec![refunded(TOTAL, TOTAL, true, t(20))]);
    let order = then(
        events_to(OrderStatus::Cancelled),
        vec![refunded(TOTAL, TOTAL, true, t(20))],
    );
    assert_eq!(order.status(), OrderStatus::Refunded);
    assert_eq!(order.cancellation_reason(), Some(CancellationReason::Admin));
}

#[test]
fn a_refunded_order_has_nothing_left_to_refund() {
    OrderTest::with(())
        .given(events_to(OrderStatus::Refunded))
        .when(refund(None))
        .then_expect_error(OrderError::NothingToRefund);
}

#[test]
fn a_refund_needs_a_reason() {
    OrderTest::with(())
        .given(paid())
        .when(OrderCommand::Refund {
            amount: None,
            reason: " ".to_string(),
            now: t(20),
        })
        .then_expect_error(OrderError::RefundReasonRequired);
}

#[test]
fn a_refund_is_a_positive_amount_in_the_order_currency() {
    OrderTest::with(())
        .given(paid())
        .when(refund(Some(usd(0))))
        .then_expect_error(OrderError::InvalidRefundAmount);
    OrderTest::with(())
        .given(paid())
        .when(refund(Some(eur(100))))
        .then_expect_error(OrderError::CurrencyMismatch {
            expected: Currency::usd(),
            found: Currency::parse("EUR").unwrap(),
        });
}

// ---- shipping and invoices ------------------------------------------------

#[test]
fn shipping_records_the_tracking_number_and_carrier() {
    OrderTest::with(())
        .given(in_processing())
        .when(OrderCommand::Ship {
            tracking_number: "TRACK-1".to_string(),
            carrier: Some("DHL".to_string()),
            now: t(13),
        })
        .then_expect_events(vec![shipped()]);
    let order = state(in_shipping());
    assert_eq!(order.tracking_number(), Some("TRACK-1"));
    assert_eq!(order.carrier(), Some("DHL"));
    assert_eq!(order.shipped_at(), Some(t(13)));
}

#[test]
fn shipping_needs_a_tracking_number() {
    OrderTest::with(())
        .given(in_processing())
        .when(OrderCommand::Ship {
            tracking_number: "   ".to_string(),
            carrier: None,
            now: t(13),
        })
        .then_expect_error(OrderError::TrackingNumberRequired);
}

#[test]
fn a_shipped_order_cannot_be_shipped_again_with_another_tracking_number() {
    OrderTest::with(())
        .given(in_shipping())
        .when(OrderCommand::Ship {
            tracking_number: "TRACK-2".to_string(),
            carrier: None,
            now: t(20),
        })
        .then_expect_error(OrderError::IllegalTransition {
            from: OrderStatus::Shipped,
            to: OrderStatus::Shipped,
        });
}

#[test]
fn a_paid_order_gets_its_invoice_once() {
    OrderTest::with(())
        .given(paid())
        .when(OrderCommand::IssueInvoice {
            invoice_number: "INV-2025-0001".to_string(),
            now: t(15),
        })
        .then_expect_events(vec![invoice_issued("INV-2025-0001")]);
    let mut given = paid();
    given.push(invoice_issued("INV-2025-0001"));
    OrderTest::with(())
        .given(given.clone())
        .when(OrderCommand::IssueInvoice {
            invoice_number: "INV-2025-0001".to_string(),
            now: t(16),
        })
        .then_expect_events(vec![]);
    OrderTest::with(())
        .given(given)
        .when(OrderCommand::IssueInvoice {
            invoice_number: "INV-2025-0002".to_string(),
            now: t(16),
        })
        .then_expect_error(OrderError::InvoiceAlreadyIssued {
            invoice_number: "INV-2025-0001".to_string(),
        });
}

#[test]
fn an_invoice_is_issued_for_any_order_whose_payment_was_captured() {
    // `events_to` reaches cancelled and refunded through a captured payment.
    for status in OrderStatus::ALL {
        let result = run(
            events_to(status),
            OrderCommand::IssueInvoice {
                invoice_number: "INV-1".to_string(),
                now: t(20),
            },
        );
        match status {
            OrderStatus::Pending => {
                assert_eq!(result, Err(OrderError::NotPaid { status }), "{status}")
            }
            _ => assert!(result.is_ok_and(|e| e.len() == 1), "{status}"),
        }
    }
}

#[test]
fn an_order_cancelled_before_its_payment_gets_no_invoice() {
    let mut given = pending();
    given.push(cancelled(CancellationReason::CustomerRequest, 0, t(12)));
    OrderTest::with(())
        .given(given)
        .when(OrderCommand::IssueInvoice {
            invoice_number: "INV-1".to_string(),
            now: t(20),
        })
        .then_expect_error(OrderError::NotPaid {
            status: OrderStatus::Cancelled,
        });
}

#[test]
fn the_invoice_date_is_when_it_was_issued() {
    let mut events = paid();
    events.push(invoice_issued("INV-1"));
    let order = state(events);
    assert_eq!(order.invoice_number(), Some("INV-1"));
    assert!(order.invoiced_at().is_some());
    assert!(order.is_paid_for());
}

#[test]
fn an_invoice_needs_a_number() {
    OrderTest::with(())
        .given(paid())
        .when(OrderCommand::IssueInvoice {
            invoice_number: "".to_string(),
            now: t(15),
        })
        .then_expect_error(OrderError::InvoiceNumberRequired);
}

// ---- the state as the API shows it ----------------------------------------

#[test]
fn the_view_shows_the_order_as_of_its_last_event() {
    let mut events = at_customer();
    events.push(invoice_issued("INV-1"));
    let view = state(events).view().unwrap();
    assert_eq!(view.id, order_id());
    assert_eq!(view.customer_id, customer());
    assert_eq!(view.status, OrderStatus::Delivered);
    assert_eq!(view.payment_status, PaymentStatus::Captured);
    assert_eq!(view.items.len(), 2);
    assert_eq!(view.items[0].unit_price, 1250);
    assert_eq!(view.items[0].line_total, 2500);
    assert_eq!(
        (view.subtotal, view.discount, view.total),
        (SUBTOTAL, DISCOUNT, TOTAL)
    );
    assert_eq!(view.tracking_number.as_deref(), Some("TRACK-1"));
    assert_eq!(view.invoice_number.as_deref(), Some("INV-1"));
    assert_eq!(view.created_at, Some(t(8)));
    assert_eq!(view.updated_at, Some(t(15)));
    assert_eq!(view.delivered_at, Some(t(14)));

    let earlier = state(in_processing()).view().unwrap();
    assert_eq!(earlier.status, OrderStatus::Processing);
    assert_eq!(earlier.updated_at, Some(t(12)));
    assert_eq!(earlier.tracking_number, None);

    assert_eq!(Order::default().view(), None);
}

#[test]
fn statuses_are_written_as_the_api_names_them() {
    let names = [
        "pending",
        "paid",
        "processing",
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
    ];
    for (status, name) in OrderStatus::ALL.into_iter().zip(names) {
        assert_eq!(status.to_string(), name);
        assert_eq!(OrderStatus::parse(name), Some(status));
        assert_eq!(serde_json::to_value(status).unwrap(), name);
    }
    let names = [
        "pending",
        "authorized",
        "captured",
        "failed",
        "refunded",
        "partially_refunded",
    ];
    for (status, name) in PaymentStatus::ALL.into_iter().zip(names) {
        assert_eq!(status.to_string(), name);
        assert_eq!(PaymentStatus::parse(name), Some(status));
        assert_eq!(serde_json::to_value(status).unwrap(), name);
    }
    let names = [
        "customer_request",
        "out_of_stock",
        "payment_failed",
        "payment_timeout",
        "admin",
    ];
    for (reason, name) in CancellationReason::ALL.into_iter().zip(names) {
        assert_eq!(reason.to_string(), name);
        assert_eq!(CancellationReason::parse(name), Some(reason));
        assert_eq!(serde_json::to_value(reason).unwrap(), name);
    }
    assert_eq!(OrderStatus::parse("lost"), None);
}

#[test]
fn errors_have_stable_codes_and_kinds() {
    use ErrorKind::{Conflict, NotFound, Rule};
    let cases = [
        (OrderError::NotFound, "order_not_found", NotFound),
        (OrderError::AlreadyPlaced, "order_already_placed", Conflict),
        (OrderError::NoLines, "order_has_no_lines", Rule),
        (
            OrderError::DuplicateLine(mug()),
            "duplicate_order_line",
            Rule,
        ),
        (
            OrderError::CurrencyMismatch {
                expected: Currency::usd(),
                found: Currency::usd(),
            },
            "currency_mismatch",
            Rule,
        ),
        (OrderError::NegativeAmount, "negative_amount", Rule),
        (OrderError::AmountTooLarge, "amount_too_large", Rule),
        (
            OrderError::LineTotalMismatch {
                product_id: mug(),
                expected: 1,
                given: 2,
            },
            "line_total_mismatch",
            Rule,
        ),
        (
            OrderError::DiscountExceedsSubtotal,
            "discount_exceeds_subtotal",
            Rule,
        ),
        (
            OrderError::TotalMismatch {
                expected: 1,
                computed: 2,
            },
            "total_mismatch",
            Conflict,
        ),
        (
            OrderError::InvalidShippingAddress(ValueError::Empty { field: "city" }),
            "invalid_shipping_address",
            Rule,
        ),
        (
            OrderError::InvalidCountry("X".into()),
            "invalid_country",
            Rule,
        ),
        (
            OrderError::PaymentTokenRequired,
            "payment_token_required",
            Rule,
        ),
        (
            OrderError::IllegalTransition {
                from: OrderStatus::Pending,
                to: OrderStatus::Shipped,
            },
            "illegal_transition_pending_to_shipped",
            Conflict,
        ),
        (
            OrderError::NotPending {
                status: OrderStatus::Paid,
            },
            "order_not_pending",
            Conflict,
        ),
        (
            OrderError::NotPaid {
                status: OrderStatus::Pending,
            },
            "order_not_paid",
            Conflict,
        ),
        (
            OrderError::StatusNotSettable {
                to: OrderStatus::Paid,
            },
            "status_not_settable",
            Conflict,
        ),
        (OrderError::PaymentIdRequired, "payment_id_required", Rule),
        (
            OrderError::PaymentIdMismatch {
                expected: "a".into(),
                got: "b".into(),
            },
            "payment_id_mismatch",
            Conflict,
        ),
        (
            OrderError::AmountMismatch {
                expected: usd(1),
                got: usd(2),
            },
            "payment_amount_mismatch",
            Rule,
        ),
        (
            OrderError::TooManyLines { max: 100 },
            "too_many_lines",
            Rule,
        ),
        (
            OrderError::TrackingNumberRequired,
            "tracking_number_required",
            Rule,
        ),
        (
            OrderError::InvoiceNumberRequired,
            "invoice_number_required",
            Rule,
        ),
        (
            OrderError::InvoiceAlreadyIssued {
                invoice_number: "I".into(),
            },
            "invoice_already_issued",
            Conflict,
        ),
        (OrderError::NothingToRefund, "nothing_to_refund", Conflict),
        (
            OrderError::InvalidRefundAmount,
            "invalid_refund_amount",
            Rule,
        ),
        (
            OrderError::RefundExceedsPaid {
                requested: usd(2),
                refundable: usd(1),
            },
            "refund_exceeds_paid",
            Conflict,
        ),
        (
            OrderError::RefundReasonRequired,
            "refund_reason_required",
            Rule,
        ),
    ];
    for (error, code, kind) in cases {
        assert_eq!(error.code(), code);
        assert_eq!(error.kind(), kind, "{code}");
    }
}

#[test]
fn events_are_named_after_their_variant_at_version_one_and_carry_their_time() {
    let events = [
        (placed(), "OrderPlaced", t(8)),
        (stock_reserved(), "StockReserved", t(9)),
        (authorized("pay-1"), "PaymentAuthorized", t(10)),
        (captured("pay-1"), "PaymentCaptured", t(11)),
        (
            OrderEvent::PaymentFailed {
                order_id: order_id(),
                customer_id: customer(),
                reason: "declined".into(),
                at: t(10),
            },
            "PaymentFailed",
            t(10),
        ),
        (processing(), "OrderProcessingStarted", t(12)),
        (shipped(), "OrderShipped", t(13)),
        (delivered(), "OrderDelivered", t(14)),
        (
            cancelled(CancellationReason::Admin, 0, t(16)),
            "OrderCancelled",
            t(16),
        ),
        (refunded(1, 1, false, t(17)), "OrderRefunded", t(17)),
        (invoice_issued("INV-1"), "InvoiceIssued", t(15)),
    ];
    for (event, name, at) in events {
        assert_eq!(event.event_type(), name);
        assert_eq!(event.event_version(), "1.0");
        assert_eq!(event.at(), at);
        assert_eq!(event.order_id(), order_id());
        assert_eq!(event.customer_id(), customer());
        let json = serde_json::to_value(&event).unwrap();
        assert!(json[name]["at"].is_string(), "{json}");
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
}

#[test]
fn the_state_survives_a_snapshot() {
    let order = state(at_customer());
    let json = serde_json::to_string(&order).unwrap();
    assert_eq!(serde_json::from_str::<Order>(&json).unwrap(), order);
}

#[test]
fn an_erased_shipping_address_reads_as_a_one_line_address() {
    let erased: ShippingAddress =
        serde_json::from_value(serde_json::json!(crate::personal::ERASED)).unwrap();
    assert_eq!(erased, ShippingAddress::one_line(crate::personal::ERASED));
    let stored: ShippingAddress =
        serde_json::from_value(serde_json::to_value(address()).unwrap()).unwrap();
    assert_eq!(stored, address());
}
