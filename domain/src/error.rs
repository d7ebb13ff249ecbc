//! How a domain error is told to the outside world.
//!
//! Each aggregate has its own `thiserror` enum; implementing [`DomainError`]
//! gives every variant a stable snake_case code and a kind, so the HTTP edge
//! maps any of them to the right status without knowing the aggregate.

/// The class of a rejected command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Well-formed but breaks a rule (HTTP 422).
    Rule,
    /// Conflicts with the current state, e.g. an illegal transition (HTTP 409).
    Conflict,
    /// Names something that does not exist (HTTP 404).
    NotFound,
    /// An outside service the rule needed did not answer (HTTP 503).
    Unavailable,
}

pub trait DomainError: std::error::Error {
    /// A stable snake_case code clients can match on.
    fn code(&self) -> String;
    fn kind(&self) -> ErrorKind;
}
