//! Integration events: the shop's facts for other services, as a public,
//! versioned contract separate from the domain events.
//!
//! # Layout
//! - `contract`: which stored event becomes which integration event, and
//!   the CloudEvents 1.0 envelope and data of each (documented in
//!   `docs/integration-events.md`).
//! - `nats`: the settings, the connection, and the outbound and inbound
//!   JetStream streams.
//! - `publisher`: the outbox projector that publishes each integration
//!   event to JetStream, its checkpoint moving only after the acknowledgement.
//! - `feed`: the same events read from the log in commit order, for the
//!   HTTP feed.
//!
//! The inbound side (other services' facts turned into commands) needs the
//! application's use cases and lives in the `api` crate.

pub mod contract;
pub mod feed;
pub mod nats;
pub mod publisher;
