//! Zero-downtime rebuilds of a projector's read model.
//!
//! A rebuild copies the shape of the projector's live tables (`CREATE TABLE
//! ... (LIKE ... EXCLUDING INDEXES)` plus the primary key) into the schema
//! `shop_rebuild_<name>` and replays the whole log into those shadow tables
//! in large chunks, with the shadow schema first on the `search_path`, so the
//! projector's own batch code writes there (one set-based statement per
//! table per chunk) while the live tables keep answering queries. Each chunk
//! and the rebuild's checkpoint (`projector_rebuilds`) commit together, so a
//! rebuild interrupted by a crash resumes where it stopped. Near the head the
//! shadow tables get the live tables' other indexes, built once over the
//! loaded rows, and fresh statistics (`ANALYZE`). Several projectors rebuilt
//! together ([`run_together`]) read the log once.
//!
//! Near the head it switches, in one transaction: it locks the live
//! checkpoint row (the live projector waits), applies what is left, moves the
//! live tables out to `shop_retired_<name>` and the shadow tables into
//! `public`, and hands its checkpoint and version to the live projector.
//! Queries see the old tables or the new ones, never an empty or half-built
//! model. The retired tables are dropped afterwards.
//!
//! One rebuild per projector at a time, under an advisory lock held by the
//! connection doing the work: a second one gets
//! [`RebuildError::AlreadyRunning`]; a dead process's lock goes with it.
//!
//! A new version whose tables change shape adds the columns in a migration
//! first (the live projector fills them from then on) and raises its version;
//! the rebuild then fills them for the whole history.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::event_store::log::{read_after, Checkpoint, StoredEvent};
use crate::projector::{PoisonPolicy, Projector};
use crate::runtime::{apply_chunk, StepError};

/// First key of the rebuild advisory locks ("shrb" in ASCII); the live
/// projectors' locks use another namespace. (`STATUS_SQL` spells it in
/// decimal.)
const LOCK_NAMESPACE: i32 = 0x73687262;

/// Events per batch while building.
pub const DEFAULT_BATCH_SIZE: i64 = 20_000;

/// Longest wait before a batch is tried again that the projector asked to
/// retry later.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(10);
const FIRST_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// How long the switch waits for the live projector's batch in progress.
const CHECKPOINT_LOCK_TIMEOUT: &str = "10s";

/// How long the switch waits for running queries to let go of the live
/// tables before it gives up and tries again. Well below PostgreSQL's
/// `deadlock_timeout` (1 s by default): a query that locks several tables in
/// another order than the switch and would close a cycle with it waits
/// briefly instead of being chosen by the deadlock detector and failing;
/// the switch rolls back and tries again.
const TABLE_LOCK_TIMEOUT: &str = "100ms";

/// Why a rebuild did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("there is no projector named {0:?}")]
    UnknownProjector(String),
    #[error("a rebuild of {0:?} is already running")]
    AlreadyRunning(String),
    #[error("{0:?} keeps no read model to rebuild")]
    NotRebuildable(String),
    #[error("the rebuild of {projector:?} halted on the event at position {position}: {error}")]
    Poison {
        projector: String,
        position: i64,
        error: String,
    },
    #[error("the rebuild was interrupted; starting it again resumes it")]
    Interrupted,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A rebuild as an operator sees it: the one in progress, or the last one.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RebuildStatus {
    pub job_id: Uuid,
    pub name: String,
    pub version: i32,
    /// `building`; `interrupted` (its process ended midway: starting it
    /// again resumes it); `failed` (halted on an event it cannot apply,
    /// named in `error`); `done` (switched in).
    pub state: String,
    /// Events read so far.
    pub processed: i64,
    /// Events to read (the store's size at the start, grown as it grows).
    pub total: i64,
    /// Rate of the current run.
    pub events_per_second: f64,
    /// Global position of the last event in the shadow tables.
    pub position: i64,
    pub resumes: i32,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const STATUS_SQL: &str = "
    SELECT job_id, name, version,
           CASE WHEN state = 'building' AND NOT EXISTS (
                    SELECT 1 FROM pg_locks
                     WHERE locktype = 'advisory' AND granted AND objsubid = 2
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND classid = 1936224866::oid AND objid = hashtext(name)::oid)
                THEN 'interrupted' ELSE state END AS state,
           processed, greatest(total, processed) AS total,
           CASE WHEN updated_at > run_started_at
                THEN (processed - run_processed_from) / extract(epoch FROM updated_at - run_started_at)::float8
                ELSE 0 END AS events_per_second,
           global_position AS position, resumes, error, started_at, updated_at, finished_at
      FROM projector_rebuilds WHERE name = $1";

/// The rebuild of `name` in progress, or its last one.
pub async fn status(pool: &PgPool, name: &str) -> Result<Option<RebuildStatus>, sqlx::Error> {
    sqlx::query_as(STATUS_SQL)
        .bind(name)
        .fetch_optional(pool)
        .await
}

/// Finds a projector by name.
pub fn find(
    projectors: &[Arc<dyn Projector>],
    name: &str,
) -> Result<Arc<dyn Projector>, RebuildError> {
    projectors
        .iter()
        .find(|p| p.name() == name)
        .cloned()
        .ok_or_else(|| RebuildError::UnknownProjector(name.to_string()))
}

fn shadow_schema(name: &str) -> String {
    format!("shop_rebuild_{name}")
}

fn retired_schema(name: &str) -> String {
    format!("shop_retired_{name}")
}

/// Quotes an identifier for SQL text.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Runs several started rebuilds to the head, reading the log once for all
/// of them: each chunk read goes to every rebuild that has not passed it
/// (a resumed one may stand further along), and each switches in when it
/// reaches the head. `progress` is called after every chunk, per rebuild.
/// Answers the rebuilds' final status, in the order they switched in.
pub async fn run_together(
    mut rebuilds: Vec<Rebuild>,
    mut progress: impl FnMut(&RebuildStatus),
    cancel: &CancellationToken,
) -> Result<Vec<RebuildStatus>, RebuildError> {
    for rebuild in &rebuilds {
        tracing::info!(
            projector = rebuild.projector.name(),
            version = rebuild.status.version,
            from = rebuild.checkpoint.global_position,
            resumed = rebuild.resumed,
            "rebuilding"
        );
    }
    let batch_size = rebuilds.iter().map(|r| r.batch_size).max().unwrap_or(1);
    let mut switched = Vec::new();
    while let Some(from) = rebuilds.iter().map(|r| r.checkpoint).min() {
        if cancel.is_cancelled() {
            return Err(RebuildError::Interrupted);
        }
        let chunk = read_after(&mut rebuilds[0].conn, from, batch_size).await?;
        let near_head = (chunk.len() as i64) < batch_size;
        let mut index = 0;
        while index < rebuilds.len() {
            match rebuilds[index].take(&chunk, near_head, cancel).await? {
                Some(status) => {
                    progress(&status);
                    switched.push(status);
                    rebuilds.remove(index);
                }
                None => {
                    progress(&rebuilds[index].status);
                    index += 1;
                }
            }
        }
    }
    Ok(switched)
}

/// A started rebuild: it holds the projector's rebuild lock until it ends.
pub struct Rebuild {
    conn: PgConnection,
    projector: Arc<dyn Projector>,
    batch_size: i64,
    checkpoint: Checkpoint,
    status: RebuildStatus,
    resumed: bool,
    /// Whether the shadow tables have their indexes and statistics.
    finished_tables: bool,
    /// The wait before a batch the projector asked to retry is tried again.
    retry_backoff: Duration,
}

/// How a switch came out.
enum Switch {
    /// The new tables are in.
    Done,
    /// A poison event came up; nothing changed.
    Poison,
    /// The projector asked for a batch to be tried again later
    /// ([`crate::projector::ApplyError::Retry`]); nothing changed.
    Retry(String),
}

impl Rebuild {
    /// Takes the projector's rebuild lock and prepares the shadow tables, or
    /// picks up an interrupted rebuild of the same version where it stopped.
    pub async fn start(
        pool: &PgPool,
        projector: Arc<dyn Projector>,
        batch_size: i64,
        instance: &str,
    ) -> Result<Rebuild, RebuildError> {
        let name = projector.name();
        // A projector without tables (a workflow) acts on events; replaying
        // the log through it would act again.
        if projector.tables().is_empty() {
            return Err(RebuildError::NotRebuildable(name.to_string()));
        }
        let options = (*pool.connect_options())
            .clone()
            .application_name(&format!("shop rebuild {name} {instance}"))
            .disable_statement_logging();
        let mut conn = PgConnection::connect_with(&options).await?;
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_NAMESPACE)
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        if !locked {
            return Err(RebuildError::AlreadyRunning(name.to_string()));
        }
        let resumed = prepare(&mut conn, projector.as_ref()).await?;
        let status: RebuildStatus = sqlx::query_as(STATUS_SQL)
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        let (transaction_id,): (String,) =
            sqlx::query_as("SELECT transaction_id::text FROM projector_rebuilds WHERE name = $1")
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
        let checkpoint = Checkpoint {
            transaction_id: transaction_id
                .parse()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            global_position: status.position,
        };
        Ok(Rebuild {
            conn,
            projector,
            batch_size: batch_size.max(1),
            checkpoint,
            status,
            resumed,
            finished_tables: false,
            retry_backoff: FIRST_RETRY_BACKOFF,
        })
    }

    /// The rebuild as it stands.
    pub fn status(&self) -> &RebuildStatus {
        &self.status
    }

    /// Whether this picked up an interrupted rebuild.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Builds to the head and switches. `progress` is called after every
    /// batch. Cancelling stops between batches ([`RebuildError::Interrupted`]);
    /// the work done so far is kept for the next start.
    pub async fn run(
        self,
        progress: impl FnMut(&RebuildStatus),
        cancel: &CancellationToken,
    ) -> Result<RebuildStatus, RebuildError> {
        let mut done = run_together(vec![self], progress, cancel).await?;
        done.pop().ok_or(RebuildError::Interrupted)
    }

    /// Applies the events of a chunk read from the log that come after this
    /// rebuild's checkpoint. Near the head, it then builds the shadow
    /// tables' indexes and tries to switch: `Some` once switched in.
    async fn take(
        &mut self,
        chunk: &[StoredEvent],
        near_head: bool,
        cancel: &CancellationToken,
    ) -> Result<Option<RebuildStatus>, RebuildError> {
        let name = self.projector.name();
        let start = chunk.partition_point(|e| e.checkpoint() <= self.checkpoint);
        let mine = &chunk[start..];
        if !mine.is_empty() {
            if let Some(reason) = self.apply_batch(mine).await? {
                return self.retry_later(&reason, cancel).await;
            }
        }
        if near_head {
            self.finish_tables().await?;
            match self.switch().await {
                Ok(Switch::Done) => {
                    self.refresh().await?;
                    tracing::info!(
                        projector = name,
                        version = self.status.version,
                        events = self.status.processed,
                        "rebuild switched in"
                    );
                    return Ok(Some(self.status.clone()));
                }
                Ok(Switch::Poison) => {
                    // Poison near the head: the batch path records it.
                    let events =
                        read_after(&mut self.conn, self.checkpoint, self.batch_size).await?;
                    if let Some(reason) = self.apply_batch(&events).await? {
                        return self.retry_later(&reason, cancel).await;
                    }
                }
                Ok(Switch::Retry(reason)) => return self.retry_later(&reason, cancel).await,
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
                    tracing::warn!(
                        projector = name,
                        "the switch waited too long for queries on the live tables; trying again"
                    );
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(RebuildError::Interrupted),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.refresh().await?;
        Ok(None)
    }

    async fn refresh(&mut self) -> Result<(), sqlx::Error> {
        self.status = sqlx::query_as(STATUS_SQL)
            .bind(self.projector.name())
            .fetch_one(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Waits (see [`MAX_RETRY_BACKOFF`]) after the projector asked for a
    /// batch to be tried again later; the chunk is then read again from the
    /// rebuild's checkpoint, which did not move.
    async fn retry_later(
        &mut self,
        reason: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<RebuildStatus>, RebuildError> {
        let backoff = self.retry_backoff;
        tracing::warn!(projector = self.projector.name(), error = %reason, ?backoff, "the rebuild's batch is tried again later");
        tokio::select! {
            _ = cancel.cancelled() => return Err(RebuildError::Interrupted),
            _ = tokio::time::sleep(backoff) => {}
        }
        self.retry_backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
        self.refresh().await?;
        Ok(None)
    }

    /// Applies one batch to the shadow tables with the rebuild's checkpoint.
    /// `Some(reason)`: the projector asked for it to be tried again later;
    /// nothing was written.
    async fn apply_batch(
        &mut self,
        events: &[StoredEvent],
    ) -> Result<Option<String>, RebuildError> {
        let Some(newest) = events.last() else {
            return Ok(None);
        };
        let projector = self.projector.clone();
        let name = projector.name();
        let mut tx = Connection::begin(&mut self.conn).await?;
        use_shadow(&mut tx, name).await?;
        let outcome = match apply_chunk(&mut tx, projector.as_ref(), events).await {
            Ok(outcome) => outcome,
            Err(StepError::Database(e)) => return Err(e.into()),
            Err(StepError::Retry(reason)) => {
                tx.rollback().await?;
                return Ok(Some(reason));
            }
        };
        self.retry_backoff = FIRST_RETRY_BACKOFF;
        let Some((index, error)) = outcome.poison else {
            let to = newest.checkpoint();
            advance(&mut tx, name, to, events.len() as i64, outcome.applied).await?;
            tx.commit().await?;
            self.checkpoint = to;
            return Ok(None);
        };
        // The events before the poison one are applied; deal with it.
        let poison = &events[index];
        let mut to = outcome.last.unwrap_or(self.checkpoint);
        let mut read = index as i64;
        tracing::error!(projector = name, position = poison.global_position, event_type = %poison.event_type, %error, "poison event during a rebuild");
        let halt = projector.poison_policy() == PoisonPolicy::Stop;
        if !halt {
            to = poison.checkpoint();
            read += 1;
        }
        advance(&mut tx, name, to, read, outcome.applied).await?;
        if halt {
            sqlx::query(
                "UPDATE projector_rebuilds SET state = 'failed', error = $2, updated_at = now() WHERE name = $1",
            )
            .bind(name)
            .bind(format!("position {}: {error}", poison.global_position))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.checkpoint = to;
        if halt {
            return Err(RebuildError::Poison {
                projector: name.to_string(),
                position: poison.global_position,
                error,
            });
        }
        Ok(None)
    }

    /// Gives the shadow tables the live tables' secondary indexes (the
    /// shadow tables are loaded with their primary keys alone: building an
    /// index once over the loaded rows is much cheaper than keeping it up
    /// to date row by row) and fresh planner statistics. Indexes already
    /// built (a resumed rebuild, a switch tried again) are kept.
    async fn finish_tables(&mut self) -> Result<(), sqlx::Error> {
        if self.finished_tables {
            return Ok(());
        }
        let name = self.projector.name();
        let shadow = shadow_schema(name);
        sqlx::query("SET maintenance_work_mem = '256MB'")
            .execute(&mut self.conn)
            .await?;
        for table in self.projector.tables() {
            let wanted: Vec<(String, String)> = sqlx::query_as(
                "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
                   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid = to_regclass(format('public.%I', $1::text)) AND NOT i.indisprimary
                  ORDER BY c.relname",
            )
            .bind(table)
            .fetch_all(&mut self.conn)
            .await?;
            let built: Vec<String> = sqlx::query_scalar(
                "SELECT c.relname::text
                   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid = to_regclass(format('%I.%I', $1::text, $2::text))",
            )
            .bind(&shadow)
            .bind(table)
            .fetch_all(&mut self.conn)
            .await?;
            for (index, definition) in wanted {
                if built.contains(&index) {
                    continue;
                }
                let definition =
                    definition.replacen(" ON public.", &format!(" ON {}.", ident(&shadow)), 1);
                sqlx::query(&definition).execute(&mut self.conn).await?;
            }
            sqlx::query(&format!("ANALYZE {}.{}", ident(&shadow), ident(table)))
                .execute(&mut self.conn)
                .await?;
        }
        sqlx::query("RESET maintenance_work_mem")
            .execute(&mut self.conn)
            .await?;
        self.finished_tables = true;
        Ok(())
    }

    /// Catches up under the live checkpoint's lock and swaps the tables, in
    /// one transaction.
    async fn switch(&mut self) -> Result<Switch, sqlx::Error> {
        let projector = self.projector.clone();
        let name = projector.name();
        let shadow = ident(&shadow_schema(name));
        let retired = ident(&retired_schema(name));
        let mut tx = Connection::begin(&mut self.conn).await?;
        sqlx::query(&format!(
            "SET LOCAL lock_timeout = '{CHECKPOINT_LOCK_TIMEOUT}'"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO projector_checkpoints (name, version) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(projector.version())
        .execute(&mut *tx)
        .await?;
        // The live projector cannot apply a batch while this is held.
        sqlx::query("SELECT 1 FROM projector_checkpoints WHERE name = $1 FOR UPDATE")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        use_shadow(&mut tx, name).await?;
        let mut checkpoint = self.checkpoint;
        loop {
            let events = read_after(&mut *tx, checkpoint, self.batch_size).await?;
            let Some(newest) = events.last() else {
                break;
            };
            let outcome = match apply_chunk(&mut tx, projector.as_ref(), &events).await {
                Ok(outcome) => outcome,
                Err(StepError::Database(e)) => return Err(e),
                Err(StepError::Retry(reason)) => {
                    tx.rollback().await?;
                    return Ok(Switch::Retry(reason));
                }
            };
            if outcome.poison.is_some() {
                tx.rollback().await?;
                return Ok(Switch::Poison);
            }
            checkpoint = newest.checkpoint();
            advance(
                &mut tx,
                name,
                checkpoint,
                events.len() as i64,
                outcome.applied,
            )
            .await?;
        }
        sqlx::query("SET LOCAL search_path TO public")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{TABLE_LOCK_TIMEOUT}'"))
            .execute(&mut *tx)
            .await?;
        let live: Vec<String> = projector
            .tables()
            .iter()
            .map(|t| format!("public.{}", ident(t)))
            .collect();
        sqlx::query(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            live.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {retired} CASCADE"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("CREATE SCHEMA {retired}"))
            .execute(&mut *tx)
            .await?;
        for table in projector.tables() {
            let table = ident(table);
            sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {retired}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("ALTER TABLE {shadow}.{table} SET SCHEMA public"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE projector_checkpoints c
                SET version = r.version, transaction_id = r.transaction_id,
                    global_position = r.global_position, events_applied = r.applied,
                    state = CASE WHEN c.state = 'stopped' THEN 'running' ELSE c.state END,
                    updated_at = now()
               FROM projector_rebuilds r
              WHERE c.name = $1 AND r.name = c.name",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        // Dead letters the new tables are past were dealt with by the rebuild.
        sqlx::query(
            "UPDATE projector_dead_letters d SET resolution = 'retried', resolved_at = now()
               FROM projector_rebuilds r
              WHERE d.projector = $1 AND r.name = d.projector AND d.resolution IS NULL
                AND (d.transaction_id, d.global_position) <= (r.transaction_id, r.global_position)",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE projector_rebuilds
                SET state = 'done', total = greatest(total, processed), finished_at = now(), updated_at = now()
              WHERE name = $1",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("DROP SCHEMA {shadow}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.checkpoint = checkpoint;
        self.drop_retired(&retired).await;
        Ok(Switch::Done)
    }

    /// Drops the retired tables, waiting only briefly at a time for queries
    /// that started on them before the switch (see [`TABLE_LOCK_TIMEOUT`]).
    async fn drop_retired(&mut self, retired: &str) {
        let name = self.projector.name();
        let timeout = format!("SET lock_timeout = '{TABLE_LOCK_TIMEOUT}'");
        if let Err(e) = sqlx::query(&timeout).execute(&mut self.conn).await {
            tracing::warn!(projector = name, error = %e, "could not drop the retired tables; the next rebuild drops them");
            return;
        }
        let drop = format!("DROP SCHEMA IF EXISTS {retired} CASCADE");
        for attempt in 1..=50 {
            match sqlx::query(&drop).execute(&mut self.conn).await {
                Ok(_) => return,
                Err(e) if attempt == 50 => {
                    tracing::warn!(projector = name, error = %e, "could not drop the retired tables; the next rebuild drops them");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// Puts the shadow schema first for the rest of the transaction, so the
/// projector's unqualified table names mean the shadow tables.
async fn use_shadow(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "SET LOCAL search_path TO {}, public",
        ident(&shadow_schema(name))
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the rebuild's checkpoint and counters.
async fn advance(
    conn: &mut PgConnection,
    name: &str,
    to: Checkpoint,
    read: i64,
    applied: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_rebuilds
            SET transaction_id = $2::text::xid8, global_position = $3,
                processed = processed + $4, applied = applied + $5, updated_at = now()
          WHERE name = $1",
    )
    .bind(name)
    .bind(to.transaction_id.to_string())
    .bind(to.global_position)
    .bind(read)
    .bind(applied)
    .execute(conn)
    .await?;
    Ok(())
}

/// Resumes an interrupted rebuild of the same version whose shadow tables
/// exist (answers true), or starts afresh: new shadow tables shaped like the
/// live ones, and a new job.
async fn prepare(conn: &mut PgConnection, projector: &dyn Projector) -> Result<bool, sqlx::Error> {
    let name = projector.name();
    let shadow = shadow_schema(name);
    let mut tx = Connection::begin(&mut *conn).await?;
    let previous: Option<(i32, String)> =
        sqlx::query_as("SELECT version, state FROM projector_rebuilds WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let (shadow_exists,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(&shadow)
            .fetch_one(&mut *tx)
            .await?;
    let resumable = previous.as_ref().is_some_and(|(version, state)| {
        *version == projector.version() && state != "done" && shadow_exists
    });
    if resumable {
        sqlx::query(
            "UPDATE projector_rebuilds
                SET state = 'building', error = NULL, resumes = resumes + 1,
                    run_started_at = now(), run_processed_from = processed, updated_at = now()
              WHERE name = $1",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(true);
    }
    let shadow = ident(&shadow);
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {shadow} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        ident(&retired_schema(name))
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("CREATE SCHEMA {shadow}"))
        .execute(&mut *tx)
        .await?;
    // Shaped like the live tables, with their primary keys (the projector's
    // upserts need them) but no other index until the rows are in (see
    // `Rebuild::finish_tables`).
    for table in projector.tables() {
        let primary_key: Option<String> = sqlx::query_scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint
              WHERE conrelid = to_regclass(format('public.%I', $1::text)) AND contype = 'p'",
        )
        .bind(table)
        .fetch_optional(&mut *tx)
        .await?;
        let table = ident(table);
        sqlx::query(&format!(
            "CREATE TABLE {shadow}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
        ))
        .execute(&mut *tx)
        .await?;
        if let Some(primary_key) = primary_key {
            sqlx::query(&format!("ALTER TABLE {shadow}.{table} ADD {primary_key}"))
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query(
        "INSERT INTO projector_rebuilds (name, job_id, version, total, state)
         VALUES ($1, $2, $3, $4, 'building')
         ON CONFLICT (name) DO UPDATE
            SET job_id = EXCLUDED.job_id, version = EXCLUDED.version,
                transaction_id = '0', global_position = 0, processed = 0, applied = 0,
                total = EXCLUDED.total, state = 'building', error = NULL, resumes = 0,
                started_at = now(), run_started_at = now(), run_processed_from = 0,
                updated_at = now(), finished_at = NULL",
    )
    .bind(name)
    .bind(Uuid::new_v4())
    .bind(projector.version())
    .bind(crate::event_store::lookups::count(&mut *tx).await?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(false)
}

/// Whether the stored read model of `projector` is older than the code's
/// version, or a rebuild of this version was interrupted: either way a
/// started server builds it in the background.
pub async fn pending(pool: &PgPool, projector: &dyn Projector) -> Result<bool, sqlx::Error> {
    let (stored, interrupted): (Option<i32>, bool) = sqlx::query_as(
        "SELECT (SELECT version FROM projector_checkpoints WHERE name = $1),
                EXISTS (SELECT 1 FROM projector_rebuilds
                         WHERE name = $1 AND state = 'building' AND version = $2)",
    )
    .bind(projector.name())
    .bind(projector.version())
    .fetch_one(pool)
    .await?;
    if let Some(stored) = stored {
        if stored > projector.version() {
            tracing::warn!(
                projector = projector.name(),
                stored,
                code = projector.version(),
                "the read model was built by a newer version of this projector"
            );
        }
    }
    Ok(interrupted || stored.is_some_and(|v| v < projector.version()))
}

/// Run by the projector runtime for each projector: while [`pending`], builds
/// the new version in the background (or waits while another process does)
/// and switches it in when it has caught up.
pub async fn upgrade_when_needed(
    pool: PgPool,
    projector: Arc<dyn Projector>,
    retry: Duration,
    instance: String,
    shutdown: CancellationToken,
) {
    let name = projector.name();
    let mut backoff = retry;
    loop {
        let outcome = match pending(&pool, projector.as_ref()).await {
            Ok(false) => return,
            Ok(true) => {
                match Rebuild::start(&pool, projector.clone(), DEFAULT_BATCH_SIZE, &instance).await
                {
                    Ok(rebuild) => rebuild.run(|_| {}, &shutdown).await.map(|_| ()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(()) | Err(RebuildError::Interrupted) => return,
            Err(RebuildError::AlreadyRunning(_)) => backoff = retry,
            Err(RebuildError::NotRebuildable(_)) => return,
            Err(e @ RebuildError::Poison { .. }) => {
                tracing::error!(projector = name, error = %e, "the background rebuild halted; fix the projector or skip the event, then rebuild");
                return;
            }
            Err(e) => {
                tracing::warn!(projector = name, error = %e, ?backoff, "the background rebuild hit an error; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}
