//! Value types shared by several aggregates. Each constructor checks its rule
//! and returns `Result`, so a value that exists is a valid one.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// Why a value could not be built from client input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("quantity must be a positive whole number, got {0}")]
    NonPositiveQuantity(i64),
    #[error("amount must not be negative, got {0}")]
    NegativeAmount(i64),
    #[error("currency must be a three-letter ISO-4217 code, got {0:?}")]
    BadCurrency(String),
    #[error("amounts in {0} and {1} cannot be combined")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount is too large")]
    Overflow,
    #[error("SKU must be 1 to 64 letters, digits, '-', '_' or '.', got {0:?}")]
    BadSku(String),
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
}

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

typed_id!(
    /// A registered customer or staff account.
    CustomerId
);
typed_id!(
    /// A node of the category tree.
    CategoryId
);
typed_id!(
    /// A seller that lists products.
    ShopId
);
typed_id!(
    /// A catalog product; its inventory item shares the id.
    ProductId
);
typed_id!(
    /// A customer's cart.
    CartId
);
typed_id!(
    /// A placed order.
    OrderId
);
typed_id!(
    /// A discount coupon.
    CouponId
);

/// An ISO-4217 currency code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(example = "USD"))]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, ValueError> {
        let code = code.trim();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Self(code.to_ascii_uppercase()))
        } else {
            Err(ValueError::BadCurrency(code.to_string()))
        }
    }
    pub fn usd() -> Self {
        Self("USD".to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self::usd()
    }
}

impl TryFrom<String> for Currency {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount of money: whole minor units (cents for USD) and a currency.
/// Never a float. Never negative: refunds and discounts are their own facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Self, ValueError> {
        if minor < 0 {
            return Err(ValueError::NegativeAmount(minor));
        }
        Ok(Self { minor, currency })
    }
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }
    pub fn checked_add(&self, other: &Money) -> Result<Money, ValueError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(ValueError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency.clone(),
        })
    }
    /// `self - other`, floored at zero (a discount never makes a total negative).
    pub fn saturating_sub(&self, other: &Money) -> Result<Money, ValueError> {
        self.same_currency(other)?;
        Ok(Money {
            minor: (self.minor - other.minor).max(0),
            currency: self.currency.clone(),
        })
    }
    pub fn checked_mul(&self, quantity: Quantity) -> Result<Money, ValueError> {
        let minor = self
            .minor
            .checked_mul(i64::from(quantity.get()))
            .ok_or(ValueError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency.clone(),
        })
    }
    fn same_currency(&self, other: &Money) -> Result<(), ValueError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(ValueError::CurrencyMismatch(
                self.currency.clone(),
                other.currency.clone(),
            ))
        }
    }
}

/// A positive count of items. Zero and negatives are not quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// The largest quantity one command may carry.
    pub const MAX: u32 = 1_000_000;

    pub fn new(value: i64) -> Result<Self, ValueError> {
        if value <= 0 || value > i64::from(Self::MAX) {
            return Err(ValueError::NonPositiveQuantity(value));
        }
        Ok(Self(value as u32))
    }
    pub fn get(&self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = ValueError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(i64::from(value))
    }
}

impl From<Quantity> for u32 {
    fn from(value: Quantity) -> Self {
        value.0
    }
}

/// A stock-keeping unit, unique across the catalog. Compared case-insensitively
/// (stored upper case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(ValueError::BadSku(raw.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Sku> for String {
    fn from(value: Sku) -> Self {
        value.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Non-blank text of at most `max` characters as sent, kept trimmed (names,
/// titles).
pub fn required_text(field: &'static str, raw: &str, max: usize) -> Result<String, ValueError> {
    if raw.chars().count() > max {
        return Err(ValueError::TooLong { field, max });
    }
    let s = raw.trim();
    if s.is_empty() {
        return Err(ValueError::Empty { field });
    }
    Ok(s.to_string())
}

/// Optional text of at most `max` characters as sent: blank is `None`, the
/// rest is kept trimmed.
pub fn optional_text(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<String>, ValueError> {
    match raw {
        Some(s) if s.chars().count() > max || !s.trim().is_empty() => {
            required_text(field, s, max).map(Some)
        }
        _ => Ok(None),
    }
}

/// Namespace for deterministic (UUIDv5) ids derived from natural keys, so that
/// set-wide uniqueness and idempotency become the event store's primary key.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_8a43_2b7e_4d19_9c61_3e0a_7d5b_c2f4);

/// A deterministic id for `kind` + `key` (for example a username or a SKU).
pub fn derived_id(kind: &str, key: &str) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, format!("{kind}:{key}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantity_must_be_positive_and_bounded() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(-1).is_err());
        assert!(Quantity::new(i64::MAX).is_err());
        assert_eq!(Quantity::new(3).map(|q| q.get()), Ok(3));
    }

    #[test]
    fn money_of_different_currencies_does_not_add() {
        let usd = Money::new(100, Currency::usd()).unwrap();
        let eur = Money::new(100, Currency::parse("eur").unwrap()).unwrap();
        assert!(matches!(
            usd.checked_add(&eur),
            Err(ValueError::CurrencyMismatch(_, _))
        ));
    }

    #[test]
    fn a_sku_is_normalised_to_upper_case() {
        assert_eq!(Sku::parse(" ab-1 ").unwrap().as_str(), "AB-1");
        assert!(Sku::parse("a b").is_err());
    }
}
