//! What happened to a customer account.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::values::{Email, Fullname, Phone, Username};
use crate::metadata::Role;
use crate::values::CustomerId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerEvent {
    CustomerRegistered {
        customer_id: CustomerId,
        /// As typed, trimmed.
        username: Username,
        fullname: Fullname,
        email: Email,
        phone: Phone,
        role: Role,
        password_hash: String,
    },
    RoleChanged {
        customer_id: CustomerId,
        old_role: Role,
        new_role: Role,
    },
    /// The account's password was replaced (the new hash; the old one stops
    /// working).
    PasswordChanged {
        customer_id: CustomerId,
        password_hash: String,
    },
    /// Every token issued before now stops working: tokens carry the
    /// account's token version, and this is the new one.
    TokensRevoked {
        customer_id: CustomerId,
        token_version: u32,
    },
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CustomerRegistered { .. } => "CustomerRegistered",
            Self::RoleChanged { .. } => "RoleChanged",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::TokensRevoked { .. } => "TokensRevoked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// A registration names the person: their username, name, email and phone.
/// (The password hash is a secret, withheld from every reader.)
impl crate::personal::PersonalData for CustomerEvent {
    fn personal_fields(event_type: &str) -> &'static [&'static str] {
        match event_type {
            "CustomerRegistered" => &["username", "fullname", "email", "phone"],
            _ => &[],
        }
    }
}
