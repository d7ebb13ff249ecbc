//! The stock of one product. The aggregate id is the product id.
//!
//! `on_hand` is what is in the warehouse; `held` is the sum of the holds
//! (reservations by owner, e.g. by order id); `available = on_hand - held`
//! never goes below zero.
//!
//! A lock across several products is orchestrated outside this aggregate:
//! the application places a hold per product with the order id as owner
//! (checking [`InventoryItem::can_hold`] first if it likes) and releases the
//! holds already placed when one of them is refused.

mod commands;
mod error;
mod events;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::InventoryCommand;
pub use error::InventoryError;
pub use events::InventoryEvent;

use crate::values::{optional_text, required_text, OrderId, ProductId, Quantity, ValueError};

/// Longest reason of a receipt or an adjustment, in characters.
pub const REASON_MAX: usize = 500;

/// Stock reserved for one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub quantity: Quantity,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Hold {
    /// Whether the hold's time is up at `now`. A hold without expiry never is.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    /// Known from the first receipt on.
    product_id: Option<ProductId>,
    on_hand: i64,
    holds: BTreeMap<Uuid, Hold>,
    /// Owners whose hold was committed, with the committed quantity.
    committed: BTreeMap<Uuid, Quantity>,
    /// Orders decremented without a hold, with the quantity.
    decremented_orders: BTreeMap<OrderId, Quantity>,
    /// Orders whose taken stock was put back.
    returned_orders: BTreeSet<OrderId>,
}

impl InventoryItem {
    pub fn product_id(&self) -> Option<ProductId> {
        self.product_id
    }
    pub fn on_hand(&self) -> i64 {
        self.on_hand
    }
    /// The sum of all holds.
    pub fn held(&self) -> i64 {
        self.holds
            .values()
            .map(|h| i64::from(h.quantity.get()))
            .sum()
    }
    /// `on_hand - held`: what a new hold or decrement may take.
    pub fn available(&self) -> i64 {
        self.on_hand - self.held()
    }
    /// Whether a hold of `quantity` would fit in the available stock now
    /// (ignoring holds that are due but not yet expired; see
    /// [`InventoryItem::can_hold_at`]).
    pub fn can_hold(&self, quantity: Quantity) -> bool {
        i64::from(quantity.get()) <= self.available()
    }
    /// Like [`InventoryItem::can_hold`], counting holds due at `now` as free,
    /// as `PlaceHold` does.
    pub fn can_hold_at(&self, quantity: Quantity, now: DateTime<Utc>) -> bool {
        i64::from(quantity.get()) <= self.available() + self.due_quantity(None, now)
    }
    pub fn hold(&self, owner_id: Uuid) -> Option<&Hold> {
        self.holds.get(&owner_id)
    }
    pub fn holds(&self) -> &BTreeMap<Uuid, Hold> {
        &self.holds
    }
    pub fn is_committed(&self, owner_id: Uuid) -> bool {
        self.committed.contains_key(&owner_id)
    }
    pub fn is_decremented(&self, order_id: OrderId) -> bool {
        self.decremented_orders.contains_key(&order_id)
    }

    fn tracked_product(&self) -> Result<ProductId, InventoryError> {
        self.product_id.ok_or(InventoryError::NotStocked)
    }

    /// Total quantity of the holds due at `now`, except `owner`'s.
    fn due_quantity(&self, except: Option<Uuid>, now: DateTime<Utc>) -> i64 {
        self.holds
            .iter()
            .filter(|(owner, hold)| Some(**owner) != except && hold.is_due(now))
            .map(|(_, hold)| i64::from(hold.quantity.get()))
            .sum()
    }

    fn expired_event(&self, product_id: ProductId, owner_id: Uuid) -> Option<InventoryEvent> {
        let hold = self.holds.get(&owner_id)?;
        let expires_at = hold.expires_at?;
        Some(InventoryEvent::HoldExpired {
            product_id,
            owner_id,
            quantity: hold.quantity,
            expires_at,
            on_hand_after: self.on_hand,
            held_after: self.held() - i64::from(hold.quantity.get()),
        })
    }

    async fn place_hold(
        &mut self,
        owner_id: Uuid,
        quantity: Quantity,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), InventoryError> {
        let existing = self
            .holds
            .get(&owner_id)
            .map(|h| h.quantity)
            .or_else(|| self.committed.get(&owner_id).copied());
        if let Some(existing) = existing {
            if existing == quantity {
                return Ok(());
            }
            return Err(InventoryError::HoldConflict {
                owner_id,
                existing: existing.get(),
                requested: quantity.get(),
            });
        }
        if let Some(at) = expires_at {
            if at <= now {
                return Err(InventoryError::HoldExpiryInPast {
                    expires_at: at,
                    now,
                });
            }
        }
        let requested = i64::from(quantity.get());
        if requested > self.available() {
            // Holds whose time is up no longer block stock: expire them to
            // make room, if that is enough.
            let could_be_available = self.available() + self.due_quantity(Some(owner_id), now);
            if requested > could_be_available {
                return Err(InventoryError::InsufficientStock {
                    requested: quantity.get(),
                    available: could_be_available,
                });
            }
            let product_id = self.tracked_product()?;
            let due: Vec<Uuid> = self
                .holds
                .iter()
                .filter(|(owner, hold)| **owner != owner_id && hold.is_due(now))
                .map(|(owner, _)| *owner)
                .collect();
            for owner in due {
                if let Some(event) = self.expired_event(product_id, owner) {
                    sink.write(event, self).await;
                }
            }
        }
        let product_id = self.tracked_product()?;
        let event = InventoryEvent::HoldPlaced {
            product_id,
            owner_id,
            quantity,
            expires_at,
            on_hand_after: self.on_hand,
            held_after: self.held() + requested,
        };
        sink.write(event, self).await;
        Ok(())
    }
}

fn optional_reason(raw: Option<&str>) -> Result<Option<String>, ValueError> {
    optional_text("reason", raw, REASON_MAX)
}

impl Aggregate for InventoryItem {
    const TYPE: &'static str = "InventoryItem";
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = InventoryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            InventoryCommand::Receive {
                product_id,
                quantity,
                reason,
            } => {
                if let Some(expected) = self.product_id {
                    if expected != product_id {
                        return Err(InventoryError::WrongProduct {
                            expected,
                            got: product_id,
                        });
                    }
                }
                let reason =
                    optional_reason(reason.as_deref()).map_err(InventoryError::InvalidReason)?;
                let on_hand_after = self
                    .on_hand
                    .checked_add(i64::from(quantity.get()))
                    .ok_or(InventoryError::Overflow)?;
                let event = InventoryEvent::StockReceived {
                    product_id,
                    quantity,
                    reason,
                    on_hand_after,
                    held_after: self.held(),
                };
                sink.write(event, self).await;
            }
            InventoryCommand::Adjust { delta, reason } => {
                if delta == 0 {
                    return Err(InventoryError::ZeroAdjustment);
                }
                let reason = required_text("reason", &reason, REASON_MAX)
                    .map_err(InventoryError::InvalidReason)?;
                let product_id = self.tracked_product()?;
                let on_hand_after = self
                    .on_hand
                    .checked_add(delta)
                    .ok_or(InventoryError::Overflow)?;
                let held = self.held();
                if on_hand_after < held {
                    return Err(InventoryError::AvailableWouldGoNegative {
                        delta,
                        available: self.available(),
                    });
                }
                let event = InventoryEvent::StockAdjusted {
                    product_id,
                    delta,
                    reason,
                    on_hand_after,
                    held_after: held,
                };
                sink.write(event, self).await;
            }
            InventoryCommand::PlaceHold {
                owner_id,
                quantity,
                expires_at,
                now,
            } => {
                self.place_hold(owner_id, quantity, expires_at, now, sink)
                    .await?;
            }
            InventoryCommand::ReleaseHold { owner_id } => {
                let Some(hold) = self.holds.get(&owner_id) else {
                    return Ok(());
                };
                let event = InventoryEvent::HoldReleased {
                    product_id: self.tracked_product()?,
                    owner_id,
                    quantity: hold.quantity,
                    on_hand_after: self.on_hand,
                    held_after: self.held() - i64::from(hold.quantity.get()),
                };
                sink.write(event, self).await;
            }
            InventoryCommand::ExpireHold { owner_id, now } => {
                let Some(hold) = self.holds.get(&owner_id) else {
                    return Ok(());
                };
                if !hold.is_due(now) {
                    return Err(InventoryError::HoldNotExpired {
                        owner_id,
                        expires_at: hold.expires_at,
                    });
                }
                let product_id = self.tracked_product()?;
                if let Some(event) = self.expired_event(product_id, owner_id) {
                    sink.write(event, self).await;
                }
            }
            InventoryCommand::CommitHold { owner_id } => {
                let Some(hold) = self.holds.get(&owner_id) else {
                    if self.committed.contains_key(&owner_id) {
                        return Ok(());
                    }
                    return Err(InventoryError::NoSuchHold { owner_id });
                };
                let quantity = i64::from(hold.quantity.get());
                let event = InventoryEvent::HoldCommitted {
                    product_id: self.tracked_product()?,
                    owner_id,
                    quantity: hold.quantity,
                    on_hand_after: self.on_hand - quantity,
                    held_after: self.held() - quantity,
                };
                sink.write(event, self).await;
            }
            InventoryCommand::Decrement { order_id, quantity } => {
                if self.decremented_orders.contains_key(&order_id) {
                    return Ok(());
                }
                let requested = i64::from(quantity.get());
                if requested > self.available() {
                    return Err(InventoryError::InsufficientStock {
                        requested: quantity.get(),
                        available: self.available(),
                    });
                }
                let event = InventoryEvent::StockDecremented {
                    product_id: self.tracked_product()?,
                    order_id,
                    quantity,
                    on_hand_after: self.on_hand - requested,
                    held_after: self.held(),
                };
                sink.write(event, self).await;
            }
            InventoryCommand::ReturnOrderStock { order_id } => {
                if self.returned_orders.contains(&order_id) {
                    return Ok(());
                }
                let taken = self
                    .committed
                    .get(&order_id.as_uuid())
                    .or_else(|| self.decremented_orders.get(&order_id))
                    .copied();
                let Some(quantity) = taken else {
                    return Ok(());
                };
                let event = InventoryEvent::OrderStockReturned {
                    product_id: self.tracked_product()?,
                    order_id,
                    quantity,
                    on_hand_after: self.on_hand + i64::from(quantity.get()),
                    held_after: self.held(),
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            InventoryEvent::StockReceived {
                product_id,
                quantity,
                ..
            } => {
                self.product_id = Some(product_id);
                self.on_hand = self.on_hand.saturating_add(i64::from(quantity.get()));
            }
            InventoryEvent::StockAdjusted { delta, .. } => {
                self.on_hand = self.on_hand.saturating_add(delta);
            }
            InventoryEvent::HoldPlaced {
                owner_id,
                quantity,
                expires_at,
                ..
            } => {
                self.holds.insert(
                    owner_id,
                    Hold {
                        quantity,
                        expires_at,
                    },
                );
            }
            InventoryEvent::HoldReleased { owner_id, .. }
            | InventoryEvent::HoldExpired { owner_id, .. } => {
                self.holds.remove(&owner_id);
            }
            InventoryEvent::HoldCommitted {
                owner_id, quantity, ..
            } => {
                self.holds.remove(&owner_id);
                self.committed.insert(owner_id, quantity);
                self.on_hand = self.on_hand.saturating_sub(i64::from(quantity.get()));
            }
            InventoryEvent::StockDecremented {
                order_id, quantity, ..
            } => {
                self.decremented_orders.insert(order_id, quantity);
                self.on_hand = self.on_hand.saturating_sub(i64::from(quantity.get()));
            }
            InventoryEvent::OrderStockReturned {
                order_id, quantity, ..
            } => {
                self.returned_orders.insert(order_id);
                self.on_hand = self.on_hand.saturating_add(i64::from(quantity.get()));
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for InventoryItem {}
