//! HTTP routes, one module per feature, each exposing `router()`.

pub mod health;
