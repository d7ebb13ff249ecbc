//! Which fields of stored events hold personal data.
//!
//! Each event enum says so itself, next to its variants, through
//! [`PersonalData`] (the event store accepts only aggregates whose events
//! do: see `StoredAggregate`). Readers that may not see personal data
//! (operators reading the event log) get those fields as [`REDACTED`];
//! auditors get them as stored.

use cqrs_es::Aggregate;

/// What a redacted field reads.
pub const REDACTED: &str = "[redacted]";

/// The fields of an event enum's variants that hold personal data (a
/// person's name, username, email, phone, address).
pub trait PersonalData {
    /// The fields of the variant named `event_type` (the key of the stored,
    /// externally tagged payload) that hold personal data.
    fn personal_fields(event_type: &str) -> &'static [&'static str];
}

fn of<A>(event_type: &str) -> &'static [&'static str]
where
    A: Aggregate<Event: PersonalData>,
{
    <A::Event as PersonalData>::personal_fields(event_type)
}

/// The personal fields of the event `event_type` of an aggregate of type
/// `aggregate_type` (as the event log names both); `None` for an aggregate
/// type the domain does not know, whose events should then be withheld
/// whole.
pub fn personal_fields(aggregate_type: &str, event_type: &str) -> Option<&'static [&'static str]> {
    use crate::{cart, category, coupon, customer, inventory, invoice, order, product, shop};
    use crate::{sku, wallet};
    let fields = match aggregate_type {
        cart::Cart::TYPE => of::<cart::Cart>(event_type),
        category::Category::TYPE => of::<category::Category>(event_type),
        coupon::Coupon::TYPE => of::<coupon::Coupon>(event_type),
        customer::Customer::TYPE => of::<customer::Customer>(event_type),
        inventory::InventoryItem::TYPE => of::<inventory::InventoryItem>(event_type),
        invoice::InvoiceNumbering::TYPE => of::<invoice::InvoiceNumbering>(event_type),
        order::Order::TYPE => of::<order::Order>(event_type),
        product::Product::TYPE => of::<product::Product>(event_type),
        shop::Shop::TYPE => of::<shop::Shop>(event_type),
        sku::SkuClaim::TYPE => of::<sku::SkuClaim>(event_type),
        wallet::Wallet::TYPE => of::<wallet::Wallet>(event_type),
        _ => return None,
    };
    Some(fields)
}

#[cfg(test)]
mod tests {
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
