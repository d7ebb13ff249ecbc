//! The audit seal: a projector that follows the log in commit order and
//! records, per aggregate, the last event it has sealed (its sequence and
//! hash link) in `sealed_streams`.
//!
//! The hash chain shows a changed, removed or reordered event, but not a
//! stream cut at its end: the shorter chain still holds. The seal remembers
//! where each stream had got to, so [`super::verify`] can tell that its last
//! events are gone. It costs the write path nothing: appends do not touch
//! it; the seal catches up after they commit, like any projector, one upsert
//! per batch (the batch is folded in memory first).
//!
//! An event that does not continue its sealed stream (its sequence is not
//! the sealed one plus one, or a stream the seal has not seen does not start
//! at 1) is a poison event: the seal records it as a dead letter and stops
//! (`/health/ready` then names it) with the seal as it was, which is the
//! evidence `shop audit verify` reports. Skipping that dead letter
//! (`shop projections skip audit_seal`) accepts the log as it now stands.
//!
//! Its `tables()` is empty: it is never rebuilt from the log, which would
//! seal a tampered log as it stands.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};

use crate::event_store::log::StoredEvent;
use crate::projector::{ApplyError, Projector};

/// How many streams are sealed.
pub async fn sealed_streams(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM sealed_streams")
        .fetch_one(pool)
        .await
}

pub const NAME: &str = "audit_seal";

/// The projector that seals every aggregate's stream.
pub struct AuditSeal;

/// Where one stream's seal stands after the events folded so far.
struct Seal<'a> {
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    last_sequence: i64,
    last_hash: &'a [u8],
}

#[async_trait]
impl Projector for AuditSeal {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Never rebuilt: a rebuild would seal a tampered log.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Every aggregate's stream is sealed.
    fn handles(&self, _aggregate_type: &str) -> bool {
        true
    }

    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event]).await
    }

    /// The batch in one read and one write; a batch with an event that does
    /// not continue its stream is poison as a whole, and the runtime then
    /// applies it event by event to find that event.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<(), ApplyError> {
        match self.seal(conn, events).await? {
            None => Ok(()),
            Some((_, error)) => Err(ApplyError::Poison(error)),
        }
    }
}

impl AuditSeal {
    /// Reads the seals of the batch's streams, folds the batch onto them up
    /// to the first event that does not continue its stream, and writes the
    /// new seals in one statement. Answers that event's index and why.
    async fn seal(
        &self,
        conn: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<Option<(usize, String)>, ApplyError> {
        if events.is_empty() {
            return Ok(None);
        }
        let (types, ids): (Vec<&str>, Vec<&str>) = {
            let mut seen = HashSet::new();
            events
                .iter()
                .map(|e| (e.aggregate_type.as_str(), e.aggregate_id.as_str()))
                .filter(|key| seen.insert(*key))
                .unzip()
        };
        let stored: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT s.aggregate_type, s.aggregate_id, s.last_sequence
               FROM sealed_streams s
               JOIN UNNEST($1::text[], $2::text[]) AS k(t, i)
                 ON s.aggregate_type = k.t AND s.aggregate_id = k.i",
        )
        .bind(&types)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        // Each stream's last sealed sequence, as the fold goes on.
        let mut sealed: HashMap<(&str, &str), i64> = stored
            .iter()
            .map(|(t, i, sequence)| ((t.as_str(), i.as_str()), *sequence))
            .collect();

        let mut seals: Vec<Seal<'_>> = Vec::new();
        let mut seal_of: HashMap<(&str, &str), usize> = HashMap::new();
        let mut poison = None;
        for (index, event) in events.iter().enumerate() {
            let key = (event.aggregate_type.as_str(), event.aggregate_id.as_str());
            let last = sealed.get(&key).copied();
            if event.sequence != last.map_or(1, |last| last + 1) {
                poison = Some((index, does_not_continue(event, last)));
                break;
            }
            sealed.insert(key, event.sequence);
            let seal = Seal {
                aggregate_type: key.0,
                aggregate_id: key.1,
                last_sequence: event.sequence,
                last_hash: &event.hash,
            };
            match seal_of.get(&key) {
                Some(&at) => seals[at] = seal,
                None => {
                    seal_of.insert(key, seals.len());
                    seals.push(seal);
                }
            }
        }
        if !seals.is_empty() {
            write(conn, &seals).await?;
        }
        Ok(poison)
    }
}

/// Why `event` cannot be sealed after `last` (the stream's sealed sequence).
fn does_not_continue(event: &StoredEvent, last: Option<i64>) -> String {
    let stream = format!("{} {}", event.aggregate_type, event.aggregate_id);
    match last {
        None => format!(
            "{stream}: its event {} is the first the audit seal sees of it, but a stream starts at event 1",
            event.sequence
        ),
        Some(last) => format!(
            "{stream}: its event {} does not continue the stream sealed up to event {last}: the log was changed behind the seal",
            event.sequence
        ),
    }
}

/// Moves the seals forward, in one statement.
async fn write(conn: &mut PgConnection, seals: &[Seal<'_>]) -> Result<(), ApplyError> {
    let types: Vec<&str> = seals.iter().map(|s| s.aggregate_type).collect();
    let ids: Vec<&str> = seals.iter().map(|s| s.aggregate_id).collect();
    let sequences: Vec<i64> = seals.iter().map(|s| s.last_sequence).collect();
    let hashes: Vec<&[u8]> = seals.iter().map(|s| s.last_hash).collect();
    let written = sqlx::query(
        "INSERT INTO sealed_streams (aggregate_type, aggregate_id, last_sequence, last_hash)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bytea[])
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
            SET last_sequence = EXCLUDED.last_sequence, last_hash = EXCLUDED.last_hash,
                sealed_at = now()
          WHERE sealed_streams.last_sequence < EXCLUDED.last_sequence",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&sequences)
    .bind(&hashes)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if written != seals.len() as u64 {
        // Only this projector (under its lock) writes the seals; someone
        // else did meanwhile. The batch is read and folded again.
        return Err(ApplyError::Retry(format!(
            "{} of {} seals moved while sealing",
            seals.len() as u64 - written,
            seals.len()
        )));
    }
    Ok(())
}
