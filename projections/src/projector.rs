//! What follows the event log: the [`Projector`] a read model implements,
//! the [`Workflow`] a process manager adds to it, and why an event was not
//! applied ([`ApplyError`]).
//!
//! A leaf: it names only the stored event, so the runners
//! ([`crate::runtime`], [`crate::workflows::lanes`], [`crate::rebuild`]) and
//! the projectors all depend on it and never on each other.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::event_store::log::StoredEvent;

/// The aggregate types (of [`domain::AGGREGATE_TYPES`]) whose events
/// `handles` turns away: a runner reads those events without their payloads
/// ([`crate::event_store::log::read_after_skipping`]). A type the domain does
/// not list is read whole.
pub fn unhandled_types(handles: impl Fn(&str) -> bool) -> Vec<&'static str> {
    domain::AGGREGATE_TYPES
        .iter()
        .copied()
        .filter(|aggregate_type| !handles(aggregate_type))
        .collect()
}

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
    /// Not now, but later: an outside party (the payment gateway) is down,
    /// or the aggregates kept changing under the command (concurrency
    /// conflicts). Retried with backoff exactly like [`ApplyError::Database`].
    #[error("{0}")]
    Retry(String),
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
    /// `Some` for a workflow: it runs in lanes ([`crate::workflows::lanes`])
    /// instead of batch transactions. `None` (every read model) by default.
    fn workflow(self: Arc<Self>) -> Option<Arc<dyn Workflow>> {
        None
    }
}

/// Bounds of a workflow's runner.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    /// Lanes (orders) acting at once.
    pub lanes: usize,
    /// Events read but not finished, at most.
    pub window: usize,
    /// Shortest time between two checkpoint writes while events finish.
    pub checkpoint_every: Duration,
}

/// Default of [`LaneConfig::lanes`] (`--workflow-lanes`).
pub const DEFAULT_LANES: usize = 32;

impl Default for LaneConfig {
    fn default() -> Self {
        Self {
            lanes: DEFAULT_LANES,
            window: 1024,
            checkpoint_every: Duration::from_millis(100),
        }
    }
}

/// A projector whose effects are commands, run in lanes.
pub trait Workflow: Send + Sync + 'static {
    fn lane_config(&self) -> LaneConfig {
        LaneConfig::default()
    }
    /// Starts a pass over the log from the checkpoint: the state its lanes
    /// share (group stages), dropped when the pass ends.
    fn start(self: Arc<Self>) -> Arc<dyn Pass>;
}

/// One pass of a workflow over the log.
#[async_trait]
pub trait Pass: Send + Sync + 'static {
    /// Sees each event the workflow handles as it is read, in commit order,
    /// before any lane acts on it (e.g. to queue a request in that order).
    /// It must not wait.
    fn admit(&self, _event: &Arc<StoredEvent>) {}
    /// Acts on one event. A lane's events come one at a time, in commit
    /// order; an event may come again (after an error or a crash).
    async fn act(&self, event: &Arc<StoredEvent>) -> Result<(), ApplyError>;
}
