//! `shop users create`: bootstrapping staff accounts from the command line.

use domain::customer::{
    CustomerCommand, CustomerError, Email, Fullname, Password, Phone, Username,
};
use domain::metadata::{Actor, CommandMetadata, Role};
use domain::values::CustomerId;

use crate::commands::command_error;
use crate::error::ApiError;
use crate::routes::accounts::{register_account, NewAccount};
use crate::startup::AppState;

/// What `shop users create` asks for.
#[derive(Debug, Clone)]
pub struct StaffAccount {
    pub role: Role,
    pub username: String,
    pub password: String,
    pub fullname: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffOutcome {
    Created(CustomerId),
    /// The username existed; its role is now the one asked for. Its password
    /// is left as it was.
    RoleSet(CustomerId),
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::unprocessable("invalid_account", e.to_string())
}

/// Creates the account, or gives an existing one the role.
pub async fn create_staff(
    state: &AppState,
    account: StaffAccount,
) -> Result<StaffOutcome, ApiError> {
    let username = Username::parse(&account.username).map_err(invalid)?;
    let fullname = account
        .fullname
        .unwrap_or_else(|| username.as_str().to_string());
    let email = account
        .email
        .unwrap_or_else(|| format!("{}@staff.invalid", username.key()));
    let new = NewAccount {
        password: Password::parse(&account.password).map_err(invalid)?,
        fullname: Fullname::parse(&fullname).map_err(invalid)?,
        email: Email::parse(&email).map_err(invalid)?,
        phone: Phone::parse(account.phone.as_deref().unwrap_or("+10000000000")).map_err(invalid)?,
        role: account.role,
        username: username.clone(),
    };
    let actor = Actor::System("cli".to_string());
    let correlation = uuid::Uuid::new_v4().to_string();
    let meta = CommandMetadata::new(actor.clone(), correlation.clone(), "RegisterStaff");
    match register_account(state, new, meta).await {
        Ok((id, _)) => Ok(StaffOutcome::Created(id)),
        Err(e) if e.code == "username_taken" => {
            let id = username.customer_id();
            let meta = CommandMetadata::new(actor, correlation, "ChangeRole");
            state
                .customers
                .execute_with_retry(
                    &id.to_string(),
                    CustomerCommand::ChangeRole { role: account.role },
                    &meta,
                )
                .await
                .map_err(command_error::<CustomerError>)?;
            Ok(StaffOutcome::RoleSet(id))
        }
        Err(e) => Err(e),
    }
}
