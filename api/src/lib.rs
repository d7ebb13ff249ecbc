//! The HTTP API of the shop and the pieces of the `shop` binary.
//!
//! # Layout
//! - `cli`: the `shop` command line (serve, projectors, migrate, users, ...).
//! - `config`: typed settings from flags and environment.
//! - `postgres_cluster`: the private PostgreSQL cluster used without `DATABASE_URL`.
//! - `startup`: pool, migrations, router, listener, graceful shutdown.
//! - `client`: the client's address, behind trusted proxies too.
//! - `error`: the one error shape, `ApiError`.
//! - `limits`: rate limits keyed by address, username or customer.
//! - `routes`: one module per feature, each with a `router()`.
//! - `openapi`: the OpenAPI document (`/openapi.json`) and `/docs`.
//! - `inbound`: other services' facts consumed from NATS JetStream, each
//!   turned into its use case.
//! - `telemetry`: tracing set-up.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod database;
pub mod error;
pub mod extract;
pub mod inbound;
pub mod limits;
pub mod master_key;
pub mod metrics;
pub mod openapi;
pub mod postgres_cluster;
pub mod read;
pub mod routes;
pub mod secrets;
pub mod staff;
pub mod startup;
pub mod telemetry;
pub mod tokens;
