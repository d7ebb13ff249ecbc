//! Why a customer command was refused.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CustomerError {
    #[error("username {username:?} is already taken")]
    UsernameTaken { username: String },
    #[error("no account is registered under this username")]
    NotRegistered,
    #[error("the password hash must not be empty")]
    MissingPasswordHash,
}

crate::error_codes!(CustomerError {
    Self::UsernameTaken { .. } => Conflict "username_taken",
    Self::NotRegistered => NotFound "customer_not_found",
    Self::MissingPasswordHash => Rule "missing_password_hash",
});
