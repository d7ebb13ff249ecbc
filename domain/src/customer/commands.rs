//! What can be asked of a customer account.

use serde::{Deserialize, Serialize};

use super::values::{Email, Fullname, Phone, Username};
use crate::metadata::Role;
use crate::values::CustomerId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerCommand {
    /// Open an account. Sent to the aggregate of the username's id (a
    /// function of the lower-cased username), so the same username in any
    /// letter case meets the same aggregate.
    Register {
        customer_id: CustomerId,
        username: Username,
        /// Already hashed by the caller (argon2id PHC string).
        password_hash: String,
        fullname: Fullname,
        email: Email,
        phone: Phone,
        role: Role,
    },
    /// Give the account another role (re-runs are no-ops).
    ChangeRole { role: Role },
    /// Make an existing account a staff account: a new password (chosen by
    /// the operator) and the role, together. Promoting never keeps a
    /// password that someone else may have chosen.
    Promote {
        role: Role,
        /// Already hashed by the caller (argon2id PHC string).
        password_hash: String,
    },
    /// End every token issued so far (`shop users revoke`).
    RevokeTokens,
    /// Forget the person: the account stops working and its personal data
    /// reads as erased (re-runs are no-ops).
    Forget,
}
