//! Ending every token of an account (`shop users revoke USERNAME`).

use domain::customer::{CustomerCommand, CustomerError, CustomerValueError, Username};
use domain::metadata::{Actor, CommandMetadata};
use domain::values::CustomerId;

use super::{use_case_error, StoreError};
use crate::app::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum RevokeTokensError {
    /// Not a username at all.
    #[error(transparent)]
    Invalid(#[from] CustomerValueError),
    /// No account has this username (`CustomerError::NotRegistered`).
    #[error("There is no account named {username:?}.")]
    UnknownUser {
        username: String,
        refusal: CustomerError,
    },
    #[error(transparent)]
    Customer(CustomerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(RevokeTokensError {
    Self::Invalid(_) => refused(Rule, super::register::INVALID_ACCOUNT),
    Self::UnknownUser { refusal: e, .. } => domain(e: CustomerError where NotFound),
    Self::Customer(e) => domain(e: CustomerError),
    Self::Store(e) => nested(e: StoreError),
});

/// Raises the account's token version: every token issued to it so far is
/// refused once the servers' token check cache has forgotten the account
/// (`SHOP_TOKEN_CHECK_CACHE_SECONDS`). Signing in again gives a new one.
/// This process forgets the account at once. Answers the account's id.
pub async fn revoke_tokens(
    state: &AppState,
    username: &str,
) -> Result<CustomerId, RevokeTokensError> {
    let username = Username::parse(username)?;
    let Some((id, _)) = super::register::find_account(state, &username).await? else {
        return Err(RevokeTokensError::UnknownUser {
            username: username.as_str().to_string(),
            refusal: CustomerError::NotRegistered,
        });
    };
    let meta = CommandMetadata::new(
        Actor::System("cli".to_string()),
        uuid::Uuid::new_v4().to_string(),
        "RevokeTokens",
    );
    state
        .customers
        .execute_with_retry(&id.to_string(), CustomerCommand::RevokeTokens, &meta)
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => RevokeTokensError::Customer(e),
            Err(e) => RevokeTokensError::Store(e),
        })?;
    state.standings.forget(id.as_uuid());
    Ok(id)
}
