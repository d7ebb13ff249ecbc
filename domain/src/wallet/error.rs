use thiserror::Error;

use crate::error::{DomainError, ErrorKind};
use crate::values::Currency;

/// Why a wallet command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WalletError {
    #[error("an amount must be positive")]
    InvalidAmount,
    #[error("a reference must not be empty")]
    ReferenceRequired,
    #[error("the wallet holds {wallet}, not {got}")]
    CurrencyMismatch { wallet: Currency, got: Currency },
    #[error("the balance ({balance}) is less than {requested}")]
    InsufficientFunds { balance: i64, requested: i64 },
    #[error("this wallet belongs to another customer")]
    WrongCustomer,
    #[error("the balance would overflow")]
    Overflow,
}

impl DomainError for WalletError {
    fn code(&self) -> String {
        match self {
            WalletError::InvalidAmount => "invalid_amount",
            WalletError::ReferenceRequired => "reference_required",
            WalletError::CurrencyMismatch { .. } => "currency_mismatch",
            WalletError::InsufficientFunds { .. } => "insufficient_funds",
            WalletError::WrongCustomer => "wrong_customer",
            WalletError::Overflow => "amount_too_large",
        }
        .to_string()
    }

    fn kind(&self) -> ErrorKind {
        match self {
            WalletError::InsufficientFunds { .. } | WalletError::WrongCustomer => {
                ErrorKind::Conflict
            }
            _ => ErrorKind::Rule,
        }
    }
}
