//! Registering an account (a customer's from the API, a staff account's
//! from `shop users create`).

use domain::customer::{
    Customer, CustomerCommand, CustomerError, CustomerValueError, Email, Fullname, Password, Phone,
    Username,
};
use domain::metadata::{CommandMetadata, Role};
use domain::values::CustomerId;

use super::{load_error, use_case_error, StoreError};
use crate::app::state::AppState;

/// A new account, its fields already checked.
pub struct NewAccount {
    pub username: Username,
    pub password: Password,
    pub fullname: Fullname,
    pub email: Email,
    pub phone: Phone,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] CustomerValueError),
    #[error(transparent)]
    Customer(CustomerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The code of account details that break a rule (username, password,
/// name, email, phone).
pub const INVALID_ACCOUNT: &str = "invalid_account";

use_case_error!(RegisterError {
    Self::Invalid(_) => refused(Rule, INVALID_ACCOUNT),
    Self::Customer(e) => domain(e: CustomerError),
    Self::Store(e) => nested(e: StoreError),
});

/// The password's hash (it takes tens of milliseconds, off the runtime).
pub async fn hash(state: &AppState, password: String) -> Result<String, StoreError> {
    super::passwords::hash_password(&state.hashing, password).await
}

/// Registers the account under its keyed id (see [`super::account_ids`]),
/// unless the username is taken in any letter case; answers its id and the
/// position of its event.
pub async fn register(
    state: &AppState,
    account: NewAccount,
    meta: &CommandMetadata,
) -> Result<(CustomerId, i64), RegisterError> {
    // Taken in any letter case, under the keyed id or the legacy one.
    if find_account(state, &account.username).await?.is_some() {
        return Err(RegisterError::Customer(CustomerError::UsernameTaken {
            username: account.username.as_str().to_string(),
        }));
    }
    let customer_id = state
        .account_ids
        .keyed(&state.pool, &account.username)
        .await?;
    let password_hash = hash(state, account.password.expose().to_string()).await?;
    let command = CustomerCommand::Register {
        customer_id,
        username: account.username,
        password_hash,
        fullname: account.fullname,
        email: account.email,
        phone: account.phone,
        role: account.role,
    };
    // A racing registration of the same username loses at sequence 1; the
    // retry re-decides on fresh state and answers "taken".
    let committed = state
        .customers
        .execute_with_retry(&customer_id.to_string(), command, meta)
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => RegisterError::Customer(e),
            Err(e) => RegisterError::Store(e),
        })?;
    Ok((customer_id, committed.position))
}

/// The account registered under `username` (in any letter case), and its
/// id: under its keyed id, or under the legacy one (see
/// [`super::account_ids`]).
pub async fn find_account(
    state: &AppState,
    username: &Username,
) -> Result<Option<(CustomerId, Customer)>, StoreError> {
    for id in state.account_ids.candidates(&state.pool, username).await? {
        let customer = state
            .customers
            .load(&id.to_string())
            .await
            .map_err(load_error)?;
        if let Some(customer) = customer.filter(Customer::is_registered) {
            return Ok(Some((id, customer)));
        }
    }
    Ok(None)
}
