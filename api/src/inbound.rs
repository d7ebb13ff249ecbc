//! Facts of other services, consumed from NATS JetStream: the adapter that
//! turns each inbound message into its use case (`crate::app::inbound_facts`).
//!
//! A durable pull consumer (`shop`) on the inbound stream
//! (`<stream>_INBOUND`, subjects `<prefix>.inbound.>`) reads one message
//! at a time:
//! - `<prefix>.inbound.carrier.delivered` `{tracking_number, delivered_at}`;
//! - `<prefix>.inbound.warehouse.received` `{receipt_id, product_id, quantity}`.
//!
//! A message is acknowledged once its command has committed (or found it
//! already done). One that cannot be read, or names something the shop
//! does not know, is delivered again a few times (what it names may not be
//! known yet) and then kept in `inbound_dead_letters` and acknowledged, so
//! the messages after it go on. A store failure is not the message's fault:
//! it is delivered again later, however often.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::{self, AckKind};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use projections::integration::nats::{connect, ensure_inbound_stream, NatsError, NatsSettings};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::inbound_facts::{record_delivery, record_receipt, FactError};
use crate::app::state::AppState;

/// The durable consumer's name.
pub const CONSUMER: &str = "shop";
/// Deliveries of a message that cannot be applied before it is dead-lettered.
pub const MAX_ATTEMPTS: i64 = 3;
/// How long a message may be worked on before JetStream delivers it again.
const ACK_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delivered {
    tracking_number: String,
    delivered_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Received {
    receipt_id: String,
    product_id: Uuid,
    quantity: i64,
}

/// What became of one message.
enum Outcome {
    Done,
    /// It cannot be applied (malformed, unknown target, refused).
    Rejected(String),
    /// Not now: the store failed.
    Later(String),
}

/// Consumes inbound facts until `shutdown`, reconnecting with backoff.
pub async fn run(state: AppState, settings: NatsSettings, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = consume(&state, &settings, &shutdown);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            result = attempt => match result {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, ?backoff, "inbound consumer stopped; retrying"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn consume(
    state: &AppState,
    settings: &NatsSettings,
    shutdown: &CancellationToken,
) -> Result<(), NatsError> {
    let context = connect(settings).await?;
    ensure_inbound_stream(&context, settings).await?;
    let stream = context
        .get_stream(settings.inbound_stream())
        .await
        .map_err(NatsError::of)?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.to_string()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                ..Default::default()
            },
        )
        .await
        .map_err(NatsError::of)?;
    let mut messages = consumer.messages().await.map_err(NatsError::of)?;
    tracing::info!(stream = %settings.inbound_stream(), "consuming inbound facts");
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = messages.next() => message,
        };
        let Some(message) = message else {
            return Err(NatsError("the inbound message stream ended".to_string()));
        };
        let message = message.map_err(NatsError::of)?;
        handle(state, settings, &message).await?;
    }
}

async fn handle(
    state: &AppState,
    settings: &NatsSettings,
    message: &jetstream::Message,
) -> Result<(), NatsError> {
    let (deliveries, stream_sequence) = match message.info() {
        Ok(info) => (info.delivered, info.stream_sequence),
        Err(_) => (1, 0),
    };
    let subject = message.subject.as_str();
    let correlation = format!("inbound-{}-{stream_sequence}", settings.inbound_stream());
    let outcome = apply(state, settings, subject, &message.payload, &correlation).await;
    match outcome {
        Outcome::Done => message.ack().await.map_err(NatsError::of)?,
        Outcome::Later(reason) => {
            tracing::warn!(subject, %reason, "inbound fact not applied now; delivered again later");
            message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await
                .map_err(NatsError::of)?;
        }
        Outcome::Rejected(reason) if deliveries < MAX_ATTEMPTS => {
            tracing::info!(subject, deliveries, %reason, "inbound fact refused; it is delivered again");
            message
                .ack_with(AckKind::Nak(Some(Duration::from_millis(200))))
                .await
                .map_err(NatsError::of)?;
        }
        Outcome::Rejected(reason) => {
            tracing::warn!(subject, deliveries, %reason, "inbound fact dead-lettered");
            let message_id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_string());
            let recorded = sqlx::query(
                "INSERT INTO inbound_dead_letters
                     (subject, stream_sequence, message_id, deliveries, payload, error)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (subject, stream_sequence) DO NOTHING",
            )
            .bind(subject)
            .bind(stream_sequence as i64)
            .bind(message_id)
            .bind(deliveries)
            .bind(message.payload.as_ref())
            .bind(&reason)
            .execute(&state.pool)
            .await;
            match recorded {
                Ok(_) => message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(NatsError::of)?,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record the dead letter; delivered again later");
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await
                        .map_err(NatsError::of)?;
                }
            }
        }
    }
    Ok(())
}

async fn apply(
    state: &AppState,
    settings: &NatsSettings,
    subject: &str,
    payload: &[u8],
    correlation: &str,
) -> Outcome {
    let result = if subject == settings.inbound_subject("carrier.delivered") {
        match serde_json::from_slice::<Delivered>(payload) {
            Ok(fact) if !fact.tracking_number.trim().is_empty() => {
                record_delivery(
                    state,
                    fact.tracking_number.trim(),
                    fact.delivered_at,
                    correlation,
                )
                .await
            }
            Ok(_) => return Outcome::Rejected("tracking_number is blank".to_string()),
            Err(e) => return Outcome::Rejected(format!("malformed message: {e}")),
        }
    } else if subject == settings.inbound_subject("warehouse.received") {
        match serde_json::from_slice::<Received>(payload) {
            Ok(fact) if !fact.receipt_id.trim().is_empty() => {
                record_receipt(
                    state,
                    fact.receipt_id.trim(),
                    fact.product_id,
                    fact.quantity,
                    correlation,
                )
                .await
            }
            Ok(_) => return Outcome::Rejected("receipt_id is blank".to_string()),
            Err(e) => return Outcome::Rejected(format!("malformed message: {e}")),
        }
    } else {
        return Outcome::Rejected(format!("no fact is known on the subject {subject}"));
    };
    match result {
        Ok(_) => Outcome::Done,
        Err(FactError::Refused(reason)) => Outcome::Rejected(reason),
        Err(FactError::Store(e)) => Outcome::Later(e.to_string()),
    }
}
