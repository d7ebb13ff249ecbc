//! Which fields of stored events hold personal data.
//!
//! Each event enum says so itself, next to its variants, through
//! [`PersonalData`] (the event store accepts only aggregates whose events
//! do: see `StoredAggregate`). Readers that may not see personal data
//! (operators reading the event log) get those fields as [`REDACTED`];
//! auditors get them as stored.
//!
//! The event store encrypts these fields with the data key of the customer
//! the event's [`SUBJECT_FIELD`] names, and reads them back decrypted, or as
//! [`ERASED`] once that customer was forgotten.

/// What a redacted field reads.
pub const REDACTED: &str = "[redacted]";

/// What a personal field reads once its person was forgotten (their data
/// key deleted). An erased shipping address reads as the one-line address
/// `[erased]`.
pub const ERASED: &str = "[erased]";

/// The field of every event body (the variant's object) that names whose
/// personal data the event's personal fields are: they are encrypted with
/// that customer's data key. Every event with personal fields has it.
pub const SUBJECT_FIELD: &str = "customer_id";

/// The fields of an event enum's variants that hold personal data (a
/// person's name, username, email, phone, address).
pub trait PersonalData {
    /// The fields of the variant named `event_type` (the key of the stored,
    /// externally tagged payload) that hold personal data.
    fn personal_fields(event_type: &str) -> &'static [&'static str];
}
