//! The integration events feed: `GET /v1/events/feed`, for services that
//! cannot use NATS. The same CloudEvents the publisher puts on JetStream,
//! in commit order, as a JSON page or as Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use projections::integration::contract::CloudEvent;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::event_feed::{feed_limit, feed_page, FeedPageError, FEED_READERS};
use crate::app::refusals::InvalidFeedPosition;
use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::error::{Answers, ApiError, Result};
use crate::extract::AppQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(feed))
}

/// Events sent per read while a stream catches up.
const SSE_BATCH: usize = 200;
/// How long a caught-up stream waits before it looks at the log again
/// (sooner when this process appends).
const SSE_POLL: Duration = Duration::from_millis(500);
/// How often an idle stream sends a comment so proxies keep it open.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    /// The position of the last event already seen (its `position`, or its
    /// SSE `id`); without it the feed starts at the beginning. An SSE
    /// client's `Last-Event-ID` header takes its place when it reconnects.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Events of a JSON page: 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
struct FeedPage {
    /// Integration events in commit order.
    events: Vec<CloudEvent>,
    /// Pass as `after` for the next page (it may be past the last event of
    /// this page: positions of internal events are passed over). Equal to
    /// `after` when there is nothing new yet.
    next_after: i64,
}

/// The shop's integration events after a position.
#[utoipa::path(
    get,
    path = "/v1/events/feed",
    tag = "integration",
    summary = "Integration events feed",
    description = "Role: integration or operator. The shop's integration events (CloudEvents 1.0, see docs/integration-events.md) in commit order, without gaps or repeats. `Accept: text/event-stream` gives Server-Sent Events: each event's `id` is its position and its `data` the CloudEvent; the stream stays open, sends new events as they are committed and a keep-alive comment when idle; a client that reconnects with `Last-Event-ID` goes on after that event. Otherwise a JSON page of at most `limit` events with `next_after`.",
    security(("bearer" = [])),
    params(FeedQuery, ("Last-Event-ID" = Option<i64>, Header, description = "For Server-Sent Events: the `id` of the last event received; wins over `after`.")),
    responses(
        (status = 200, description = "A JSON page, or a stream of Server-Sent Events for `Accept: text/event-stream`.", content(
            (FeedPage = "application/json"),
            (String = "text/event-stream")
        )),
        Answers::<(Forbidden, InvalidFeedPosition, FeedPageError)>,
    ),
)]
async fn feed(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<FeedQuery>,
) -> Result<Response> {
    user.require(FEED_READERS)?;
    let after = match last_event_id(&headers)? {
        Some(id) => id,
        None => query.after.unwrap_or(0),
    };
    if after < 0 {
        return Err(InvalidFeedPosition::new("after must be 0 or more.").into());
    }
    let limit = feed_limit(query.limit)?;
    if wants_event_stream(&headers) {
        // The first read answers errors (an unknown position) with a status.
        let first = feed_page(&state.pool, after, SSE_BATCH).await?;
        let events = event_stream(state.pool.clone(), first);
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE))
            .into_response());
    }
    let page = feed_page(&state.pool, after, limit).await?;
    Ok(Json(FeedPage {
        events: page.events,
        next_after: page.last_position,
    })
    .into_response())
}

/// `Last-Event-ID`, if sent; not a position: 400.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|position| *position >= 0)
        .map(Some)
        .ok_or_else(|| {
            InvalidFeedPosition::new(
                "Last-Event-ID must be the id of an event of this feed (a position, 0 or more).",
            )
            .into()
        })
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| media.split(';').next().map(str::trim) == Some("text/event-stream"))
}

/// The events of `first`, then every later one as it is committed. A
/// failure to read ends the stream; the client reconnects with
/// `Last-Event-ID` and goes on where it was.
fn event_stream(
    pool: sqlx::PgPool,
    first: projections::integration::feed::Page,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let wake = projections::event_store::wake::signal();
    stream::unfold((Some(first), pool), move |(page, pool)| async move {
        let page = page?;
        let after = page.last_position;
        let events: Vec<Result<Event, Infallible>> =
            page.events.iter().filter_map(sse_event).map(Ok).collect();
        let next = if events.is_empty() {
            // Caught up: wait for an append, or poll.
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(SSE_POLL) => {}
            }
            next_page(&pool, after).await
        } else {
            next_page(&pool, after).await
        };
        Some((stream::iter(events), (next, pool)))
    })
    .flatten()
}

async fn next_page(
    pool: &sqlx::PgPool,
    after: i64,
) -> Option<projections::integration::feed::Page> {
    match feed_page(pool, after, SSE_BATCH).await {
        Ok(page) => Some(page),
        Err(error) => {
            tracing::warn!(%error, after, "the event feed stream ends; the client resumes with Last-Event-ID");
            None
        }
    }
}

fn sse_event(event: &CloudEvent) -> Option<Event> {
    Event::default()
        .id(event.position.to_string())
        .json_data(event)
        .ok()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The data types of the integration events and the types they use, in
    /// the order the page shows them.
    const SCHEMAS: [&str; 15] = [
        "CloudEvent",
        "EventData",
        "OrderPlaced",
        "IntegrationOrderLine",
        "OrderPaid",
        "OrderCancelled",
        "OrderRefunded",
        "OrderShipped",
        "OrderDelivered",
        "InvoiceIssued",
        "ProductCreated",
        "ProductPriceChanged",
        "ProductDiscontinued",
        "StockAvailabilityChanged",
        "IntegrationMoney",
    ];

    const BEGIN: &str = "<!-- schemas:begin -->\n";
    const END: &str = "<!-- schemas:end -->";

    fn generated() -> String {
        let document = crate::routes::document();
        let mut text = String::new();
        for name in SCHEMAS {
            let schema: &Value = &document["components"]["schemas"][name];
            assert!(schema.is_object(), "the document has no schema {name}");
            text.push_str(&format!(
                "### `{name}`\n\n```json\n{}\n```\n\n",
                serde_json::to_string_pretty(schema).unwrap()
            ));
        }
        text
    }

    #[test]
    fn the_integration_events_page_shows_the_schemas_of_the_published_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/integration-events.md");
        let page = std::fs::read_to_string(path).expect("docs/integration-events.md");
        let start = page.find(BEGIN).expect("the schemas' begin marker") + BEGIN.len();
        let end = page.find(END).expect("the schemas' end marker");
        let expected = generated();
        if std::env::var_os("SHOP_WRITE_DOCS").is_some() {
            let written = format!("{}{expected}{}", &page[..start], &page[end..]);
            std::fs::write(path, written).expect("write docs/integration-events.md");
            return;
        }
        assert!(
            page[start..end] == expected,
            "docs/integration-events.md is out of date: run SHOP_WRITE_DOCS=1 cargo test -p api integration_events_page"
        );
    }
}
