//! The orders projector: order history.
//!
//! Each row keeps the folded `Order` state; an event is applied to it with
//! the aggregate's own `apply` (state evolution, no rules). The API view is
//! computed from the state when the order is read (`queries.rs`), so each
//! order is encoded once per batch. A step back in an order's sequence is a
//! poison event.
//!
//! Batch-first: a batch reads the rows of every order it touches in one
//! query, applies all their events in memory, and writes each order's row
//! once, in one statement for the whole batch. A single event is a batch of
//! one (the runtime's event-by-event path).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::customer::{Customer, CustomerEvent};
use domain::order::{Order, OrderEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::event_store::log::StoredEvent;
use crate::read_models::decode;
use crate::runtime::{ApplyError, Projector};

pub const NAME: &str = "orders";

pub struct OrdersProjector;

/// An order as the batch leaves it.
struct Folded {
    order: Order,
    last_sequence: Option<i64>,
    /// Set when the row is new: the first event's position and time.
    placed_position: i64,
    first_recorded_at: DateTime<Utc>,
    last_recorded_at: DateTime<Utc>,
}

#[async_trait]
impl Projector for OrdersProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_orders"]
    }

    /// Orders, and customers for `CustomerForgotten`.
    fn handles(&self, aggregate_type: &str) -> bool {
        aggregate_type == Order::TYPE || aggregate_type == Customer::TYPE
    }

    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event]).await
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<(), ApplyError> {
        let mut decoded = Vec::with_capacity(events.len());
        let mut ids = Vec::new();
        let mut forgotten = Vec::new();
        for event in events {
            if event.aggregate_type == Customer::TYPE {
                if let CustomerEvent::CustomerForgotten { customer_id } = decode(event)? {
                    forgotten.push(customer_id.as_uuid());
                }
                continue;
            }
            let id: Uuid = event
                .aggregate_id
                .parse()
                .map_err(|e| ApplyError::Poison(format!("order id is not a UUID: {e}")))?;
            let order_event: OrderEvent = decode(event)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
            decoded.push((id, *event, order_event));
        }
        if decoded.is_empty() {
            return erase(conn, &forgotten).await;
        }
        // No row locks: one worker at a time writes a projector's tables,
        // under its advisory lock (see `crate::runtime`), and a lock would
        // write every row twice.
        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT id, state::text, last_sequence FROM rm_orders WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut orders: HashMap<Uuid, Folded> = HashMap::with_capacity(ids.len());
        for (id, state, last_sequence) in rows {
            let folded = Folded {
                order: serde_json::from_str(&state)?,
                last_sequence: Some(last_sequence),
                placed_position: 0,
                first_recorded_at: DateTime::<Utc>::MIN_UTC,
                last_recorded_at: DateTime::<Utc>::MIN_UTC,
            };
            orders.insert(id, folded);
        }
        for (id, event, order_event) in decoded {
            let folded = orders.entry(id).or_insert_with(|| Folded {
                order: Order::default(),
                last_sequence: None,
                placed_position: event.global_position,
                first_recorded_at: event.recorded_at,
                last_recorded_at: event.recorded_at,
            });
            if let Some(last_sequence) = folded.last_sequence {
                if event.sequence != last_sequence + 1 {
                    return Err(ApplyError::Poison(format!(
                        "order {id}: sequence {} follows {last_sequence}",
                        event.sequence
                    )));
                }
            }
            folded.order.apply(order_event);
            if !folded.order.is_placed() {
                return Err(ApplyError::Poison(format!(
                    "order {id} has events but was never placed"
                )));
            }
            folded.last_sequence = Some(event.sequence);
            folded.last_recorded_at = event.recorded_at;
        }
        write(conn, orders).await?;
        erase(conn, &forgotten).await
    }
}

/// The orders of forgotten customers keep their lines, amounts and dates;
/// their shipping address reads `[erased]` (as the events now do).
async fn erase(conn: &mut PgConnection, customers: &[Uuid]) -> Result<(), ApplyError> {
    if customers.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE rm_orders
            SET state = jsonb_set(state::jsonb, '{shipping_address}', to_jsonb($2::text))::json
          WHERE customer_id = ANY($1)",
    )
    .bind(customers)
    .bind(domain::personal::ERASED)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every order's row in one statement.
async fn write(conn: &mut PgConnection, orders: HashMap<Uuid, Folded>) -> Result<(), ApplyError> {
    let count = orders.len();
    let mut ids = Vec::with_capacity(count);
    let mut customers = Vec::with_capacity(count);
    let mut statuses = Vec::with_capacity(count);
    let mut payment_statuses = Vec::with_capacity(count);
    let mut reasons = Vec::with_capacity(count);
    let mut totals = Vec::with_capacity(count);
    let mut currencies = Vec::with_capacity(count);
    let mut created = Vec::with_capacity(count);
    let mut updated = Vec::with_capacity(count);
    let mut positions = Vec::with_capacity(count);
    let mut states = Vec::with_capacity(count);
    let mut sequences = Vec::with_capacity(count);
    for (id, folded) in orders {
        let view = folded.order.view().ok_or_else(|| {
            ApplyError::Poison(format!("order {id} has events but was never placed"))
        })?;
        ids.push(id);
        customers.push(view.customer_id.as_uuid());
        statuses.push(view.status.as_str());
        payment_statuses.push(view.payment_status.as_str());
        reasons.push(view.cancellation_reason.map(|r| r.as_str()));
        totals.push(view.total);
        currencies.push(view.currency.as_str().to_string());
        created.push(view.created_at.unwrap_or(folded.first_recorded_at));
        updated.push(view.updated_at.unwrap_or(folded.last_recorded_at));
        positions.push(folded.placed_position);
        states.push(serde_json::to_string(&folded.order)?);
        sequences.push(folded.last_sequence.unwrap_or(0));
    }
    sqlx::query(
        "INSERT INTO rm_orders
            (id, customer_id, status, payment_status, cancellation_reason, total, currency,
             created_at, updated_at, placed_position, state, last_sequence)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::int8[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                              $10::int8[], $11::text[]::json[], $12::int8[])
         ON CONFLICT (id) DO UPDATE
            SET status = EXCLUDED.status, payment_status = EXCLUDED.payment_status,
                cancellation_reason = EXCLUDED.cancellation_reason, total = EXCLUDED.total,
                updated_at = EXCLUDED.updated_at, state = EXCLUDED.state, last_sequence = EXCLUDED.last_sequence",
    )
    .bind(ids)
    .bind(customers)
    .bind(statuses)
    .bind(payment_statuses)
    .bind(reasons)
    .bind(totals)
    .bind(currencies)
    .bind(created)
    .bind(updated)
    .bind(positions)
    .bind(states)
    .bind(sequences)
    .execute(conn)
    .await?;
    Ok(())
}
