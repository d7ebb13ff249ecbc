//! The projector runtime.
//!
//! Each projector follows the event log in commit order (see [`crate::event_store::log`])
//! and applies a batch of events and its checkpoint in one transaction, so
//! every event has its effect exactly once. It wakes when this process
//! appends and on `LISTEN shop_events` for other processes' appends (see
//! [`crate::event_store::wake`]), with a poll interval as the fallback, and runs under a PostgreSQL advisory
//! lock held by the very connection that does its work: any number of `shop`
//! processes can run the same projectors, exactly one runs each, and when its
//! process dies the lock is released with the connection and another takes
//! over.
//!
//! Faults: a database error rolls the batch back and retries with backoff;
//! the server is never taken down. An event the projector cannot apply (a
//! poison event) is recorded in `projector_dead_letters`; the projector then
//! stops (the default) or skips it, per projector, while the others go on.
//!
//! Workflows ([`Projector::workflow`] is `Some`) run under the same lock,
//! checkpoint and dead letters, but not in batch transactions: their runner
//! ([`crate::workflows::lanes`]) acts on independent orders at once and
//! holds no transaction open while it waits on commands or outside parties,
//! so no read model waits for a workflow.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::{Acquire, Connection, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::event_store::log::{read_after, Checkpoint, StoredEvent};

/// The channel appending processes notify (see [`crate::event_store::wake`]).
pub const EVENTS_CHANNEL: &str = crate::event_store::wake::CHANNEL;

/// How long a batch in progress may go on after shutdown was asked for.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// First key of every projector's advisory lock ("shop" in ASCII).
const LOCK_NAMESPACE: i32 = 0x73686f70;

/// What to do with an event a projector cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonPolicy {
    /// Record it and stop this projector until an operator retries or skips.
    Stop,
    /// Record it and go on with the next event.
    Skip,
}

/// Why an event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event cannot be applied, now or ever (bad payload, broken rule).
    #[error("{0}")]
    Poison(String),
    /// The database failed; the batch is retried.
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        // Data exceptions (22) and integrity violations (23) come from the
        // event itself and would fail on every retry.
        if let sqlx::Error::Database(db) = &error {
            if db
                .code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
            {
                return ApplyError::Poison(db.message().to_string());
            }
        }
        if let sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) = &error {
            return ApplyError::Poison(error.to_string());
        }
        ApplyError::Database(error)
    }
}

impl From<serde_json::Error> for ApplyError {
    fn from(error: serde_json::Error) -> Self {
        ApplyError::Poison(format!("cannot decode the event: {error}"))
    }
}

/// A read model builder: turns events into rows.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the checkpoint's key and the operator's handle.
    fn name(&self) -> &'static str;
    /// Raised when the read model's shape changes.
    fn version(&self) -> i32 {
        1
    }
    fn poison_policy(&self) -> PoisonPolicy {
        PoisonPolicy::Stop
    }
    /// The read-model tables this projector alone writes (in the `public`
    /// schema). A rebuild builds copies of them and swaps them in. None: not
    /// rebuildable (a workflow, whose effects are commands, not rows).
    fn tables(&self) -> &'static [&'static str];
    /// Whether this projector cares about events of `aggregate_type`.
    fn handles(&self, aggregate_type: &str) -> bool;
    /// Applies one event inside the batch's transaction.
    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError>;
    /// Applies a whole batch: the events this projector handles, in commit
    /// order, inside the batch's transaction. A projector that can do better
    /// than one event at a time (group work, write set-based) overrides it.
    /// When it fails with a poison event, the runtime rolls it back and
    /// applies the batch one event at a time to find that event.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<(), ApplyError> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }
    /// `Some` for a workflow: the runtime runs it in lanes
    /// ([`crate::workflows::lanes`]) instead of batch transactions. `None`
    /// (every read model) by default.
    fn workflow(self: Arc<Self>) -> Option<Arc<dyn crate::workflows::lanes::Workflow>> {
        None
    }
}

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
            batch_size: 2_000,
            poll_interval: Duration::from_secs(1),
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

/// Runs projectors until cancelled.
pub struct ProjectorRuntime {
    pool: PgPool,
    projectors: Vec<Arc<dyn Projector>>,
    tasks: Vec<Arc<dyn BackgroundTask>>,
    config: RuntimeConfig,
}

impl ProjectorRuntime {
    pub fn new(pool: PgPool, projectors: Vec<Arc<dyn Projector>>, config: RuntimeConfig) -> Self {
        Self {
            pool,
            projectors,
            tasks: Vec::new(),
            config,
        }
    }

    /// Adds a task to run (and cancel) with the projectors.
    pub fn with_task(mut self, task: Arc<dyn BackgroundTask>) -> Self {
        self.tasks.push(task);
        self
    }

    /// The projectors this runtime runs.
    pub fn projectors(&self) -> &[Arc<dyn Projector>] {
        &self.projectors
    }

    /// Runs every projector (and the notification listener) until `shutdown`
    /// is cancelled; in-flight batches finish or roll back.
    pub async fn run(self, shutdown: CancellationToken) {
        let wake = crate::event_store::wake::signal();
        let mut tasks = JoinSet::new();
        tasks.spawn(listen(self.pool.clone(), wake, shutdown.clone()));
        for task in self.tasks {
            tasks.spawn(task.run(shutdown.clone()));
        }
        for projector in self.projectors {
            tasks.spawn(crate::rebuild::upgrade_when_needed(
                self.pool.clone(),
                projector.clone(),
                self.config.lock_retry,
                self.config.instance.clone(),
                shutdown.clone(),
            ));
            let worker = Worker {
                pool: self.pool.clone(),
                projector,
                config: self.config.clone(),
                wake,
                shutdown: shutdown.clone(),
            };
            tasks.spawn(worker.run());
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Wakes the workers on every notification of the events channel.
async fn listen(pool: PgPool, wake: &'static Notify, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(EVENTS_CHANNEL).await?;
            // A notification may have been missed while not listening.
            wake.notify_waiters();
            loop {
                listener.recv().await?;
                wake.notify_waiters();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            result = attempt => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, ?backoff, "event listener lost its connection; projectors poll meanwhile");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

struct Worker {
    pool: PgPool,
    projector: Arc<dyn Projector>,
    config: RuntimeConfig,
    wake: &'static Notify,
    shutdown: CancellationToken,
}

impl Worker {
    async fn run(self) {
        let name = self.projector.name();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.hold_and_run().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(projector = name, error = %e, ?backoff, "projector hit a database error; retrying");
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    /// Takes the projector's lock on a dedicated connection, then follows the
    /// log on that connection until shutdown (Ok) or a database error (Err:
    /// the connection, and with it the lock, is dropped).
    async fn hold_and_run(&self) -> Result<(), sqlx::Error> {
        let name = self.projector.name();
        let options = (*self.pool.connect_options())
            .clone()
            .application_name(&format!("shop projector {name} {}", self.config.instance));
        let mut conn = PgConnection::connect_with(&options).await?;
        loop {
            let (locked,): (bool,) =
                sqlx::query_as("SELECT pg_try_advisory_lock($1, hashtext($2))")
                    .bind(LOCK_NAMESPACE)
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await?;
            if locked {
                break;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.config.lock_retry) => {}
            }
        }
        tracing::info!(projector = name, "running projector");
        if let Some(workflow) = self.projector.clone().workflow() {
            return crate::workflows::lanes::run(
                &mut conn,
                self.projector.as_ref(),
                workflow,
                &self.pool,
                &self.config,
                self.wake,
                &self.shutdown,
            )
            .await;
        }
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // At shutdown a batch in progress gets STOP_GRACE to finish; then
            // it is abandoned: its transaction rolls back with the
            // connection, and the next start applies it again (a workflow's
            // commands are idempotent, so nothing happens twice).
            let read = tokio::select! {
                read = step(&mut conn, self.projector.as_ref(), self.config.batch_size) => read?,
                _ = async {
                    self.shutdown.cancelled().await;
                    tokio::time::sleep(STOP_GRACE).await;
                } => {
                    tracing::info!(projector = name, "stopping in the middle of a batch; it will be applied again");
                    return Ok(());
                }
            };
            if read == 0 {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return Ok(()),
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                }
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
) -> Result<usize, sqlx::Error> {
    let name = projector.name();
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, version) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(projector.version())
    .execute(&mut *conn)
    .await?;
    let (state, checkpoint) = load_checkpoint(conn, name).await?;
    if state != "running" {
        return Ok(0);
    }
    let events = read_after(&mut *conn, checkpoint, batch_size).await?;
    if !events.is_empty() {
        apply_batch(conn, projector, checkpoint, &events).await?;
    }
    Ok(events.len())
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
) -> Result<(), sqlx::Error> {
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
    tx.commit().await
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
) -> Result<Applied, sqlx::Error> {
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
        Err(ApplyError::Database(e)) => Err(e),
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
) -> Result<Applied, sqlx::Error> {
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
                Err(ApplyError::Database(e)) => return Err(e),
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
