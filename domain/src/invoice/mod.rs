//! InvoiceNumbering: the gapless, sequential invoice numbers of one year.
//!
//! One aggregate per year (its id is derived from the year, see
//! [`numbering_id`]), so every allocation of a year meets at the same
//! aggregate and the event store's optimistic concurrency serialises them:
//! two processes racing for the next number cannot both get it, and the loser
//! decides again on fresh state. The aggregate remembers which order got
//! which number, so allocating for an order again answers its number (no
//! event): a redelivered `PaymentCaptured` neither skips nor reuses a number.
//!
//! Numbers read `<year>-<number, six digits>`, e.g. `2026-000001`.

mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::InvoiceNumberingCommand;
pub use error::InvoiceNumberingError;
pub use events::InvoiceNumberingEvent;

use crate::values::{derived_id, OrderId};

/// The aggregate id of `year`'s numbering.
pub fn numbering_id(year: i32) -> Uuid {
    derived_id("invoice-numbering", &year.to_string())
}

/// The printed invoice number: `2026-000001`.
pub fn format_invoice_number(year: i32, number: u64) -> String {
    format!("{year:04}-{number:06}")
}

/// The numbers of one year given so far.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceNumbering {
    year: Option<i32>,
    /// The last number given (0: none yet).
    last: u64,
    /// Which order got which number.
    numbers: BTreeMap<OrderId, u64>,
}

impl InvoiceNumbering {
    pub fn year(&self) -> Option<i32> {
        self.year
    }

    /// The last number given (0: none yet).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The invoice number `order_id` got, if any.
    pub fn invoice_number_of(&self, order_id: OrderId) -> Option<String> {
        let year = self.year?;
        self.numbers
            .get(&order_id)
            .map(|n| format_invoice_number(year, *n))
    }

    fn allocate(
        &self,
        year: i32,
        order_id: OrderId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<InvoiceNumberingEvent>, InvoiceNumberingError> {
        if !(1..=9999).contains(&year) {
            return Err(InvoiceNumberingError::InvalidYear(year));
        }
        if let Some(numbering) = self.year.filter(|y| *y != year) {
            return Err(InvoiceNumberingError::YearMismatch {
                numbering,
                requested: year,
            });
        }
        if self.numbers.contains_key(&order_id) {
            return Ok(vec![]);
        }
        let number = self.last + 1;
        Ok(vec![InvoiceNumberingEvent::InvoiceNumberAllocated {
            year,
            number,
            invoice_number: format_invoice_number(year, number),
            order_id,
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
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            InvoiceNumberingEvent::InvoiceNumberAllocated {
                year,
                number,
                order_id,
                ..
            } => {
                self.year = Some(year);
                self.last = self.last.max(number);
                self.numbers.insert(order_id, number);
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for InvoiceNumbering {}
