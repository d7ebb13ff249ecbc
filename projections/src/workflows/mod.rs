//! Workflows (process managers): projectors whose effect is commands, not
//! rows.
//!
//! A workflow follows the event log like a read model and reacts to events by
//! sending commands through [`CommandBus`] with deterministic targets (e.g. a
//! stock hold owned by the order id), so an event seen twice has one effect:
//! every command it sends is idempotent or harmless to repeat, and the
//! domain's "already done" answers count as success. Its `tables()` is empty,
//! so it is never rebuilt (replaying it would act again).
//!
//! It runs in lanes ([`lanes`]): each order's events in order, independent
//! orders at once, with no transaction held open while it acts, so neither a
//! slow order nor a slow outside party holds up other orders or any read
//! model. Its checkpoint and dead letters are the runtime's, as for a read
//! model.
//!
//! Faults: a failure of the database is [`ApplyError::Database`]; an
//! outside party that is down (the payment gateway), a command whose
//! aggregate kept changing (concurrency conflicts) and other failures of the
//! event store are [`ApplyError::Retry`]; both have the step retried. A
//! domain refusal that is an expected outcome (out of stock) is handled;
//! only an event the workflow can never act on is poison.
//!
//! # Layout
//! - `lanes`: the workflow runner (lanes, the checkpoint at the lowest
//!   unfinished event, group stages).
//! - `fulfilment`: stock reservation on `OrderPlaced` (all lines or none),
//!   release on `OrderCancelled`, commit on `PaymentCaptured`, and the
//!   unpaid order's payment timeout.
//! - `payment`: the fulfilment workflow's payment steps (card charge or
//!   wallet debit on `StockReserved`, refunds back to card or wallet).
//! - `holds`: the hold expiry projector, which gives every hold placed with
//!   an expiry a deadline that expires it on time.
//! - `deadlines`: the `deadlines` table (time-based steps: payment timeouts,
//!   hold expiries) and its poller.

pub mod deadlines;
pub mod fulfilment;
pub mod holds;
pub mod lanes;
mod payment;

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::AggregateError;
use domain::metadata::{Actor, CommandMetadata, CORRELATION_ID};
use sqlx::PgPool;

use crate::event_store::log::StoredEvent;
use crate::event_store::streams::StreamError;
use crate::projector::{ApplyError, Projector};
use crate::runtime::BackgroundTask;

/// The fulfilment workflow's name: the key of its checkpoint, and the
/// system actor of every command it sends, from its payment steps and its
/// deadlines too. Every workflow's name is written here and nowhere else.
pub const FULFILMENT: &str = "fulfilment";

/// The hold expiry projector's name (see [`holds`]): its checkpoint's key,
/// and the system actor of the `ExpireHold` its deadlines run.
pub const HOLD_EXPIRY_NAME: &str = "hold_expiry";

/// Durations of the workflows' time-based steps.
#[derive(Clone)]
pub struct WorkflowSettings {
    /// How long a placed order may stay unpaid before it is cancelled with
    /// `payment_timeout`.
    pub payment_timeout: Duration,
    /// How often the deadline poller looks for due deadlines.
    pub deadline_poll: Duration,
    /// Where the simulated payment gateway posts its callbacks (the shop's
    /// `POST /v1/payments/webhook`). `None`: no callbacks are sent, so card
    /// charges stay unanswered (a gateway that does not answer).
    pub payment_callback_url: Option<String>,
    /// The secret that signs the gateway's callbacks (HMAC-SHA256); the
    /// webhook verifies with the same secret.
    pub payment_webhook_secret: crate::secret::Secret,
    /// How often the gateway looks for callbacks to send.
    pub payment_callback_poll: Duration,
    /// The SMTP relay that sends the notification emails; `None`: they go
    /// to the log.
    pub smtp_url: Option<String>,
    /// The sender of the notification emails.
    pub mail_from: String,
    /// Orders the fulfilment workflow acts on at once (see [`lanes`]).
    pub lanes: usize,
    /// Where integration events are published (see [`crate::integration`]);
    /// `None`: nowhere.
    pub nats: Option<crate::integration::nats::NatsSettings>,
}

/// Default of [`WorkflowSettings::payment_timeout`], in seconds
/// (`--payment-timeout-secs`).
pub const DEFAULT_PAYMENT_TIMEOUT_SECS: u64 = 15 * 60;
/// Default of [`WorkflowSettings::deadline_poll`], in milliseconds
/// (`--deadline-poll-ms`).
pub const DEFAULT_DEADLINE_POLL_MS: u64 = 1_000;
/// Default of [`WorkflowSettings::mail_from`] (`--mail-from`).
pub const DEFAULT_MAIL_FROM: &str = "Shop <shop@localhost>";

impl Default for WorkflowSettings {
    fn default() -> Self {
        Self {
            payment_timeout: Duration::from_secs(DEFAULT_PAYMENT_TIMEOUT_SECS),
            deadline_poll: Duration::from_millis(DEFAULT_DEADLINE_POLL_MS),
            payment_callback_url: None,
            payment_webhook_secret: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
            .into(),
            payment_callback_poll: Duration::from_millis(200),
            smtp_url: None,
            mail_from: DEFAULT_MAIL_FROM.to_string(),
            lanes: crate::projector::DEFAULT_LANES,
            nats: None,
        }
    }
}

/// The SMTP URL may hold a password, and the webhook secret is one: neither
/// is printed.
impl std::fmt::Debug for WorkflowSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowSettings")
            .field("payment_timeout", &self.payment_timeout)
            .field("deadline_poll", &self.deadline_poll)
            .field("payment_callback_url", &self.payment_callback_url)
            .field("payment_webhook_secret", &self.payment_webhook_secret)
            .field("payment_callback_poll", &self.payment_callback_poll)
            .field(
                "smtp_url",
                &self
                    .smtp_url
                    .as_ref()
                    .map(|_| crate::secret::Secret::new("")),
            )
            .field("mail_from", &self.mail_from)
            .field("lanes", &self.lanes)
            .field("nats", &self.nats)
            .finish()
    }
}

/// Every workflow the server runs (next to [`crate::read_models::all`]): the
/// fulfilment workflow and the hold expiry projector, which schedules the
/// deadlines that expire holds.
pub fn all(pool: &PgPool, settings: &WorkflowSettings) -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(fulfilment::Fulfilment::new(pool.clone(), settings.clone())),
        Arc::new(holds::HoldExpiry),
    ]
}

/// The tasks the workflows need next to the projector runtime: the deadline
/// poller, and the simulated gateway's callback delivery when it has a URL.
pub fn background(pool: &PgPool, settings: &WorkflowSettings) -> Vec<Arc<dyn BackgroundTask>> {
    let mut tasks: Vec<Arc<dyn BackgroundTask>> = vec![Arc::new(deadlines::DeadlinePoller::new(
        pool.clone(),
        settings.deadline_poll,
    ))];
    if let Some(url) = &settings.payment_callback_url {
        tasks.push(Arc::new(crate::payments::CallbackDelivery::new(
            pool.clone(),
            url.clone(),
            settings.payment_webhook_secret.expose().to_string(),
            settings.payment_callback_poll,
        )));
    }
    tasks
}

/// Metadata of a command a workflow sends because of `event`: the system as
/// actor, the event's correlation id, and its position as the cause.
pub(crate) fn caused_by(workflow: &str, event: &StoredEvent, command: &str) -> CommandMetadata {
    let correlation_id = event
        .metadata
        .get(CORRELATION_ID)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("event-{}", event.global_position));
    CommandMetadata::new(Actor::System(workflow.to_string()), correlation_id, command)
        .caused_by(format!("event-{}", event.global_position))
}

/// A command's failure that is not the domain's answer: the database failed
/// or the aggregate kept changing under the command (both retried), or the
/// aggregate's own events cannot be read (poison).
pub(crate) fn infrastructure<E: std::error::Error>(error: AggregateError<E>) -> ApplyError {
    match error {
        AggregateError::UserError(e) => ApplyError::Poison(format!("unexpected refusal: {e}")),
        AggregateError::DeserializationError(e) => {
            ApplyError::Poison(format!("cannot read the aggregate's events: {e}"))
        }
        AggregateError::AggregateConflict => {
            ApplyError::Retry("the aggregate kept changing (concurrency conflicts)".to_string())
        }
        AggregateError::DatabaseConnectionError(e) | AggregateError::UnexpectedError(e) => {
            match e.downcast::<sqlx::Error>() {
                Ok(sqlx_error) => ApplyError::Database(*sqlx_error),
                Err(other) => ApplyError::Retry(format!("the event store failed: {other}")),
            }
        }
    }
}

/// A failure to load a stream: the database's own errors are
/// [`ApplyError::Database`]; the store's others are tried again too.
pub(crate) fn stream_failure(error: StreamError) -> ApplyError {
    match error {
        StreamError::Database(e) => ApplyError::Database(e),
        other => ApplyError::Retry(format!("cannot load the stream: {other}")),
    }
}
