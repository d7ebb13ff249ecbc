//! Creating a staff account (`shop users create`), or making an existing
//! account staff when promotion is asked for.

use domain::customer::{
    CustomerCommand, CustomerError, CustomerValueError, Email, Fullname, Password, Phone, Username,
};
use domain::metadata::{Actor, CommandMetadata, Role};
use domain::values::CustomerId;

use super::register::{hash, register, NewAccount, RegisterError};
use super::{use_case_error, StoreError};
use crate::app::state::AppState;

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

#[derive(Debug, thiserror::Error)]
pub enum CreateStaffError {
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] CustomerValueError),
    /// The username exists and promotion was not asked for.
    #[error(
        "An account named {username:?} exists already. To make it {role} and set the password given, \
         ask for promotion explicitly (shop users create --promote)."
    )]
    UsernameTaken { username: String, role: Role },
    #[error(transparent)]
    Customer(CustomerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(CreateStaffError {
    Self::Invalid(_) => refused(Rule, super::register::INVALID_ACCOUNT),
    Self::UsernameTaken { .. } => refused(Conflict, "username_taken"),
    Self::Customer(e) => domain(e: CustomerError),
    Self::Store(e) => nested(e: StoreError),
});

/// Creates the staff account. An existing username is refused
/// ([`CreateStaffError::UsernameTaken`]) unless `promote` is set; then the
/// account gets the role and the password given, in one command.
pub async fn create_staff_user(
    state: &AppState,
    account: StaffAccount,
) -> Result<StaffOutcome, CreateStaffError> {
    let username = Username::parse(&account.username)?;
    let fullname = account
        .fullname
        .unwrap_or_else(|| username.as_str().to_string());
    let email = account
        .email
        .unwrap_or_else(|| format!("{}@staff.invalid", username.key()));
    let new = NewAccount {
        password: Password::parse(&account.password)?,
        fullname: Fullname::parse(&fullname)?,
        email: Email::parse(&email)?,
        phone: Phone::parse(account.phone.as_deref().unwrap_or("+10000000000"))?,
        role: account.role,
        username: username.clone(),
    };
    let actor = Actor::System("cli".to_string());
    let correlation = uuid::Uuid::new_v4().to_string();
    let meta = CommandMetadata::new(actor.clone(), correlation.clone(), "RegisterStaff");
    match register(state, new, &meta).await {
        Ok((id, _)) => Ok(StaffOutcome::Created(id)),
        Err(RegisterError::Customer(CustomerError::UsernameTaken { .. })) if account.promote => {
            let Some((id, _)) = super::register::find_account(state, &username).await? else {
                // Taken a moment ago, gone now: accounts are never removed.
                return Err(CreateStaffError::Store(StoreError::Conflict));
            };
            let password_hash = hash(state, account.password).await?;
            let meta = CommandMetadata::new(actor, correlation, "PromoteToStaff");
            let promote = CustomerCommand::Promote {
                role: account.role,
                password_hash,
            };
            state
                .customers
                .execute_with_retry(&id.to_string(), promote, &meta)
                .await
                .map_err(|e| match StoreError::split(e) {
                    Ok(e) => CreateStaffError::Customer(e),
                    Err(e) => CreateStaffError::Store(e),
                })?;
            // Its tokens of the old role end; this process knows at once.
            state.standings.forget(id.as_uuid());
            Ok(StaffOutcome::Promoted(id))
        }
        Err(RegisterError::Customer(CustomerError::UsernameTaken { .. })) => {
            Err(CreateStaffError::UsernameTaken {
                username: username.as_str().to_string(),
                role: account.role,
            })
        }
        Err(RegisterError::Invalid(e)) => Err(CreateStaffError::Invalid(e)),
        Err(RegisterError::Customer(e)) => Err(CreateStaffError::Customer(e)),
        Err(RegisterError::Store(e)) => Err(CreateStaffError::Store(e)),
    }
}
