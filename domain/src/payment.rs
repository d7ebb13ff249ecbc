//! The payment gateway as the shop sees it: a trait (implemented outside the
//! domain; a simulated gateway is the default) and the card rules checked
//! before a card number ever reaches it.
//!
//! An order's payment id says where its money came from
//! ([`PaymentSource`]).
//!
//! Card numbers and CVCs only pass through [`CardDetails`]: they are never
//! stored, logged (its `Debug` hides them) or put in events. What the shop
//! keeps of a card is its brand and last four digits.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use thiserror::Error;

use crate::values::{CustomerId, Money, OrderId};

/// A card as typed in. `Debug` shows only the last four digits.
#[derive(Clone)]
pub struct CardDetails {
    pub number: String,
    /// `MM/YY` or `MM/YYYY`.
    pub expiry: String,
    pub cvc: String,
}

impl fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits: String = self.number.chars().filter(char::is_ascii_digit).collect();
        let last4 = &digits[digits.len().saturating_sub(4)..];
        f.debug_struct("CardDetails")
            .field("number", &format_args!("****{last4}"))
            .field("expiry", &self.expiry)
            .field("cvc", &"***")
            .finish()
    }
}

/// A well-formed card: its digits, brand, last four and expiry month.
#[derive(Clone)]
pub struct ValidCard {
    pub digits: String,
    pub brand: String,
    pub last4: String,
    pub expiry_year: i32,
    pub expiry_month: u32,
}

impl ValidCard {
    /// Why an issuer would refuse to charge this card at `now`, if it would:
    /// `incorrect_number` when the number fails its check digit,
    /// `expired_card` after its expiry month. Judged when charging, as card
    /// networks do, not when the card is typed in.
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if !luhn_valid(&self.digits) {
            Some("incorrect_number")
        } else if (self.expiry_year, self.expiry_month) < (now.year(), now.month()) {
            Some("expired_card")
        } else {
            None
        }
    }
}

impl fmt::Debug for ValidCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidCard")
            .field("brand", &self.brand)
            .field("last4", &self.last4)
            .finish()
    }
}

/// Why a card cannot be tokenized: it is not written as a card is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CardError {
    #[error("a card number is 12 to 19 digits (spaces and dashes allowed)")]
    InvalidNumber,
    #[error("the expiry is MM/YY or MM/YYYY")]
    InvalidExpiry,
    #[error("the CVC is 3 or 4 digits")]
    InvalidCvc,
}

crate::error_codes!(CardError {
    Self::InvalidNumber => Rule "invalid_card_number",
    Self::InvalidExpiry => Rule "invalid_expiry",
    Self::InvalidCvc => Rule "invalid_cvc",
});

/// Luhn check of a string of ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// The brand a card number's prefix tells.
pub fn brand_of(digits: &str) -> &'static str {
    let two: u32 = digits.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    let four: u32 = digits.get(..4).and_then(|p| p.parse().ok()).unwrap_or(0);
    if digits.starts_with('4') {
        "visa"
    } else if (51..=55).contains(&two) || (2221..=2720).contains(&four) {
        "mastercard"
    } else if two == 34 || two == 37 {
        "amex"
    } else if digits.starts_with("6011") || digits.starts_with("65") {
        "discover"
    } else {
        "unknown"
    }
}

/// Checks that a card is written as one: number (12 to 19 digits, spaces and
/// dashes allowed), expiry (`MM/YY` or `MM/YYYY`) and CVC (3 or 4 digits).
/// Whether an issuer would charge it is [`ValidCard::refusal`].
pub fn validate_card(card: &CardDetails) -> Result<ValidCard, CardError> {
    let digits: String = card
        .number
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CardError::InvalidNumber);
    }
    let (month, year) = card
        .expiry
        .trim()
        .split_once('/')
        .ok_or(CardError::InvalidExpiry)?;
    let month: u32 = parse_digits(month.trim()).ok_or(CardError::InvalidExpiry)?;
    let year_text = year.trim();
    let year: i32 = match year_text.len() {
        2 => 2000 + parse_digits(year_text).ok_or(CardError::InvalidExpiry)? as i32,
        4 => parse_digits(year_text).ok_or(CardError::InvalidExpiry)? as i32,
        _ => return Err(CardError::InvalidExpiry),
    };
    if !(1..=12).contains(&month) {
        return Err(CardError::InvalidExpiry);
    }
    let cvc = card.cvc.trim();
    if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CardError::InvalidCvc);
    }
    let last4 = digits[digits.len() - 4..].to_string();
    Ok(ValidCard {
        brand: brand_of(&digits).to_string(),
        last4,
        digits,
        expiry_year: year,
        expiry_month: month,
    })
}

fn parse_digits(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A tokenized card: what the shop may keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardToken {
    pub token: String,
    pub brand: String,
    pub last4: String,
}

/// A request to take money. `reference` is the idempotency key: a second
/// request with the same reference is the same charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub reference: String,
    /// Who pays: a token made for another customer is declined
    /// ([`TokenOwner::may_be_used_by`]).
    pub customer_id: CustomerId,
    pub token: String,
    pub amount: Money,
}

/// Whom a card token belongs to, as the gateway knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOwner {
    /// A token anyone may use (the test tokens of the API contract).
    Anyone,
    /// Made by tokenizing a card for this customer.
    Customer(CustomerId),
    /// A token the gateway never issued.
    Unknown,
}

impl TokenOwner {
    /// Whether `payer` may pay with the token: a card tokenized for one
    /// customer pays only for that customer. An unknown token is not
    /// refused here: charging it fails (`invalid_token`), as before.
    pub fn may_be_used_by(&self, payer: CustomerId) -> bool {
        match self {
            TokenOwner::Anyone | TokenOwner::Unknown => true,
            TokenOwner::Customer(owner) => *owner == payer,
        }
    }
}

/// Why the gateway declines a token made for another customer (the charge's
/// failure reason).
pub const TOKEN_NOT_OWNED: &str = "card_token_not_owned";

/// A request to give money of the charge `charge_reference` back.
/// `reference` is the idempotency key of the refund itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub reference: String,
    pub charge_reference: String,
    pub amount: Money,
}

/// The gateway's failures.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GatewayError {
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("there is no successful charge {0} to refund")]
    NoSuchCharge(String),
    #[error("the refund exceeds what is left of the charge")]
    RefundTooLarge,
    #[error("the payment gateway is unavailable: {0}")]
    Unavailable(String),
}

/// Where an order's money came from, as its payment id (the `payment_id` of
/// `PaymentCaptured`) says. On the wire: `free:<order id>`,
/// `wallet:<order id>`, or the gateway's own charge id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentSource {
    /// `free:<order id>`: the total was zero; nothing was taken.
    Free(OrderId),
    /// `wallet:<order id>`: debited from the customer's wallet.
    Wallet(OrderId),
    /// Any other id: the charge id the gateway gave (a card payment).
    Gateway(String),
}

impl fmt::Display for PaymentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentSource::Free(order_id) => write!(f, "free:{order_id}"),
            PaymentSource::Wallet(order_id) => write!(f, "wallet:{order_id}"),
            PaymentSource::Gateway(charge_id) => f.write_str(charge_id),
        }
    }
}

impl FromStr for PaymentSource {
    type Err = Infallible;

    /// Every id reads as some source, and reads back exactly as it was
    /// written: `free:` or `wallet:` followed by anything but an order id as
    /// [`fmt::Display`] writes it is a gateway's id.
    fn from_str(id: &str) -> Result<Self, Infallible> {
        let order = |rest: &str| {
            uuid::Uuid::parse_str(rest)
                .ok()
                .map(OrderId)
                .filter(|order_id| order_id.to_string() == rest)
        };
        if let Some(order_id) = id.strip_prefix("free:").and_then(order) {
            return Ok(PaymentSource::Free(order_id));
        }
        if let Some(order_id) = id.strip_prefix("wallet:").and_then(order) {
            return Ok(PaymentSource::Wallet(order_id));
        }
        Ok(PaymentSource::Gateway(id.to_string()))
    }
}

/// The outside payment provider. Charging answers asynchronously: the
/// outcome arrives later as a signed callback (`POST /v1/payments/webhook`).
/// Refunds answer at once.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Turns a card into a token; the card number goes no further.
    async fn tokenize(
        &self,
        customer_id: CustomerId,
        card: CardDetails,
    ) -> Result<CardToken, GatewayError>;

    /// Whom `token` belongs to; nothing is charged.
    async fn token_owner(&self, token: &str) -> Result<TokenOwner, GatewayError>;

    /// Accepts a charge (once per reference); answers the charge id. A
    /// token of another customer than `request.customer_id` is declined
    /// ([`TOKEN_NOT_OWNED`]) without taking money.
    async fn charge(&self, request: ChargeRequest) -> Result<String, GatewayError>;

    /// Refunds (once per reference); answers the refund id.
    async fn refund(&self, request: RefundRequest) -> Result<String, GatewayError>;
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn card(number: &str, expiry: &str, cvc: &str) -> CardDetails {
        CardDetails {
            number: number.to_string(),
            expiry: expiry.to_string(),
            cvc: cvc.to_string(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_payment_source_is_written_as_before_and_reads_back_as_it_was() {
        let order_id = OrderId(uuid::Uuid::from_u128(7));
        let written = [
            (
                PaymentSource::Free(order_id),
                "free:00000000-0000-0000-0000-000000000007",
            ),
            (
                PaymentSource::Wallet(order_id),
                "wallet:00000000-0000-0000-0000-000000000007",
            ),
            (PaymentSource::Gateway("ch_42".to_string()), "ch_42"),
        ];
        for (source, wire) in written {
            assert_eq!(source.to_string(), wire);
            assert_eq!(wire.parse::<PaymentSource>(), Ok(source));
        }
        for id in [
            "pay_1",
            "wallet:",
            "wallet:me",
            "free:00000000-0000-0000-0000-00000000000A",
        ] {
            assert_eq!(
                id.parse::<PaymentSource>(),
                Ok(PaymentSource::Gateway(id.to_string())),
                "{id}"
            );
        }
    }

    fn customer(n: u128) -> CustomerId {
        CustomerId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_card_token_pays_only_for_the_customer_it_was_made_for() {
        let alice = customer(1);
        let mallory = customer(2);
        assert!(TokenOwner::Customer(alice).may_be_used_by(alice));
        assert!(!TokenOwner::Customer(alice).may_be_used_by(mallory));
    }

    #[test]
    fn a_shared_test_token_or_an_unknown_one_is_left_to_the_charge() {
        assert!(TokenOwner::Anyone.may_be_used_by(customer(2)));
        assert!(TokenOwner::Unknown.may_be_used_by(customer(2)));
    }

    #[test]
    fn a_valid_card_gives_its_brand_and_last_four_digits() {
        let valid = validate_card(&card("4242 4242 4242 4242", "12/30", "123")).unwrap();
        assert_eq!(
            (valid.brand.as_str(), valid.last4.as_str()),
            ("visa", "4242")
        );
        let valid = validate_card(&card("5555555555554444", "06/2026", "1234")).unwrap();
        assert_eq!(valid.brand, "mastercard");
        assert_eq!(valid.refusal(now()), None);
    }

    #[test]
    fn a_number_failing_the_luhn_check_is_refused_when_charged() {
        let valid = validate_card(&card("4242424242424241", "12/30", "123")).unwrap();
        assert_eq!(valid.refusal(now()), Some("incorrect_number"));
        assert_eq!(
            validate_card(&card("42424242abcd", "12/30", "123")).unwrap_err(),
            CardError::InvalidNumber
        );
    }

    #[test]
    fn an_expired_card_is_refused_when_charged_and_a_malformed_expiry_at_once() {
        let valid = validate_card(&card("4242424242424242", "05/26", "123")).unwrap();
        assert_eq!(valid.refusal(now()), Some("expired_card"));
        let this_month = validate_card(&card("4242424242424242", "06/26", "123")).unwrap();
        assert_eq!(this_month.refusal(now()), None);
        assert_eq!(
            validate_card(&card("4242424242424242", "13/30", "123")).unwrap_err(),
            CardError::InvalidExpiry
        );
        assert_eq!(
            validate_card(&card("4242424242424242", "1230", "123")).unwrap_err(),
            CardError::InvalidExpiry
        );
    }

    #[test]
    fn a_cvc_is_three_or_four_digits() {
        for cvc in ["12", "12345", "12a"] {
            assert_eq!(
                validate_card(&card("4242424242424242", "12/30", cvc)).unwrap_err(),
                CardError::InvalidCvc
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_card_number_or_cvc() {
        let shown = format!("{:?}", card("4242424242424242", "12/30", "987"));
        assert!(
            !shown.contains("4242424242424242") && !shown.contains("987"),
            "{shown}"
        );
        let valid = validate_card(&card("4242424242424242", "12/30", "987")).unwrap();
        assert!(!format!("{valid:?}").contains("4242424242424242"));
    }
}
