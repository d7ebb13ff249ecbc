//! The audit trail: stored events as auditors read them (secrets redacted),
//! and tamper evidence: the per-aggregate hash chain of the event store (see
//! `migrations/*_event_hash_chain.sql` for what is hashed).

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
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

/// One event of the event store with its metadata, as auditors read it
/// (secrets redacted).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// The event's global position.
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event's number within its aggregate, from 1.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    /// Who caused it, e.g. `admin:<uuid>` or `anonymous`.
    pub actor: Option<String>,
    /// The request that caused it (`X-Request-Id`).
    pub correlation_id: Option<String>,
    /// The command that caused it.
    pub causation_id: Option<String>,
    pub command: Option<String>,
    /// The event's data (password hashes and payment tokens redacted).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Value,
}

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

/// The columns of [`AuditEvent`], for queries over `events`.
const AUDIT_COLUMNS: &str = "global_position AS position, aggregate_type, aggregate_id, sequence,
    event_type, event_version, recorded_at, metadata->>'actor' AS actor,
    metadata->>'correlation_id' AS correlation_id, metadata->>'causation_id' AS causation_id,
    metadata->>'command' AS command, payload::jsonb AS payload";

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub correlation_id: Option<String>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    /// Only events after this global position.
    pub after_position: i64,
}

/// Up to `limit` events matching `filter`, in global order, redacted.
pub async fn events(
    pool: &PgPool,
    filter: &EventFilter,
    limit: i64,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM events
          WHERE ($1::text IS NULL OR metadata->>'correlation_id' = $1)
            AND ($2::text IS NULL OR aggregate_type = $2)
            AND ($3::text IS NULL OR aggregate_id = $3)
            AND global_position > $4
          ORDER BY global_position
          LIMIT $5"
    );
    let mut events: Vec<AuditEvent> = sqlx::query_as(&sql)
        .bind(&filter.correlation_id)
        .bind(&filter.aggregate_type)
        .bind(&filter.aggregate_id)
        .bind(filter.after_position)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    events.iter_mut().for_each(|e| redact(&mut e.payload));
    Ok(events)
}

/// Every event of one aggregate, oldest first, redacted.
pub async fn history(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY sequence"
    );
    let mut events: Vec<AuditEvent> = sqlx::query_as(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(pool)
        .await?;
    events.iter_mut().for_each(|e| redact(&mut e.payload));
    Ok(events)
}
