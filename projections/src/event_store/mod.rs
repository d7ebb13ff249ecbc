//! The event store: the one module that names the `events` table.
//!
//! Commands run on cqrs-es aggregates ([`cqrs_es::Aggregate`]: `handle`
//! decides, `apply` folds) through [`CommandBus`], which
//! 1. loads the aggregate from its snapshot plus the events after it and the
//!    keyed-memory entries the command asks for, in one query
//!    ([`streams::load`]);
//! 2. lets it decide the command;
//! 3. appends the new events with their metadata, hash links, keyed memory
//!    and (when due) a new snapshot in one statement, which answers the
//!    events' global positions ([`streams::append`]); a lost race for the
//!    next sequence is a conflict, retried on fresh state when the caller
//!    says that is safe;
//! 4. wakes the projectors ([`wake`]) without a lock on every commit.
//!
//! # Layout
//! - `streams`: loading (snapshots, keyed memory), appending, replaying an
//!   aggregate from its events alone (history, `as_of`).
//! - `chain`: the tamper-evidence hash link of an event.
//! - `personal`: the stored form of events: personal fields encrypted on the
//!   way in, decrypted (or erased) and upcast to the current version on the
//!   way out, for every reader.
//! - `log`: the global log in commit order, for projectors.
//! - `lookups`: the other questions asked of stored events (idempotent
//!   replays, history and the auditors' view, lag, the hash chain walk).
//! - `wake`: waking projectors in this process and in others.

pub mod chain;
pub mod log;
pub mod lookups;
pub mod personal;
pub mod streams;
pub mod wake;

use std::collections::BTreeMap;
use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::AggregateError;
use domain::metadata::CommandMetadata;
use domain::stored::StoredAggregate;
use sqlx::PgPool;

use streams::{Loaded, NewEvents, StreamError};
use wake::Waker;

/// How many times a command is decided again after losing an optimistic
/// concurrency race, when the caller says that is safe.
pub const MAX_CONFLICT_RETRIES: usize = 5;

/// What a successful command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Global position of the command's last event; when the command changed
    /// nothing (an idempotent repeat), the aggregate's latest position, so a
    /// read-your-writes query still waits for the state that made it a no-op.
    /// Zero when the aggregate has no events at all.
    pub position: i64,
    /// Whether the command wrote any event.
    pub wrote_events: bool,
}

/// Executes commands for one aggregate type.
pub struct CommandBus<A: StoredAggregate> {
    pool: PgPool,
    services: Arc<A::Services>,
    waker: Waker,
}

impl<A: StoredAggregate> Clone for CommandBus<A> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            services: Arc::clone(&self.services),
            waker: self.waker.clone(),
        }
    }
}

/// A store failure in the shape callers of cqrs-es expect.
fn aggregate_error<E: std::error::Error>(error: StreamError) -> AggregateError<E> {
    match error {
        StreamError::Conflict => AggregateError::AggregateConflict,
        StreamError::Decode(e) => AggregateError::DeserializationError(Box::new(e)),
        StreamError::NulInText(e) => AggregateError::UnexpectedError(Box::new(e)),
        StreamError::Database(e) if is_connection_error(&e) => {
            AggregateError::DatabaseConnectionError(Box::new(e))
        }
        StreamError::Database(e) => AggregateError::UnexpectedError(Box::new(e)),
        StreamError::Keys(crate::keys::KeyError::Database(e)) if is_connection_error(&e) => {
            AggregateError::DatabaseConnectionError(Box::new(e))
        }
        StreamError::Keys(e) => AggregateError::UnexpectedError(Box::new(e)),
    }
}

/// Whether `error` says the database could not be reached or used (as
/// opposed to refusing a statement).
pub fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: the server is shutting
            // down or cannot accept connections yet.
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

impl<A: StoredAggregate> CommandBus<A> {
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        Self {
            waker: Waker::new(pool.clone()),
            pool,
            services: Arc::new(services),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Executes `command` once; a lost concurrency race is returned as
    /// `AggregateError::AggregateConflict`.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Committed, AggregateError<A::Error>> {
        self.execute_returning(aggregate_id, command, metadata)
            .await
            .map(|(committed, _)| committed)
    }

    /// Like [`CommandBus::execute`], also answering the aggregate's state
    /// after the command (with the keyed-memory entries the command recalled
    /// and those its events wrote).
    pub async fn execute_returning(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<(Committed, A), AggregateError<A::Error>> {
        let result = self
            .decide_and_append(aggregate_id, command, metadata)
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(AggregateError::UserError(_)) => "rejected",
            Err(AggregateError::AggregateConflict) => "conflict",
            Err(_) => "error",
        };
        metrics::counter!("commands_total", "aggregate" => A::TYPE, "outcome" => outcome)
            .increment(1);
        result
    }

    async fn decide_and_append(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<(Committed, A), AggregateError<A::Error>> {
        let recall = A::recall_keys(&command);
        let mut loaded = streams::load::<A>(&self.pool, aggregate_id, &recall)
            .await
            .map_err(aggregate_error)?;
        let (aggregate, events) = decide(&mut loaded, command, &self.services).await?;
        if events.is_empty() {
            let committed = Committed {
                position: loaded.position,
                wrote_events: false,
            };
            return Ok((committed, aggregate));
        }
        let metadata: BTreeMap<String, String> = metadata.to_map().into_iter().collect();
        let new = NewEvents::of(aggregate_id, &loaded, &aggregate, &events, &metadata)
            .map_err(|e| AggregateError::UnexpectedError(Box::new(e)))?;
        let positions = streams::append(&self.pool, std::slice::from_ref(&new))
            .await
            .map_err(aggregate_error)?;
        self.waker.appended();
        let committed = Committed {
            position: positions.last().copied().unwrap_or(loaded.position),
            wrote_events: true,
        };
        Ok((committed, aggregate))
    }

    /// Executes a command that is safe to decide again on fresh state: after a
    /// conflict the aggregate is re-loaded and the command re-run, at most
    /// [`MAX_CONFLICT_RETRIES`] more times.
    pub async fn execute_with_retry(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Committed, AggregateError<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_returning_with_retry(aggregate_id, command, metadata)
            .await
            .map(|(committed, _)| committed)
    }

    /// [`CommandBus::execute_with_retry`], also answering the state after the
    /// command.
    pub async fn execute_returning_with_retry(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<(Committed, A), AggregateError<A::Error>>
    where
        A::Command: Clone,
    {
        let mut attempt = 0;
        loop {
            match self
                .execute_returning(aggregate_id, command.clone(), metadata)
                .await
            {
                Err(AggregateError::AggregateConflict) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    metrics::counter!("command_retries_total", "aggregate" => A::TYPE).increment(1);
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        attempt,
                        "retrying after a concurrency conflict"
                    );
                }
                other => return other,
            }
        }
    }

    /// Loads the current state of one aggregate (from its snapshot and the
    /// events after it). `None` when the aggregate has no events.
    pub async fn load(&self, aggregate_id: &str) -> Result<Option<A>, AggregateError<A::Error>> {
        let loaded = streams::load::<A>(&self.pool, aggregate_id, &[])
            .await
            .map_err(aggregate_error)?;
        Ok(loaded.exists().then_some(loaded.aggregate))
    }
}

/// Lets the loaded aggregate (taken out of `loaded`) decide `command`: the
/// state after the events, and the events.
async fn decide<A: StoredAggregate>(
    loaded: &mut Loaded<A>,
    command: A::Command,
    services: &A::Services,
) -> Result<(A, Vec<A::Event>), AggregateError<A::Error>> {
    let mut aggregate = std::mem::take(&mut loaded.aggregate);
    let sink = EventSink::default();
    aggregate
        .handle(command, services, &sink)
        .await
        .map_err(AggregateError::UserError)?;
    Ok((aggregate, sink.collect().await))
}

/// Rebuilds an aggregate from its stored events alone, up to and including
/// sequence `up_to` when given. `None` when the aggregate has no events.
pub async fn load_aggregate<A: StoredAggregate>(
    pool: &PgPool,
    aggregate_id: &str,
    up_to: Option<i64>,
) -> Result<Option<A>, AggregateError<A::Error>> {
    streams::replay::<A>(pool, aggregate_id, up_to)
        .await
        .map_err(aggregate_error)
}
