//! cqrs-es on PostgreSQL, with the metadata and positions this system needs.

use std::sync::Arc;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use domain::metadata::{CommandMetadata, COMMAND_ID};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

/// The cqrs-es framework for aggregate `A`, stored in PostgreSQL.
pub type PostgresCqrs<A> = CqrsFramework<A, PersistedEventStore<PostgresEventRepository, A>>;

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
pub struct CommandBus<A: Aggregate> {
    cqrs: Arc<PostgresCqrs<A>>,
    pool: PgPool,
}

impl<A: Aggregate> Clone for CommandBus<A> {
    fn clone(&self) -> Self {
        Self {
            cqrs: Arc::clone(&self.cqrs),
            pool: self.pool.clone(),
        }
    }
}

impl<A: Aggregate> CommandBus<A> {
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        let repo = PostgresEventRepository::new(pool.clone());
        let store = PersistedEventStore::new_event_store(repo);
        Self {
            cqrs: Arc::new(CqrsFramework::new(store, vec![], services)),
            pool,
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
        let result = self
            .cqrs
            .execute_with_metadata(aggregate_id, command, metadata.to_map())
            .await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(AggregateError::UserError(_)) => "rejected",
            Err(AggregateError::AggregateConflict) => "conflict",
            Err(_) => "error",
        };
        metrics::counter!("commands_total", "aggregate" => A::TYPE, "outcome" => outcome)
            .increment(1);
        result?;
        self.committed(aggregate_id, metadata).await
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
        let mut attempt = 0;
        loop {
            match self.execute(aggregate_id, command.clone(), metadata).await {
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

    /// Loads the current state of one aggregate from its events.
    pub async fn load(&self, aggregate_id: &str) -> Result<Option<A>, AggregateError<A::Error>> {
        load_aggregate::<A>(&self.pool, aggregate_id, None).await
    }

    async fn committed(
        &self,
        aggregate_id: &str,
        metadata: &CommandMetadata,
    ) -> Result<Committed, AggregateError<A::Error>> {
        let row: (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT max(global_position) FILTER (WHERE metadata->>$3 = $4),
                    max(global_position)
               FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(COMMAND_ID)
        .bind(metadata.command_id.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| AggregateError::DatabaseConnectionError(Box::new(e)))?;
        Ok(match row {
            (Some(position), _) => Committed {
                position,
                wrote_events: true,
            },
            (None, latest) => Committed {
                position: latest.unwrap_or(0),
                wrote_events: false,
            },
        })
    }
}

/// Rebuilds an aggregate from its stored events, up to and including sequence
/// `up_to` when given. `None` when the aggregate has no events.
pub async fn load_aggregate<A: Aggregate>(
    pool: &PgPool,
    aggregate_id: &str,
    up_to: Option<i64>,
) -> Result<Option<A>, AggregateError<A::Error>> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT payload::jsonb FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND ($3::bigint IS NULL OR sequence <= $3)
          ORDER BY sequence",
    )
    .bind(A::TYPE)
    .bind(aggregate_id)
    .bind(up_to)
    .fetch_all(pool)
    .await
    .map_err(|e| AggregateError::DatabaseConnectionError(Box::new(e)))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut aggregate = A::default();
    for (payload,) in rows {
        let event: A::Event = serde_json::from_value(payload)
            .map_err(|e| AggregateError::DeserializationError(Box::new(e)))?;
        aggregate.apply(event);
    }
    Ok(Some(aggregate))
}
