//! The workflow runner: lanes.
//!
//! A workflow reacts to events by sending commands, and a command may wait
//! on an outside party (a card charge at the payment gateway). Run like a
//! read model, with a batch of events and the checkpoint in one transaction,
//! that wait would hold a transaction open, and every projector reads the log
//! only below the oldest open transaction (see [`crate::event_store::log`]):
//! listings and order history would wait for the gateway, and one slow order
//! would hold up every other. So the runtime runs a workflow here instead
//! (see [`Projector::workflow`]):
//!
//! - **Reading.** Under the projector's advisory lock, on its own
//!   connection, the runner reads the log after its cursor in commit order
//!   like every projector, one statement at a time: no transaction is open
//!   while the workflow acts.
//! - **Lanes.** Each event the workflow handles goes to the lane of its
//!   aggregate (for the fulfilment workflow, the order). A lane acts on one
//!   event at a time, in commit order; up to [`LaneConfig::lanes`] lanes act
//!   at once, each in a task of its own, so independent orders go on while
//!   one of them waits.
//! - **Backpressure.** At most [`LaneConfig::window`] events are read but not
//!   finished; the runner reads on only as they finish.
//! - **Checkpoint.** It stands at the last event before the lowest unfinished
//!   one, so everything up to it is done. It is written in a short
//!   transaction of its own, at most every [`LaneConfig::checkpoint_every`]
//!   while events finish and at once when the lanes fall idle, and guarded
//!   like the batch runtime's: an update that finds the checkpoint moved by
//!   an operator (a replay, a skip) writes nothing, and the runner starts
//!   over from where it was moved to.
//! - **Crash recovery.** The next run starts at the checkpoint: what was
//!   unfinished is done again, and so is what finished after the checkpoint
//!   was last written (what finished behind a slow lane, or in the last
//!   [`LaneConfig::checkpoint_every`]). A workflow's commands have
//!   deterministic targets and are idempotent, so doing one again changes
//!   nothing.
//! - **Groups.** Hot spots (many buyers of one product, the year's invoice
//!   numbering) want one command for many orders rather than many racing
//!   ones. A [`Stage`] takes every request waiting when it is free and
//!   handles them as one group, then answers each lane: a group of one when
//!   the shop is quiet, large groups under load, and never a wait for a group
//!   to fill. A workflow may queue requests as the events are read
//!   ([`Pass::admit`], in commit order), so a stage whose decisions depend on
//!   order (stock reservation) decides exactly in commit order, whichever
//!   lane gets there first.
//! - **Faults.** A database or event-store error, or an outside party that
//!   is down (see [`ApplyError::Retry`]), makes the lane try its event again
//!   with backoff while the other lanes go on; an error of the
//!   runner's own reads and writes ends the run, and the projector worker
//!   reconnects, takes the lock again and starts at the checkpoint. A poison
//!   event is recorded in `projector_dead_letters`. Under
//!   [`PoisonPolicy::Skip`] its lane goes on; under [`PoisonPolicy::Stop`]
//!   nothing after it is started, and once everything before it is done the
//!   checkpoint is written just before it with the state `stopped`, where an
//!   operator's retry or skip ([`crate::admin`]) takes it up. A paused
//!   workflow finishes what its lanes are doing and starts nothing new.
//! - **Stopping.** At shutdown nothing new is started; the lanes get
//!   [`STOP_GRACE`] to finish what they are doing, then it is abandoned (and
//!   done again at the next start) and the checkpoint written.
//!
//! Why lanes keyed by aggregate, with one checkpoint at the lowest
//! unfinished event, rather than a checkpoint per lane: a single checkpoint
//! keeps the operator's tools (status and lag, retry, skip, pause, replay)
//! and the readiness checks exactly as they are for read models, and costs
//! no table per order. The price is that a crash redoes what finished behind
//! the slowest lane, which idempotent commands make harmless.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::event_store::log::{read_after_skipping, Checkpoint, StoredEvent};
use crate::projector::{unhandled_types, ApplyError, PoisonPolicy, Projector};
use crate::runtime::{
    ensure_checkpoint, load_checkpoint, record_dead_letter, RuntimeConfig, STOP_GRACE,
};

/// A workflow's side of the runner (defined next to [`Projector`]).
pub use crate::projector::{LaneConfig, Pass, Workflow};

/// Longest wait between retries inside a lane or a stage.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs `workflow` (the projector `projector`) until shutdown; `conn` holds
/// the projector's lock. An error of its own reads and writes is returned
/// (the caller reconnects and starts again at the checkpoint).
pub(crate) async fn run(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    workflow: Arc<dyn Workflow>,
    pool: &PgPool,
    config: &RuntimeConfig,
    wake: &'static Notify,
    shutdown: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let name = projector.name();
    ensure_checkpoint(conn, projector).await?;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (state, checkpoint) = load_checkpoint(conn, name).await?;
        if state == "running" {
            let mut runner = Runner {
                projector,
                pass: workflow.clone().start(),
                pool,
                config,
                lanes: workflow.lane_config(),
                wake,
                shutdown,
                window: Window::new(checkpoint),
                queues: HashMap::new(),
                busy: HashSet::new(),
                ready: VecDeque::new(),
                tasks: JoinSet::new(),
                running: HashMap::new(),
                cursor: checkpoint,
                persisted: checkpoint,
                halt: None,
            };
            match runner.run(conn).await? {
                End::Shutdown => return Ok(()),
                End::Again => continue,
            }
        }
        // Paused or stopped: look again at the next poll.
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = &mut notified => {}
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
    }
}

/// How a pass ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Shutdown: the checkpoint is written.
    Shutdown,
    /// Halted, paused or moved by an operator: look at the checkpoint again.
    Again,
}

/// What became of one event a lane acted on.
enum Outcome {
    Done,
    /// Recorded as a dead letter.
    Poison,
}

/// One pass over the log, from a checkpoint.
struct Runner<'a> {
    projector: &'a dyn Projector,
    pass: Arc<dyn Pass>,
    pool: &'a PgPool,
    config: &'a RuntimeConfig,
    lanes: LaneConfig,
    wake: &'static Notify,
    shutdown: &'a CancellationToken,
    window: Window,
    /// Each lane's events not started yet, in commit order.
    queues: HashMap<String, VecDeque<(u64, Arc<StoredEvent>)>>,
    /// Lanes with an event in progress.
    busy: HashSet<String>,
    /// Lanes that have an event to start and none in progress, in the order
    /// they became so.
    ready: VecDeque<String>,
    tasks: JoinSet<Outcome>,
    /// What each task acts on: its lane, its index in the window, the event.
    running: HashMap<tokio::task::Id, (String, u64, Arc<StoredEvent>)>,
    /// The last event read.
    cursor: Checkpoint,
    /// The checkpoint as last written (or read).
    persisted: Checkpoint,
    /// The first event that is poison under [`PoisonPolicy::Stop`].
    halt: Option<Checkpoint>,
}

impl Runner<'_> {
    async fn run(&mut self, conn: &mut PgConnection) -> Result<End, sqlx::Error> {
        let name = self.projector.name();
        let poll = self.config.poll_interval;
        let every = self.lanes.checkpoint_every;
        let capacity = self.lanes.window.max(1);
        // Whether there may be more to read now; otherwise wait for a
        // notification or the next poll.
        let mut want_read = true;
        let mut notified = Box::pin(self.wake.notified());
        let mut next_poll = Instant::now() + poll;
        // Shutdown asked for: the end of the grace period.
        let mut stop_by: Option<Instant> = None;
        // Paused or stopped by an operator: finish, start nothing.
        let mut draining = false;
        let mut written_at = Instant::now();
        loop {
            self.window.advance();
            if let Some(halt) = self.halt {
                if self.window.first_unfinished() == Some(halt) {
                    self.write(conn, true).await?;
                    tracing::error!(
                        projector = name,
                        position = halt.global_position,
                        "stopped before a poison event until an operator retries or skips it"
                    );
                    return Ok(End::Again);
                }
            }
            if (stop_by.is_some() || draining) && self.tasks.is_empty() {
                self.write(conn, false).await?;
                return Ok(if stop_by.is_some() {
                    End::Shutdown
                } else {
                    End::Again
                });
            }
            if stop_by.is_none() && !draining {
                self.start_lanes();
            }
            let may_read = want_read
                && stop_by.is_none()
                && !draining
                && self.halt.is_none()
                && self.window.len() < capacity;
            if may_read {
                // Enabled before reading, so an append committed while
                // reading still wakes the next wait.
                notified = Box::pin(self.wake.notified());
                notified.as_mut().enable();
                let (state, checkpoint) = load_checkpoint(conn, name).await?;
                if checkpoint != self.persisted {
                    tracing::info!(
                        projector = name,
                        position = checkpoint.global_position,
                        "the checkpoint was moved; starting over from it"
                    );
                    return Ok(End::Again);
                }
                if state != "running" {
                    tracing::info!(projector = name, %state, "finishing what the lanes are doing");
                    draining = true;
                    continue;
                }
                let limit = ((capacity - self.window.len()) as i64)
                    .min(self.config.batch_size)
                    .max(1);
                let skip = unhandled_types(|aggregate_type| self.projector.handles(aggregate_type));
                let events = read_after_skipping(&mut *conn, self.cursor, limit, &skip).await?;
                want_read = events.len() as i64 == limit;
                next_poll = Instant::now() + poll;
                self.take(events);
                continue;
            }
            let dirty = self.window.done != self.persisted;
            if dirty && (self.window.is_empty() || written_at.elapsed() >= every) {
                if !self.write(conn, false).await? {
                    return Ok(End::Again);
                }
                written_at = Instant::now();
                continue;
            }
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled(), if stop_by.is_none() => {
                    stop_by = Some(Instant::now() + STOP_GRACE);
                }
                _ = tokio::time::sleep_until(stop_by.unwrap_or(far)), if stop_by.is_some() => {
                    tracing::info!(
                        projector = name,
                        unfinished = self.tasks.len(),
                        "stopping with lanes still acting; their events are acted on again at the next start"
                    );
                    self.write(conn, false).await?;
                    return Ok(End::Shutdown);
                }
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finished(joined);
                }
                _ = &mut notified, if !want_read => want_read = true,
                _ = tokio::time::sleep_until(next_poll), if !want_read => want_read = true,
                _ = tokio::time::sleep_until(written_at + every), if dirty => {}
            }
        }
    }

    /// Puts freshly read events into the window and their lanes.
    fn take(&mut self, events: Vec<StoredEvent>) {
        for event in events {
            let at = event.checkpoint();
            self.cursor = at;
            if !self.projector.handles(&event.aggregate_type) {
                self.window.push(at, true);
                continue;
            }
            let event = Arc::new(event);
            let index = self.window.push(at, false);
            self.pass.admit(&event);
            let lane = format!("{}/{}", event.aggregate_type, event.aggregate_id);
            let queue = self.queues.entry(lane.clone()).or_default();
            queue.push_back((index, event));
            if queue.len() == 1 && !self.busy.contains(&lane) {
                self.ready.push_back(lane);
            }
        }
    }

    /// Starts the next event of ready lanes, up to the bound.
    fn start_lanes(&mut self) {
        while self.tasks.len() < self.lanes.lanes.max(1) {
            let Some(lane) = self.ready.pop_front() else {
                return;
            };
            let Some(queue) = self.queues.get_mut(&lane) else {
                continue;
            };
            let Some((index, event)) = queue.pop_front() else {
                self.queues.remove(&lane);
                continue;
            };
            if self.halt.is_some_and(|halt| event.checkpoint() > halt) {
                // Behind a poison event: never started in this pass.
                queue.push_front((index, event));
                continue;
            }
            let task = self.tasks.spawn(act_on(
                self.pass.clone(),
                self.pool.clone(),
                self.projector.name(),
                event.clone(),
            ));
            self.running.insert(task.id(), (lane.clone(), index, event));
            self.busy.insert(lane);
        }
    }

    /// A lane's event is finished (or poison).
    fn finished(&mut self, joined: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>) {
        let (id, outcome) = match joined {
            Ok(finished) => finished,
            // Never cancelled one by one, and panics are caught in the task.
            Err(e) => {
                tracing::error!(projector = self.projector.name(), error = %e, "a lane's task ended abnormally");
                (e.id(), Outcome::Poison)
            }
        };
        let Some((lane, index, event)) = self.running.remove(&id) else {
            return;
        };
        self.busy.remove(&lane);
        match outcome {
            Outcome::Done => self.window.finish(index, true),
            Outcome::Poison => match self.projector.poison_policy() {
                PoisonPolicy::Skip => self.window.finish(index, false),
                PoisonPolicy::Stop => {
                    let at = event.checkpoint();
                    self.halt = Some(self.halt.map_or(at, |halt| halt.min(at)));
                }
            },
        }
        match self.queues.get(&lane) {
            Some(queue) if !queue.is_empty() => self.ready.push_back(lane),
            _ => {
                self.queues.remove(&lane);
            }
        }
    }

    /// Writes the checkpoint (and `stopped`, with `stop`) unless it was moved
    /// meanwhile; answers whether it was written.
    async fn write(&mut self, conn: &mut PgConnection, stop: bool) -> Result<bool, sqlx::Error> {
        let to = self.window.done;
        if to == self.persisted && !stop {
            return Ok(true);
        }
        let written = sqlx::query(
            "UPDATE projector_checkpoints
                SET transaction_id = $2::text::xid8, global_position = $3,
                    events_applied = events_applied + $4,
                    state = CASE WHEN $5 THEN 'stopped' ELSE state END,
                    updated_at = now()
              WHERE name = $1
                AND transaction_id = $6::text::xid8 AND global_position = $7",
        )
        .bind(self.projector.name())
        .bind(to.transaction_id.to_string())
        .bind(to.global_position)
        .bind(self.window.applied)
        .bind(stop)
        .bind(self.persisted.transaction_id.to_string())
        .bind(self.persisted.global_position)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if written {
            self.persisted = to;
            self.window.applied = 0;
        }
        Ok(written)
    }
}

/// Acts on one event until it is done or poison: database errors and
/// [`ApplyError::Retry`] are retried with backoff; a poison event is recorded as a dead letter.
async fn act_on(
    pass: Arc<dyn Pass>,
    pool: PgPool,
    projector: &'static str,
    event: Arc<StoredEvent>,
) -> Outcome {
    let mut backoff = Duration::from_millis(100);
    loop {
        let acted = AssertUnwindSafe(pass.act(&event))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(ApplyError::Poison("the workflow panicked".to_string())));
        match acted {
            Ok(()) => return Outcome::Done,
            Err(ApplyError::Poison(error)) => {
                tracing::error!(projector, position = event.global_position, event_type = %event.event_type, %error, "poison event");
                loop {
                    let recorded = async {
                        let mut conn = pool.acquire().await?;
                        record_dead_letter(&mut conn, projector, &event, &error).await
                    };
                    match recorded.await {
                        Ok(()) => return Outcome::Poison,
                        Err(e) => {
                            tracing::warn!(projector, error = %e, ?backoff, "cannot record a dead letter; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
            }
            Err(e @ (ApplyError::Database(_) | ApplyError::Retry(_))) => {
                tracing::warn!(projector, position = event.global_position, error = %e, ?backoff, "a workflow step failed for now; retrying it");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The events read and not yet behind the checkpoint, in commit order.
struct Window {
    entries: VecDeque<Entry>,
    /// The index of `entries[0]`.
    first: u64,
    /// The last event of the finished prefix: where the checkpoint may go.
    done: Checkpoint,
    /// Events applied in the finished prefix since the checkpoint was last
    /// written.
    applied: i64,
}

struct Entry {
    at: Checkpoint,
    finished: bool,
    applied: bool,
}

impl Window {
    fn new(at: Checkpoint) -> Self {
        Self {
            entries: VecDeque::new(),
            first: 0,
            done: at,
            applied: 0,
        }
    }

    /// Adds the next event read; answers its index.
    fn push(&mut self, at: Checkpoint, finished: bool) -> u64 {
        self.entries.push_back(Entry {
            at,
            finished,
            applied: false,
        });
        self.first + self.entries.len() as u64 - 1
    }

    fn finish(&mut self, index: u64, applied: bool) {
        if let Some(entry) = index
            .checked_sub(self.first)
            .and_then(|offset| self.entries.get_mut(offset as usize))
        {
            entry.finished = true;
            entry.applied = applied;
        }
    }

    /// Moves `done` over the finished events at the front.
    fn advance(&mut self) {
        while self.entries.front().is_some_and(|e| e.finished) {
            if let Some(entry) = self.entries.pop_front() {
                self.done = entry.at;
                self.applied += i64::from(entry.applied);
                self.first += 1;
            }
        }
    }

    fn first_unfinished(&self) -> Option<Checkpoint> {
        self.entries.front().map(|e| e.at)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The work of a [`Stage`]: acting on many lanes' requests at once.
#[async_trait]
pub trait Group: Send + Sync + 'static {
    type Request: Send + Sync + 'static;
    type Answer: Send + 'static;

    /// Acts on `requests` together, in their order, and answers each:
    /// `Err(reason)` for a request that is poison. An
    /// [`ApplyError::Database`] or [`ApplyError::Retry`] has the whole group
    /// tried again after a backoff; an [`ApplyError::Poison`] has each request tried alone, in
    /// order, to find the one at fault. Either way the group must be safe to
    /// repeat.
    async fn handle(
        &self,
        requests: &[Self::Request],
    ) -> Result<Vec<Result<Self::Answer, String>>, ApplyError>;
}

/// A group stage: lanes leave requests in it and wait for their answers;
/// whichever waiting lane finds it free takes every request waiting then (in
/// the order they were queued), has the [`Group`] handle them together and
/// answers them all. So requests group themselves: one at a time when they
/// come one at a time, many when many wait. Errors that pass are retried
/// inside the stage, so a failure never lets a later request overtake an
/// earlier one.
pub struct Stage<G: Group> {
    group: G,
    queue: Mutex<Queue<G>>,
    /// Held by the lane handling a group.
    free: tokio::sync::Mutex<()>,
}

struct Queue<G: Group> {
    waiting: Vec<(u64, G::Request)>,
    /// Requests a lane is handling now.
    taken: HashSet<u64>,
    answers: HashMap<u64, Result<G::Answer, String>>,
}

impl<G: Group> Queue<G> {
    /// Whether request `key` waits or is being handled.
    fn has(&self, key: u64) -> bool {
        self.taken.contains(&key) || self.waiting.iter().any(|(k, _)| *k == key)
    }
}

impl<G: Group> Stage<G> {
    pub fn new(group: G) -> Self {
        Self {
            group,
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                taken: HashSet::new(),
                answers: HashMap::new(),
            }),
            free: tokio::sync::Mutex::new(()),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue<G>> {
        // A panic while the lock was held left the queue as it was.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `request` under `key` (unique among the requests of a pass),
    /// unless it waits already. Groups take requests in the order they were
    /// queued.
    pub fn enqueue(&self, key: u64, request: G::Request) {
        let mut queue = self.queue();
        if !queue.has(key) && !queue.answers.contains_key(&key) {
            queue.waiting.push((key, request));
        }
    }

    /// The answer to request `key`; `request` makes it when it is not queued
    /// (nor answered) yet. A request found poison is
    /// [`ApplyError::Poison`].
    pub async fn answer(
        &self,
        key: u64,
        request: impl Fn() -> G::Request + Send,
    ) -> Result<G::Answer, ApplyError> {
        loop {
            {
                let mut queue = self.queue();
                if let Some(answer) = queue.answers.remove(&key) {
                    return answer.map_err(ApplyError::Poison);
                }
                if !queue.has(key) {
                    queue.waiting.push((key, request()));
                }
            }
            let _free = self.free.lock().await;
            let (keys, requests): (Vec<u64>, Vec<G::Request>) = {
                let mut queue = self.queue();
                if let Some(answer) = queue.answers.remove(&key) {
                    return answer.map_err(ApplyError::Poison);
                }
                let taken: Vec<(u64, G::Request)> = queue.waiting.drain(..).collect();
                queue.taken.extend(taken.iter().map(|(k, _)| *k));
                taken.into_iter().unzip()
            };
            let mut taken = Taken {
                stage: self,
                keys,
                requests,
                answered: false,
            };
            let answers = self.handle(&taken.requests).await;
            taken.answered = true;
            let mut queue = self.queue();
            for (key, answer) in taken.keys.iter().zip(answers) {
                queue.taken.remove(key);
                queue.answers.insert(*key, answer);
            }
        }
    }

    /// Handles a group; each request alone when the group is poison.
    async fn handle(&self, requests: &[G::Request]) -> Vec<Result<G::Answer, String>> {
        match self.handle_retrying(requests).await {
            Ok(answers) => answers,
            Err(reason) if requests.len() == 1 => vec![Err(reason)],
            Err(_) => {
                let mut answers = Vec::with_capacity(requests.len());
                for request in requests {
                    let alone = self.handle_retrying(std::slice::from_ref(request)).await;
                    answers.push(match alone {
                        Ok(mut one) => one
                            .pop()
                            .unwrap_or_else(|| Err("the group gave no answer".to_string())),
                        Err(reason) => Err(reason),
                    });
                }
                answers
            }
        }
    }

    /// Handles a group, retrying errors that pass; `Err`: the group is poison.
    async fn handle_retrying(
        &self,
        requests: &[G::Request],
    ) -> Result<Vec<Result<G::Answer, String>>, String> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.group.handle(requests).await {
                Ok(answers) if answers.len() == requests.len() => return Ok(answers),
                Ok(answers) => {
                    return Err(format!(
                        "the group gave {} answers to {} requests",
                        answers.len(),
                        requests.len()
                    ))
                }
                Err(ApplyError::Poison(reason)) => return Err(reason),
                Err(e @ (ApplyError::Database(_) | ApplyError::Retry(_))) => {
                    tracing::warn!(error = %e, requests = requests.len(), ?backoff, "a workflow group failed for now; retrying it");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Requests a lane took from the stage; put back in front (for the next
/// lane to take) if that lane stops before it answered them.
struct Taken<'a, G: Group> {
    stage: &'a Stage<G>,
    keys: Vec<u64>,
    requests: Vec<G::Request>,
    answered: bool,
}

impl<G: Group> Drop for Taken<'_, G> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let mut queue = self.stage.queue();
        for key in &self.keys {
            queue.taken.remove(key);
        }
        let back: Vec<(u64, G::Request)> =
            self.keys.drain(..).zip(self.requests.drain(..)).collect();
        queue.waiting.splice(0..0, back);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Doubles numbers; remembers the size of every group.
    #[derive(Default)]
    struct Doubler {
        groups: Mutex<Vec<usize>>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Group for Arc<Doubler> {
        type Request = i64;
        type Answer = i64;

        async fn handle(&self, requests: &[i64]) -> Result<Vec<Result<i64, String>>, ApplyError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.groups.lock().unwrap().push(requests.len());
            tokio::task::yield_now().await;
            if requests.len() > 1 && requests.contains(&13) {
                return Err(ApplyError::Poison("13 is unlucky".to_string()));
            }
            Ok(requests
                .iter()
                .map(|r| {
                    if *r == 13 {
                        Err("13".to_string())
                    } else {
                        Ok(r * 2)
                    }
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn requests_queued_while_the_stage_is_busy_are_handled_as_one_group_in_order() {
        let doubler = Arc::new(Doubler::default());
        let stage = Stage::new(doubler.clone());
        for n in 1..=5 {
            stage.enqueue(n, n as i64);
        }
        let answers =
            futures::future::join_all((1..=5).map(|n| stage.answer(n, move || n as i64))).await;
        let answers: Vec<i64> = answers.into_iter().map(|a| a.unwrap()).collect();
        assert_eq!(answers, vec![2, 4, 6, 8, 10]);
        assert_eq!(*doubler.groups.lock().unwrap(), vec![5]);
    }

    #[tokio::test]
    async fn a_poison_request_in_a_group_fails_alone() {
        let doubler = Arc::new(Doubler::default());
        let stage = Stage::new(doubler.clone());
        for n in [12_u64, 13, 14] {
            stage.enqueue(n, n as i64);
        }
        let answers =
            futures::future::join_all([12_u64, 13, 14].map(|n| stage.answer(n, move || n as i64)))
                .await;
        assert_eq!(answers[0].as_ref().ok(), Some(&24));
        assert!(matches!(answers[1], Err(ApplyError::Poison(_))));
        assert_eq!(answers[2].as_ref().ok(), Some(&28));
        // The group, then each alone.
        assert_eq!(*doubler.groups.lock().unwrap(), vec![3, 1, 1, 1]);
    }

    #[test]
    fn the_window_finishes_only_a_prefix() {
        let at = |p: i64| Checkpoint {
            transaction_id: 10,
            global_position: p,
        };
        let mut window = Window::new(at(0));
        let a = window.push(at(1), false);
        let b = window.push(at(2), false);
        window.push(at(3), true);
        window.finish(b, true);
        window.advance();
        assert_eq!(window.done, at(0), "the first event is not finished");
        window.finish(a, true);
        window.advance();
        assert_eq!(window.done, at(3));
        assert_eq!(window.applied, 2);
        assert!(window.is_empty());
    }
}
