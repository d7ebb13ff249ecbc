//! Tamper evidence: every stored event carries a SHA-256 link over its
//! content and its predecessor's link in the same aggregate, so changing,
//! removing or reordering a stored event breaks the chain
//! (`migrations/*_event_hash_chain.sql` defines the same function in SQL).
//!
//! The hashed text is the fields joined by the unit separator (0x1f):
//! aggregate type, aggregate id, sequence, event type, event version,
//! payload (as stored), metadata (as stored), `recorded_at` in microseconds
//! since the epoch; prefixed by the predecessor's link (none for sequence 1).
//!
//! The link is computed by the appending process from the aggregate it has
//! just loaded (whose last link it read with the events), so an append needs
//! no extra read; `shop audit verify` recomputes every link independently.

use sha2::{Digest, Sha256};

/// What an event's link covers.
#[derive(Debug, Clone, Copy)]
pub struct Linked<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    /// The payload exactly as stored (the `json` column keeps its text).
    pub payload: &'a str,
    /// The metadata exactly as stored.
    pub metadata: &'a str,
    pub recorded_micros: i64,
}

/// The link of one event after `prev` (the predecessor's link; `None` for
/// the first event of an aggregate).
pub fn link(prev: Option<&[u8]>, event: &Linked<'_>) -> Vec<u8> {
    let sequence = event.sequence.to_string();
    let micros = event.recorded_micros.to_string();
    let fields = [
        event.aggregate_type,
        event.aggregate_id,
        &sequence,
        event.event_type,
        event.event_version,
        event.payload,
        event.metadata,
        &micros,
    ];
    let mut hasher = Sha256::new();
    hasher.update(prev.unwrap_or_default());
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            hasher.update([0x1f]);
        }
        hasher.update(field.as_bytes());
    }
    hasher.finalize().to_vec()
}
