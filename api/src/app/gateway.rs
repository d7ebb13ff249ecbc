//! Talking to the payment gateway: its failures classed once, and the rule
//! that a customer pays only with a card token of their own (placing an
//! order and topping up the wallet both check it before anything is
//! charged).

use domain::payment::{CardError, GatewayError};
use domain::values::CustomerId;

use super::refusals::{CardTokenNotOwned, PaymentGatewayUnavailable};
use super::{use_case_error, StoreError};
use crate::app::state::AppState;

/// A gateway call that did not go through.
#[derive(Debug, thiserror::Error)]
pub enum GatewayFailure {
    /// The gateway refused the card (declined, expired, malformed, ...).
    #[error(transparent)]
    Card(CardError),
    #[error(transparent)]
    CardTokenNotOwned(CardTokenNotOwned),
    #[error(transparent)]
    Unavailable(PaymentGatewayUnavailable),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(GatewayFailure {
    Self::Card(e) => domain(e: CardError),
    Self::CardTokenNotOwned(e) => nested(e: CardTokenNotOwned),
    Self::Unavailable(e) => nested(e: PaymentGatewayUnavailable),
    Self::Store(e) => nested(e: StoreError),
});

impl From<GatewayError> for GatewayFailure {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::Card(e) => GatewayFailure::Card(e),
            GatewayError::Unavailable(e) => {
                tracing::warn!(error = %e, "payment gateway unavailable");
                GatewayFailure::Unavailable(PaymentGatewayUnavailable::new(
                    "The payment gateway is unavailable; try again.",
                ))
            }
            other => GatewayFailure::Store(StoreError::Internal(other.to_string())),
        }
    }
}

/// Refuses a card token the gateway made for another customer than
/// `payer`.
pub async fn check_card_owner(
    state: &AppState,
    payer: CustomerId,
    token: &str,
) -> Result<(), GatewayFailure> {
    let owner = state.gateway.token_owner(token.trim()).await?;
    if owner.may_be_used_by(payer) {
        Ok(())
    } else {
        Err(GatewayFailure::CardTokenNotOwned(CardTokenNotOwned::new(
            "This card token belongs to another account; pay with a card of your own.",
        )))
    }
}
