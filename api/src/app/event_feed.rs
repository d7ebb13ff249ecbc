//! Reading the integration events feed: a page of the shop's public facts
//! after a position, in commit order (see `projections::integration::feed`).

use domain::metadata::Role;
use projections::integration::feed::{self, FeedError, Page};
use sqlx::PgPool;

use super::refusals::{InvalidLimit, PositionNotFound};
use super::{use_case_error, StoreError};

/// Who may read the feed.
pub const FEED_READERS: &[Role] = &[Role::Integration, Role::Operator];

/// Default number of events of a page.
pub const DEFAULT_FEED_LIMIT: usize = 100;
/// Largest page.
pub const MAX_FEED_LIMIT: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum FeedPageError {
    #[error(transparent)]
    Limit(#[from] InvalidLimit),
    #[error(transparent)]
    Position(#[from] PositionNotFound),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(FeedPageError {
    Self::Limit(e) => nested(e: InvalidLimit),
    Self::Position(e) => nested(e: PositionNotFound),
    Self::Store(e) => nested(e: StoreError),
});

/// The page size asked for, checked.
pub fn feed_limit(requested: Option<i64>) -> Result<usize, InvalidLimit> {
    match requested {
        None => Ok(DEFAULT_FEED_LIMIT),
        Some(n) if (1..=MAX_FEED_LIMIT as i64).contains(&n) => Ok(n as usize),
        Some(_) => Err(InvalidLimit::new(format!(
            "limit must be between 1 and {MAX_FEED_LIMIT}."
        ))),
    }
}

/// Up to `limit` integration events after the event at position `after`
/// (0 or less: from the start).
pub async fn feed_page(pool: &PgPool, after: i64, limit: usize) -> Result<Page, FeedPageError> {
    feed::page(pool, after, limit).await.map_err(|e| match e {
        FeedError::UnknownPosition(position) => PositionNotFound::new(format!(
            "No event has the position {position}; resume after a position the feed gave."
        ))
        .into(),
        FeedError::Mapping(e) => StoreError::Internal(e.to_string()).into(),
        FeedError::Database(e) => StoreError::from(e).into(),
    })
}
