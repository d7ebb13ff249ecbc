//! Locking stock for an order: every line held, or none (the admin's
//! `POST /v1/inventory/lock`).
//!
//! The all-or-nothing rule is `domain::inventory::hold_all`, the one the
//! fulfilment workflow's reservation makes: every line is decided on copies
//! first, so a lock that cannot be held writes nothing. The holds are then
//! placed one product after the other; should one be refused after all (the
//! stock was taken meanwhile), the holds this request placed are released
//! again (the compensation).

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use domain::inventory::{committed_key, hold_all, InventoryCommand, InventoryItem};
use domain::values::{ProductId, Quantity};
use projections::event_store::streams;
use uuid::Uuid;

use super::products::{existing_product, FindProductError};
use super::{use_case_error, Caller, StoreError};
use crate::app::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum LockStockError {
    #[error("An order lock needs at least one line.")]
    EmptyOrder,
    #[error("Product {0} appears twice; merge the lines.")]
    DuplicateLine(Uuid),
    /// A quantity that is not one; the message says why.
    #[error("{0}")]
    InvalidQuantity(super::refusals::InvalidQuantity),
    #[error(transparent)]
    Product(#[from] FindProductError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(LockStockError {
    Self::EmptyOrder => refused(Rule, "empty_order"),
    Self::DuplicateLine(_) => refused(Rule, "duplicate_line"),
    Self::InvalidQuantity(e) => nested(e: super::refusals::InvalidQuantity),
    Self::Product(e) => nested(e: FindProductError),
    Self::Store(e) => nested(e: StoreError),
});

/// What came of a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locked {
    /// Every line is held for the order.
    Held { lines: usize, position: i64 },
    /// A line cannot be held (`reason`); nothing is held for the order.
    Refused {
        product_id: ProductId,
        reason: String,
        position: i64,
    },
}

/// Holds every line of `items` (`(product, quantity)`, one line per
/// product) for `order_id` without expiry, or none. Holding again for the
/// same order and quantities changes nothing.
pub async fn lock_stock(
    state: &AppState,
    caller: &Caller,
    order_id: Uuid,
    items: &[(Uuid, i64)],
) -> Result<Locked, LockStockError> {
    if items.is_empty() {
        return Err(LockStockError::EmptyOrder);
    }
    // Every product first: a line naming none is 404 whatever else is wrong.
    for &(product_id, _) in items {
        existing_product(state, ProductId(product_id)).await?;
    }
    let mut lines = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for &(product_id, quantity) in items {
        if !seen.insert(product_id) {
            return Err(LockStockError::DuplicateLine(product_id));
        }
        let quantity = Quantity::new(quantity).map_err(|e| {
            LockStockError::InvalidQuantity(super::refusals::InvalidQuantity(e.to_string()))
        })?;
        lines.push((ProductId(product_id), quantity));
    }

    // Decide every line on copies: all or none.
    let now = Utc::now();
    let mut current: BTreeMap<ProductId, InventoryItem> = BTreeMap::new();
    let mut position = 0;
    for &(product_id, _) in &lines {
        let recall = [committed_key(order_id)];
        let loaded = streams::load::<InventoryItem>(&state.pool, &product_id.to_string(), &recall)
            .await
            .map_err(StoreError::from)?;
        position = position.max(loaded.position);
        current.insert(product_id, loaded.aggregate);
    }
    if let Err((product_id, reason)) = hold_all(|p| current.get(&p), order_id, &lines, now).await {
        return Ok(Locked::Refused {
            product_id,
            reason: reason.to_string(),
            position,
        });
    }

    // Hold them; release what this request placed should one be refused.
    let mut placed = Vec::new();
    let mut position = 0;
    for &(product_id, quantity) in &lines {
        let command = InventoryCommand::PlaceHold {
            owner_id: order_id,
            quantity,
            expires_at: None,
            now,
        };
        let meta = caller.meta("LockOrderLine");
        match state
            .inventory
            .execute_with_retry(&product_id.to_string(), command, &meta)
            .await
            .map_err(StoreError::split)
        {
            Ok(committed) => {
                position = position.max(committed.position);
                if committed.wrote_events {
                    placed.push(product_id);
                }
            }
            Err(Ok(refusal)) => {
                for product in placed {
                    let release = InventoryCommand::ReleaseHold { owner_id: order_id };
                    state
                        .inventory
                        .execute_with_retry(
                            &product.to_string(),
                            release,
                            &caller.meta("UnlockOrderLine"),
                        )
                        .await
                        .map_err(super::load_error)?;
                }
                return Ok(Locked::Refused {
                    product_id,
                    reason: refusal.to_string(),
                    position,
                });
            }
            Err(Err(e)) => return Err(e.into()),
        }
    }
    Ok(Locked::Held {
        lines: lines.len(),
        position,
    })
}
