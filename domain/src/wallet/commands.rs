use serde::{Deserialize, Serialize};

use crate::values::{CustomerId, Money};

/// What can be asked of a wallet. `reference` names the cause (a top-up's
/// charge, an order's payment, a refund): a command with a reference the
/// wallet has seen before does nothing, so callers may repeat it freely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalletCommand {
    /// Adds money: a top-up paid by card, or a refund.
    Credit {
        customer_id: CustomerId,
        reference: String,
        amount: Money,
    },
    /// Takes money for an order; refused when the balance is too small.
    Debit {
        customer_id: CustomerId,
        reference: String,
        amount: Money,
    },
}
