//! Topping up a customer's wallet by card: the card token must be the
//! customer's own, and the card is charged under a reference naming the
//! top-up. The balance is credited when the gateway's callback says the
//! charge succeeded (`projections::payments`), once per top-up.

use domain::order::OrderError;
use domain::payment::ChargeRequest;
use domain::values::{CustomerId, Money};
use projections::payments::ChargeFor;
use uuid::Uuid;

use super::gateway::{check_card_owner, GatewayFailure};
use super::refusals::InvalidAmount;
use super::use_case_error;
use crate::app::state::AppState;

/// Largest single top-up, in minor units.
pub const MAX_TOP_UP: i64 = 100_000_000;

#[derive(Debug, thiserror::Error)]
pub enum TopUpError {
    #[error(transparent)]
    InvalidAmount(InvalidAmount),
    /// The card token is missing (`OrderError::PaymentTokenRequired`).
    #[error("A card top-up needs a card token.")]
    TokenRequired(OrderError),
    #[error(transparent)]
    Gateway(#[from] GatewayFailure),
}

use_case_error!(TopUpError {
    Self::InvalidAmount(e) => nested(e: InvalidAmount),
    Self::TokenRequired(e) => domain(e: OrderError where Rule),
    Self::Gateway(e) => nested(e: GatewayFailure),
});

/// A charge on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    pub top_up_id: Uuid,
    pub charge_id: String,
}

/// Charges `amount` (minor units of the shop's currency) on the card
/// `token` of `customer` for the top-up `top_up_id`. The same top-up id
/// charges once.
pub async fn top_up_wallet(
    state: &AppState,
    customer: CustomerId,
    top_up_id: Uuid,
    amount: i64,
    token: &str,
) -> Result<TopUp, TopUpError> {
    if !(1..=MAX_TOP_UP).contains(&amount) {
        return Err(TopUpError::InvalidAmount(InvalidAmount::new(format!(
            "A top-up is 1 to {MAX_TOP_UP} minor units."
        ))));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TopUpError::TokenRequired(OrderError::PaymentTokenRequired));
    }
    check_card_owner(state, customer, token).await?;
    let amount = Money::new(amount, state.currency.clone())
        .map_err(|e| TopUpError::InvalidAmount(InvalidAmount::new(e.to_string())))?;
    let reference = ChargeFor::TopUp {
        customer_id: customer,
        top_up_id,
    }
    .reference();
    let charge_id = state
        .gateway
        .charge(ChargeRequest {
            reference,
            customer_id: customer,
            token: token.to_string(),
            amount,
        })
        .await
        .map_err(GatewayFailure::from)?;
    Ok(TopUp {
        top_up_id,
        charge_id,
    })
}
