//! The stock of one product. The aggregate id is the product id.
//!
//! `on_hand` is what is in the warehouse; `held` is the sum of the open holds
//! (reservations by owner, e.g. by order id); `available = on_hand - held`
//! never goes below zero.
//!
//! A lock across several products is orchestrated outside this aggregate:
//! the application places a hold per product with the order id as owner
//! (checking [`InventoryItem::can_hold`] first if it likes) and releases the
//! holds already placed when one of them is refused. Many orders meeting at
//! one product can be decided in one command (`PlaceHolds`, `CommitHolds`).
//!
//! # Keyed memory
//! The state keeps only the open holds and the counts. What every order ever
//! took is remembered by key (see [`crate::stored`]):
//!
//! | key                     | value             | set by                             |
//! |-------------------------|-------------------|------------------------------------|
//! | `committed:<owner id>`  | quantity (number) | `HoldCommitted`, `HoldsCommitted`  |
//! | `decremented:<order id>`| quantity (number) | `StockDecremented`                 |
//! | `returned:<order id>`   | quantity (number) | `OrderStockReturned`               |
//!
//! No event forgets an entry. `PlaceHold`, `PlaceHolds` and `CommitHold`
//! recall `committed:`, `Decrement` recalls `decremented:`, and
//! `ReturnOrderStock` recalls all three for its order.

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
use serde_json::Value;
use uuid::Uuid;

pub use commands::{HoldRequest, InventoryCommand};
pub use error::InventoryError;
pub use events::{CommittedHold, InventoryEvent, PlacedHold};

use crate::stored::{KeyedMemory, StoredAggregate};
use crate::values::{optional_text, required_text, OrderId, ProductId, Quantity, ValueError};

/// Longest reason of a receipt or an adjustment, in characters.
pub const REASON_MAX: usize = 500;

/// The all-or-nothing hold: holds every line for `owner_id` or none.
/// Each line is decided by [`InventoryCommand::PlaceHold`] (no expiry) on a
/// copy of its item, one after the other, so two lines of one product add
/// up; `current` gives an item as it is (`None`: never stocked). Answers the
/// copies with every hold placed, or the first line that cannot be held and
/// why. Nothing is stored: the caller executes the holds it decided.
pub async fn hold_all<'a>(
    current: impl Fn(ProductId) -> Option<&'a InventoryItem>,
    owner_id: Uuid,
    lines: &[(ProductId, Quantity)],
    now: DateTime<Utc>,
) -> Result<BTreeMap<ProductId, InventoryItem>, (ProductId, InventoryError)> {
    let mut trial: BTreeMap<ProductId, InventoryItem> = BTreeMap::new();
    for &(product_id, quantity) in lines {
        let item = match trial.entry(product_id) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => match current(product_id) {
                Some(item) => entry.insert(item.clone()),
                None => return Err((product_id, InventoryError::NotStocked)),
            },
        };
        let command = InventoryCommand::PlaceHold {
            owner_id,
            quantity,
            expires_at: None,
            now,
        };
        if let Err(e) = item.handle(command, &(), &EventSink::default()).await {
            return Err((product_id, e));
        }
    }
    Ok(trial)
}

/// The deadlines an event calls for: `(owner, expires_at)` for each hold it
/// places with an expiry. When one is due, `ExpireHold` drops the hold if it
/// is still open (no event when it was released or committed meanwhile), so
/// the stock is free on time even when no one asks for it.
pub fn hold_expiries(event: &InventoryEvent) -> Vec<(Uuid, DateTime<Utc>)> {
    match event {
        InventoryEvent::HoldPlaced {
            owner_id,
            expires_at: Some(at),
            ..
        } => vec![(*owner_id, *at)],
        InventoryEvent::HoldsPlaced { holds, .. } => holds
            .iter()
            .filter_map(|hold| hold.expires_at.map(|at| (hold.owner_id, at)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The keyed-memory key of the hold `owner_id` committed.
pub fn committed_key(owner_id: Uuid) -> String {
    format!("committed:{owner_id}")
}

/// The keyed-memory key of the stock decremented for `order_id`.
pub fn decremented_key(order_id: OrderId) -> String {
    format!("decremented:{}", order_id.as_uuid())
}

/// The keyed-memory key of the stock put back for `order_id`.
pub fn returned_key(order_id: OrderId) -> String {
    format!("returned:{}", order_id.as_uuid())
}

fn quantity_value(quantity: Quantity) -> Option<Value> {
    Some(Value::from(quantity.get()))
}

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

/// A product's stock. Equality and the serialized form (the snapshot) leave
/// the keyed memory out.
#[derive(Debug, Clone, Default, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    /// Known from the first receipt on.
    product_id: Option<ProductId>,
    on_hand: i64,
    /// The open holds (released, expired and committed ones are gone).
    holds: BTreeMap<Uuid, Hold>,
    /// The sum of `holds`' quantities, kept as they change.
    held: i64,
    /// Committed, decremented and returned quantities, by key.
    #[serde(skip)]
    memory: KeyedMemory,
}

impl PartialEq for InventoryItem {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            product_id,
            on_hand,
            holds,
            held,
            memory: _,
        } = self;
        *product_id == other.product_id
            && *on_hand == other.on_hand
            && *holds == other.holds
            && *held == other.held
    }
}

impl InventoryItem {
    pub fn product_id(&self) -> Option<ProductId> {
        self.product_id
    }
    pub fn on_hand(&self) -> i64 {
        self.on_hand
    }
    /// The sum of the open holds.
    pub fn held(&self) -> i64 {
        self.held
    }
    /// `on_hand - held`: what a new hold or decrement may take.
    pub fn available(&self) -> i64 {
        self.on_hand - self.held
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
        i64::from(quantity.get()) <= self.available() + self.due_quantity(now)
    }
    pub fn hold(&self, owner_id: Uuid) -> Option<&Hold> {
        self.holds.get(&owner_id)
    }
    /// The open holds.
    pub fn holds(&self) -> &BTreeMap<Uuid, Hold> {
        &self.holds
    }
    /// Whether `owner_id`'s hold was committed. Read from keyed memory: an
    /// item rebuilt from all its events knows every owner; one loaded from a
    /// snapshot knows only the owners recalled (`committed:<owner>`) or
    /// committed by the events after the snapshot.
    pub fn is_committed(&self, owner_id: Uuid) -> bool {
        self.memory.contains(&committed_key(owner_id))
    }
    /// The quantity `owner_id` committed, if any (known as for
    /// [`InventoryItem::is_committed`]).
    pub fn committed_quantity(&self, owner_id: Uuid) -> Option<Quantity> {
        self.remembered_quantity(&committed_key(owner_id))
    }
    /// Whether stock was decremented for `order_id` without a hold. Read
    /// from keyed memory: after a snapshot load, only orders recalled
    /// (`decremented:<order>`) or decremented by later events are known.
    pub fn is_decremented(&self, order_id: OrderId) -> bool {
        self.memory.contains(&decremented_key(order_id))
    }
    /// Whether what `order_id` took was put back on hand. Read from keyed
    /// memory: after a snapshot load, only orders recalled
    /// (`returned:<order>`) or returned by later events are known.
    pub fn is_returned(&self, order_id: OrderId) -> bool {
        self.memory.contains(&returned_key(order_id))
    }

    fn remembered_quantity(&self, key: &str) -> Option<Quantity> {
        let value = self.memory.get(key)?;
        serde_json::from_value(value.clone()).ok()
    }

    fn tracked_product(&self) -> Result<ProductId, InventoryError> {
        self.product_id.ok_or(InventoryError::NotStocked)
    }

    /// Total quantity of the holds due at `now`.
    fn due_quantity(&self, now: DateTime<Utc>) -> i64 {
        self.holds
            .values()
            .filter(|hold| hold.is_due(now))
            .map(|hold| i64::from(hold.quantity.get()))
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
            held_after: self.held - i64::from(hold.quantity.get()),
        })
    }

    /// Expires every hold due at `now`, one `HoldExpired` each.
    async fn expire_due(
        &mut self,
        product_id: ProductId,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) {
        let due: Vec<Uuid> = self
            .holds
            .iter()
            .filter(|(_, hold)| hold.is_due(now))
            .map(|(owner, _)| *owner)
            .collect();
        for owner in due {
            if let Some(event) = self.expired_event(product_id, owner) {
                sink.write(event, self).await;
            }
        }
    }

    /// What `owner_id` holds or has committed.
    fn existing_hold(&self, owner_id: Uuid) -> Option<Quantity> {
        self.holds
            .get(&owner_id)
            .map(|h| h.quantity)
            .or_else(|| self.committed_quantity(owner_id))
    }

    async fn place_hold(
        &mut self,
        owner_id: Uuid,
        quantity: Quantity,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), InventoryError> {
        if let Some(existing) = self.existing_hold(owner_id) {
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
            // make room, if that is enough. (The owner holds nothing, so
            // none of them is its own.)
            let could_be_available = self.available() + self.due_quantity(now);
            if requested > could_be_available {
                return Err(InventoryError::InsufficientStock {
                    requested: quantity.get(),
                    available: could_be_available,
                });
            }
            let product_id = self.tracked_product()?;
            self.expire_due(product_id, now, sink).await;
        }
        let product_id = self.tracked_product()?;
        let event = InventoryEvent::HoldPlaced {
            product_id,
            owner_id,
            quantity,
            expires_at,
            on_hand_after: self.on_hand,
            held_after: self.held + requested,
        };
        sink.write(event, self).await;
        Ok(())
    }

    /// `PlaceHolds`: see [`InventoryCommand::PlaceHolds`].
    async fn place_holds(
        &mut self,
        requests: Vec<HoldRequest>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), InventoryError> {
        let product_id = self.tracked_product()?;
        let mut placed: Vec<PlacedHold> = Vec::new();
        let mut placed_owners: BTreeSet<Uuid> = BTreeSet::new();
        let mut placed_total: i64 = 0;
        // The quantity of the holds due at `now`, computed when first needed;
        // none is due once they were expired (new holds end after `now`).
        let mut due: Option<i64> = None;
        for request in requests {
            let HoldRequest {
                owner_id,
                quantity,
                expires_at,
            } = request;
            if placed_owners.contains(&owner_id) || self.existing_hold(owner_id).is_some() {
                continue;
            }
            if expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            let requested = i64::from(quantity.get());
            let available = self.available() - placed_total;
            if requested > available {
                let due_now = *due.get_or_insert_with(|| self.due_quantity(now));
                if requested > available + due_now {
                    continue;
                }
                self.expire_due(product_id, now, sink).await;
                due = Some(0);
            }
            placed_owners.insert(owner_id);
            placed_total += requested;
            placed.push(PlacedHold {
                owner_id,
                quantity,
                expires_at,
            });
        }
        if placed.is_empty() {
            return Ok(());
        }
        let event = InventoryEvent::HoldsPlaced {
            product_id,
            holds: placed,
            on_hand_after: self.on_hand,
            held_after: self.held + placed_total,
        };
        sink.write(event, self).await;
        Ok(())
    }

    /// `CommitHolds`: see [`InventoryCommand::CommitHolds`].
    async fn commit_holds(
        &mut self,
        owner_ids: Vec<Uuid>,
        sink: &EventSink<Self>,
    ) -> Result<(), InventoryError> {
        let mut seen = BTreeSet::new();
        let commits: Vec<CommittedHold> = owner_ids
            .into_iter()
            .filter(|owner_id| seen.insert(*owner_id))
            .filter_map(|owner_id| {
                self.holds.get(&owner_id).map(|hold| CommittedHold {
                    owner_id,
                    quantity: hold.quantity,
                })
            })
            .collect();
        if commits.is_empty() {
            return Ok(());
        }
        let total: i64 = commits.iter().map(|c| i64::from(c.quantity.get())).sum();
        let event = InventoryEvent::HoldsCommitted {
            product_id: self.tracked_product()?,
            commits,
            on_hand_after: self.on_hand - total,
            held_after: self.held - total,
        };
        sink.write(event, self).await;
        Ok(())
    }

    /// Adds an open hold (replacing one of the same owner).
    fn add_hold(&mut self, owner_id: Uuid, hold: Hold) {
        let quantity = i64::from(hold.quantity.get());
        if let Some(old) = self.holds.insert(owner_id, hold) {
            self.held = self.held.saturating_sub(i64::from(old.quantity.get()));
        }
        self.held = self.held.saturating_add(quantity);
    }

    /// Drops `owner_id`'s open hold, if any.
    fn drop_hold(&mut self, owner_id: Uuid) {
        if let Some(old) = self.holds.remove(&owner_id) {
            self.held = self.held.saturating_sub(i64::from(old.quantity.get()));
        }
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
                    if self.is_committed(owner_id) {
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
                if self.is_decremented(order_id) {
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
                if self.is_returned(order_id) {
                    return Ok(());
                }
                let taken = self
                    .committed_quantity(order_id.as_uuid())
                    .or_else(|| self.remembered_quantity(&decremented_key(order_id)));
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
            InventoryCommand::PlaceHolds { holds, now } => {
                self.place_holds(holds, now, sink).await?;
            }
            InventoryCommand::CommitHolds { owner_ids } => {
                self.commit_holds(owner_ids, sink).await?;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.memory.write(Self::remembers(&event));
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
                self.add_hold(
                    owner_id,
                    Hold {
                        quantity,
                        expires_at,
                    },
                );
            }
            InventoryEvent::HoldsPlaced { holds, .. } => {
                for PlacedHold {
                    owner_id,
                    quantity,
                    expires_at,
                } in holds
                {
                    self.add_hold(
                        owner_id,
                        Hold {
                            quantity,
                            expires_at,
                        },
                    );
                }
            }
            InventoryEvent::HoldReleased { owner_id, .. }
            | InventoryEvent::HoldExpired { owner_id, .. } => {
                self.drop_hold(owner_id);
            }
            InventoryEvent::HoldCommitted {
                owner_id, quantity, ..
            } => {
                self.drop_hold(owner_id);
                self.on_hand = self.on_hand.saturating_sub(i64::from(quantity.get()));
            }
            InventoryEvent::HoldsCommitted { commits, .. } => {
                for CommittedHold { owner_id, quantity } in commits {
                    self.drop_hold(owner_id);
                    self.on_hand = self.on_hand.saturating_sub(i64::from(quantity.get()));
                }
            }
            InventoryEvent::StockDecremented { quantity, .. } => {
                self.on_hand = self.on_hand.saturating_sub(i64::from(quantity.get()));
            }
            InventoryEvent::OrderStockReturned { quantity, .. } => {
                self.on_hand = self.on_hand.saturating_add(i64::from(quantity.get()));
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; what orders took is
/// recalled by key (see the module's "Keyed memory").
impl StoredAggregate for InventoryItem {
    fn remembers(event: &InventoryEvent) -> Vec<(String, Option<Value>)> {
        match event {
            InventoryEvent::HoldCommitted {
                owner_id, quantity, ..
            } => vec![(committed_key(*owner_id), quantity_value(*quantity))],
            InventoryEvent::HoldsCommitted { commits, .. } => commits
                .iter()
                .map(|c| (committed_key(c.owner_id), quantity_value(c.quantity)))
                .collect(),
            InventoryEvent::StockDecremented {
                order_id, quantity, ..
            } => vec![(decremented_key(*order_id), quantity_value(*quantity))],
            InventoryEvent::OrderStockReturned {
                order_id, quantity, ..
            } => vec![(returned_key(*order_id), quantity_value(*quantity))],
            InventoryEvent::StockReceived { .. }
            | InventoryEvent::StockAdjusted { .. }
            | InventoryEvent::HoldPlaced { .. }
            | InventoryEvent::HoldsPlaced { .. }
            | InventoryEvent::HoldReleased { .. }
            | InventoryEvent::HoldExpired { .. } => Vec::new(),
        }
    }

    fn recall_keys(command: &InventoryCommand) -> Vec<String> {
        match command {
            InventoryCommand::PlaceHold { owner_id, .. }
            | InventoryCommand::CommitHold { owner_id } => vec![committed_key(*owner_id)],
            InventoryCommand::PlaceHolds { holds, .. } => {
                let owners: BTreeSet<Uuid> = holds.iter().map(|h| h.owner_id).collect();
                owners.into_iter().map(committed_key).collect()
            }
            InventoryCommand::Decrement { order_id, .. } => vec![decremented_key(*order_id)],
            InventoryCommand::ReturnOrderStock { order_id } => vec![
                returned_key(*order_id),
                committed_key(order_id.as_uuid()),
                decremented_key(*order_id),
            ],
            // Decided on the open holds and the counts alone.
            InventoryCommand::Receive { .. }
            | InventoryCommand::Adjust { .. }
            | InventoryCommand::ReleaseHold { .. }
            | InventoryCommand::ExpireHold { .. }
            | InventoryCommand::CommitHolds { .. } => Vec::new(),
        }
    }

    fn recall(&mut self, entries: Vec<(String, Value)>) {
        self.memory.recall(entries);
    }
}
