//! Wallet: a customer's stored balance. One per customer (its id is derived
//! from the customer id). Credited by card top-ups and refunds, debited by
//! orders paid from it. The balance never goes negative, and every entry is
//! applied once per reference.

mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::WalletCommand;
pub use error::WalletError;
pub use events::WalletEvent;

use crate::values::{derived_id, Currency, CustomerId, Money};

/// The aggregate id of a customer's wallet.
pub fn wallet_id(customer_id: CustomerId) -> Uuid {
    derived_id("wallet", &customer_id.to_string())
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    customer_id: Option<CustomerId>,
    /// `None` until the first entry; then the currency of every entry.
    currency: Option<Currency>,
    balance: i64,
    /// Every reference applied so far.
    references: BTreeSet<String>,
}

impl Wallet {
    /// The balance in minor units (of [`Wallet::currency`]).
    pub fn balance(&self) -> i64 {
        self.balance
    }
    pub fn currency(&self) -> Option<&Currency> {
        self.currency.as_ref()
    }
    /// Whether an entry with `reference` was applied.
    pub fn has_applied(&self, reference: &str) -> bool {
        self.references.contains(reference)
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
        if self.references.contains(reference) {
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
        match event {
            WalletEvent::WalletCredited {
                customer_id,
                reference,
                balance,
                ..
            }
            | WalletEvent::WalletDebited {
                customer_id,
                reference,
                balance,
                ..
            } => {
                self.customer_id = Some(customer_id);
                self.currency = Some(balance.currency);
                self.balance = balance.minor;
                self.references.insert(reference);
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for Wallet {}
