//! Operating the projectors: status with lag, and the operator's answers to
//! a dead letter (retry or skip) or to a need to hold one still (pause,
//! resume). The running projector picks a change up at its next poll.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::event_store::log::Checkpoint;
use crate::event_store::lookups;

/// One projector as an operator sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectorStatus {
    pub name: String,
    pub version: i32,
    pub position: i64,
    /// Events in the store past the checkpoint.
    pub lag_events: i64,
    /// Age of the oldest event not yet applied (0 when caught up).
    pub lag_seconds: f64,
    /// `running`; `stopped` (halted on a poison event); `paused`.
    pub state: String,
    pub dead_letters: i64,
    pub events_applied: i64,
    pub updated_at: DateTime<Utc>,
}

/// name, version, checkpoint (transaction id as text, position), state, open
/// dead letters, events applied, last update.
type CheckpointRow = (String, i32, String, i64, String, i64, i64, DateTime<Utc>);

/// Every projector that has run against this database.
pub async fn status(pool: &PgPool) -> Result<Vec<ProjectorStatus>, sqlx::Error> {
    let rows: Vec<CheckpointRow> = sqlx::query_as(
        "SELECT c.name, c.version, c.transaction_id::text, c.global_position, c.state,
                (SELECT count(*) FROM projector_dead_letters d
                  WHERE d.projector = c.name AND d.resolution IS NULL),
                c.events_applied, c.updated_at
           FROM projector_checkpoints c
          ORDER BY c.name",
    )
    .fetch_all(pool)
    .await?;
    let mut statuses = Vec::with_capacity(rows.len());
    for (name, version, transaction_id, position, state, dead_letters, applied, updated_at) in rows
    {
        let checkpoint = Checkpoint {
            transaction_id: transaction_id
                .parse()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            global_position: position,
        };
        let (lag_events, lag_seconds) = lookups::lag(pool, checkpoint).await?;
        statuses.push(ProjectorStatus {
            name,
            version,
            position,
            lag_events,
            lag_seconds,
            state,
            dead_letters,
            events_applied: applied,
            updated_at,
        });
    }
    Ok(statuses)
}

/// Why an operator command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("there is no projector named {0:?}")]
    UnknownProjector(String),
    #[error("projector {0:?} has no open dead letter")]
    NoDeadLetter(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

async fn ensure_exists(pool: &PgPool, name: &str) -> Result<(), AdminError> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT name FROM projector_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    found
        .map(|_| ())
        .ok_or_else(|| AdminError::UnknownProjector(name.to_string()))
}

/// Marks the projector's open dead letters retried and lets it run again: it
/// re-reads from its checkpoint, so the poison event is applied anew (after
/// a fix was deployed, say).
pub async fn retry(pool: &PgPool, name: &str) -> Result<u64, AdminError> {
    ensure_exists(pool, name).await?;
    let mut tx = pool.begin().await?;
    let resolved = sqlx::query(
        "UPDATE projector_dead_letters SET resolution = 'retried', resolved_at = now()
          WHERE projector = $1 AND resolution IS NULL",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE projector_checkpoints SET state = 'running', updated_at = now() WHERE name = $1 AND state = 'stopped'")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(resolved)
}

/// Skips the event the projector halted on: its checkpoint moves just past
/// it and the projector runs again. Returns the skipped event's position.
pub async fn skip(pool: &PgPool, name: &str) -> Result<i64, AdminError> {
    ensure_exists(pool, name).await?;
    let mut tx = pool.begin().await?;
    let dead: Option<(i64, i64)> = sqlx::query_as(
        "SELECT d.id, d.global_position FROM projector_dead_letters d
          JOIN projector_checkpoints c ON c.name = d.projector
         WHERE d.projector = $1 AND d.resolution IS NULL
           AND (d.transaction_id, d.global_position) > (c.transaction_id, c.global_position)
         ORDER BY d.transaction_id, d.global_position
         LIMIT 1
         FOR UPDATE OF d, c",
    )
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, position)) = dead else {
        return Err(AdminError::NoDeadLetter(name.to_string()));
    };
    sqlx::query(
        "UPDATE projector_checkpoints c
            SET transaction_id = d.transaction_id, global_position = d.global_position,
                state = CASE WHEN c.state = 'stopped' THEN 'running' ELSE c.state END,
                updated_at = now()
           FROM projector_dead_letters d
          WHERE c.name = $1 AND d.id = $2",
    )
    .bind(name)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE projector_dead_letters SET resolution = 'skipped', resolved_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(position)
}

/// Holds the projector still (it keeps its lock, applies nothing).
pub async fn pause(pool: &PgPool, name: &str) -> Result<(), AdminError> {
    set_state(pool, name, "paused", "running").await
}

/// Lets a paused projector run again.
pub async fn resume(pool: &PgPool, name: &str) -> Result<(), AdminError> {
    set_state(pool, name, "running", "paused").await
}

async fn set_state(pool: &PgPool, name: &str, to: &str, from: &str) -> Result<(), AdminError> {
    ensure_exists(pool, name).await?;
    sqlx::query("UPDATE projector_checkpoints SET state = $2, updated_at = now() WHERE name = $1 AND state = $3")
        .bind(name)
        .bind(to)
        .bind(from)
        .execute(pool)
        .await?;
    Ok(())
}

/// How far projector `name` is behind (events, seconds); `None` while it
/// has no checkpoint (it never ran here).
pub async fn lag_of(pool: &PgPool, name: &str) -> Result<Option<(i64, f64)>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM projector_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    let Some((transaction_id, global_position)) = row else {
        return Ok(None);
    };
    let checkpoint = Checkpoint {
        transaction_id: transaction_id
            .parse()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        global_position,
    };
    Ok(Some(lookups::lag(pool, checkpoint).await?))
}
