//! A customer or staff account, keyed by its username.
//!
//! The aggregate id is a function of the lower-cased trimmed username, so
//! registering a username twice, in any letter case, meets the already
//! registered aggregate and is refused. New accounts' ids are keyed by a
//! secret of the installation (the application derives them); accounts
//! registered before have `derived_id("customer", lower-cased username)`
//! ([`Username::customer_id`], the legacy derivation).

mod commands;
mod error;
mod events;
mod values;

#[cfg(test)]
mod tests;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use commands::CustomerCommand;
pub use error::CustomerError;
pub use events::CustomerEvent;
pub use values::{CustomerValueError, Email, Fullname, Password, Phone, Username};

use crate::metadata::Role;
use crate::values::CustomerId;

/// The account's state once registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Account {
    customer_id: CustomerId,
    username: Username,
    password_hash: String,
    fullname: Fullname,
    email: Email,
    phone: Phone,
    role: Role,
    /// The version a token must carry to be honoured: raised by every role
    /// change, password change and revocation, so the tokens issued before
    /// stop working. (Snapshots taken before it existed are ignored: see
    /// `SNAPSHOT_VERSION`.)
    #[serde(default)]
    token_version: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    account: Option<Account>,
    /// The person was forgotten (`CustomerForgotten`): the account stays, so
    /// its username stays taken, but it is no longer registered for any
    /// other purpose. Left out of the snapshot while false, so snapshots
    /// taken before it existed stay valid.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    forgotten: bool,
}

impl Customer {
    /// Whether the account exists and works: registered, not forgotten.
    pub fn is_registered(&self) -> bool {
        self.account.is_some() && !self.forgotten
    }
    /// Whether the person was forgotten.
    pub fn is_forgotten(&self) -> bool {
        self.forgotten
    }
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.account.as_ref().map(|a| a.customer_id)
    }
    pub fn username(&self) -> Option<&Username> {
        self.account.as_ref().map(|a| &a.username)
    }
    /// The argon2id PHC string to verify a login against; none once the
    /// person was forgotten.
    pub fn password_hash(&self) -> Option<&str> {
        if self.forgotten {
            return None;
        }
        self.account.as_ref().map(|a| a.password_hash.as_str())
    }
    pub fn role(&self) -> Option<Role> {
        self.account.as_ref().map(|a| a.role)
    }
    pub fn fullname(&self) -> Option<&Fullname> {
        self.account.as_ref().map(|a| &a.fullname)
    }
    pub fn email(&self) -> Option<&Email> {
        self.account.as_ref().map(|a| &a.email)
    }
    pub fn phone(&self) -> Option<&Phone> {
        self.account.as_ref().map(|a| &a.phone)
    }
    /// The token version a token of this account must carry (see
    /// [`CustomerCommand::RevokeTokens`]).
    pub fn token_version(&self) -> Option<u32> {
        self.account.as_ref().map(|a| a.token_version)
    }
}

impl Aggregate for Customer {
    const TYPE: &'static str = "Customer";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            CustomerCommand::Register {
                customer_id,
                username,
                password_hash,
                fullname,
                email,
                phone,
                role,
            } => {
                if self.account.is_some() {
                    return Err(CustomerError::UsernameTaken {
                        username: username.as_str().to_string(),
                    });
                }
                if password_hash.trim().is_empty() {
                    return Err(CustomerError::MissingPasswordHash);
                }
                let event = CustomerEvent::CustomerRegistered {
                    customer_id,
                    username,
                    fullname,
                    email,
                    phone,
                    role,
                    password_hash,
                };
                sink.write(event, self).await;
            }
            CustomerCommand::ChangeRole { role } => {
                let account = self.account.as_ref().ok_or(CustomerError::NotRegistered)?;
                if account.role == role {
                    return Ok(());
                }
                let event = CustomerEvent::RoleChanged {
                    customer_id: account.customer_id,
                    from: account.role,
                    to: role,
                };
                sink.write(event, self).await;
            }
            CustomerCommand::Promote {
                role,
                password_hash,
            } => {
                let account = self.account.as_ref().ok_or(CustomerError::NotRegistered)?;
                if password_hash.trim().is_empty() {
                    return Err(CustomerError::MissingPasswordHash);
                }
                let customer_id = account.customer_id;
                let old_role = account.role;
                sink.write(
                    CustomerEvent::PasswordChanged {
                        customer_id,
                        password_hash,
                    },
                    self,
                )
                .await;
                if old_role != role {
                    let event = CustomerEvent::RoleChanged {
                        customer_id,
                        from: old_role,
                        to: role,
                    };
                    sink.write(event, self).await;
                }
            }
            CustomerCommand::RevokeTokens => {
                let account = self.account.as_ref().ok_or(CustomerError::NotRegistered)?;
                let event = CustomerEvent::TokensRevoked {
                    customer_id: account.customer_id,
                    token_version: account.token_version.saturating_add(1),
                };
                sink.write(event, self).await;
            }
            CustomerCommand::Forget => {
                let account = self.account.as_ref().ok_or(CustomerError::NotRegistered)?;
                if self.forgotten {
                    return Ok(());
                }
                let event = CustomerEvent::CustomerForgotten {
                    customer_id: account.customer_id,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CustomerEvent::CustomerRegistered {
                customer_id,
                username,
                fullname,
                email,
                phone,
                role,
                password_hash,
            } => {
                self.account = Some(Account {
                    customer_id,
                    username,
                    password_hash,
                    fullname,
                    email,
                    phone,
                    role,
                    token_version: 0,
                });
            }
            CustomerEvent::RoleChanged { to, .. } => {
                if let Some(account) = self.account.as_mut() {
                    account.role = to;
                    account.token_version = account.token_version.saturating_add(1);
                }
            }
            CustomerEvent::PasswordChanged { password_hash, .. } => {
                if let Some(account) = self.account.as_mut() {
                    account.password_hash = password_hash;
                    account.token_version = account.token_version.saturating_add(1);
                }
            }
            CustomerEvent::TokensRevoked { token_version, .. } => {
                if let Some(account) = self.account.as_mut() {
                    account.token_version = account.token_version.max(token_version);
                }
            }
            CustomerEvent::CustomerForgotten { .. } => {
                self.forgotten = true;
                if let Some(account) = self.account.as_mut() {
                    account.password_hash = String::new();
                    account.token_version = account.token_version.saturating_add(1);
                }
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for Customer {
    /// 2: the account's token version.
    const SNAPSHOT_VERSION: i32 = 2;
}
