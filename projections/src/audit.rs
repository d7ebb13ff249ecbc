//! Tamper evidence: checks the per-aggregate hash chain of the event store
//! (see `migrations/*_event_hash_chain.sql` for what is hashed).

use futures::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

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

#[derive(sqlx::FromRow)]
struct Row {
    global_position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
    recorded_micros: i64,
    hash: Vec<u8>,
}

/// The link of one event, computed here independently of the database.
fn link(prev: Option<&[u8]>, row: &Row) -> Vec<u8> {
    let text = [
        row.aggregate_type.as_str(),
        row.aggregate_id.as_str(),
        &row.sequence.to_string(),
        row.event_type.as_str(),
        row.event_version.as_str(),
        row.payload.as_str(),
        row.metadata.as_str(),
        &row.recorded_micros.to_string(),
    ]
    .join("\u{1f}");
    let mut hasher = Sha256::new();
    hasher.update(prev.unwrap_or_default());
    hasher.update(text.as_bytes());
    hasher.finalize().to_vec()
}

/// Walks every aggregate's events in sequence order, recomputing each link.
/// A changed payload or metadata, a removed or inserted event, or a forged
/// hash shows as the first event whose link does not match.
pub async fn verify(pool: &PgPool) -> Result<Verification, sqlx::Error> {
    let mut rows = sqlx::query_as::<_, Row>(
        "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload::text AS payload, metadata::text AS metadata,
                (extract(epoch FROM recorded_at) * 1000000)::bigint AS recorded_micros, hash
           FROM events
          ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .fetch(pool);
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

fn broken(checked: u64, row: &Row) -> Verification {
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
