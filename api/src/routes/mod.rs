//! HTTP routes, one module per feature, each exposing `router()`.

pub mod accounts;
pub mod catalog;
pub mod health;
pub mod inventory;
