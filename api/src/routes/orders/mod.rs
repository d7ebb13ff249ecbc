//! Orders: placing one (from the cart or from explicit lines), reading it
//! (also as it was at a past moment), and the admin's and customer's actions
//! on it. The state machine is drawn in `docs/order-states.md`.
//!
//! Prices never come from the client: every line is priced from the catalog
//! when the order is placed, and the lines keep those prices for ever.
//!
//! Someone else's order is answered 404, never 403, so that order ids cannot
//! be probed.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::state::AppState;

mod change;
mod place;
mod read;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place::place_order))
        .routes(routes!(read::list_orders))
        .routes(routes!(change::change_status_legacy))
        .routes(routes!(read::get_order))
        .routes(routes!(read::order_history))
        .routes(routes!(change::change_status))
        .routes(routes!(change::cancel_order))
        .routes(routes!(change::refund_order))
}
