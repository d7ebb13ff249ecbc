//! Wallet: a customer's stored balance. One per customer (its id is derived
//! from the customer id). Credited by card top-ups and refunds, debited by
//! orders paid from it. The balance never goes negative, and every entry is
//! applied once per reference.
//!
//! The references applied are remembered by key (see [`crate::stored`]):
//! `reference:<reference>` (value `true`, the reference trimmed as the events
//! carry it) is set by `WalletCredited` and `WalletDebited`, and recalled by
//! `Credit` and `Debit`. No event forgets one.

mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use commands::WalletCommand;
pub use error::WalletError;
pub use events::WalletEvent;

use crate::stored::{KeyedMemory, StoredAggregate};
use crate::values::{derived_id, Currency, CustomerId, Money};

/// The aggregate id of a customer's wallet.
pub fn wallet_id(customer_id: CustomerId) -> Uuid {
    derived_id("wallet", &customer_id.to_string())
}

/// The keyed-memory key of the entry with `reference` (trimmed, as commands
/// and events take it).
pub fn reference_key(reference: &str) -> String {
    format!("reference:{}", reference.trim())
}

/// A customer's wallet. Equality and the serialized form (the snapshot) leave
/// the keyed memory out.
#[derive(Debug, Default, Clone, Eq, Serialize, Deserialize)]
pub struct Wallet {
    customer_id: Option<CustomerId>,
    /// `None` until the first entry; then the currency of every entry.
    currency: Option<Currency>,
    balance: i64,
    /// The references applied, by key.
    #[serde(skip)]
    memory: KeyedMemory,
}

impl PartialEq for Wallet {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            customer_id,
            currency,
            balance,
            memory: _,
        } = self;
        *customer_id == other.customer_id
            && *currency == other.currency
            && *balance == other.balance
    }
}

impl Wallet {
    /// The balance in minor units (of [`Wallet::currency`]).
    pub fn balance(&self) -> i64 {
        self.balance
    }
    pub fn currency(&self) -> Option<&Currency> {
        self.currency.as_ref()
    }
    /// Whether an entry with `reference` (trimmed) was applied. Read from
    /// keyed memory: a wallet rebuilt from all its events knows every
    /// reference; one loaded from a snapshot knows only the references
    /// recalled (`reference:<reference>`) or applied by the events after the
    /// snapshot.
    pub fn has_applied(&self, reference: &str) -> bool {
        self.memory.contains(&reference_key(reference))
    }

    /// The checks common to credits and debits; `None` when the reference
    /// was applied before (nothing to do).
    fn check(
        &self,
        customer_id: CustomerId,
        reference: &str,
        amount: &Money,
    ) -> Result<Option<String>, WalletError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(WalletError::ReferenceRequired);
        }
        if self.customer_id.is_some_and(|c| c != customer_id) {
            return Err(WalletError::WrongCustomer);
        }
        if self.has_applied(reference) {
            return Ok(None);
        }
        if amount.minor <= 0 {
            return Err(WalletError::InvalidAmount);
        }
        if let Some(currency) = &self.currency {
            if *currency != amount.currency {
                return Err(WalletError::CurrencyMismatch {
                    wallet: currency.clone(),
                    got: amount.currency.clone(),
                });
            }
        }
        Ok(Some(reference.to_string()))
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = "Wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            WalletCommand::Credit {
                customer_id,
                reference,
                amount,
            } => {
                let Some(reference) = self.check(customer_id, &reference, &amount)? else {
                    return Ok(());
                };
                let balance = self
                    .balance
                    .checked_add(amount.minor)
                    .ok_or(WalletError::Overflow)?;
                let balance = Money {
                    minor: balance,
                    currency: amount.currency.clone(),
                };
                let event = WalletEvent::WalletCredited {
                    customer_id,
                    reference,
                    amount,
                    balance,
                };
                sink.write(event, self).await;
            }
            WalletCommand::Debit {
                customer_id,
                reference,
                amount,
            } => {
                let Some(reference) = self.check(customer_id, &reference, &amount)? else {
                    return Ok(());
                };
                if amount.minor > self.balance {
                    return Err(WalletError::InsufficientFunds {
                        balance: self.balance,
                        requested: amount.minor,
                    });
                }
                let balance = Money {
                    minor: self.balance - amount.minor,
                    currency: amount.currency.clone(),
                };
                let event = WalletEvent::WalletDebited {
                    customer_id,
                    reference,
                    amount,
                    balance,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.memory.write(Self::remembers(&event));
        match event {
            WalletEvent::WalletCredited {
                customer_id,
                balance,
                ..
            }
            | WalletEvent::WalletDebited {
                customer_id,
                balance,
                ..
            } => {
                self.customer_id = Some(customer_id);
                self.currency = Some(balance.currency);
                self.balance = balance.minor;
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; the references applied are
/// recalled by key (`reference:<reference>`).
impl StoredAggregate for Wallet {
    fn remembers(event: &WalletEvent) -> Vec<(String, Option<Value>)> {
        match event {
            WalletEvent::WalletCredited { reference, .. }
            | WalletEvent::WalletDebited { reference, .. } => {
                vec![(reference_key(reference), Some(Value::Bool(true)))]
            }
        }
    }

    fn recall_keys(command: &WalletCommand) -> Vec<String> {
        match command {
            WalletCommand::Credit { reference, .. } | WalletCommand::Debit { reference, .. } => {
                if reference.trim().is_empty() {
                    // Refused without looking at any entry.
                    Vec::new()
                } else {
                    vec![reference_key(reference)]
                }
            }
        }
    }

    fn recall(&mut self, entries: Vec<(String, Value)>) {
        self.memory.recall(entries);
    }
}
