//! The feed: integration events read straight from the log, in commit
//! order, for receivers without NATS (`GET /v1/events/feed`).
//!
//! The log is read as every projector reads it ([`read_after_skipping`]):
//! in commit order and only below the oldest running transaction, so an
//! event whose transaction commits late is never skipped and a page never
//! changes once served. A reader resumes after the position of the last
//! event it saw: that event's place in commit order is looked up, so every
//! later event comes exactly once.

use sqlx::PgPool;

use super::contract::{integration_event, is_source, CloudEvent, MappingError};
use crate::event_store::log::{commit_point_of, read_after_skipping, Checkpoint};
use crate::projector::unhandled_types;

/// Events read from the log per statement while filling a page.
const READ_CHUNK: i64 = 1_000;
/// Statements per page at most: a page over a long run of events that are
/// not integration events comes back short (with its `last_position`), never slow.
const MAX_READS: usize = 20;

/// One page of the feed.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<CloudEvent>,
    /// The position to resume after: the last event read, whether it was an
    /// integration event or not; `after` itself when nothing was read.
    pub last_position: i64,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// `after` names no event of the log.
    #[error("no event has the position {0}")]
    UnknownPosition(i64),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Up to `limit` integration events after the event at position `after`
/// (0: from the start), in commit order.
pub async fn page(pool: &PgPool, after: i64, limit: usize) -> Result<Page, FeedError> {
    let mut from = if after <= 0 {
        Checkpoint::START
    } else {
        commit_point_of(pool, after)
            .await?
            .ok_or(FeedError::UnknownPosition(after))?
    };
    let skip = unhandled_types(is_source);
    let mut events = Vec::new();
    let mut last_position = after.max(0);
    for _ in 0..MAX_READS {
        let read = read_after_skipping(pool, from, READ_CHUNK, &skip).await?;
        if read.is_empty() {
            break;
        }
        let mut full = false;
        for event in &read {
            from = event.checkpoint();
            last_position = event.global_position;
            if let Some(cloud_event) = integration_event(event)? {
                events.push(cloud_event);
                if events.len() >= limit {
                    full = true;
                    break;
                }
            }
        }
        if full || (read.len() as i64) < READ_CHUNK {
            break;
        }
    }
    Ok(Page {
        events,
        last_position,
    })
}
