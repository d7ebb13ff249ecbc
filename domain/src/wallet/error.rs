use thiserror::Error;

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

crate::error_codes!(WalletError {
    Self::InvalidAmount => Rule "invalid_amount",
    Self::ReferenceRequired => Rule "reference_required",
    Self::CurrencyMismatch { .. } => Rule "currency_mismatch",
    Self::InsufficientFunds { .. } => Conflict "insufficient_funds",
    Self::WrongCustomer => Conflict "wrong_customer",
    Self::Overflow => Rule "amount_too_large",
});
