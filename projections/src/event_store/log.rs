//! Reading the global event log in commit order.
//!
//! Identity values are handed out at insert time but become visible at commit
//! time, so `WHERE global_position > checkpoint` would skip an event whose
//! transaction commits late. Instead the log is read in
//! `(transaction_id, global_position)` order and only below the snapshot's
//! xmin: every transaction below it has finished, so nothing can later appear
//! behind a checkpoint taken from what was read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;

/// Where a reader of the log stands: the last event it has processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Checkpoint {
    pub transaction_id: u64,
    pub global_position: i64,
}

impl Checkpoint {
    /// Before the first event.
    pub const START: Checkpoint = Checkpoint {
        transaction_id: 0,
        global_position: 0,
    };
}

/// One event of the global log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub global_position: i64,
    pub transaction_id: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    /// The event's hash link (see [`super::chain`]), as stored.
    pub hash: Vec<u8>,
}

impl StoredEvent {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            transaction_id: self.transaction_id,
            global_position: self.global_position,
        }
    }

    /// The payload as the aggregate's event type `E`, read in place (no copy
    /// of the payload). A projector's `?` turns the error into a poison event
    /// (see [`crate::projector::ApplyError`]).
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        E::deserialize(&self.payload)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    global_position: i64,
    transaction_id_text: String,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at: DateTime<Utc>,
    hash: Vec<u8>,
    wrapped_key: Option<Vec<u8>>,
}

/// Up to `limit` events after `after`, in commit order, that no still-running
/// transaction can precede.
pub async fn read_after<'e>(
    executor: impl PgExecutor<'e>,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    read_after_skipping(executor, after, limit, &[]).await
}

/// As [`read_after`], for a reader that passes over the events of the
/// aggregate types in `skip` without looking at them: their positions come
/// whole, their payload as JSON `null`, their metadata as `{}` and their
/// hash empty, so they are neither sent nor parsed. A projector reads the
/// whole log in order to move its checkpoint across it, and most of the log
/// is often other aggregates' events.
pub async fn read_after_skipping<'e>(
    executor: impl PgExecutor<'e>,
    after: Checkpoint,
    limit: i64,
    skip: &[&str],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        // The xid8 travels as text (`transaction_id_text`): naming that
        // output column `transaction_id` would make ORDER BY sort the text
        // ('100000' < '99999') instead of the xid8 column and its index.
        "SELECT global_position, transaction_id::text AS transaction_id_text, aggregate_type,
                aggregate_id, sequence, event_type, event_version,
                CASE WHEN aggregate_type = ANY($4) THEN 'null'::json ELSE payload END AS payload,
                CASE WHEN aggregate_type = ANY($4) THEN '{}'::json ELSE metadata END AS metadata,
                recorded_at,
                CASE WHEN aggregate_type = ANY($4) THEN ''::bytea ELSE hash END AS hash,
                k.wrapped_key
           FROM events
           LEFT JOIN personal_data_keys k
             ON k.subject = events.personal_key AND NOT events.aggregate_type = ANY($4)
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
            AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY events.transaction_id, events.global_position
          LIMIT $3",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(limit)
    .bind(skip)
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(StoredEvent::try_from).collect()
}

impl TryFrom<Row> for StoredEvent {
    type Error = sqlx::Error;

    fn try_from(mut row: Row) -> Result<Self, Self::Error> {
        let transaction_id = row
            .transaction_id_text
            .parse::<u64>()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        // Every reader of the log gets the event decrypted and upcast.
        super::personal::open(
            &row.aggregate_type,
            &row.event_type,
            &mut row.event_version,
            &mut row.payload,
            row.wrapped_key.as_deref(),
        )
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(StoredEvent {
            global_position: row.global_position,
            transaction_id,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            sequence: row.sequence,
            event_type: row.event_type,
            event_version: row.event_version,
            payload: row.payload,
            metadata: row.metadata,
            recorded_at: row.recorded_at,
            hash: row.hash,
        })
    }
}

/// The newest global position in the store (0 when empty).
pub async fn head_position<'e>(executor: impl PgExecutor<'e>) -> Result<i64, sqlx::Error> {
    let (head,): (Option<i64>,) = sqlx::query_as("SELECT max(global_position) FROM events")
        .fetch_one(executor)
        .await?;
    Ok(head.unwrap_or(0))
}

/// Where the event at `global_position` stands in commit order; `None` when
/// no committed event has that position.
pub async fn commit_point_of<'e>(
    executor: impl PgExecutor<'e>,
    global_position: i64,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT transaction_id::text FROM events WHERE global_position = $1")
            .bind(global_position)
            .fetch_optional(executor)
            .await?;
    row.map(|(transaction_id,)| {
        Ok(Checkpoint {
            transaction_id: transaction_id
                .parse()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            global_position,
        })
    })
    .transpose()
}
