//! Tokenizing a card with the gateway: the card number and CVC go no
//! further than the gateway; the customer gets a token to pay with, which
//! only they may use.

use domain::payment::{CardDetails, CardToken};
use domain::values::CustomerId;

use super::gateway::GatewayFailure;
use crate::app::state::AppState;

/// Tokenizes `card` for `customer`.
pub async fn tokenize_card(
    state: &AppState,
    customer: CustomerId,
    card: CardDetails,
) -> Result<CardToken, GatewayFailure> {
    Ok(state.gateway.tokenize(customer, card).await?)
}
