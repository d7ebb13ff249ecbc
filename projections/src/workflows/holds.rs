//! Hold expiry: a hold placed with an expiry (`PUT
//! /v1/inventory/{product_id}/hold` with `ttl_seconds`) gets a deadline at
//! that moment, so the stock is free on time even when no one asks for it
//! (a hold due but not expired is otherwise only dropped when another hold
//! needs the stock).
//!
//! A plain projector, run in batch transactions: it schedules each deadline
//! in the transaction of its checkpoint, so an event is scheduled once. It
//! keeps no read model (never rebuilt); the deadline poller
//! ([`super::deadlines`]) runs `ExpireHold` when the deadline is due.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use domain::inventory::{hold_expiries, InventoryEvent, InventoryItem};
use sqlx::PgConnection;

use super::deadlines::{self, hold_deadline_key, HOLD_EXPIRY};
use crate::event_store::log::StoredEvent;
use crate::projector::{ApplyError, Projector};

/// This projector's name (see [`super::HOLD_EXPIRY_NAME`]).
pub use super::HOLD_EXPIRY_NAME as NAME;

/// Schedules a deadline for every hold placed with an expiry.
#[derive(Debug, Clone, Copy, Default)]
pub struct HoldExpiry;

#[async_trait]
impl Projector for HoldExpiry {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Its effect is deadlines, not a read model: never rebuilt.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn handles(&self, aggregate_type: &str) -> bool {
        aggregate_type == InventoryItem::TYPE
    }

    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        if !matches!(event.event_type.as_str(), "HoldPlaced" | "HoldsPlaced") {
            return Ok(());
        }
        let decoded: InventoryEvent = event.decode()?;
        let product_id = match &decoded {
            InventoryEvent::HoldPlaced { product_id, .. }
            | InventoryEvent::HoldsPlaced { product_id, .. } => *product_id,
            _ => return Ok(()),
        };
        for (owner_id, expires_at) in hold_expiries(&decoded) {
            deadlines::schedule(
                &mut *conn,
                HOLD_EXPIRY,
                &hold_deadline_key(product_id, owner_id, expires_at),
                expires_at,
                &serde_json::json!({}),
            )
            .await?;
        }
        Ok(())
    }
}
