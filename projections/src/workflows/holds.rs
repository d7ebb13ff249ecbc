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
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::inventory::{hold_expiries, InventoryEvent, InventoryItem};
use domain::values::ProductId;
use sqlx::PgConnection;
use uuid::Uuid;

use super::deadlines::{self, HOLD_EXPIRY};
use crate::event_store::log::StoredEvent;
use crate::projector::{ApplyError, Projector};

/// This projector's name: its checkpoint's key, and the system actor of the
/// `ExpireHold` its deadlines run.
pub const NAME: &str = "hold_expiry";

/// Schedules a deadline for every hold placed with an expiry.
#[derive(Debug, Clone, Copy, Default)]
pub struct HoldExpiry;

/// The deadline's key (its `aggregate_id`): the product, the owner and the
/// expiry, so a hold given back and placed again by the same owner gets a
/// deadline of its own.
pub fn deadline_key(product_id: ProductId, owner_id: Uuid, expires_at: DateTime<Utc>) -> String {
    format!(
        "{}/{owner_id}/{}",
        product_id.as_uuid(),
        expires_at.timestamp_micros()
    )
}

/// The product and owner of a deadline key ([`deadline_key`]).
pub fn parse_deadline_key(key: &str) -> Option<(ProductId, Uuid)> {
    let mut parts = key.split('/');
    let product = Uuid::parse_str(parts.next()?).ok()?;
    let owner = Uuid::parse_str(parts.next()?).ok()?;
    Some((ProductId(product), owner))
}

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
                &deadline_key(product_id, owner_id, expires_at),
                expires_at,
                &serde_json::json!({}),
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_key_names_the_product_and_the_owner() {
        let product = ProductId(Uuid::from_u128(1));
        let owner = Uuid::from_u128(2);
        let key = deadline_key(product, owner, Utc::now());
        assert_eq!(parse_deadline_key(&key), Some((product, owner)));
        assert_eq!(parse_deadline_key("nope"), None);
    }
}
