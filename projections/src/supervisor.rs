//! The supervisor: starts and stops everything that follows the log.
//!
//! For each projector it starts a worker and, when the stored read model is
//! older than the code ([`crate::rebuild::pending`]), its background upgrade
//! ([`crate::rebuild::upgrade_when_needed`]); next to them the listener that
//! wakes the workers and the background tasks (the deadline poller, the
//! gateway's callback delivery).
//!
//! A worker takes its projector's PostgreSQL advisory lock on a connection
//! of its own and does all the projector's work on it: any number of `shop`
//! processes can run the same projectors, exactly one runs each, and when
//! its process dies the lock is released with the connection and another
//! takes over. Under the lock it runs a read model in batch transactions
//! ([`crate::runtime`]) and a workflow in lanes ([`crate::workflows::lanes`]).
//! It wakes when this process appends and on `LISTEN shop_events` for other
//! processes' appends (see [`crate::event_store::wake`]), with a poll
//! interval as the fallback. An error of the database, or a batch the
//! projector asks to try again later ([`crate::projector::ApplyError::Retry`]),
//! drops the connection, and with it the lock; the worker takes it again
//! after a backoff and goes on from the checkpoint.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::projector::Projector;
use crate::runtime::{BackgroundTask, RuntimeConfig, StepError};

/// The channel appending processes notify (see [`crate::event_store::wake`]).
pub const EVENTS_CHANNEL: &str = crate::event_store::wake::CHANNEL;

/// First key of every projector's advisory lock ("shop" in ASCII).
const LOCK_NAMESPACE: i32 = 0x73686f70;

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
                    tracing::warn!(projector = name, error = %e, ?backoff, "projector hit an error; retrying");
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
    /// log on that connection until shutdown (Ok) or an error (Err: the
    /// connection, and with it the lock, is dropped).
    async fn hold_and_run(&self) -> Result<(), StepError> {
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
        match self.projector.clone().workflow() {
            Some(workflow) => Ok(crate::workflows::lanes::run(
                &mut conn,
                self.projector.as_ref(),
                workflow,
                &self.pool,
                &self.config,
                self.wake,
                &self.shutdown,
            )
            .await?),
            None => {
                crate::runtime::follow(
                    &mut conn,
                    self.projector.as_ref(),
                    &self.config,
                    self.wake,
                    &self.shutdown,
                )
                .await
            }
        }
    }
}
