//! The audit trail: stored events as auditors read them (secrets redacted),
//! and tamper evidence: the per-aggregate hash chain of the event store (see
//! [`crate::event_store::chain`] for what is hashed) and the audit seal (see
//! [`seal`]).
//!
//! # What [`verify`] detects
//!
//! - From the chain: an event whose payload, metadata, type, version, time
//!   or hash was changed; an event removed from the middle of its stream (a
//!   gap) or its first; events swapped or reordered; an event inserted. Each
//!   is reported as the first event whose link does not match
//!   ([`BrokenLink`]; the walk stops there).
//! - From the seal: a stream cut at its end, i.e. its last events removed
//!   after the `audit_seal` projector sealed them (the shorter chain alone
//!   still holds); a sealed event replaced by another with the same sequence
//!   (removed, then appended again); a chain rewritten with recomputed links
//!   up to a sealed event. Each sealed stream is checked ([`BrokenSeal`]).
//!
//! # What it does not detect
//!
//! - A cut before sealing: events removed before the seal reached them
//!   (it follows the log seconds behind the appends; `shop projections
//!   list` shows its lag) leave no trace, and a stream removed whole before
//!   any of it was sealed is not missed.
//! - Events appended after the seal, cut or rewritten together with their
//!   chain, until the seal reaches them.
//! - Someone who can rewrite the seal table as well: `sealed_streams` is as
//!   protected as the `events` table, by triggers (a seal only moves
//!   forward), which whoever can disable triggers on one can disable on the
//!   other. Keep copies of `shop audit verify`'s output, or of the seals,
//!   outside the database to anchor them.
//! - An operator who skips the seal's dead letter (`shop projections skip
//!   audit_seal`) accepts the log as it then stands.

pub mod seal;

use std::fmt;

use futures::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use crate::event_store::chain;
use crate::event_store::lookups::{self, ChainRow, UnreachedSeal};

/// The first event whose stored hash does not match its content and its
/// predecessor's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the event at position {} ({} {} sequence {}) does not match its hash link",
            self.position, self.aggregate_type, self.aggregate_id, self.sequence
        )
    }
}

/// How a sealed stream fails its seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SealBreak {
    /// The stream ends before its sealed event: the events from `sequence`
    /// to the sealed one were removed (the log was cut).
    Cut,
    /// The event at `sequence`, before the sealed one, is missing.
    Gap,
    /// The event at the sealed sequence is there, but with another hash
    /// link than the one sealed: it was replaced, or the chain rewritten.
    Replaced,
}

/// A sealed stream whose events no longer reach what was sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenSeal {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The first event at fault: the first one missing, or the replaced one.
    pub sequence: i64,
    /// The last event sealed of the stream.
    pub sealed_sequence: i64,
    pub kind: SealBreak,
}

impl fmt::Display for BrokenSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stream = format!("{} {}", self.aggregate_type, self.aggregate_id);
        let (sequence, sealed) = (self.sequence, self.sealed_sequence);
        match self.kind {
            SealBreak::Cut if sequence == sealed => write!(
                f,
                "{stream}: its event {sealed} (sealed) is missing: the log was cut"
            ),
            SealBreak::Cut => write!(
                f,
                "{stream}: its events {sequence} to {sealed} (sealed) are missing: the log was cut"
            ),
            SealBreak::Gap => write!(
                f,
                "{stream}: its event {sequence} is missing, though the stream was sealed up to event {sealed}"
            ),
            SealBreak::Replaced => write!(
                f,
                "{stream}: its event {sealed} is not the one sealed (its hash link differs): the log was rewritten"
            ),
        }
    }
}

impl From<UnreachedSeal> for BrokenSeal {
    fn from(row: UnreachedSeal) -> Self {
        let sealed = row.last_sequence;
        let (sequence, kind) = match (row.max_present, row.first_missing) {
            // The stream ends before its seal.
            (max, _) if max.unwrap_or(0) < sealed => (max.unwrap_or(0) + 1, SealBreak::Cut),
            (_, Some(missing)) => (missing, SealBreak::Gap),
            (_, None) => (sealed, SealBreak::Replaced),
        };
        BrokenSeal {
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            sequence,
            sealed_sequence: sealed,
            kind,
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Events whose links were checked (up to the first broken one).
    pub events_checked: u64,
    pub first_broken: Option<BrokenLink>,
    /// Sealed streams checked against their seals.
    pub streams_sealed: u64,
    /// Every sealed stream that fails its seal, by aggregate type and id.
    pub broken_seals: Vec<BrokenSeal>,
}

impl Verification {
    /// Whether nothing was found.
    pub fn holds(&self) -> bool {
        self.first_broken.is_none() && self.broken_seals.is_empty()
    }
}

/// The link of one event, computed here independently of the database.
fn link(prev: Option<&[u8]>, row: &ChainRow) -> Vec<u8> {
    chain::link(
        prev,
        &chain::Linked {
            aggregate_type: &row.aggregate_type,
            aggregate_id: &row.aggregate_id,
            sequence: row.sequence,
            event_type: &row.event_type,
            event_version: &row.event_version,
            payload: &row.payload,
            metadata: &row.metadata,
            recorded_micros: row.recorded_micros,
        },
    )
}

/// Walks every aggregate's events in sequence order, recomputing each link,
/// then checks every sealed stream against its seal (see the module's docs
/// for what this finds and what it cannot).
pub async fn verify(pool: &PgPool) -> Result<Verification, sqlx::Error> {
    let (events_checked, first_broken) = walk_chains(pool).await?;
    let streams_sealed = seal::sealed_streams(pool).await?;
    let broken_seals = lookups::unreached_seals(pool)
        .await?
        .into_iter()
        .map(BrokenSeal::from)
        .collect();
    Ok(Verification {
        events_checked,
        first_broken,
        streams_sealed: streams_sealed.max(0) as u64,
        broken_seals,
    })
}

/// A changed payload or metadata, a removed or inserted event, or a forged
/// hash shows as the first event whose link does not match. Answers the
/// events checked before it, and it.
async fn walk_chains(pool: &PgPool) -> Result<(u64, Option<BrokenLink>), sqlx::Error> {
    let mut rows = lookups::chain_rows(pool);
    let mut checked = 0_u64;
    let mut previous: Option<(String, String, i64, Vec<u8>)> = None;
    while let Some(row) = rows.try_next().await? {
        let prev_hash = match &previous {
            Some((t, id, seq, hash))
                if *t == row.aggregate_type
                    && *id == row.aggregate_id
                    && *seq == row.sequence - 1 =>
            {
                Some(hash.as_slice())
            }
            // A new aggregate must start at sequence 1; a gap is a broken link.
            Some((t, id, _, _)) if *t == row.aggregate_type && *id == row.aggregate_id => {
                return Ok((checked, Some(broken(&row))));
            }
            _ if row.sequence != 1 => return Ok((checked, Some(broken(&row)))),
            _ => None,
        };
        if link(prev_hash, &row) != row.hash {
            return Ok((checked, Some(broken(&row))));
        }
        checked += 1;
        previous = Some((row.aggregate_type, row.aggregate_id, row.sequence, row.hash));
    }
    Ok((checked, None))
}

fn broken(row: &ChainRow) -> BrokenLink {
    BrokenLink {
        position: row.global_position,
        aggregate_type: row.aggregate_type.clone(),
        aggregate_id: row.aggregate_id.clone(),
        sequence: row.sequence,
    }
}

pub use crate::event_store::lookups::{AuditEvent, EventFilter};

/// Keys whose values are secrets and never leave the server.
const SECRET_KEYS: &[&str] = &["password_hash", "payment_token"];

/// Replaces the values of secret keys, at any depth, with "[redacted]".
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *inner = Value::String("[redacted]".to_string());
                } else {
                    redact(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Replaces the fields of `event` that hold personal data (as its event
/// type declares them, see `domain::personal`) with "[redacted]": the event
/// log as an operator reads it. An event of an aggregate type the domain
/// does not know is withheld whole.
pub fn redact_personal(event: &mut AuditEvent) {
    use domain::personal::REDACTED;
    use domain::personal_fields;
    let Value::Object(variants) = &mut event.payload else {
        return;
    };
    for (variant, body) in variants.iter_mut() {
        match personal_fields(&event.aggregate_type, variant) {
            Some(fields) => {
                if let Value::Object(body) = body {
                    for field in fields {
                        if let Some(value) = body.get_mut(*field) {
                            *value = Value::String(REDACTED.to_string());
                        }
                    }
                }
            }
            None => *body = Value::String(REDACTED.to_string()),
        }
    }
}

/// Up to `limit` events matching `filter`, in global order, redacted.
pub async fn events(
    pool: &PgPool,
    filter: &EventFilter,
    limit: i64,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let mut events = lookups::matching(pool, filter, limit).await?;
    events.iter_mut().for_each(|e| redact(&mut e.payload));
    Ok(events)
}

/// Every event of one aggregate, oldest first, redacted.
pub async fn history(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let mut events = lookups::stream_history(pool, aggregate_type, aggregate_id).await?;
    events.iter_mut().for_each(|e| redact(&mut e.payload));
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreached(last: i64, max: Option<i64>, missing: Option<i64>) -> BrokenSeal {
        BrokenSeal::from(UnreachedSeal {
            aggregate_type: "InventoryItem".to_string(),
            aggregate_id: "3f2a".to_string(),
            last_sequence: last,
            max_present: max,
            first_missing: missing,
        })
    }

    #[test]
    fn a_broken_seal_says_what_became_of_the_stream() {
        let cut = unreached(5, Some(4), Some(5));
        assert_eq!((cut.sequence, cut.kind), (5, SealBreak::Cut));
        assert_eq!(
            cut.to_string(),
            "InventoryItem 3f2a: its event 5 (sealed) is missing: the log was cut"
        );
        let cut_more = unreached(5, Some(2), Some(3));
        assert_eq!(
            cut_more.to_string(),
            "InventoryItem 3f2a: its events 3 to 5 (sealed) are missing: the log was cut"
        );
        let gone = unreached(2, None, Some(1));
        assert_eq!((gone.sequence, gone.kind), (1, SealBreak::Cut));
        let gap = unreached(5, Some(5), Some(2));
        assert_eq!((gap.sequence, gap.kind), (2, SealBreak::Gap));
        assert!(gap.to_string().contains("its event 2 is missing"));
        let replaced = unreached(5, Some(5), None);
        assert_eq!((replaced.sequence, replaced.kind), (5, SealBreak::Replaced));
        assert!(replaced.to_string().contains("is not the one sealed"));
    }
}
