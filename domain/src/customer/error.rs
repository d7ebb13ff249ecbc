//! Why a customer command was refused.

use thiserror::Error;

use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CustomerError {
    #[error("username {username:?} is already taken")]
    UsernameTaken { username: String },
    #[error("no account is registered under this username")]
    NotRegistered,
    #[error("the password hash must not be empty")]
    MissingPasswordHash,
}

impl DomainError for CustomerError {
    fn code(&self) -> String {
        match self {
            Self::UsernameTaken { .. } => "username_taken",
            Self::NotRegistered => "customer_not_found",
            Self::MissingPasswordHash => "missing_password_hash",
        }
        .to_string()
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::UsernameTaken { .. } => ErrorKind::Conflict,
            Self::NotRegistered => ErrorKind::NotFound,
            Self::MissingPasswordHash => ErrorKind::Rule,
        }
    }
}
