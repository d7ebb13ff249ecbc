//! The event store and everything that reads it.
//!
//! # Layout
//! - `event_store`: the one module that names the `events` table: commands
//!   executed on cqrs-es aggregates loaded from snapshots, appends with
//!   metadata, hash links and keyed memory in one statement, the global
//!   position of a command's last event, bounded conflict retries, waking the
//!   projectors; `event_store::log` reads the global log in commit order with
//!   the snapshot horizon, so no projector ever skips an event whose
//!   transaction commits late; history and lookups for the other modules.
//! - `projector`: what follows the log (the `Projector` and `Workflow`
//!   traits, `ApplyError`), named by every runner and projector.
//! - `supervisor`: starts and stops it all: per projector, a worker under
//!   the projector's advisory lock and its background upgrade; the
//!   listener that wakes them; the background tasks.
//! - `runtime`: read models in batch transactions (checkpoints, dead
//!   letters); `rebuild`: zero-downtime rebuilds into shadow tables;
//!   `admin`: the operator's commands; `read_models`: the projectors and
//!   their tables.
//! - `workflows`: process managers (they send commands instead of writing
//!   rows) run in lanes by `workflows::lanes` (independent orders at once,
//!   each order's events in order, no transaction open while they act), and
//!   the `deadlines` poller.
//! - `audit`: the event log as auditors read it, the hash chain check, and
//!   the `audit_seal` projector that makes a stream cut at its end visible.
//! - `notifications`: the outbox of messages to customers and its delivery.
//! - `integration`: integration events (the public contract, the JetStream
//!   publisher, the feed).
//! - `shipping`: the simulated carrier.
//! - `payments`: the simulated payment gateway, its signed callbacks and
//!   what the shop does with them.
//! - `installation`: secrets of the installation kept in its database, and
//!   ids keyed by them.
//! - `keys`: the master key and the per-customer personal data keys it
//!   wraps; forgetting a customer deletes theirs (crypto-shredding).
//! - `secret`: `Secret`, text that prints as `[redacted]`.
//! - `MIGRATOR`: every schema change in `migrations/`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod event_store;
pub mod installation;
pub mod integration;
pub mod keys;
pub mod lookups;
pub mod notifications;
pub mod payments;
pub mod projector;
pub mod read_models;
pub mod rebuild;
pub mod runtime;
pub mod secret;
pub mod shipping;
pub mod supervisor;
pub mod workflows;

/// The project's migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
