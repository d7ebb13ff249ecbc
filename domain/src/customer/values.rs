//! Account values. Each constructor checks its rule, so the HTTP layer and the
//! aggregate validate with the same code and a value that exists is valid.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::values::{derived_id, CustomerId};

/// Why an account field could not be built from client input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CustomerValueError {
    #[error("username must be 3 to 32 letters, digits, '.', '_' or '-', got {0:?}")]
    BadUsername(String),
    #[error("fullname must not be empty")]
    EmptyFullname,
    #[error("fullname is longer than {} characters", Fullname::MAX)]
    FullnameTooLong,
    #[error("fullname must not contain control characters")]
    ControlInFullname,
    #[error("{0:?} is not a valid email address")]
    BadEmail(String),
    #[error("{0:?} is not a valid phone number: use an optional '+' and 7 to 15 digits")]
    BadPhone(String),
    /// Never echoes the password.
    #[error("password must be {} to {} characters", Password::MIN, Password::MAX)]
    BadPassword,
}

crate::error_codes!(CustomerValueError {
    Self::BadUsername(_) => Rule "invalid_username",
    Self::EmptyFullname => Rule "empty_fullname",
    Self::FullnameTooLong => Rule "fullname_too_long",
    Self::ControlInFullname => Rule "control_in_fullname",
    Self::BadEmail(_) => Rule "invalid_email",
    Self::BadPhone(_) => Rule "invalid_phone",
    Self::BadPassword => Rule "invalid_password",
});

/// A login name: 3 to 32 ASCII letters, digits, `.`, `_` or `-`, kept as typed
/// (trimmed). Two usernames differing only in letter case are the same account:
/// see [`Username::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, CustomerValueError> {
        let s = raw.trim();
        let ok = (Self::MIN..=Self::MAX).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(CustomerValueError::BadUsername(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key of the account: the username in lower case.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The legacy id of the `Customer` aggregate of this username:
    /// `derived_id("customer", key)`, which anyone can compute from the
    /// username. Accounts registered before ids were keyed by a secret of the
    /// installation have it, and lookups of a username still try it; new
    /// accounts get a keyed id (see the application's `account_ids`).
    pub fn customer_id(&self) -> CustomerId {
        CustomerId(derived_id("customer", &self.key()))
    }
}

/// Stored values are read back through this; the erased placeholder of a
/// forgotten person (`crate::personal::ERASED`) reads too, though a client
/// can never give it ([`Username::parse`]).
impl TryFrom<String> for Username {
    type Error = CustomerValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == crate::personal::ERASED {
            return Ok(Self(value));
        }
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's full name: at most 100 characters as sent, stored trimmed,
/// not empty and without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fullname(String);

impl Fullname {
    pub const MAX: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, CustomerValueError> {
        if raw.chars().count() > Self::MAX {
            return Err(CustomerValueError::FullnameTooLong);
        }
        let s = raw.trim();
        if s.is_empty() {
            return Err(CustomerValueError::EmptyFullname);
        }
        if s.chars().any(char::is_control) {
            return Err(CustomerValueError::ControlInFullname);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Stored values are read back through this; the erased placeholder of a
/// forgotten person (`crate::personal::ERASED`) reads too, though a client
/// can never give it ([`Fullname::parse`]).
impl TryFrom<String> for Fullname {
    type Error = CustomerValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == crate::personal::ERASED {
            return Ok(Self(value));
        }
        Self::parse(&value)
    }
}

impl From<Fullname> for String {
    fn from(value: Fullname) -> Self {
        value.0
    }
}

impl fmt::Display for Fullname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: at most 254 characters as sent, stored trimmed; one `@`,
/// a non-empty local part, a domain with a dot and no empty labels, no
/// whitespace or control characters. The domain is stored in lower case, the
/// local part as typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, CustomerValueError> {
        let bad = || CustomerValueError::BadEmail(raw.to_string());
        let s = raw.trim();
        if s.is_empty()
            || raw.chars().count() > Self::MAX
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && !domain.contains('@')
            && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || !domain_ok {
            return Err(bad());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Stored values are read back through this; the erased placeholder of a
/// forgotten person (`crate::personal::ERASED`) reads too, though a client
/// can never give it ([`Email::parse`]).
impl TryFrom<String> for Email {
    type Error = CustomerValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == crate::personal::ERASED {
            return Ok(Self(value));
        }
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number, E.164-like: an optional leading `+` and 7 to 15 digits;
/// spaces and dashes are accepted between digits. Stored normalised as `+`
/// followed by the digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub const MIN_DIGITS: usize = 7;
    pub const MAX_DIGITS: usize = 15;

    pub fn parse(raw: &str) -> Result<Self, CustomerValueError> {
        let bad = || CustomerValueError::BadPhone(raw.to_string());
        let s = raw.trim();
        let rest = s.strip_prefix('+').unwrap_or(s);
        if !rest
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
        {
            return Err(bad());
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len()) {
            return Err(bad());
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Stored values are read back through this; the erased placeholder of a
/// forgotten person (`crate::personal::ERASED`) reads too, though a client
/// can never give it ([`Phone::parse`]).
impl TryFrom<String> for Phone {
    type Error = CustomerValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == crate::personal::ERASED {
            return Ok(Self(value));
        }
        Self::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> Self {
        value.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plain-text password as the client sent it: 8 to 128 characters. Checked
/// by the HTTP layer before hashing; never stored, serialized or printed
/// (`Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, CustomerValueError> {
        if (Self::MIN..=Self::MAX).contains(&raw.chars().count()) {
            Ok(Self(raw.to_string()))
        } else {
            Err(CustomerValueError::BadPassword)
        }
    }

    /// The password itself, to hand to the hasher.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_3_to_32_letters_digits_dots_underscores_or_dashes() {
        assert_eq!(
            Username::parse(" Ann.B_c-1 ").unwrap().as_str(),
            "Ann.B_c-1"
        );
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse("an n").is_err());
        assert!(Username::parse("ann@x").is_err());
        assert!(Username::parse("änn").is_err());
    }

    #[test]
    fn usernames_differing_in_case_share_one_customer_id() {
        let a = Username::parse("Alice").unwrap();
        let b = Username::parse(" alice ").unwrap();
        assert_eq!(a.key(), "alice");
        assert_eq!(a.customer_id(), b.customer_id());
        assert_eq!(a.customer_id().as_uuid(), derived_id("customer", "alice"));
    }

    #[test]
    fn a_fullname_is_non_empty_and_at_most_100_characters() {
        assert_eq!(Fullname::parse("  Ann Lee ").unwrap().as_str(), "Ann Lee");
        assert_eq!(
            Fullname::parse("   "),
            Err(CustomerValueError::EmptyFullname)
        );
        assert_eq!(
            Fullname::parse(&"é".repeat(101)),
            Err(CustomerValueError::FullnameTooLong)
        );
        assert!(Fullname::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn an_email_has_one_at_a_local_part_and_a_dotted_domain() {
        assert_eq!(
            Email::parse(" Ann.Lee@Example.COM ").unwrap().as_str(),
            "Ann.Lee@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "ann@x@example.com",
            "ann lee@example.com",
            "ann@.com",
            "ann@example.",
            "ann@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn an_email_is_at_most_254_characters() {
        let ok = format!("{}@example.com", "a".repeat(242));
        assert_eq!(ok.len(), 254);
        assert!(Email::parse(&ok).is_ok());
        let too_long = format!("{}@example.com", "a".repeat(243));
        assert!(matches!(
            Email::parse(&too_long),
            Err(CustomerValueError::BadEmail(_))
        ));
    }

    #[test]
    fn a_phone_is_normalised_to_plus_and_7_to_15_digits() {
        assert_eq!(
            Phone::parse(" +1 555-123-4567 ").unwrap().as_str(),
            "+15551234567"
        );
        assert_eq!(Phone::parse("5551234").unwrap().as_str(), "+5551234");
        assert!(Phone::parse("555123").is_err());
        assert!(Phone::parse("1234567890123456").is_err());
        assert!(Phone::parse("+1 (555) 1234567").is_err());
        assert!(Phone::parse("++15551234567").is_err());
        assert!(Phone::parse("555-CALL-NOW").is_err());
    }

    #[test]
    fn a_password_is_8_to_128_characters_and_never_printed() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        let p = Password::parse("correct horse").unwrap();
        assert_eq!(p.expose(), "correct horse");
        assert!(!format!("{p:?}").contains("horse"));
        assert!(!CustomerValueError::BadPassword
            .to_string()
            .contains("horse"));
    }

    #[test]
    fn values_round_trip_through_json_as_plain_strings() {
        let email = Email::parse("a@b.co").unwrap();
        let json = serde_json::to_string(&email).unwrap();
        assert_eq!(json, "\"a@b.co\"");
        assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), email);
        assert!(serde_json::from_str::<Phone>("\"12\"").is_err());
    }
}
