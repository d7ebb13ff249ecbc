//! The publisher: an outbox projector that puts every integration event on
//! NATS JetStream.
//!
//! It runs as a workflow, in lanes ([`crate::workflows::lanes`]): each
//! aggregate's facts in order (an order's events one after the other, each
//! published only once the one before was acknowledged), independent
//! aggregates at once, and no database transaction open while it waits on
//! NATS. Its checkpoint moves only past events whose publish JetStream has
//! acknowledged. Each message carries `Nats-Msg-Id` = the CloudEvents `id`,
//! so the events published again after a crash (those after the last
//! checkpoint) are dropped by JetStream as repeats.
//!
//! NATS down: the publish times out and the lane tries it again with
//! backoff ([`ApplyError::Retry`]); commands never wait for NATS, nothing is
//! lost, and the lag shows in `/metrics` and the projector status like any
//! projector's.

use std::sync::Arc;

use async_nats::jetstream::{self, message::PublishMessage};
use async_trait::async_trait;
use sqlx::PgConnection;
use tokio::sync::Mutex;

use super::contract::{integration_event, is_source};
use super::nats::{connect, ensure_outbound_stream, NatsSettings};
use crate::event_store::log::StoredEvent;
use crate::projector::{ApplyError, LaneConfig, Pass, Projector, Workflow};

/// The publisher's name: its checkpoint's key.
pub const NAME: &str = "integration_publisher";

/// Publishes integration events to JetStream.
pub struct Publisher {
    settings: NatsSettings,
    /// The connection, once made, with its stream ensured.
    context: Mutex<Option<jetstream::Context>>,
}

impl Publisher {
    pub fn new(settings: NatsSettings) -> Self {
        Self {
            settings,
            context: Mutex::new(None),
        }
    }

    /// The JetStream context, connecting and ensuring the stream first when
    /// there is none yet.
    async fn context(&self) -> Result<jetstream::Context, ApplyError> {
        let mut guard = self.context.lock().await;
        if let Some(context) = guard.as_ref() {
            return Ok(context.clone());
        }
        let retry = |e: super::nats::NatsError| ApplyError::Retry(e.to_string());
        let context = connect(&self.settings).await.map_err(retry)?;
        ensure_outbound_stream(&context, &self.settings)
            .await
            .map_err(retry)?;
        *guard = Some(context.clone());
        Ok(context)
    }

    /// Publishes `event`'s integration event, if it has one, and waits for
    /// JetStream's acknowledgement.
    pub async fn publish(&self, event: &StoredEvent) -> Result<(), ApplyError> {
        let Some(cloud_event) =
            integration_event(event).map_err(|e| ApplyError::Poison(e.to_string()))?
        else {
            return Ok(());
        };
        let payload = serde_json::to_vec(&cloud_event)
            .map_err(|e| ApplyError::Poison(format!("cannot write the event: {e}")))?;
        let context = self.context().await?;
        let subject = self.settings.subject(cloud_event.name());
        let ack = context
            .send_publish(
                subject,
                PublishMessage::build()
                    .message_id(cloud_event.id.as_str())
                    .header("Content-Type", "application/cloudevents+json")
                    .payload(payload.into()),
            )
            .await
            .map_err(|e| ApplyError::Retry(format!("NATS publish: {e}")))?;
        ack.await
            .map_err(|e| ApplyError::Retry(format!("NATS acknowledgement: {e}")))?;
        Ok(())
    }
}

#[async_trait]
impl Projector for Publisher {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Its effect is messages, not rows: never rebuilt.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn handles(&self, aggregate_type: &str) -> bool {
        is_source(aggregate_type)
    }

    /// Publishes one event. The runtime runs the publisher in lanes
    /// ([`Projector::workflow`]); this is for a caller that steps it as a
    /// plain projector.
    async fn apply(&self, _conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        self.publish(event).await
    }

    fn workflow(self: Arc<Self>) -> Option<Arc<dyn Workflow>> {
        Some(self)
    }
}

impl Workflow for Publisher {
    fn lane_config(&self) -> LaneConfig {
        LaneConfig {
            lanes: 256,
            window: 8192,
            ..LaneConfig::default()
        }
    }

    fn start(self: Arc<Self>) -> Arc<dyn Pass> {
        Arc::new(Lanes(self))
    }
}

struct Lanes(Arc<Publisher>);

#[async_trait]
impl Pass for Lanes {
    async fn act(&self, event: &Arc<StoredEvent>) -> Result<(), ApplyError> {
        self.0.publish(event).await
    }
}
