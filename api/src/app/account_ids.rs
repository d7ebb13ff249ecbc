//! Account ids from usernames.
//!
//! A new account's id is keyed by a secret of the installation (kept in its
//! database, see `projections::installation`): HMAC-SHA256 of the
//! lower-cased username, so nobody without the secret can turn a username
//! into an account id (or a list of likely staff usernames into the ids an
//! order's history shows to staff). Accounts registered before keep the id
//! they were given, `derived_id("customer", lower-cased username)` (the
//! legacy derivation, [`Username::customer_id`]): a lookup by username
//! tries the keyed id, then the legacy one, so old accounts still sign in and
//! their usernames stay taken in every letter case.

use domain::customer::Username;
use domain::values::CustomerId;
use projections::installation;
use sqlx::PgPool;
use tokio::sync::OnceCell;

use super::StoreError;

/// The name of the installation secret that keys account ids.
pub const SECRET: &str = "account_ids";

/// Derives account ids with the installation's key, read once.
#[derive(Debug, Default)]
pub struct AccountIds {
    key: OnceCell<Vec<u8>>,
}

impl AccountIds {
    /// The id a new account named `username` gets (the same in any letter
    /// case).
    pub async fn keyed(
        &self,
        pool: &PgPool,
        username: &Username,
    ) -> Result<CustomerId, StoreError> {
        let key = self
            .key
            .get_or_try_init(|| async {
                installation::secret(pool, SECRET)
                    .await
                    .map(String::into_bytes)
            })
            .await?;
        Ok(CustomerId(installation::keyed_id(
            key,
            "customer",
            &username.key(),
        )))
    }

    /// Where an account named `username` may be: its keyed id first, then
    /// the id accounts registered before keyed ids were given.
    pub async fn candidates(
        &self,
        pool: &PgPool,
        username: &Username,
    ) -> Result<[CustomerId; 2], StoreError> {
        Ok([self.keyed(pool, username).await?, legacy(username)])
    }
}

/// The id an account registered before keyed ids got.
pub fn legacy(username: &Username) -> CustomerId {
    username.customer_id()
}
