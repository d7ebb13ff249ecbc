use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::OrderId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceNumberingEvent {
    /// `order_id` got `number` of `year`, printed as `invoice_number`.
    InvoiceNumberAllocated {
        year: i32,
        number: u64,
        invoice_number: String,
        order_id: OrderId,
        at: DateTime<Utc>,
    },
    /// The i-th of `orders` got number `first + i` of `year` (printed with
    /// [`super::format_invoice_number`]).
    InvoiceNumbersAllocated {
        year: i32,
        first: u64,
        orders: Vec<OrderId>,
        at: DateTime<Utc>,
    },
}

impl InvoiceNumberingEvent {
    /// Which order got which number in this event.
    pub fn allocations(&self) -> Vec<(OrderId, u64)> {
        match self {
            InvoiceNumberingEvent::InvoiceNumberAllocated {
                number, order_id, ..
            } => vec![(*order_id, *number)],
            InvoiceNumberingEvent::InvoiceNumbersAllocated { first, orders, .. } => orders
                .iter()
                .zip(*first..)
                .map(|(order_id, number)| (*order_id, number))
                .collect(),
        }
    }
}

impl DomainEvent for InvoiceNumberingEvent {
    fn event_type(&self) -> String {
        match self {
            InvoiceNumberingEvent::InvoiceNumberAllocated { .. } => "InvoiceNumberAllocated",
            InvoiceNumberingEvent::InvoiceNumbersAllocated { .. } => "InvoiceNumbersAllocated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: invoice numbers and order ids.
impl crate::personal::PersonalData for InvoiceNumberingEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
