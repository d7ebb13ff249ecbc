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
