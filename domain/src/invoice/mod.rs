//! InvoiceNumbering: the gapless, sequential invoice numbers of one year.
//!
//! One aggregate per year (its id is derived from the year, see
//! [`numbering_id`]), so every allocation of a year meets at the same
//! aggregate and the event store's optimistic concurrency serialises them:
//! two processes racing for the next number cannot both get it, and the loser
//! decides again on fresh state. Which order got which number is remembered
//! by key (`invoice:<order id>`, the number; see [`crate::stored`]), so
//! allocating for an order again answers its number (no event): a
//! redelivered `PaymentCaptured` neither skips nor reuses a number. The state
//! itself is the year and the last number. Many orders paid together can be
//! numbered in one command (`AllocateRun`).
//!
//! Numbers read `<year>-<number, six digits>`, e.g. `2026-000001`.

mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use commands::InvoiceNumberingCommand;
pub use error::InvoiceNumberingError;
pub use events::InvoiceNumberingEvent;

use crate::stored::{KeyedMemory, StoredAggregate};
use crate::values::{derived_id, OrderId};

/// The aggregate id of `year`'s numbering.
pub fn numbering_id(year: i32) -> Uuid {
    derived_id("invoice-numbering", &year.to_string())
}

/// The printed invoice number: `2026-000001`.
pub fn format_invoice_number(year: i32, number: u64) -> String {
    format!("{year:04}-{number:06}")
}

/// The keyed-memory key of the number `order_id` got.
pub fn invoice_key(order_id: OrderId) -> String {
    format!("invoice:{}", order_id.as_uuid())
}

/// The numbers of one year given so far. Equality and the serialized form
/// (the snapshot) leave the keyed memory out.
#[derive(Debug, Default, Clone, Eq, Serialize, Deserialize)]
pub struct InvoiceNumbering {
    year: Option<i32>,
    /// The last number given (0: none yet).
    last: u64,
    /// Which order got which number, by key.
    #[serde(skip)]
    memory: KeyedMemory,
}

impl PartialEq for InvoiceNumbering {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            year,
            last,
            memory: _,
        } = self;
        *year == other.year && *last == other.last
    }
}

impl InvoiceNumbering {
    pub fn year(&self) -> Option<i32> {
        self.year
    }

    /// The last number given (0: none yet).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The invoice number `order_id` got, if any. Read from keyed memory: a
    /// numbering rebuilt from all its events knows every order; one loaded
    /// from a snapshot knows only the orders recalled (`invoice:<order>`) or
    /// numbered by the events after the snapshot.
    pub fn invoice_number_of(&self, order_id: OrderId) -> Option<String> {
        let year = self.year?;
        self.number_of(order_id)
            .map(|n| format_invoice_number(year, n))
    }

    fn number_of(&self, order_id: OrderId) -> Option<u64> {
        self.memory.get(&invoice_key(order_id))?.as_u64()
    }

    /// The orders of `orders` that get a number, in order (each once), and
    /// the first of their numbers; `None` when every one has a number.
    fn unnumbered(
        &self,
        year: i32,
        orders: Vec<OrderId>,
    ) -> Result<Option<(u64, Vec<OrderId>)>, InvoiceNumberingError> {
        if !(1..=9999).contains(&year) {
            return Err(InvoiceNumberingError::InvalidYear(year));
        }
        if let Some(numbering) = self.year.filter(|y| *y != year) {
            return Err(InvoiceNumberingError::YearMismatch {
                numbering,
                requested: year,
            });
        }
        let mut seen = BTreeSet::new();
        let orders: Vec<OrderId> = orders
            .into_iter()
            .filter(|order_id| self.number_of(*order_id).is_none() && seen.insert(*order_id))
            .collect();
        if orders.is_empty() {
            return Ok(None);
        }
        Ok(Some((self.last + 1, orders)))
    }

    fn allocate(
        &self,
        year: i32,
        order_id: OrderId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<InvoiceNumberingEvent>, InvoiceNumberingError> {
        let Some((number, _)) = self.unnumbered(year, vec![order_id])? else {
            return Ok(vec![]);
        };
        Ok(vec![InvoiceNumberingEvent::InvoiceNumberAllocated {
            year,
            number,
            invoice_number: format_invoice_number(year, number),
            order_id,
            at: now,
        }])
    }

    fn allocate_run(
        &self,
        year: i32,
        orders: Vec<OrderId>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<InvoiceNumberingEvent>, InvoiceNumberingError> {
        let Some((first, orders)) = self.unnumbered(year, orders)? else {
            return Ok(vec![]);
        };
        Ok(vec![InvoiceNumberingEvent::InvoiceNumbersAllocated {
            year,
            first,
            orders,
            at: now,
        }])
    }
}

impl Aggregate for InvoiceNumbering {
    const TYPE: &'static str = "InvoiceNumbering";
    type Command = InvoiceNumberingCommand;
    type Event = InvoiceNumberingEvent;
    type Error = InvoiceNumberingError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            InvoiceNumberingCommand::Allocate {
                year,
                order_id,
                now,
            } => self.allocate(year, order_id, now)?,
            InvoiceNumberingCommand::AllocateRun { year, orders, now } => {
                self.allocate_run(year, orders, now)?
            }
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.memory.write(Self::remembers(&event));
        let year = match &event {
            InvoiceNumberingEvent::InvoiceNumberAllocated { year, .. }
            | InvoiceNumberingEvent::InvoiceNumbersAllocated { year, .. } => *year,
        };
        self.year = Some(year);
        if let Some(last) = event.allocations().iter().map(|(_, n)| *n).max() {
            self.last = self.last.max(last);
        }
    }
}

/// Loaded from a snapshot plus its later events; the number of each order is
/// recalled by key (`invoice:<order id>`).
impl StoredAggregate for InvoiceNumbering {
    fn remembers(event: &InvoiceNumberingEvent) -> Vec<(String, Option<Value>)> {
        event
            .allocations()
            .into_iter()
            .map(|(order_id, number)| (invoice_key(order_id), Some(Value::from(number))))
            .collect()
    }

    fn recall_keys(command: &InvoiceNumberingCommand) -> Vec<String> {
        match command {
            InvoiceNumberingCommand::Allocate { order_id, .. } => vec![invoice_key(*order_id)],
            InvoiceNumberingCommand::AllocateRun { orders, .. } => {
                let orders: BTreeSet<OrderId> = orders.iter().copied().collect();
                orders.into_iter().map(invoice_key).collect()
            }
        }
    }

    fn recall(&mut self, entries: Vec<(String, Value)>) {
        self.memory.recall(entries);
    }
}
