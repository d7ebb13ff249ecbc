use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::{CustomerId, Money};

/// What happened to a wallet. `balance` is the balance after the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalletEvent {
    WalletCredited {
        customer_id: CustomerId,
        reference: String,
        amount: Money,
        balance: Money,
    },
    WalletDebited {
        customer_id: CustomerId,
        reference: String,
        amount: Money,
        balance: Money,
    },
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        match self {
            WalletEvent::WalletCredited { .. } => "WalletCredited",
            WalletEvent::WalletDebited { .. } => "WalletDebited",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// No personal data: amounts and payment ids.
impl crate::personal::PersonalData for WalletEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
