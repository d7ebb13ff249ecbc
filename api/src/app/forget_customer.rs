//! Forgetting a customer (crypto-shredding): `POST
//! /v1/admin/customers/{id}/forget`, `DELETE /v1/me` and `shop customers
//! forget ID`.
//!
//! The customer's data key is deleted first (with the snapshots that
//! mention them), then `CustomerForgotten` is recorded: from the deletion
//! on, every personal field of their events reads `[erased]` to every
//! reader, and the event tells the read models to erase what they copied.
//! A run that fails between the two is completed by running it again (each
//! step is idempotent); the events themselves are never changed, so their
//! hash chain holds.

use domain::customer::{Customer, CustomerCommand, CustomerError};
use domain::metadata::Role;
use domain::values::CustomerId;
use projections::event_store::Committed;

use super::passwords::verify_password;
use super::refusals::InvalidCredentials;
use super::{load_error, use_case_error, Caller, StoreError};
use crate::app::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ForgetCustomerError {
    /// No customer account has this id (staff accounts are not forgotten
    /// this way).
    #[error("There is no customer with this id.")]
    UnknownCustomer(CustomerError),
    /// The password given with the customer's own request is wrong.
    #[error(transparent)]
    WrongPassword(InvalidCredentials),
    #[error(transparent)]
    Customer(CustomerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(ForgetCustomerError {
    Self::UnknownCustomer(e) => domain(e: CustomerError where NotFound),
    Self::WrongPassword(e) => nested(e: InvalidCredentials),
    Self::Customer(e) => domain(e: CustomerError),
    Self::Store(e) => nested(e: StoreError),
});

/// Forgets customer `id`. Answers the position of `CustomerForgotten` (the
/// existing one when the customer was forgotten before).
pub async fn forget_customer(
    state: &AppState,
    caller: &Caller,
    id: CustomerId,
) -> Result<Committed, ForgetCustomerError> {
    let customer = load(state, id).await?;
    if !customer.is_forgotten() && customer.role() != Some(Role::Customer) {
        return Err(ForgetCustomerError::UnknownCustomer(
            CustomerError::NotRegistered,
        ));
    }
    forget(state, caller, id).await
}

/// The customer's own request: forgets the signed-in customer once their
/// password is checked.
pub async fn forget_myself(
    state: &AppState,
    caller: &Caller,
    password: String,
) -> Result<Committed, ForgetCustomerError> {
    let id = CustomerId(
        caller
            .user_id()
            .ok_or(ForgetCustomerError::UnknownCustomer(
                CustomerError::NotRegistered,
            ))?,
    );
    let customer = load(state, id).await?;
    let hash = customer.password_hash().map(str::to_string);
    if !verify_password(&state.hashing, password, hash).await? {
        return Err(ForgetCustomerError::WrongPassword(InvalidCredentials::new(
            "The password is wrong.",
        )));
    }
    if customer.role() != Some(Role::Customer) {
        return Err(ForgetCustomerError::UnknownCustomer(
            CustomerError::NotRegistered,
        ));
    }
    forget(state, caller, id).await
}

async fn load(state: &AppState, id: CustomerId) -> Result<Customer, ForgetCustomerError> {
    state
        .customers
        .load(&id.to_string())
        .await
        .map_err(load_error)?
        .filter(|c| c.is_registered() || c.is_forgotten())
        .ok_or(ForgetCustomerError::UnknownCustomer(
            CustomerError::NotRegistered,
        ))
}

async fn forget(
    state: &AppState,
    caller: &Caller,
    id: CustomerId,
) -> Result<Committed, ForgetCustomerError> {
    projections::keys::forget(&state.pool, &id.to_string())
        .await
        .map_err(StoreError::from)?;
    let committed = state
        .customers
        .execute_with_retry(
            &id.to_string(),
            CustomerCommand::Forget,
            &caller.meta("Forget"),
        )
        .await
        .map_err(|e| match StoreError::split(e) {
            Ok(e) => ForgetCustomerError::Customer(e),
            Err(e) => ForgetCustomerError::Store(e),
        })?;
    // This process refuses the account's tokens at once; the others within
    // their token check cache time.
    state.standings.forget(id.as_uuid());
    Ok(committed)
}
