//! `shop users create`: bootstrapping staff accounts from the command line.

use domain::customer::{
    CustomerCommand, CustomerError, Email, Fullname, Password, Phone, Username,
};
use domain::metadata::{Actor, CommandMetadata, Role};
use domain::values::CustomerId;

use crate::auth::hash_password;
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
    /// Make an existing account with this username staff: its role and a new
    /// password (this one). Without it an existing username is refused, so a
    /// stranger who registered the name never gets the role.
    pub promote: bool,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffOutcome {
    Created(CustomerId),
    /// The username existed and promotion was asked for: the account now has
    /// the role and the password given; its old password no longer works.
    Promoted(CustomerId),
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::unprocessable("invalid_account", e.to_string())
}

/// Creates the staff account. An existing username is refused (409
/// `username_taken`) unless `promote` is set; then the account gets the role
/// and the password given, in one command.
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
        Err(e) if e.code == "username_taken" && account.promote => {
            let id = username.customer_id();
            let password_hash = hash_password(account.password).await?;
            let meta = CommandMetadata::new(actor, correlation, "PromoteToStaff");
            state
                .customers
                .execute_with_retry(
                    &id.to_string(),
                    CustomerCommand::Promote {
                        role: account.role,
                        password_hash,
                    },
                    &meta,
                )
                .await
                .map_err(command_error::<CustomerError>)?;
            Ok(StaffOutcome::Promoted(id))
        }
        Err(e) if e.code == "username_taken" => Err(ApiError::conflict(
            "username_taken",
            format!(
                "An account named {:?} exists already. To make it {} and set the password given, \
                 ask for promotion explicitly (shop users create --promote).",
                username.as_str(),
                account.role
            ),
        )),
        Err(e) => Err(e),
    }
}
