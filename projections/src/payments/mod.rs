//! Payments: the simulated payment gateway, its signed callbacks, and what
//! the shop does when a callback arrives.
//!
//! # Layout
//! - `gateway`: [`SimulatedGateway`], the default [`PaymentGateway`]. It
//!   tokenizes cards (keeping brand and last four only), accepts charges
//!   once per reference and decides them by the card's behaviour, refunds.
//!   Its tables (`gateway_*`) stand in for the provider's side.
//! - `delivery`: [`CallbackDelivery`], the gateway's background task that
//!   posts each charge's outcome, signed, to the shop's webhook over HTTP,
//!   retrying with backoff until it is answered 2xx.
//! - `signature`: HMAC-SHA256 over the raw body, hex, in
//!   [`SIGNATURE_HEADER`] as `sha256=<hex>`.
//! - `webhook`: [`handle_callback`], what a verified callback does: capture
//!   or fail the order, or credit a wallet top-up; once per callback id.
//!
//! [`PaymentGateway`]: domain::payment::PaymentGateway

mod delivery;
mod gateway;
pub mod signature;
mod webhook;

pub use delivery::CallbackDelivery;
pub use gateway::SimulatedGateway;
pub use signature::SIGNATURE_HEADER;
pub use webhook::{handle_callback, CallbackOutcome, GatewayCallback, WebhookError};

use chrono::{DateTime, Utc};
use domain::payment::ValidCard;
use domain::values::{CustomerId, OrderId};
use uuid::Uuid;

/// The test tokens of the API contract, usable without tokenizing.
pub const TEST_TOKENS: [(&str, Behaviour); 3] = [
    ("tok_visa", Behaviour::Approve),
    ("tok_chargeDeclined", Behaviour::Decline),
    ("tok_insufficientFunds", Behaviour::InsufficientFunds),
];

/// What charging a card does in the simulated gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Approve,
    Decline,
    InsufficientFunds,
    IncorrectNumber,
    ExpiredCard,
}

impl Behaviour {
    /// The test cards of the API contract; a number failing its check digit
    /// or a card past its expiry is refused; every other card approves.
    pub fn of_card(card: &ValidCard, now: DateTime<Utc>) -> Behaviour {
        match (card.refusal(now), card.digits.as_str()) {
            (Some("incorrect_number"), _) => Behaviour::IncorrectNumber,
            (Some(_), _) => Behaviour::ExpiredCard,
            (None, "4000000000000002") => Behaviour::Decline,
            (None, "4000000000009995") => Behaviour::InsufficientFunds,
            (None, _) => Behaviour::Approve,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Behaviour::Approve => "approve",
            Behaviour::Decline => "decline",
            Behaviour::InsufficientFunds => "insufficient_funds",
            Behaviour::IncorrectNumber => "incorrect_number",
            Behaviour::ExpiredCard => "expired_card",
        }
    }

    pub fn parse(s: &str) -> Option<Behaviour> {
        [
            Behaviour::Approve,
            Behaviour::Decline,
            Behaviour::InsufficientFunds,
            Behaviour::IncorrectNumber,
            Behaviour::ExpiredCard,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// What a charge pays for, as its reference (the gateway's idempotency key)
/// says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeFor {
    /// `order:<order id>`: an order paid by card (one charge per order).
    Order(OrderId),
    /// `topup:<customer id>:<top-up id>`: a wallet top-up.
    TopUp {
        customer_id: CustomerId,
        top_up_id: Uuid,
    },
}

impl ChargeFor {
    pub fn reference(&self) -> String {
        match self {
            ChargeFor::Order(order_id) => format!("order:{order_id}"),
            ChargeFor::TopUp {
                customer_id,
                top_up_id,
            } => format!("topup:{customer_id}:{top_up_id}"),
        }
    }

    pub fn parse(reference: &str) -> Option<ChargeFor> {
        if let Some(order) = reference.strip_prefix("order:") {
            return Uuid::parse_str(order)
                .ok()
                .map(|id| ChargeFor::Order(OrderId(id)));
        }
        let rest = reference.strip_prefix("topup:")?;
        let (customer, top_up) = rest.split_once(':')?;
        Some(ChargeFor::TopUp {
            customer_id: CustomerId(Uuid::parse_str(customer).ok()?),
            top_up_id: Uuid::parse_str(top_up).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip() {
        let order = ChargeFor::Order(OrderId::new());
        assert_eq!(ChargeFor::parse(&order.reference()), Some(order));
        let top_up = ChargeFor::TopUp {
            customer_id: CustomerId::new(),
            top_up_id: Uuid::new_v4(),
        };
        assert_eq!(ChargeFor::parse(&top_up.reference()), Some(top_up));
        assert_eq!(ChargeFor::parse("other:1"), None);
    }
}
