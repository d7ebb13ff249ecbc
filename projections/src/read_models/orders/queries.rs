//! The order history's queries: the only reads of `rm_orders`, kept next to
//! the projector that writes it.
//!
//! # Layout
//! - [`order`]: one order as the projector last wrote it;
//! - [`list_orders`]: orders newest first (the position they were placed
//!   at), of one customer or everyone's, of one status or any, in keyset
//!   pages after an [`OrderCursor`].
//!
//! Visibility (whose order the caller may see) is the caller's to decide:
//! every row carries its customer.
//!
//! A row stores the folded `Order`; its API view is computed here, when the
//! order is read.

use domain::order::{Order, OrderStatus, OrderView};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::read_models::next_page;

/// One order of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub customer_id: Uuid,
    /// The order as the API shows it.
    pub view: OrderView,
    /// The sequence of the order's last event applied: the order's version.
    pub version: i64,
}

/// A row as stored, with the key lists are sorted by.
#[derive(Debug, FromRow)]
struct Stored {
    customer_id: Uuid,
    state: Json<Order>,
    last_sequence: i64,
    placed_position: i64,
}

impl TryFrom<Stored> for OrderRow {
    type Error = sqlx::Error;

    fn try_from(row: Stored) -> Result<Self, sqlx::Error> {
        let view = row.state.0.view().ok_or_else(|| {
            sqlx::Error::Decode("an order of the history was never placed".into())
        })?;
        Ok(OrderRow {
            customer_id: row.customer_id,
            view,
            version: row.last_sequence,
        })
    }
}

/// Where a page of orders ended. Its JSON is a bare number, which is what
/// clients hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderCursor(i64);

/// Which orders, from where on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFilter {
    /// One customer's orders; `None`: everyone's.
    pub customer_id: Option<Uuid>,
    pub status: Option<OrderStatus>,
    /// The previous page's cursor: the page starts after it.
    pub after: Option<OrderCursor>,
    /// The most orders on the page.
    pub limit: i64,
}

/// A page of orders and, unless it is the last, the cursor of the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    pub orders: Vec<OrderRow>,
    pub next: Option<OrderCursor>,
}

/// One order; `None` when the history does not have it.
pub async fn order(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    let row: Option<Stored> = sqlx::query_as(
        "SELECT customer_id, state, last_sequence, placed_position FROM rm_orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(OrderRow::try_from).transpose()
}

/// One page of orders, newest first.
pub async fn list_orders(
    db: impl PgExecutor<'_>,
    filter: &OrderFilter,
) -> Result<OrderPage, sqlx::Error> {
    let mut rows: Vec<Stored> = sqlx::query_as(
        "SELECT customer_id, state, last_sequence, placed_position FROM rm_orders
          WHERE ($1::uuid IS NULL OR customer_id = $1)
            AND ($2::text IS NULL OR status = $2)
            AND ($3::bigint IS NULL OR placed_position < $3)
          ORDER BY placed_position DESC
          LIMIT $4",
    )
    .bind(filter.customer_id)
    .bind(filter.status.map(|s| s.as_str()))
    .bind(filter.after.map(|c| c.0))
    .bind(filter.limit + 1)
    .fetch_all(db)
    .await?;
    let next = next_page(&mut rows, filter.limit, |r| OrderCursor(r.placed_position));
    Ok(OrderPage {
        orders: rows
            .into_iter()
            .map(OrderRow::try_from)
            .collect::<Result<_, _>>()?,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_cursor_is_a_bare_number() {
        assert_eq!(serde_json::to_string(&OrderCursor(42)).unwrap(), "42");
        assert_eq!(
            serde_json::from_str::<OrderCursor>("42").unwrap(),
            OrderCursor(42)
        );
    }
}
