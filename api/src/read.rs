//! What every query shares: read-your-writes (`min_position`), keyset
//! cursors and page sizes.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use projections::event_store::log::Checkpoint;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::PgPool;

use crate::app::refusals::{CursorNotFound, InvalidLimit, InvalidMinPosition, ReadModelBehind};
use crate::error::{ApiError, Result};

/// The longest a query waits for its read model to reach `min_position`.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// Set on answers whose read model had not reached `min_position` in time.
pub const STALE_HEADER: HeaderName = HeaderName::from_static("x-read-model-stale");
/// The read model's position when it answered.
pub const POSITION_HEADER: HeaderName = HeaderName::from_static("x-read-model-position");

/// How fresh an answer is.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub position: i64,
    pub stale: bool,
}

/// `min_position` from the query string, or the `X-Min-Position` header.
/// The query parameter wins, but a header that is not an integer is refused
/// either way.
pub fn min_position(query: Option<i64>, headers: &HeaderMap) -> Result<Option<i64>> {
    let header = match headers.get("x-min-position") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| InvalidMinPosition::new("X-Min-Position must be an integer."))?,
        ),
    };
    Ok(query.or(header))
}

/// Waits (bounded by [`MAX_WAIT`]) until `projector` has applied the event at
/// global position `min_position` (and so everything committed before it).
pub async fn wait_for(
    pool: &PgPool,
    projector: &str,
    min_position: Option<i64>,
) -> Result<Freshness> {
    // A position past the end of the log is not one this server answered (a
    // command answers only once its event is committed): a client's position
    // from before a restore, or from another environment. Waiting for it
    // would hold the request for MAX_WAIT for nothing, so it stands for the
    // whole log as it is now: the answer covers everything committed.
    let target = match min_position.filter(|p| *p > 0) {
        None => None,
        Some(p) => {
            let head = projections::event_store::log::head_position(pool).await?;
            let p = p.min(head);
            // Where the event stands in commit order; an identity value that
            // was never committed (a rolled-back append) compares by number.
            let commit_point = projections::event_store::log::commit_point_of(pool, p).await?;
            (p > 0).then_some((p, commit_point))
        }
    };
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        let checkpoint: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM projector_checkpoints WHERE name = $1",
        )
        .bind(projector)
        .fetch_optional(pool)
        .await?;
        let (transaction_id, position) = checkpoint.unwrap_or_else(|| ("0".to_string(), 0));
        let reached = match target {
            None => true,
            Some((_, Some(point))) => {
                let transaction_id = transaction_id.parse::<u64>().unwrap_or(0);
                point
                    <= Checkpoint {
                        transaction_id,
                        global_position: position,
                    }
            }
            Some((p, None)) => position >= p,
        };
        if reached {
            return Ok(Freshness {
                position,
                stale: false,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Freshness {
                position,
                stale: true,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

impl Freshness {
    /// The answer for something the read model does not have: 404 when the
    /// read model is fresh enough, 503 when it had not reached the asked
    /// position in time (the thing may exist but not be projected yet).
    pub fn missing(&self, not_found: ApiError) -> ApiError {
        if self.stale {
            ReadModelBehind::new(
                "The read model has not caught up with min_position yet; try again shortly.",
            )
            .into()
        } else {
            not_found
        }
    }
}

/// A JSON answer with the freshness headers.
pub fn answer<T: Serialize>(freshness: Freshness, body: T) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(POSITION_HEADER, HeaderValue::from(freshness.position));
    if freshness.stale {
        headers.insert(STALE_HEADER, HeaderValue::from_static("true"));
    }
    response
}

/// The page size: default 20, at most 100.
pub fn limit(requested: Option<i64>) -> Result<i64> {
    match requested {
        None => Ok(20),
        Some(n) if (1..=100).contains(&n) => Ok(n),
        Some(_) => Err(InvalidLimit::new("limit must be between 1 and 100.").into()),
    }
}

/// Keyset paging: `rows` were fetched with `LIMIT limit + 1`. When the extra
/// row came, it is dropped and `key` of the page's last row is the way on;
/// otherwise this is the last page (`None`).
pub fn next_page<T, K>(rows: &mut Vec<T>, limit: i64, key: impl FnOnce(&T) -> K) -> Option<K> {
    if rows.len() as i64 <= limit {
        return None;
    }
    rows.truncate(limit.max(0) as usize);
    rows.last().map(key)
}

/// An opaque keyset cursor: the last row's sort key, URL-safe.
pub fn encode_cursor<T: Serialize>(key: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn decode_cursor<T: DeserializeOwned>(cursor: Option<&str>) -> Result<Option<T>> {
    // An empty cursor (`?cursor=`) is no cursor: the first page.
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(cursor_not_found)
}

/// A cursor that names no place in the list asked for: made up, or from
/// another list or sort order.
pub fn cursor_not_found() -> ApiError {
    CursorNotFound::new("The cursor is not one this list gave out; start again without it.").into()
}
