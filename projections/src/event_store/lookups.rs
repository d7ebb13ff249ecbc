//! The questions other modules ask of stored events, besides loading an
//! aggregate and following the log: idempotent replays, what a stream's first
//! event said, lag behind a checkpoint, the auditors' view, and whether the
//! sealed streams still reach their seals.

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};

use super::log::Checkpoint;

/// The first event of a stream: its position and metadata.
#[derive(Debug, Clone)]
pub struct FirstEvent {
    pub position: i64,
    pub metadata: Value,
}

/// The first event of aggregate `id`, if it has any.
pub async fn first_event(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
) -> Result<Option<FirstEvent>, sqlx::Error> {
    let row: Option<(i64, Value)> = sqlx::query_as(
        "SELECT global_position, metadata::jsonb FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(position, metadata)| FirstEvent { position, metadata }))
}

/// The position of the last event that command `command_id` wrote to
/// aggregate `id`.
pub async fn position_of_command(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    command_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(global_position) FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND metadata->>'command_id' = $3",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(command_id)
    .fetch_one(pool)
    .await
}

/// The payload of aggregate `id`'s first event of `event_type`.
pub async fn first_payload_of_type(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    event_type: &str,
) -> Result<Option<Value>, sqlx::Error> {
    let row: Option<(String, Value, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT e.event_version, e.payload::jsonb, k.wrapped_key FROM events e
           LEFT JOIN personal_data_keys k ON k.subject = e.personal_key
          WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 AND e.event_type = $3
          ORDER BY e.sequence LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(event_type)
    .fetch_optional(pool)
    .await?;
    row.map(|(mut version, mut payload, wrapped_key)| {
        super::personal::open(
            aggregate_type,
            event_type,
            &mut version,
            &mut payload,
            wrapped_key.as_deref(),
        )
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(payload)
    })
    .transpose()
}

/// How many events there are in all.
pub async fn count<'e>(executor: impl PgExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(executor)
        .await
}

/// How far a reader at `checkpoint` is behind: the events after it, and the
/// age in seconds of the oldest of them (0 when none).
pub async fn lag(pool: &PgPool, checkpoint: Checkpoint) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), COALESCE(extract(epoch FROM now() - min(recorded_at))::float8, 0)
           FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)",
    )
    .bind(checkpoint.transaction_id.to_string())
    .bind(checkpoint.global_position)
    .fetch_one(pool)
    .await
}

/// One event as the hash chain covers it (see [`super::chain`]).
#[derive(Debug, sqlx::FromRow)]
pub struct ChainRow {
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_micros: i64,
    pub hash: Vec<u8>,
}

/// Every event, each aggregate's in sequence order, as the chain covers it.
pub fn chain_rows(pool: &PgPool) -> BoxStream<'_, Result<ChainRow, sqlx::Error>> {
    sqlx::query_as::<_, ChainRow>(
        "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload::text AS payload, metadata::text AS metadata,
                (extract(epoch FROM recorded_at) * 1000000)::bigint AS recorded_micros, hash
           FROM events
          ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .fetch(pool)
}

/// A sealed stream (see `crate::audit::seal`) whose events no longer reach
/// what was sealed.
#[derive(Debug, sqlx::FromRow)]
pub struct UnreachedSeal {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The last sequence sealed.
    pub last_sequence: i64,
    /// The highest sequence still there up to the sealed one (`None`: none).
    pub max_present: Option<i64>,
    /// The first sequence up to the sealed one that is missing, if any.
    pub first_missing: Option<i64>,
}

/// Every sealed stream that misses an event up to its sealed sequence, or
/// whose event at that sequence has another hash link than the one sealed;
/// in one statement, so the seals and the events are read at one moment.
pub async fn unreached_seals(pool: &PgPool) -> Result<Vec<UnreachedSeal>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.aggregate_type, s.aggregate_id, s.last_sequence, c.max_present,
                CASE WHEN c.present < s.last_sequence THEN
                    (SELECT min(g) FROM generate_series(1::bigint, s.last_sequence) AS g
                      WHERE NOT EXISTS (SELECT 1 FROM events p
                                         WHERE p.aggregate_type = s.aggregate_type
                                           AND p.aggregate_id = s.aggregate_id
                                           AND p.sequence = g))
                END AS first_missing
           FROM sealed_streams s
          CROSS JOIN LATERAL (
                SELECT count(*) AS present, max(p.sequence) AS max_present
                  FROM events p
                 WHERE p.aggregate_type = s.aggregate_type AND p.aggregate_id = s.aggregate_id
                   AND p.sequence BETWEEN 1 AND s.last_sequence) c
           LEFT JOIN events e
             ON e.aggregate_type = s.aggregate_type AND e.aggregate_id = s.aggregate_id
            AND e.sequence = s.last_sequence
          WHERE c.present < s.last_sequence OR e.hash IS DISTINCT FROM s.last_hash
          ORDER BY s.aggregate_type, s.aggregate_id",
    )
    .fetch_all(pool)
    .await
}

/// One event of the event store with its metadata, as auditors read it.
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
    /// The request that caused it: the id the server made for it (its
    /// answer's `X-Correlation-Id`).
    pub correlation_id: Option<String>,
    /// The client's own id of that request (its `X-Request-Id`), if it sent
    /// one.
    pub client_request_id: Option<String>,
    /// The command that caused it.
    pub causation_id: Option<String>,
    pub command: Option<String>,
    /// The event's data (password hashes and payment tokens redacted),
    /// decrypted, as its current version; a forgotten customer's personal
    /// fields read `[erased]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Value,
    /// The stored key of the event's personal fields (read with the event,
    /// used to decrypt them, never shown).
    #[serde(skip)]
    pub wrapped_key: Option<Vec<u8>>,
}

impl AuditEvent {
    /// Decrypts and upcasts the event as read (see [`super::personal`]).
    fn opened(mut self) -> Result<Self, sqlx::Error> {
        let wrapped_key = self.wrapped_key.take();
        super::personal::open(
            &self.aggregate_type,
            &self.event_type,
            &mut self.event_version,
            &mut self.payload,
            wrapped_key.as_deref(),
        )
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(self)
    }
}

/// The columns of [`AuditEvent`].
const AUDIT_COLUMNS: &str = "global_position AS position, aggregate_type, aggregate_id, sequence,
    event_type, event_version, recorded_at, metadata->>'actor' AS actor,
    metadata->>'correlation_id' AS correlation_id,
    metadata->>'client_request_id' AS client_request_id, metadata->>'causation_id' AS causation_id,
    metadata->>'command' AS command, payload::jsonb AS payload,
    (SELECT k.wrapped_key FROM personal_data_keys k WHERE k.subject = events.personal_key)
        AS wrapped_key";

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub correlation_id: Option<String>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    /// Only events after this global position.
    pub after_position: i64,
}

/// Up to `limit` events matching `filter`, in global order (not redacted).
pub async fn matching(
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
    sqlx::query_as::<_, AuditEvent>(&sql)
        .bind(&filter.correlation_id)
        .bind(&filter.aggregate_type)
        .bind(&filter.aggregate_id)
        .bind(filter.after_position)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(AuditEvent::opened)
        .collect()
}

/// Every event of one aggregate, oldest first (not redacted).
pub async fn stream_history(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY sequence"
    );
    sqlx::query_as::<_, AuditEvent>(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(AuditEvent::opened)
        .collect()
}

/// The order that shipped with `tracking_number`, if one did (the latest,
/// should a carrier ever reuse a number).
pub async fn order_shipped_with(
    pool: &PgPool,
    tracking_number: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT aggregate_id FROM events
          WHERE event_type = 'OrderShipped' AND payload -> 'OrderShipped' ->> 'tracking_number' = $1
            AND aggregate_type = 'Order'
          ORDER BY global_position DESC LIMIT 1",
    )
    .bind(tracking_number)
    .fetch_optional(pool)
    .await
}
