//! Which fields of stored events hold personal data.
//!
//! Each event enum says so itself, next to its variants, through
//! [`PersonalData`] (the event store accepts only aggregates whose events
//! do: see `StoredAggregate`). Readers that may not see personal data
//! (operators reading the event log) get those fields as [`REDACTED`];
//! auditors get them as stored.

/// What a redacted field reads.
pub const REDACTED: &str = "[redacted]";

/// The fields of an event enum's variants that hold personal data (a
/// person's name, username, email, phone, address).
pub trait PersonalData {
    /// The fields of the variant named `event_type` (the key of the stored,
    /// externally tagged payload) that hold personal data.
    fn personal_fields(event_type: &str) -> &'static [&'static str];
}
