//! The orders projector: order history.
//!
//! Each row keeps the folded `Order` state; an event is applied to it with
//! the aggregate's own `apply` (state evolution, no rules), and the API view
//! is stored next to it. A step back in an order's sequence is a poison event.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use domain::order::{Order, OrderEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::event_store::log::StoredEvent;
use crate::read_models::decode;
use crate::runtime::{ApplyError, Projector};

pub const NAME: &str = "orders";

pub struct OrdersProjector;

#[async_trait]
impl Projector for OrdersProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_orders"]
    }

    fn handles(&self, aggregate_type: &str) -> bool {
        aggregate_type == Order::TYPE
    }

    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        let order_event: OrderEvent = decode(event)?;
        let id: Uuid = event
            .aggregate_id
            .parse()
            .map_err(|e| ApplyError::Poison(format!("order id is not a UUID: {e}")))?;
        let row: Option<(serde_json::Value, i64)> =
            sqlx::query_as("SELECT state, last_sequence FROM rm_orders WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let mut order = match &row {
            Some((state, last_sequence)) => {
                if event.sequence != last_sequence + 1 {
                    return Err(ApplyError::Poison(format!(
                        "order {id}: sequence {} follows {last_sequence}",
                        event.sequence
                    )));
                }
                serde_json::from_value::<Order>(state.clone())?
            }
            None => Order::default(),
        };
        order.apply(order_event);
        let view = order.view().ok_or_else(|| {
            ApplyError::Poison(format!("order {id} has events but was never placed"))
        })?;
        let view_json = serde_json::to_value(&view)?;
        let state = serde_json::to_value(&order)?;
        let updated_at = view.updated_at.unwrap_or(event.recorded_at);
        let created_at = view.created_at.unwrap_or(event.recorded_at);
        sqlx::query(
            "INSERT INTO rm_orders
                (id, customer_id, status, payment_status, cancellation_reason, total, currency,
                 created_at, updated_at, placed_position, view, state, last_sequence)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (id) DO UPDATE
                SET status = EXCLUDED.status, payment_status = EXCLUDED.payment_status,
                    cancellation_reason = EXCLUDED.cancellation_reason, total = EXCLUDED.total,
                    updated_at = EXCLUDED.updated_at, view = EXCLUDED.view,
                    state = EXCLUDED.state, last_sequence = EXCLUDED.last_sequence",
        )
        .bind(id)
        .bind(view.customer_id.as_uuid())
        .bind(view.status.as_str())
        .bind(view.payment_status.as_str())
        .bind(view.cancellation_reason.map(|r| r.as_str()))
        .bind(view.total)
        .bind(view.currency.as_str())
        .bind(created_at)
        .bind(updated_at)
        .bind(event.global_position)
        .bind(view_json)
        .bind(state)
        .bind(event.sequence)
        .execute(conn)
        .await?;
        Ok(())
    }
}
