//! The NATS side of integration events: the settings, the connection, and
//! the two JetStream streams (outbound facts, inbound facts).
//!
//! The outbound stream (`SHOP` unless configured) holds the subjects
//! `<prefix>.order.>`, `<prefix>.invoice.>`, `<prefix>.product.>` and
//! `<prefix>.stock.>`, one per family of the contract, and never
//! `<prefix>.inbound.>`: other services' facts go to their own stream
//! (`<stream>_INBOUND`), so the shop never reads its own facts back and a
//! subscriber to the outbound stream never sees inbound ones.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::contract::FAMILIES;
use crate::secret::Secret;

/// Default of [`NatsSettings::stream`] (`SHOP_NATS_STREAM`).
pub const DEFAULT_STREAM: &str = "SHOP";
/// Default of [`NatsSettings::prefix`] (`SHOP_NATS_PREFIX`).
pub const DEFAULT_PREFIX: &str = "shop";
/// How long JetStream remembers a message id to drop its repeats. A
/// publisher restarted later than this after a crash may publish again the
/// facts it published just before the crash (receivers drop them by `id`).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// How long a publish waits for JetStream's acknowledgement before it is
/// tried again.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and under which names the shop's facts go.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// `nats://host:port` (`SHOP_NATS_URL`); it may hold credentials, so
    /// it is never printed.
    pub url: Secret,
    /// The outbound stream's name; the inbound stream is `<stream>_INBOUND`.
    pub stream: String,
    /// The first token of every subject (`shop`): `shop.order.placed`,
    /// `shop.inbound.carrier.delivered`.
    pub prefix: String,
}

impl NatsSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            stream: DEFAULT_STREAM.to_string(),
            prefix: DEFAULT_PREFIX.to_string(),
        }
    }

    /// The subject an integration event of `name` (`order.placed`) goes to.
    pub fn subject(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// The inbound subject `name` (`carrier.delivered`).
    pub fn inbound_subject(&self, name: &str) -> String {
        format!("{}.inbound.{name}", self.prefix)
    }

    pub fn inbound_stream(&self) -> String {
        format!("{}_INBOUND", self.stream)
    }

    fn outbound_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: FAMILIES
                .iter()
                .map(|family| format!("{}.{family}.>", self.prefix))
                .collect(),
            duplicate_window: DUPLICATE_WINDOW,
            storage: stream::StorageType::File,
            ..Default::default()
        }
    }

    fn inbound_config(&self) -> stream::Config {
        stream::Config {
            name: self.inbound_stream(),
            subjects: vec![self.inbound_subject(">")],
            duplicate_window: Duration::from_secs(2 * 60),
            storage: stream::StorageType::File,
            ..Default::default()
        }
    }
}

/// Why NATS could not be used right now (tried again later).
#[derive(Debug, thiserror::Error)]
#[error("NATS: {0}")]
pub struct NatsError(pub String);

impl NatsError {
    pub fn of(error: impl std::fmt::Display) -> Self {
        NatsError(error.to_string())
    }
}

/// Connects to NATS. The client reconnects by itself for ever; a server
/// that is down at start is not an error here (publishes wait, then time
/// out and are tried again).
pub async fn connect(settings: &NatsSettings) -> Result<jetstream::Context, NatsError> {
    let client = async_nats::ConnectOptions::new()
        .name("shop")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .connect(settings.url.expose())
        .await
        .map_err(NatsError::of)?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .build(client))
}

/// Creates the outbound stream, or brings its subjects and duplicate window
/// up to date.
pub async fn ensure_outbound_stream(
    context: &jetstream::Context,
    settings: &NatsSettings,
) -> Result<(), NatsError> {
    context
        .create_or_update_stream(settings.outbound_config())
        .await
        .map_err(NatsError::of)?;
    Ok(())
}

/// Creates the inbound stream, or brings it up to date.
pub async fn ensure_inbound_stream(
    context: &jetstream::Context,
    settings: &NatsSettings,
) -> Result<(), NatsError> {
    context
        .create_or_update_stream(settings.inbound_config())
        .await
        .map_err(NatsError::of)?;
    Ok(())
}
