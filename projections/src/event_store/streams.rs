//! One aggregate's stream: loaded from its snapshot plus the events after it
//! (and the keyed-memory entries a command asks for) in one query, and
//! appended to, with several streams at once if need be, in one statement.
//!
//! A snapshot is a cache, never the truth: it is written after every
//! [`SNAPSHOT_AFTER`] events, in the same statement as the events it covers;
//! one that cannot be read (corrupt, or from an older shape of the state, see
//! `StoredAggregate::SNAPSHOT_VERSION`) or that claims events the stream does
//! not have is ignored and the aggregate is rebuilt from all its events. The
//! history, `as_of`, the audit trail and rebuilds read events only.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use cqrs_es::DomainEvent;
use domain::stored::StoredAggregate;
use serde_json::Value;
use sqlx::PgPool;

use super::chain::{link, Linked};

/// A snapshot is taken once a stream has this many events after its last
/// one: loading reads at most this many events past the snapshot.
pub const SNAPSHOT_AFTER: i64 = 20;

/// Why a stream could not be loaded or appended to.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Another command appended to one of the streams first.
    #[error("the aggregate changed concurrently")]
    Conflict,
    /// A stored event cannot be read as the aggregate's event type.
    #[error("cannot decode a stored event: {0}")]
    Decode(#[source] serde_json::Error),
    /// Personal fields cannot be encrypted or decrypted (a wrong master key).
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// A text in an event holds the NUL character, which PostgreSQL's
    /// `jsonb` (and so every reader of the log) cannot hold.
    #[error(transparent)]
    NulInText(#[from] NulInText),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A new event's payload holds the NUL character.
#[derive(Debug, thiserror::Error)]
#[error("a text holds the NUL character")]
pub struct NulInText;

/// Whether serialized JSON holds an escaped NUL character (`\u0000` that
/// is not itself an escaped backslash followed by `u0000`).
fn holds_nul(json: &str) -> bool {
    let bytes = json.as_bytes();
    json.match_indices("\\u0000").any(|(at, _)| {
        let backslashes = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        backslashes % 2 == 0
    })
}

/// An aggregate as its stream says now.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub aggregate: A,
    /// The sequence of its last event (0: no events).
    pub sequence: i64,
    /// The global position of its last event (0: no events).
    pub position: i64,
    /// The hash link of its last event, which the next event links to.
    pub last_link: Option<Vec<u8>>,
    /// The sequence the snapshot it was loaded from covers (0: none).
    pub snapshot_sequence: i64,
}

impl<A> Loaded<A> {
    pub fn exists(&self) -> bool {
        self.sequence > 0
    }
}

#[derive(sqlx::FromRow)]
struct LoadRow {
    kind: i32,
    sequence: Option<i64>,
    position: Option<i64>,
    event_type: Option<String>,
    event_version: Option<String>,
    body: Option<String>,
    hash: Option<Vec<u8>>,
    key: Option<String>,
    wrapped_key: Option<Vec<u8>>,
}

const LOAD: &str = "
WITH snap AS (
    SELECT last_sequence, payload FROM snapshots
     WHERE aggregate_type = $1 AND aggregate_id = $2 AND version = $3 AND $5)
SELECT 0 AS kind, last_sequence AS sequence, NULL::bigint AS position, NULL::text AS event_type,
       NULL::text AS event_version, payload::text AS body, NULL::bytea AS hash, NULL::text AS key,
       NULL::bytea AS wrapped_key
  FROM snap
UNION ALL
SELECT 1, e.sequence, e.global_position, e.event_type, e.event_version, e.payload::text, e.hash, NULL,
       k.wrapped_key
  FROM events e
  LEFT JOIN personal_data_keys k ON k.subject = e.personal_key
 WHERE e.aggregate_type = $1 AND e.aggregate_id = $2
   AND e.sequence >= COALESCE((SELECT last_sequence FROM snap), 0)
UNION ALL
SELECT 2, NULL, NULL, NULL, NULL, m.value::text, NULL, m.key, NULL
  FROM aggregate_memory m
 WHERE m.aggregate_type = $1 AND m.aggregate_id = $2 AND m.key = ANY($4) AND m.value IS NOT NULL
 ORDER BY kind, sequence";

/// Reads a stored event as `A`'s event type: decrypted and upcast (see
/// [`super::personal`]); `wrapped_key` is the stored key of the event's
/// `personal_key`.
pub fn decode<A: StoredAggregate>(
    event_type: &str,
    event_version: &str,
    payload: &str,
    wrapped_key: Option<&[u8]>,
) -> Result<A::Event, StreamError> {
    let mut value: Value = serde_json::from_str(payload).map_err(StreamError::Decode)?;
    let mut version = event_version.to_string();
    super::personal::open(A::TYPE, event_type, &mut version, &mut value, wrapped_key)?;
    serde_json::from_value(value).map_err(StreamError::Decode)
}

/// Loads aggregate `id` of type `A` from its snapshot and the events after
/// it, and hands it the keyed-memory entries named by `recall`.
pub async fn load<A: StoredAggregate>(
    pool: &PgPool,
    id: &str,
    recall: &[String],
) -> Result<Loaded<A>, StreamError> {
    match load_with(pool, id, recall, true).await? {
        Some(loaded) => Ok(loaded),
        None => {
            metrics::counter!("snapshots_ignored_total", "aggregate" => A::TYPE).increment(1);
            load_with(pool, id, recall, false)
                .await?
                .ok_or_else(|| unreachable_without_snapshot::<A>(id))
        }
    }
}

fn unreachable_without_snapshot<A: StoredAggregate>(id: &str) -> StreamError {
    // Without a snapshot there is nothing to ignore; `load_with` only
    // answers None when it read one.
    StreamError::Database(sqlx::Error::Protocol(format!(
        "{} {id}: a snapshot was ignored without one being read",
        A::TYPE
    )))
}

/// The state a snapshot holds, when it is exactly what serializing that state
/// gives: serde would read a JSON object of another shape into a state of
/// optional fields (unknown fields ignored, missing ones `None`), so a
/// snapshot that does not survive the round trip is not this state's.
pub fn read_snapshot<A: StoredAggregate>(body: &str) -> Option<A> {
    let stored: Value = serde_json::from_str(body).ok()?;
    let state: A = serde_json::from_value(stored.clone()).ok()?;
    (serde_json::to_value(&state).ok()? == stored).then_some(state)
}

/// `None`: the snapshot read cannot be used (the caller loads again
/// without it).
async fn load_with<A: StoredAggregate>(
    pool: &PgPool,
    id: &str,
    recall: &[String],
    use_snapshot: bool,
) -> Result<Option<Loaded<A>>, StreamError> {
    let rows: Vec<LoadRow> = sqlx::query_as(LOAD)
        .bind(A::TYPE)
        .bind(id)
        .bind(A::SNAPSHOT_VERSION)
        .bind(recall)
        .bind(use_snapshot)
        .fetch_all(pool)
        .await?;
    let mut loaded = Loaded {
        aggregate: A::default(),
        sequence: 0,
        position: 0,
        last_link: None,
        snapshot_sequence: 0,
    };
    let mut entries = Vec::new();
    let mut rows = rows.into_iter().peekable();
    if let Some(row) = rows.next_if(|r| r.kind == 0) {
        let snapshot_sequence = row.sequence.unwrap_or(0);
        let Some(aggregate) = read_snapshot::<A>(row.body.as_deref().unwrap_or("")) else {
            tracing::warn!(
                aggregate = A::TYPE,
                id,
                "ignoring a snapshot that cannot be read"
            );
            return Ok(None);
        };
        // The event the snapshot ends with gives the link to continue from.
        match rows.next_if(|r| r.kind == 1) {
            Some(last) if last.sequence == Some(snapshot_sequence) => {
                loaded.position = last.position.unwrap_or(0);
                loaded.last_link = last.hash;
            }
            _ => {
                tracing::warn!(
                    aggregate = A::TYPE,
                    id,
                    snapshot_sequence,
                    "ignoring a snapshot of events the stream does not have"
                );
                return Ok(None);
            }
        }
        loaded.aggregate = aggregate;
        loaded.sequence = snapshot_sequence;
        loaded.snapshot_sequence = snapshot_sequence;
    }
    for row in rows {
        match row.kind {
            1 => {
                let event = decode::<A>(
                    row.event_type.as_deref().unwrap_or(""),
                    row.event_version.as_deref().unwrap_or(""),
                    row.body.as_deref().unwrap_or(""),
                    row.wrapped_key.as_deref(),
                )?;
                cqrs_es::Aggregate::apply(&mut loaded.aggregate, event);
                loaded.sequence = row.sequence.unwrap_or(loaded.sequence);
                loaded.position = row.position.unwrap_or(loaded.position);
                loaded.last_link = row.hash;
            }
            _ => {
                if let (Some(key), Some(body)) = (row.key, row.body) {
                    let value = serde_json::from_str(&body).map_err(StreamError::Decode)?;
                    entries.push((key, value));
                }
            }
        }
    }
    if !entries.is_empty() {
        loaded.aggregate.recall(entries);
    }
    Ok(Some(loaded))
}

/// New events for one stream, decided on `loaded`.
#[derive(Debug)]
pub struct NewEvents {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// The sequence of the stream's last event when it was loaded.
    pub after_sequence: i64,
    pub prev_link: Option<Vec<u8>>,
    /// `(event_type, event_version, payload)`.
    pub events: Vec<(String, String, String)>,
    /// The metadata every event of this stream carries (a JSON object).
    pub metadata: String,
    /// Keyed-memory entries the events set (`Some`) or forget (`None`).
    pub memory: Vec<(String, Option<Value>)>,
    /// The state after the events, when a snapshot is due:
    /// `(snapshot version, state as JSON)`.
    pub snapshot: Option<(i32, String)>,
}

impl NewEvents {
    /// The new events of `aggregate` (the state after them), decided on
    /// `loaded`, with `metadata` on each.
    pub fn of<A: StoredAggregate>(
        id: &str,
        loaded: &Loaded<A>,
        aggregate: &A,
        events: &[A::Event],
        metadata: &BTreeMap<String, String>,
    ) -> Result<Self, serde_json::Error> {
        let mut memory = BTreeMap::new();
        let mut serialized = Vec::with_capacity(events.len());
        for event in events {
            for (key, value) in A::remembers(event) {
                memory.insert(key, value);
            }
            serialized.push((
                event.event_type(),
                event.event_version(),
                serde_json::to_string(event)?,
            ));
        }
        let last_sequence = loaded.sequence + events.len() as i64;
        let snapshot = if last_sequence - loaded.snapshot_sequence >= SNAPSHOT_AFTER {
            Some((A::SNAPSHOT_VERSION, serde_json::to_string(aggregate)?))
        } else {
            None
        };
        Ok(Self {
            aggregate_type: A::TYPE,
            aggregate_id: id.to_string(),
            after_sequence: loaded.sequence,
            prev_link: loaded.last_link.clone(),
            events: serialized,
            metadata: serde_json::to_string(metadata)?,
            memory: memory.into_iter().collect(),
            snapshot,
        })
    }
}

const APPEND: &str = "
WITH appended AS (
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                        payload, metadata, recorded_at, hash, personal_key)
    SELECT t, i, s, et, ev, p::json, m::json, $8, h, pk
      FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                  $7::text[], $9::bytea[], $19::text[])
           WITH ORDINALITY AS u(t, i, s, et, ev, p, m, h, pk, n)
     ORDER BY n
    RETURNING global_position, aggregate_type, aggregate_id, sequence
), remembered AS (
    INSERT INTO aggregate_memory (aggregate_type, aggregate_id, key, value)
    SELECT * FROM UNNEST($10::text[], $11::text[], $12::text[], $13::text[]::jsonb[])
    ON CONFLICT (aggregate_type, aggregate_id, key) DO UPDATE SET value = EXCLUDED.value
), snapshotted AS (
    INSERT INTO snapshots (aggregate_type, aggregate_id, version, last_sequence, payload)
    SELECT t, i, v, s, p::json
      FROM UNNEST($14::text[], $15::text[], $16::int[], $17::bigint[], $18::text[]) AS u(t, i, v, s, p)
    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
       SET version = EXCLUDED.version, last_sequence = EXCLUDED.last_sequence,
           payload = EXCLUDED.payload, taken_at = now()
)
SELECT global_position FROM appended ORDER BY global_position";

/// Appends the new events of every stream in one statement (one
/// transaction): all of them or none. Answers the global position of each
/// event, in the order given. A stream that gained an event since it was
/// loaded fails the whole append with [`StreamError::Conflict`].
pub async fn append(pool: &PgPool, streams: &[NewEvents]) -> Result<Vec<i64>, StreamError> {
    if streams
        .iter()
        .flat_map(|s| s.events.iter())
        .any(|(_, _, payload)| holds_nul(payload))
    {
        return Err(NulInText.into());
    }
    let plain: Vec<(&str, &str, &str)> = streams
        .iter()
        .flat_map(|s| {
            s.events.iter().map(|(event_type, _, payload)| {
                (s.aggregate_type, event_type.as_str(), payload.as_str())
            })
        })
        .collect();
    let sealed = super::personal::seal(pool, &plain).await?;
    let mut sealed = sealed.iter();
    let recorded_at: DateTime<Utc> = Utc::now().trunc_subsecs(6);
    let micros = recorded_at.timestamp_micros();
    let mut columns = AppendColumns::default();
    for stream in streams {
        let mut prev = stream.prev_link.clone();
        for (offset, (event_type, event_version, _)) in stream.events.iter().enumerate() {
            let Some(stored) = sealed.next() else {
                unreachable!("one sealed payload per event");
            };
            let payload = &stored.payload;
            let sequence = stream.after_sequence + 1 + offset as i64;
            let hash = link(
                prev.as_deref(),
                &Linked {
                    aggregate_type: stream.aggregate_type,
                    aggregate_id: &stream.aggregate_id,
                    sequence,
                    event_type,
                    event_version,
                    payload,
                    metadata: &stream.metadata,
                    recorded_micros: micros,
                },
            );
            columns.types.push(stream.aggregate_type);
            columns.ids.push(&stream.aggregate_id);
            columns.sequences.push(sequence);
            columns.event_types.push(event_type);
            columns.event_versions.push(event_version);
            columns.payloads.push(payload);
            columns.personal_keys.push(stored.personal_key.as_deref());
            columns.metadata.push(&stream.metadata);
            columns.hashes.push(hash.clone());
            prev = Some(hash);
        }
        for (key, value) in &stream.memory {
            columns.memory_types.push(stream.aggregate_type);
            columns.memory_ids.push(&stream.aggregate_id);
            columns.memory_keys.push(key);
            columns
                .memory_values
                .push(value.as_ref().map(Value::to_string));
        }
        if let Some((version, state)) = &stream.snapshot {
            columns.snapshot_types.push(stream.aggregate_type);
            columns.snapshot_ids.push(&stream.aggregate_id);
            columns.snapshot_versions.push(*version);
            columns
                .snapshot_sequences
                .push(stream.after_sequence + stream.events.len() as i64);
            columns.snapshot_states.push(state);
        }
    }
    let result = sqlx::query_scalar::<_, i64>(APPEND)
        .bind(&columns.types)
        .bind(&columns.ids)
        .bind(&columns.sequences)
        .bind(&columns.event_types)
        .bind(&columns.event_versions)
        .bind(&columns.payloads)
        .bind(&columns.metadata)
        .bind(recorded_at)
        .bind(&columns.hashes)
        .bind(&columns.memory_types)
        .bind(&columns.memory_ids)
        .bind(&columns.memory_keys)
        .bind(&columns.memory_values)
        .bind(&columns.snapshot_types)
        .bind(&columns.snapshot_ids)
        .bind(&columns.snapshot_versions)
        .bind(&columns.snapshot_sequences)
        .bind(&columns.snapshot_states)
        .bind(&columns.personal_keys)
        .fetch_all(pool)
        .await;
    match result {
        Ok(positions) => Ok(positions),
        Err(sqlx::Error::Database(db)) if db.constraint() == Some("events_pkey") => {
            Err(StreamError::Conflict)
        }
        Err(e) => Err(StreamError::Database(e)),
    }
}

#[derive(Default)]
struct AppendColumns<'a> {
    types: Vec<&'a str>,
    ids: Vec<&'a str>,
    sequences: Vec<i64>,
    event_types: Vec<&'a str>,
    event_versions: Vec<&'a str>,
    payloads: Vec<&'a str>,
    personal_keys: Vec<Option<&'a str>>,
    metadata: Vec<&'a str>,
    hashes: Vec<Vec<u8>>,
    memory_types: Vec<&'a str>,
    memory_ids: Vec<&'a str>,
    memory_keys: Vec<&'a str>,
    memory_values: Vec<Option<String>>,
    snapshot_types: Vec<&'a str>,
    snapshot_ids: Vec<&'a str>,
    snapshot_versions: Vec<i32>,
    snapshot_sequences: Vec<i64>,
    snapshot_states: Vec<&'a str>,
}

/// Rebuilds an aggregate from its events alone (no snapshot), up to and
/// including sequence `up_to` when given: for history, `as_of` and checks
/// of the snapshots themselves. `None` when it has no events.
pub async fn replay<A: StoredAggregate>(
    pool: &PgPool,
    id: &str,
    up_to: Option<i64>,
) -> Result<Option<A>, StreamError> {
    let rows: Vec<(String, String, String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT e.event_type, e.event_version, e.payload::text, k.wrapped_key FROM events e
           LEFT JOIN personal_data_keys k ON k.subject = e.personal_key
          WHERE e.aggregate_type = $1 AND e.aggregate_id = $2
            AND ($3::bigint IS NULL OR e.sequence <= $3)
          ORDER BY e.sequence",
    )
    .bind(A::TYPE)
    .bind(id)
    .bind(up_to)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut aggregate = A::default();
    for (event_type, event_version, payload, wrapped_key) in rows {
        let event = decode::<A>(
            &event_type,
            &event_version,
            &payload,
            wrapped_key.as_deref(),
        )?;
        cqrs_es::Aggregate::apply(&mut aggregate, event);
    }
    Ok(Some(aggregate))
}

/// The sequence of the last event of an aggregate recorded at or before
/// `as_of` and at most `up_to` (each when given); `None` when there is none.
pub async fn sequence_at(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    as_of: Option<DateTime<Utc>>,
    up_to: Option<i64>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(sequence) FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
            AND ($3::timestamptz IS NULL OR recorded_at <= $3)
            AND ($4::bigint IS NULL OR sequence <= $4)",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(as_of)
    .bind(up_to)
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::holds_nul;

    #[test]
    fn an_escaped_nul_is_found_and_an_escaped_backslash_before_u0000_is_not() {
        let with_nul = serde_json::to_string(&serde_json::json!({"name": "a\u{0}b"})).unwrap();
        assert!(holds_nul(&with_nul));
        let literal = serde_json::to_string(&serde_json::json!({"name": "a\\u0000b"})).unwrap();
        assert!(!holds_nul(&literal));
        let both = serde_json::to_string(&serde_json::json!({"name": "\\\u{0}"})).unwrap();
        assert!(holds_nul(&both));
        assert!(!holds_nul("{\"name\":\"plain\"}"));
    }
}
