//! The batch runtime of read models.
//!
//! A read model follows the event log in commit order (see
//! [`crate::event_store::log`]) and applies a batch of events and its
//! checkpoint in one transaction, so every event has its effect exactly
//! once. It runs under the projector's PostgreSQL advisory lock, held by the
//! very connection that does its work and taken by the supervisor
//! ([`crate::supervisor`]), which also wakes it when events are appended.
//!
//! Faults: a database error, or an [`ApplyError::Retry`] (an outside party
//! down, a conflict), rolls the batch back and retries with backoff; the
//! server is never taken down. An event the projector cannot apply (a
//! poison event) is recorded in `projector_dead_letters`; the projector then
//! stops (the default) or skips it, per projector, while the others go on.
//!
//! Workflows ([`Projector::workflow`] is `Some`) share the checkpoint and the
//! dead letters kept here, but not the batch transactions: their runner
//! ([`crate::workflows::lanes`]) acts on independent orders at once and
//! holds no transaction open while it waits on commands or outside parties,
//! so no read model waits for a workflow.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Acquire, Connection, PgConnection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::event_store::log::{read_after_skipping, Checkpoint, StoredEvent};
use crate::projector::unhandled_types;
/// What a projector is; defined in [`crate::projector`] and named here too.
pub use crate::projector::{ApplyError, PoisonPolicy, Projector};

/// Why a step of a projector did not finish. Either way nothing of the
/// batch is kept, and the worker tries it again after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The projector asked for the batch to be tried again later
    /// ([`ApplyError::Retry`]).
    #[error("{0}")]
    Retry(String),
}

/// How long a batch in progress may go on after shutdown was asked for.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Default of [`RuntimeConfig::batch_size`] (`--projector-batch`).
pub const DEFAULT_BATCH_SIZE: i64 = 2_000;
/// Default of [`RuntimeConfig::poll_interval`], in milliseconds
/// (`--projector-poll-ms`).
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;

/// Timing of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Events read and applied per transaction.
    pub batch_size: i64,
    /// How long an idle projector waits for a notification before it looks
    /// at the log anyway.
    pub poll_interval: Duration,
    /// How often a standby instance tries to take a projector's lock.
    pub lock_retry: Duration,
    /// Longest wait between retries after database errors.
    pub max_backoff: Duration,
    /// Names this process in `pg_stat_activity` (`shop projector <name> <instance>`).
    pub instance: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            poll_interval: Duration::from_millis(DEFAULT_POLL_INTERVAL_MS),
            lock_retry: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            instance: format!("pid-{}", std::process::id()),
        }
    }
}

/// Work that runs next to the projectors, started and stopped with them
/// (e.g. the workflows' deadline poller).
#[async_trait]
pub trait BackgroundTask: Send + Sync + 'static {
    /// Runs until `shutdown` is cancelled.
    async fn run(self: Arc<Self>, shutdown: CancellationToken);
}

/// Follows the log for a read model until shutdown (Ok) or an error (Err,
/// see [`StepError`]): one batch transaction after the other, waiting for a wake-up
/// or the poll interval when caught up. `conn` holds the projector's lock.
pub(crate) async fn follow(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    config: &RuntimeConfig,
    wake: &'static Notify,
    shutdown: &CancellationToken,
) -> Result<(), StepError> {
    let name = projector.name();
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // At shutdown a batch in progress gets STOP_GRACE to finish; then
        // it is abandoned: its transaction rolls back with the
        // connection, and the next start applies it again (a workflow's
        // commands are idempotent, so nothing happens twice).
        let read = tokio::select! {
            read = step(&mut *conn, projector, config.batch_size) => read?,
            _ = async {
                shutdown.cancelled().await;
                tokio::time::sleep(STOP_GRACE).await;
            } => {
                tracing::info!(projector = name, "stopping in the middle of a batch; it will be applied again");
                return Ok(());
            }
        };
        if read == 0 {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = &mut notified => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
            }
        }
    }
}

/// One step of a projector: reads up to `batch_size` events after its
/// checkpoint and applies them with the checkpoint in one transaction.
/// Returns how many events were read (0: caught up, or halted). The caller
/// must hold the projector's lock (or be a test that runs it alone).
pub async fn step(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    batch_size: i64,
) -> Result<usize, StepError> {
    let name = projector.name();
    ensure_checkpoint(conn, projector).await?;
    let (state, checkpoint) = load_checkpoint(conn, name).await?;
    if state != "running" {
        return Ok(0);
    }
    let skip = unhandled_types(|aggregate_type| projector.handles(aggregate_type));
    let events = read_after_skipping(&mut *conn, checkpoint, batch_size, &skip).await?;
    if !events.is_empty() {
        apply_batch(conn, projector, checkpoint, &events).await?;
    }
    Ok(events.len())
}

/// Gives a projector its checkpoint row (at the start of the log) unless it
/// has one.
pub(crate) async fn ensure_checkpoint(
    conn: &mut PgConnection,
    projector: &dyn Projector,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, version) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(projector.name())
    .bind(projector.version())
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn load_checkpoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(String, Checkpoint), sqlx::Error> {
    let (state, transaction_id, global_position): (String, String, i64) = sqlx::query_as(
        "SELECT state, transaction_id::text, global_position FROM projector_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_one(conn)
    .await?;
    let transaction_id = transaction_id
        .parse()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok((
        state,
        Checkpoint {
            transaction_id,
            global_position,
        },
    ))
}

/// Applies `events` (read after `from`) and moves the checkpoint, in one
/// transaction. Stops early at a poison event under [`PoisonPolicy::Stop`].
pub async fn apply_batch(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    from: Checkpoint,
    events: &[StoredEvent],
) -> Result<(), StepError> {
    let name = projector.name();
    let mut tx = Connection::begin(&mut *conn).await?;
    // Whoever holds the lock owns the checkpoint; this guards against a
    // checkpoint moved by an operator meanwhile.
    let (_, current) = load_checkpoint_for_update(&mut tx, name).await?;
    if current != from {
        return Ok(());
    }
    let mut last = from;
    let mut applied = 0_i64;
    let mut stop = false;
    let mut rest = events;
    while !rest.is_empty() {
        let outcome = apply_chunk(&mut tx, projector, rest).await?;
        applied += outcome.applied;
        last = outcome.last.unwrap_or(last);
        let Some((index, error)) = outcome.poison else {
            break;
        };
        let event = &rest[index];
        tracing::error!(projector = name, position = event.global_position, event_type = %event.event_type, %error, "poison event");
        record_dead_letter(&mut tx, name, event, &error).await?;
        match projector.poison_policy() {
            PoisonPolicy::Skip => {
                last = event.checkpoint();
                rest = &rest[index + 1..];
            }
            PoisonPolicy::Stop => {
                stop = true;
                break;
            }
        }
    }
    sqlx::query(
        "UPDATE projector_checkpoints
            SET transaction_id = $2::text::xid8, global_position = $3,
                events_applied = events_applied + $4,
                state = CASE WHEN $5 THEN 'stopped' ELSE state END,
                updated_at = now()
          WHERE name = $1",
    )
    .bind(name)
    .bind(last.transaction_id.to_string())
    .bind(last.global_position)
    .bind(applied)
    .bind(stop)
    .execute(&mut *tx)
    .await?;
    Ok(tx.commit().await?)
}

/// Applies `events` in order on `conn` (inside the caller's transaction) up
/// to the first poison event, which it names and does not apply.
///
/// The events the projector handles go to it as one batch, in a savepoint;
/// only when the batch has a poison event is it rolled back and applied
/// again event by event, each in a savepoint, to find that event and keep
/// the ones before it. Whatever the batch boundaries, the outcome is the
/// same: a projector that folds state (`orders`) checks each aggregate's
/// sequence against the one its row keeps.
pub(crate) async fn apply_chunk(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    events: &[StoredEvent],
) -> Result<Applied, StepError> {
    let handled: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| projector.handles(&e.aggregate_type))
        .collect();
    let mut whole = Acquire::begin(&mut *conn).await?;
    match projector.apply_batch(&mut whole, &handled).await {
        Ok(()) => {
            whole.commit().await?;
            Ok(Applied {
                last: events.last().map(StoredEvent::checkpoint),
                applied: handled.len() as i64,
                poison: None,
            })
        }
        Err(ApplyError::Database(e)) => Err(e.into()),
        Err(ApplyError::Retry(reason)) => Err(StepError::Retry(reason)),
        Err(ApplyError::Poison(_)) => {
            whole.rollback().await?;
            apply_events(conn, projector, events).await
        }
    }
}

/// What applying a run of events came to.
pub(crate) struct Applied {
    /// The last event passed (applied, or not of interest), if any.
    pub last: Option<Checkpoint>,
    /// Events applied.
    pub applied: i64,
    /// The poison event that ended the run: its index and the error.
    pub poison: Option<(usize, String)>,
}

/// Applies `events` one at a time, each in a savepoint, up to the first
/// poison event: its partial writes are undone alone and the transaction
/// stays usable.
async fn apply_events(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    events: &[StoredEvent],
) -> Result<Applied, StepError> {
    let mut outcome = Applied {
        last: None,
        applied: 0,
        poison: None,
    };
    for (index, event) in events.iter().enumerate() {
        if projector.handles(&event.aggregate_type) {
            let mut savepoint = Acquire::begin(&mut *conn).await?;
            let result = projector.apply(&mut savepoint, event).await;
            if result.is_ok() {
                savepoint.commit().await?;
            } else {
                savepoint.rollback().await?;
            }
            match result {
                Ok(()) => outcome.applied += 1,
                Err(ApplyError::Database(e)) => return Err(e.into()),
                Err(ApplyError::Retry(reason)) => return Err(StepError::Retry(reason)),
                Err(ApplyError::Poison(error)) => {
                    outcome.poison = Some((index, error));
                    return Ok(outcome);
                }
            }
        }
        outcome.last = Some(event.checkpoint());
    }
    Ok(outcome)
}

async fn load_checkpoint_for_update(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(String, Checkpoint), sqlx::Error> {
    sqlx::query("SELECT 1 FROM projector_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    load_checkpoint(conn, name).await
}

pub(crate) async fn record_dead_letter(
    conn: &mut PgConnection,
    projector: &str,
    event: &StoredEvent,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector_dead_letters
             (projector, global_position, transaction_id, aggregate_type, aggregate_id, sequence, event_type, error)
         VALUES ($1, $2, $3::text::xid8, $4, $5, $6, $7, $8)
         ON CONFLICT (projector, global_position) DO UPDATE
            SET error = EXCLUDED.error, recorded_at = now(), resolution = NULL, resolved_at = NULL",
    )
    .bind(projector)
    .bind(event.global_position)
    .bind(event.transaction_id.to_string())
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.sequence)
    .bind(&event.event_type)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}
