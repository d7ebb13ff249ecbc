//! The audit trail: stored events as auditors read them (secrets redacted),
//! and tamper evidence: the per-aggregate hash chain of the event store (see
//! [`crate::event_store::chain`] for what is hashed), and the audit seal (see
//! [`seal`]).

pub mod seal;

use futures::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use crate::event_store::chain;
use crate::event_store::lookups::{self, ChainRow};

/// The first event whose stored hash does not match its content and its
/// predecessor's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub events_checked: u64,
    pub first_broken: Option<BrokenLink>,
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

/// Walks every aggregate's events in sequence order, recomputing each link.
/// A changed payload or metadata, a removed or inserted event, or a forged
/// hash shows as the first event whose link does not match.
pub async fn verify(pool: &PgPool) -> Result<Verification, sqlx::Error> {
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
                return Ok(broken(checked, &row));
            }
            _ if row.sequence != 1 => return Ok(broken(checked, &row)),
            _ => None,
        };
        if link(prev_hash, &row) != row.hash {
            return Ok(broken(checked, &row));
        }
        checked += 1;
        previous = Some((row.aggregate_type, row.aggregate_id, row.sequence, row.hash));
    }
    Ok(Verification {
        events_checked: checked,
        first_broken: None,
    })
}

fn broken(checked: u64, row: &ChainRow) -> Verification {
    Verification {
        events_checked: checked,
        first_broken: Some(BrokenLink {
            position: row.global_position,
            aggregate_type: row.aggregate_type.clone(),
            aggregate_id: row.aggregate_id.clone(),
            sequence: row.sequence,
        }),
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
