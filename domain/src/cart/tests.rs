use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use uuid::Uuid;

use super::*;
use crate::coupon::Discount;
use crate::error::{DomainError, ErrorKind};
use crate::values::{Currency, Money};

type CartTest = TestFramework<Cart>;

fn customer() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}
fn other_customer() -> CustomerId {
    CustomerId(Uuid::from_u128(2))
}
fn cart_id() -> CartId {
    cart_id_for(&customer())
}
fn mug() -> ProductId {
    ProductId(Uuid::from_u128(10))
}
fn pen() -> ProductId {
    ProductId(Uuid::from_u128(11))
}
fn old_lamp() -> ProductId {
    ProductId(Uuid::from_u128(12))
}
fn ghost() -> ProductId {
    ProductId(Uuid::from_u128(13))
}
fn order() -> OrderId {
    OrderId(Uuid::from_u128(100))
}
fn q(n: u32) -> Quantity {
    Quantity::try_from(n).unwrap()
}
fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, day, 12, 0, 0).unwrap()
}

struct FakeCatalog(HashMap<ProductId, ProductInfo>);

#[async_trait]
impl ProductCatalog for FakeCatalog {
    async fn product(&self, product_id: ProductId) -> Result<Option<ProductInfo>, LookupFailed> {
        Ok(self.0.get(&product_id).cloned())
    }
}

struct FakeCoupons(Vec<CouponInfo>);

#[async_trait]
impl CouponLookup for FakeCoupons {
    async fn by_code(&self, code: &str) -> Result<Option<CouponInfo>, LookupFailed> {
        Ok(self.0.iter().find(|c| c.code == code).cloned())
    }
}

struct Down;

#[async_trait]
impl ProductCatalog for Down {
    async fn product(&self, _: ProductId) -> Result<Option<ProductInfo>, LookupFailed> {
        Err(LookupFailed("connection refused".to_string()))
    }
}

#[async_trait]
impl CouponLookup for Down {
    async fn by_code(&self, _: &str) -> Result<Option<CouponInfo>, LookupFailed> {
        Err(LookupFailed("connection refused".to_string()))
    }
}

fn product(id: ProductId, name: &str, discontinued: bool) -> ProductInfo {
    ProductInfo {
        product_id: id,
        name: name.to_string(),
        price: Money::new(1250, Currency::usd()).unwrap(),
        discontinued,
    }
}

fn coupon(code: &str, n: u128, usage_limit: Option<u32>, times_used: u32) -> CouponInfo {
    CouponInfo {
        coupon_id: CouponId(Uuid::from_u128(n)),
        code: code.to_string(),
        discount: Discount::Percent(10),
        valid_from: at(1),
        valid_until: at(20),
        usage_limit,
        times_used,
    }
}

fn services() -> CartServices {
    let catalog = FakeCatalog(HashMap::from([
        (mug(), product(mug(), "Mug", false)),
        (pen(), product(pen(), "Pen", false)),
        (old_lamp(), product(old_lamp(), "Old lamp", true)),
    ]));
    let coupons = FakeCoupons(vec![
        coupon("SUMMER10", 200, None, 0),
        coupon("LAST1", 201, Some(1), 1),
        coupon("WINTER5", 202, Some(10), 3),
    ]);
    CartServices {
        catalog: Arc::new(catalog),
        coupons: Arc::new(coupons),
    }
}

fn down() -> CartServices {
    CartServices {
        catalog: Arc::new(Down),
        coupons: Arc::new(Down),
    }
}

fn added(product_id: ProductId, quantity: u32, line_quantity: u32) -> CartEvent {
    CartEvent::CartItemAdded {
        cart_id: cart_id(),
        customer_id: customer(),
        product_id,
        quantity: q(quantity),
        line_quantity: q(line_quantity),
    }
}

fn summer_applied() -> CartEvent {
    CartEvent::CouponApplied {
        cart_id: cart_id(),
        code: "SUMMER10".to_string(),
        coupon_id: CouponId(Uuid::from_u128(200)),
    }
}

fn checked_out() -> CartEvent {
    CartEvent::CartCheckedOut {
        cart_id: cart_id(),
        customer_id: customer(),
        order_id: order(),
        lines: vec![CartLine {
            product_id: mug(),
            quantity: q(2),
        }],
        coupon: None,
    }
}

fn add(product_id: ProductId, quantity: u32) -> CartCommand {
    CartCommand::AddItem {
        customer_id: customer(),
        product_id,
        quantity: q(quantity),
    }
}

fn state(events: Vec<CartEvent>) -> Cart {
    let mut cart = Cart::default();
    for e in events {
        cart.apply(e);
    }
    cart
}

#[test]
fn the_cart_id_is_derived_from_the_customer() {
    assert_eq!(cart_id_for(&customer()), cart_id_for(&customer()));
    assert_ne!(cart_id_for(&customer()), cart_id_for(&other_customer()));
    assert_eq!(cart_id().0, derived_id("cart", &customer().to_string()));
}

#[test]
fn adding_an_item_to_a_new_cart_opens_it_for_the_customer() {
    CartTest::with(services())
        .given_no_previous_events()
        .when(add(mug(), 2))
        .then_expect_events(vec![added(mug(), 2, 2)]);
}

#[test]
fn adding_a_product_already_in_the_cart_increases_its_line() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(add(mug(), 3))
        .then_expect_events(vec![added(mug(), 3, 5)]);
}

#[test]
fn a_product_that_does_not_exist_cannot_be_added() {
    CartTest::with(services())
        .given_no_previous_events()
        .when(add(ghost(), 1))
        .then_expect_error(CartError::ProductNotFound(ghost()));
}

#[test]
fn a_discontinued_product_cannot_be_added() {
    CartTest::with(services())
        .given_no_previous_events()
        .when(add(old_lamp(), 1))
        .then_expect_error(CartError::ProductDiscontinued(old_lamp()));
}

#[test]
fn a_line_cannot_hold_more_than_the_maximum_quantity() {
    CartTest::with(services())
        .given(vec![added(mug(), Quantity::MAX - 1, Quantity::MAX - 1)])
        .when(add(mug(), 2))
        .then_expect_error(CartError::QuantityTooLarge { max: Quantity::MAX });
}

/// One line each of `count` products other than the mug and the pen.
fn other_lines(count: usize) -> Vec<CartEvent> {
    (0..count)
        .map(|i| added(ProductId(Uuid::from_u128(1000 + i as u128)), 1, 1))
        .collect()
}

#[test]
fn a_cart_refuses_a_line_past_the_hundredth() {
    CartTest::with(services())
        .given(other_lines(crate::order::MAX_LINES))
        .when(add(mug(), 1))
        .then_expect_error(CartError::TooManyLines { max: 100 });
}

#[test]
fn a_cart_of_ninety_nine_lines_takes_a_hundredth() {
    CartTest::with(services())
        .given(other_lines(99))
        .when(add(mug(), 1))
        .then_expect_events(vec![added(mug(), 1, 1)]);
}

#[test]
fn a_full_cart_still_takes_more_of_a_product_it_holds() {
    let mut given = other_lines(crate::order::MAX_LINES - 1);
    given.push(added(mug(), 1, 1));
    CartTest::with(services())
        .given(given)
        .when(add(mug(), 2))
        .then_expect_events(vec![added(mug(), 2, 3)]);
}

#[test]
fn a_line_may_reach_exactly_the_maximum_quantity() {
    CartTest::with(services())
        .given(vec![added(mug(), Quantity::MAX - 1, Quantity::MAX - 1)])
        .when(add(mug(), 1))
        .then_expect_events(vec![added(mug(), 1, Quantity::MAX)]);
}

#[test]
fn adding_while_the_catalog_is_down_is_unavailable() {
    CartTest::with(down())
        .given_no_previous_events()
        .when(add(mug(), 1))
        .then_expect_error(CartError::Unavailable("connection refused".to_string()));
}

#[test]
fn a_customer_cannot_add_to_another_customers_cart() {
    CartTest::with(services())
        .given(vec![added(mug(), 1, 1)])
        .when(CartCommand::AddItem {
            customer_id: other_customer(),
            product_id: mug(),
            quantity: q(1),
        })
        .then_expect_error(CartError::WrongCustomer);
}

#[test]
fn changing_the_quantity_sets_the_line_to_it() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ChangeQuantity {
            product_id: mug(),
            quantity: 7,
        })
        .then_expect_events(vec![CartEvent::CartItemQuantityChanged {
            cart_id: cart_id(),
            product_id: mug(),
            quantity: q(7),
        }]);
}

#[test]
fn changing_the_quantity_to_zero_removes_the_line() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ChangeQuantity {
            product_id: mug(),
            quantity: 0,
        })
        .then_expect_events(vec![CartEvent::CartItemRemoved {
            cart_id: cart_id(),
            product_id: mug(),
        }]);
}

#[test]
fn changing_the_quantity_of_a_product_not_in_the_cart_is_not_found() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ChangeQuantity {
            product_id: pen(),
            quantity: 1,
        })
        .then_expect_error(CartError::LineNotFound(pen()));
}

#[test]
fn changing_to_the_same_quantity_records_nothing() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ChangeQuantity {
            product_id: mug(),
            quantity: 2,
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_quantity_above_the_maximum_is_refused() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ChangeQuantity {
            product_id: mug(),
            quantity: Quantity::MAX + 1,
        })
        .then_expect_error(CartError::QuantityTooLarge { max: Quantity::MAX });
}

#[test]
fn removing_an_item_removes_its_line() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2), added(pen(), 1, 1)])
        .when(CartCommand::RemoveItem { product_id: pen() })
        .then_expect_events(vec![CartEvent::CartItemRemoved {
            cart_id: cart_id(),
            product_id: pen(),
        }]);
}

#[test]
fn removing_a_product_not_in_the_cart_is_not_found() {
    CartTest::with(services())
        .given_no_previous_events()
        .when(CartCommand::RemoveItem { product_id: pen() })
        .then_expect_error(CartError::LineNotFound(pen()));
}

#[test]
fn emptying_a_cart_removes_every_line() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2), added(pen(), 1, 1)])
        .when(CartCommand::Empty)
        .then_expect_events(vec![CartEvent::CartEmptied { cart_id: cart_id() }]);
}

#[test]
fn emptying_an_empty_cart_records_nothing() {
    CartTest::with(services())
        .given_no_previous_events()
        .when(CartCommand::Empty)
        .then_expect_events(vec![]);
    CartTest::with(services())
        .given(vec![
            added(mug(), 2, 2),
            CartEvent::CartEmptied { cart_id: cart_id() },
        ])
        .when(CartCommand::Empty)
        .then_expect_events(vec![]);
}

#[test]
fn a_valid_coupon_is_applied_by_its_code_in_any_case() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ApplyCoupon {
            code: "  summer10 ".to_string(),
            now: at(10),
        })
        .then_expect_events(vec![summer_applied()]);
}

#[test]
fn an_unknown_coupon_is_refused() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ApplyCoupon {
            code: "nope".to_string(),
            now: at(10),
        })
        .then_expect_error(CartError::CouponNotFound {
            code: "NOPE".to_string(),
        });
}

#[test]
fn an_expired_coupon_is_refused() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ApplyCoupon {
            code: "SUMMER10".to_string(),
            now: at(20),
        })
        .then_expect_error(CartError::CouponExpired {
            code: "SUMMER10".to_string(),
        });
}

#[test]
fn a_coupon_that_is_not_yet_valid_is_refused() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ApplyCoupon {
            code: "SUMMER10".to_string(),
            now: Utc.with_ymd_and_hms(2025, 5, 31, 23, 59, 59).unwrap(),
        })
        .then_expect_error(CartError::CouponExpired {
            code: "SUMMER10".to_string(),
        });
}

#[test]
fn a_used_up_coupon_is_refused() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ApplyCoupon {
            code: "LAST1".to_string(),
            now: at(10),
        })
        .then_expect_error(CartError::CouponUsedUp {
            code: "LAST1".to_string(),
        });
}

#[test]
fn a_coupon_cannot_be_applied_to_an_empty_cart() {
    CartTest::with(services())
        .given_no_previous_events()
        .when(CartCommand::ApplyCoupon {
            code: "SUMMER10".to_string(),
            now: at(10),
        })
        .then_expect_error(CartError::EmptyCart);
}

#[test]
fn applying_the_applied_coupon_again_records_nothing() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2), summer_applied()])
        .when(CartCommand::ApplyCoupon {
            code: "summer10".to_string(),
            now: at(10),
        })
        .then_expect_events(vec![]);
}

#[test]
fn another_coupon_replaces_the_applied_one() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2), summer_applied()])
        .when(CartCommand::ApplyCoupon {
            code: "WINTER5".to_string(),
            now: at(10),
        })
        .then_expect_events(vec![CartEvent::CouponApplied {
            cart_id: cart_id(),
            code: "WINTER5".to_string(),
            coupon_id: CouponId(Uuid::from_u128(202)),
        }]);
}

#[test]
fn applying_a_coupon_while_the_lookup_is_down_is_unavailable() {
    CartTest::with(down())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::ApplyCoupon {
            code: "SUMMER10".to_string(),
            now: at(10),
        })
        .then_expect_error(CartError::Unavailable("connection refused".to_string()));
}

#[test]
fn removing_the_coupon_records_which_one() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2), summer_applied()])
        .when(CartCommand::RemoveCoupon)
        .then_expect_events(vec![CartEvent::CouponRemoved {
            cart_id: cart_id(),
            code: "SUMMER10".to_string(),
            coupon_id: CouponId(Uuid::from_u128(200)),
        }]);
}

#[test]
fn removing_a_coupon_when_none_is_applied_records_nothing() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2)])
        .when(CartCommand::RemoveCoupon)
        .then_expect_events(vec![]);
}

#[test]
fn checking_out_records_the_lines_and_the_coupon() {
    CartTest::with(services())
        .given(vec![
            added(mug(), 2, 2),
            added(pen(), 1, 1),
            summer_applied(),
        ])
        .when(CartCommand::CheckOut { order_id: order() })
        .then_expect_events(vec![CartEvent::CartCheckedOut {
            cart_id: cart_id(),
            customer_id: customer(),
            order_id: order(),
            lines: vec![
                CartLine {
                    product_id: mug(),
                    quantity: q(2),
                },
                CartLine {
                    product_id: pen(),
                    quantity: q(1),
                },
            ],
            coupon: Some(AppliedCoupon {
                coupon_id: CouponId(Uuid::from_u128(200)),
                code: "SUMMER10".to_string(),
            }),
        }]);
}

#[test]
fn an_empty_cart_cannot_be_checked_out() {
    CartTest::with(services())
        .given_no_previous_events()
        .when(CartCommand::CheckOut { order_id: order() })
        .then_expect_error(CartError::EmptyCart);
    CartTest::with(services())
        .given(vec![
            added(mug(), 2, 2),
            CartEvent::CartEmptied { cart_id: cart_id() },
        ])
        .when(CartCommand::CheckOut { order_id: order() })
        .then_expect_error(CartError::EmptyCart);
}

#[test]
fn checking_out_again_for_the_same_order_records_nothing() {
    CartTest::with(services())
        .given(vec![added(mug(), 2, 2), checked_out()])
        .when(CartCommand::CheckOut { order_id: order() })
        .then_expect_events(vec![]);
}

#[test]
fn after_checkout_the_cart_is_empty_without_coupon_and_takes_new_items() {
    let cart = state(vec![added(mug(), 2, 2), summer_applied(), checked_out()]);
    assert!(cart.is_empty());
    assert_eq!(cart.coupon(), None);
    assert_eq!(cart.last_order_id(), Some(order()));
    assert_eq!(cart.customer_id(), Some(customer()));

    CartTest::with(services())
        .given(vec![added(mug(), 2, 2), summer_applied(), checked_out()])
        .when(add(mug(), 1))
        .then_expect_events(vec![added(mug(), 1, 1)]);
}

#[test]
fn the_state_follows_the_events() {
    let cart = state(vec![
        added(mug(), 2, 2),
        added(pen(), 1, 1),
        added(mug(), 3, 5),
        CartEvent::CartItemQuantityChanged {
            cart_id: cart_id(),
            product_id: pen(),
            quantity: q(4),
        },
        summer_applied(),
    ]);
    assert_eq!(cart.cart_id(), Some(cart_id()));
    assert_eq!(cart.quantity_of(mug()), 5);
    assert_eq!(cart.quantity_of(pen()), 4);
    assert_eq!(cart.lines()[0].product_id, mug());
    assert_eq!(cart.coupon().map(|c| c.code.as_str()), Some("SUMMER10"));
}

#[test]
fn errors_have_stable_codes_and_kinds() {
    let cases = [
        (
            CartError::ProductNotFound(mug()),
            "product_not_found",
            ErrorKind::NotFound,
        ),
        (
            CartError::ProductDiscontinued(mug()),
            "product_discontinued",
            ErrorKind::Conflict,
        ),
        (
            CartError::QuantityTooLarge { max: 1 },
            "quantity_too_large",
            ErrorKind::Conflict,
        ),
        (
            CartError::LineNotFound(mug()),
            "cart_line_not_found",
            ErrorKind::NotFound,
        ),
        (
            CartError::CouponNotFound { code: "X".into() },
            "unknown_coupon",
            ErrorKind::NotFound,
        ),
        (
            CartError::CouponExpired { code: "X".into() },
            "coupon_expired",
            ErrorKind::Conflict,
        ),
        (
            CartError::CouponUsedUp { code: "X".into() },
            "coupon_used_up",
            ErrorKind::Conflict,
        ),
        (CartError::EmptyCart, "empty_cart", ErrorKind::Conflict),
        (
            CartError::TooManyLines { max: 100 },
            "too_many_lines",
            ErrorKind::Rule,
        ),
        (
            CartError::WrongCustomer,
            "cart_of_another_customer",
            ErrorKind::Conflict,
        ),
        (
            CartError::Unavailable("x".into()),
            "service_unavailable",
            ErrorKind::Unavailable,
        ),
    ];
    for (error, code, kind) in cases {
        assert_eq!(error.code(), code);
        assert_eq!(error.kind(), kind);
    }
}

#[test]
fn events_are_named_after_their_variant_at_version_one() {
    let events = [
        (added(mug(), 1, 1), "CartItemAdded"),
        (
            CartEvent::CartItemQuantityChanged {
                cart_id: cart_id(),
                product_id: mug(),
                quantity: q(1),
            },
            "CartItemQuantityChanged",
        ),
        (
            CartEvent::CartItemRemoved {
                cart_id: cart_id(),
                product_id: mug(),
            },
            "CartItemRemoved",
        ),
        (CartEvent::CartEmptied { cart_id: cart_id() }, "CartEmptied"),
        (summer_applied(), "CouponApplied"),
        (
            CartEvent::CouponRemoved {
                cart_id: cart_id(),
                code: "SUMMER10".into(),
                coupon_id: CouponId(Uuid::from_u128(200)),
            },
            "CouponRemoved",
        ),
        (checked_out(), "CartCheckedOut"),
    ];
    for (event, name) in events {
        assert_eq!(event.event_type(), name);
        assert_eq!(event.event_version(), "1.0");
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get(name).is_some(), "externally tagged: {json}");
        let back: CartEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
