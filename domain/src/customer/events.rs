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
    /// Version 2.0 (stored before as 1.0 with `old_role` and `new_role`,
    /// which the event store upcasts on read): the role `from` and `to`.
    RoleChanged {
        customer_id: CustomerId,
        from: Role,
        to: Role,
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
    /// The person asked to be forgotten (or an admin did it for them): their
    /// personal data key is deleted, so every personal field of their events
    /// reads as erased from now on, and the account can no longer sign in.
    /// Holds no personal data itself.
    CustomerForgotten { customer_id: CustomerId },
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CustomerRegistered { .. } => "CustomerRegistered",
            Self::RoleChanged { .. } => "RoleChanged",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::TokensRevoked { .. } => "TokensRevoked",
            Self::CustomerForgotten { .. } => "CustomerForgotten",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            Self::RoleChanged { .. } => "2.0",
            _ => "1.0",
        }
        .to_string()
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
