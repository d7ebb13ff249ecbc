//! Waking the projectors after an append, without a lock on every commit.
//!
//! A `NOTIFY` inside a writing transaction takes a database-wide lock at
//! commit, so every writer would queue behind every other. Instead, after a
//! commit the appending process
//! - wakes the projectors of its own process at once ([`signal`]), and
//! - sends one `pg_notify` on [`CHANNEL`] in a transaction of its own, at most
//!   one per [`COALESCE`] however many appends there were, for projectors
//!   running in other processes (`shop projectors`).
//!
//! Projectors also poll, so a lost notification delays, never loses, work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;

/// The channel projectors `LISTEN` on.
pub const CHANNEL: &str = "shop_events";

/// The shortest time between two notifications one process sends.
pub const COALESCE: Duration = Duration::from_millis(5);

static LOCAL: Notify = Notify::const_new();

/// What this process's projectors wait on: notified after every append made
/// here and after every notification from another process.
pub fn signal() -> &'static Notify {
    &LOCAL
}

/// Sends the coalesced cross-process notifications for one pool.
#[derive(Clone)]
pub struct Waker {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    pending: AtomicBool,
    kick: Arc<Notify>,
    started: OnceLock<()>,
}

impl Waker {
    pub fn new(pool: PgPool) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                pending: AtomicBool::new(false),
                kick: Arc::new(Notify::new()),
                started: OnceLock::new(),
            }),
        }
    }

    /// Events were committed: wake this process's projectors now and the
    /// other processes' within [`COALESCE`].
    pub fn appended(&self) {
        LOCAL.notify_waiters();
        if self.inner.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.started.get_or_init(|| {
            tokio::spawn(notify_others(
                Arc::downgrade(&self.inner),
                self.inner.kick.clone(),
            ));
        });
        self.inner.kick.notify_one();
    }
}

async fn notify_others(inner: std::sync::Weak<Inner>, kick: Arc<Notify>) {
    loop {
        kick.notified().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.pending.store(false, Ordering::Release);
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&inner.pool)
            .await
        {
            tracing::debug!(error = %e, "cannot notify other processes; they poll meanwhile");
        }
        drop(inner);
        tokio::time::sleep(COALESCE).await;
    }
}
