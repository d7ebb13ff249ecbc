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
}

impl DomainEvent for InvoiceNumberingEvent {
    fn event_type(&self) -> String {
        match self {
            InvoiceNumberingEvent::InvoiceNumberAllocated { .. } => "InvoiceNumberAllocated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
