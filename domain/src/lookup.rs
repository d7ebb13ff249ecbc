//! The failure of an outside lookup a rule depends on (does this category
//! exist?). Service traits of the aggregates return `Result<_, LookupError>`;
//! an aggregate turns it into its own `Unavailable` error (HTTP 503).

use thiserror::Error;

/// An outside lookup did not answer; the text says why (for logs, not users).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("lookup failed: {0}")]
pub struct LookupError(pub String);
