//! HTTP routes, one module per feature, each exposing `router()`.

pub mod accounts;
pub mod admin;
pub mod cart;
pub mod catalog;
pub mod coupons;
pub mod health;
pub mod inventory;
pub mod invoices;
pub mod listings;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod rebuilds;
