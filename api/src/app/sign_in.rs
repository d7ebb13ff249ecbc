//! Signing in: the password is checked against the account's hash (a
//! username no account has costs the same time as a wrong password), failed
//! sign-ins are limited per account whatever the client's address, and the
//! token carries the account's token version, so a role change, a password
//! change or a revocation ends it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::customer::Username;
use domain::metadata::Role;
use domain::values::CustomerId;

use super::passwords::verify_password;
use super::refusals::{InvalidCredentials, TooManyFailedSignIns};
use super::{use_case_error, StoreError};
use crate::app::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many failed sign-ins for the account; try again after `wait`.
    #[error("Too many failed sign-ins for this account; wait a minute.")]
    TooManyFailedSignIns { wait: Duration },
    #[error("The username or password is wrong.")]
    InvalidCredentials,
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(SignInError {
    Self::TooManyFailedSignIns { .. } => refused(TooManyRequests, TooManyFailedSignIns::CODE),
    Self::InvalidCredentials => refused(Unauthorized, InvalidCredentials::CODE),
    Self::Store(e) => nested(e: StoreError),
});

impl SignInError {
    /// How long to wait before trying again, when that is the refusal.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SignInError::TooManyFailedSignIns { wait } => Some(*wait),
            _ => None,
        }
    }
}

/// A signed-in account and its bearer token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub customer_id: CustomerId,
    pub role: Role,
}

/// Checks `username` and `password`; answers a token for the account.
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: String,
) -> Result<SignedIn, SignInError> {
    let username = Username::parse(username).ok();
    // Failures are counted per account too, whatever the address: guessing
    // one account's password from many addresses is limited as well.
    let account = username.as_ref().map(|u| u.customer_id().as_uuid());
    if let Some(account) = &account {
        state
            .login_failures
            .check(account)
            .map_err(|wait| SignInError::TooManyFailedSignIns { wait })?;
    }
    let customer = match &username {
        Some(username) => super::register::find_account(state, username)
            .await?
            .map(|(_, customer)| customer),
        None => None,
    };
    let hash = customer
        .as_ref()
        .and_then(|c| c.password_hash())
        .map(str::to_string);
    if !verify_password(&state.hashing, password, hash).await? {
        if let Some(account) = &account {
            state.login_failures.failed(account);
        }
        return Err(SignInError::InvalidCredentials);
    }
    let customer = customer.ok_or(SignInError::InvalidCredentials)?;
    let (Some(id), Some(role)) = (customer.customer_id(), customer.role()) else {
        return Err(SignInError::InvalidCredentials);
    };
    let version = customer.token_version().unwrap_or_default();
    let (token, expires_at) = state
        .tokens
        .issue_versioned(id.as_uuid(), role, version)
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    Ok(SignedIn {
        token,
        expires_at,
        customer_id: id,
        role,
    })
}
