//! The shop's domain: aggregates with their commands, events, errors and rules.
//!
//! Pure code: nothing here does IO. Outside services that a rule needs (does a
//! category exist?) are traits declared here and implemented in `projections`
//! or `api`.
//!
//! # Layout
//! - `values`: money, quantities, SKUs and typed ids shared by aggregates.
//! - `metadata`: the keys every stored event carries (actor, correlation ...).
//! - `payment`: the payment gateway trait and the card checks made before it.
//! - `personal`: which fields of the events hold personal data.
//! - one folder per aggregate: `mod.rs` (state, `handle`, `apply`),
//!   `commands.rs`, `events.rs`, `error.rs`, `tests.rs` (`invoice` is the
//!   per-year invoice numbering).
//! - `shipping`: the `Carrier` trait (booking a shipment, tracking numbers).
//! - `stored`: what the event store needs of an aggregate (snapshot version,
//!   keyed memory for facts recalled by key).
#![forbid(unsafe_code)]

pub mod cart;
pub mod category;
pub mod coupon;
pub mod customer;
pub mod error;
pub mod inventory;
pub mod invoice;
pub mod lookup;
pub mod metadata;
pub mod order;
pub mod payment;
pub mod personal;
pub mod product;
pub mod shipping;
pub mod shop;
pub mod sku;
pub mod stored;
pub mod values;
pub mod wallet;

use cqrs_es::Aggregate;

/// The stored type name of every aggregate ([`Aggregate::TYPE`]), as the
/// event log's `aggregate_type` holds it.
pub const AGGREGATE_TYPES: &[&str] = &[
    cart::Cart::TYPE,
    category::Category::TYPE,
    coupon::Coupon::TYPE,
    customer::Customer::TYPE,
    inventory::InventoryItem::TYPE,
    invoice::InvoiceNumbering::TYPE,
    order::Order::TYPE,
    product::Product::TYPE,
    shop::Shop::TYPE,
    sku::SkuClaim::TYPE,
    wallet::Wallet::TYPE,
];

/// The personal fields of the event `event_type` of an aggregate `A`.
fn personal_fields_of<A>(event_type: &str) -> &'static [&'static str]
where
    A: Aggregate<Event: personal::PersonalData>,
{
    <A::Event as personal::PersonalData>::personal_fields(event_type)
}

/// The personal fields of the event `event_type` of an aggregate of type
/// `aggregate_type` (as the event log names both); `None` for an aggregate
/// type the domain does not know, whose events should then be withheld
/// whole.
pub fn personal_fields(aggregate_type: &str, event_type: &str) -> Option<&'static [&'static str]> {
    let fields = match aggregate_type {
        cart::Cart::TYPE => personal_fields_of::<cart::Cart>(event_type),
        category::Category::TYPE => personal_fields_of::<category::Category>(event_type),
        coupon::Coupon::TYPE => personal_fields_of::<coupon::Coupon>(event_type),
        customer::Customer::TYPE => personal_fields_of::<customer::Customer>(event_type),
        inventory::InventoryItem::TYPE => {
            personal_fields_of::<inventory::InventoryItem>(event_type)
        }
        invoice::InvoiceNumbering::TYPE => {
            personal_fields_of::<invoice::InvoiceNumbering>(event_type)
        }
        order::Order::TYPE => personal_fields_of::<order::Order>(event_type),
        product::Product::TYPE => personal_fields_of::<product::Product>(event_type),
        shop::Shop::TYPE => personal_fields_of::<shop::Shop>(event_type),
        sku::SkuClaim::TYPE => personal_fields_of::<sku::SkuClaim>(event_type),
        wallet::Wallet::TYPE => personal_fields_of::<wallet::Wallet>(event_type),
        _ => return None,
    };
    Some(fields)
}

#[cfg(test)]
mod personal_fields_tests {
    use super::*;

    #[test]
    fn every_aggregate_type_says_which_of_its_fields_are_personal() {
        for aggregate_type in crate::AGGREGATE_TYPES {
            assert!(
                personal_fields(aggregate_type, "AnyEvent").is_some(),
                "{aggregate_type}"
            );
        }
        assert_eq!(personal_fields("Unknown", "AnyEvent"), None);
    }

    #[test]
    fn a_customers_name_username_email_and_phone_and_an_orders_address_are_personal() {
        assert_eq!(
            personal_fields("Customer", "CustomerRegistered"),
            Some(&["username", "fullname", "email", "phone"][..])
        );
        assert_eq!(
            personal_fields("Order", "OrderPlaced"),
            Some(&["shipping_address"][..])
        );
        assert_eq!(personal_fields("Order", "OrderShipped"), Some(&[][..]));
    }
}
