//! Personal data keys: the master key of the installation and the
//! per-customer data keys it wraps (table `personal_data_keys`).
//!
//! Every personal field of a stored event (see `domain::personal`) is
//! encrypted with the data key of the customer it is about, with AES-256-GCM
//! and a fresh random nonce per value (see `crate::event_store::personal`).
//! The data keys live in the database, each wrapped (AES-256-GCM too) by the
//! master key, which lives only in the configuration (`SHOP_MASTER_KEY`) or
//! the data folder, never in the database, events, snapshots or logs.
//! Forgetting a customer deletes their wrapped key ([`forget`]): what their
//! events hold can no longer be decrypted by anyone, and reads as
//! `domain::personal::ERASED`.
//!
//! The master key is the process's: every process on one database must be
//! given the same one. [`verify_master_key`] tells at start-up whether the
//! key given is the one this database's keys were wrapped with (a key check
//! value in `personal_data_master`). A process that was never given one
//! (the test kit, tools) uses a random key of its own.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sqlx::{PgExecutor, PgPool};

/// Bytes of a key (AES-256).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// What the key check value encrypts.
const CHECK_TEXT: &[u8] = b"shop personal data master key check";

/// Why keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The master key text is not 32 bytes as hex or base64.
    #[error("the master key must be 32 bytes written as 64 hex digits or in base64")]
    Malformed,
    /// A wrapped key or an encrypted value does not open with the key given.
    #[error("a personal data key cannot be opened with this master key")]
    WrongMasterKey,
    /// An encrypted value that its data key does not open.
    #[error("an encrypted personal field cannot be decrypted")]
    Undecryptable,
    /// A new event's payload is not JSON, or names no customer's key.
    #[error("a new event's personal fields cannot be encrypted: {0}")]
    Unsealable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The master key. Prints as `[redacted]`.
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl MasterKey {
    /// A master key from its text: 64 hex digits or the base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = if text.len() == 2 * KEY_LEN && text.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| KeyError::Malformed)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| KeyError::Malformed)?
        };
        if bytes.len() != KEY_LEN {
            return Err(KeyError::Malformed);
        }
        Aes256Gcm::new_from_slice(&bytes)
            .map(Self)
            .map_err(|_| KeyError::Malformed)
    }

    /// The text of a new random master key (64 hex digits).
    pub fn generate_text() -> String {
        hex::encode(Aes256Gcm::generate_key(OsRng))
    }

    fn random() -> Self {
        Self(Aes256Gcm::new(&Aes256Gcm::generate_key(OsRng)))
    }

    fn wrap(&self, subject: &str, data_key: &[u8]) -> Vec<u8> {
        seal_bytes(&self.0, data_key, subject.as_bytes())
    }

    fn unwrap(&self, subject: &str, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        let bytes =
            open_bytes(&self.0, wrapped, subject.as_bytes()).ok_or(KeyError::WrongMasterKey)?;
        Aes256Gcm::new_from_slice(&bytes)
            .map(DataKey)
            .map_err(|_| KeyError::WrongMasterKey)
    }

    fn check_value(&self) -> Vec<u8> {
        seal_bytes(&self.0, CHECK_TEXT, b"check")
    }

    fn opens_check(&self, value: &[u8]) -> bool {
        open_bytes(&self.0, value, b"check").is_some_and(|text| text == CHECK_TEXT)
    }
}

/// One customer's data key, unwrapped.
#[derive(Clone)]
pub struct DataKey(Aes256Gcm);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl DataKey {
    /// `nonce || ciphertext` of `plain`, bound to `context`.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Vec<u8> {
        seal_bytes(&self.0, plain, context)
    }

    /// The plain text of [`DataKey::seal`]'s output.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, KeyError> {
        open_bytes(&self.0, sealed, context).ok_or(KeyError::Undecryptable)
    }
}

fn seal_bytes(cipher: &Aes256Gcm, plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = match cipher.encrypt(&nonce, Payload { msg: plain, aad }) {
        Ok(sealed) => sealed,
        // AES-GCM refuses only messages longer than 64 GiB.
        Err(_) => unreachable!("AES-GCM encrypts any message this small"),
    };
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open_bytes(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .ok()
}

static MASTER: OnceLock<MasterKey> = OnceLock::new();

/// Makes `key` this process's master key. Answers false (and changes
/// nothing) when the process already has one.
pub fn install(key: MasterKey) -> bool {
    MASTER.set(key).is_ok()
}

/// This process's master key (a random one if none was installed).
fn master() -> &'static MasterKey {
    MASTER.get_or_init(MasterKey::random)
}

/// Whether this database holds keys made with another master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeyCheck {
    /// The key opens the database's check value (or the database had none,
    /// and now has this key's).
    Matches,
    /// The database's keys were wrapped with another master key.
    Differs,
}

/// Whether `key` is this database's master key; a database without a check
/// value yet takes `key`'s.
pub async fn verify_master_key(pool: &PgPool, key: &MasterKey) -> Result<MasterKeyCheck, KeyError> {
    sqlx::query(
        "INSERT INTO personal_data_master (key_check) VALUES ($1) ON CONFLICT (one) DO NOTHING",
    )
    .bind(key.check_value())
    .execute(pool)
    .await?;
    let value: Vec<u8> = sqlx::query_scalar("SELECT key_check FROM personal_data_master")
        .fetch_one(pool)
        .await?;
    Ok(if key.opens_check(&value) {
        MasterKeyCheck::Matches
    } else {
        MasterKeyCheck::Differs
    })
}

/// Whether this database has a master key check value, i.e. keys wrapped
/// by some master key.
pub async fn has_master_key(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM personal_data_master)")
        .fetch_one(pool)
        .await
}

/// Opens a wrapped data key read with an event (see
/// `crate::event_store::personal`).
pub fn unwrap(subject: &str, wrapped: &[u8]) -> Result<DataKey, KeyError> {
    master().unwrap(subject, wrapped)
}

/// The data keys of `subjects` for writing their personal fields, made for
/// those that have none yet; `None` for a forgotten subject.
pub async fn for_writing(
    pool: &PgPool,
    subjects: &[String],
) -> Result<HashMap<String, Option<DataKey>>, KeyError> {
    let master = master();
    let mut keys = HashMap::with_capacity(subjects.len());
    // A key made by a concurrent writer between this statement's snapshot
    // and its insert is seen by the next attempt.
    for _ in 0..3 {
        let missing: Vec<String> = subjects
            .iter()
            .filter(|s| !keys.contains_key(*s))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        let wrapped: Vec<Vec<u8>> = missing
            .iter()
            .map(|s| master.wrap(s, &Aes256Gcm::generate_key(OsRng)))
            .collect();
        let rows: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(
            "WITH made AS (
                 INSERT INTO personal_data_keys (subject, wrapped_key)
                 SELECT * FROM UNNEST($1::text[], $2::bytea[])
                 ON CONFLICT (subject) DO NOTHING
                 RETURNING subject, wrapped_key)
             SELECT subject, wrapped_key FROM made
             UNION ALL
             SELECT subject, wrapped_key FROM personal_data_keys
              WHERE subject = ANY($1) AND subject NOT IN (SELECT subject FROM made)",
        )
        .bind(&missing)
        .bind(&wrapped)
        .fetch_all(pool)
        .await?;
        for (subject, wrapped) in rows {
            let key = match wrapped {
                Some(wrapped) => Some(master.unwrap(&subject, &wrapped)?),
                None => None,
            };
            keys.insert(subject, key);
        }
    }
    Ok(keys)
}

/// Forgets `subject`: deletes their data key for good (a tombstone stays,
/// so no new key is made for them), and drops every snapshot that mentions
/// them (snapshots are a cache, rebuilt from the events, which then read
/// erased). Answers whether a key was deleted now.
pub async fn forget<'e>(executor: impl PgExecutor<'e>, subject: &str) -> Result<bool, sqlx::Error> {
    let deleted: bool = sqlx::query_scalar(
        "WITH forgotten AS (
             INSERT INTO personal_data_keys (subject, wrapped_key, forgotten_at)
             VALUES ($1, NULL, now())
             ON CONFLICT (subject) DO UPDATE SET wrapped_key = NULL, forgotten_at = now()
              WHERE personal_data_keys.forgotten_at IS NULL
             RETURNING subject),
         dropped AS (
             DELETE FROM snapshots WHERE aggregate_id = $1 OR strpos(payload::text, $1) > 0)
         SELECT EXISTS (SELECT 1 FROM forgotten)",
    )
    .bind(subject)
    .fetch_one(executor)
    .await?;
    Ok(deleted)
}

/// Rewraps every data key with `new` (opened with `current`) and sets the
/// check value to `new`'s, in one transaction; the events are not touched.
/// Answers how many keys were rewrapped.
pub async fn rotate(pool: &PgPool, current: &MasterKey, new: &MasterKey) -> Result<u64, KeyError> {
    let mut tx = pool.begin().await?;
    let check: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT key_check FROM personal_data_master FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await?;
    if check.is_some_and(|c| !current.opens_check(&c)) {
        return Err(KeyError::WrongMasterKey);
    }
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT subject, wrapped_key FROM personal_data_keys
          WHERE wrapped_key IS NOT NULL FOR UPDATE",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut subjects = Vec::with_capacity(rows.len());
    let mut rewrapped = Vec::with_capacity(rows.len());
    for (subject, wrapped) in rows {
        let bytes =
            open_bytes(&current.0, &wrapped, subject.as_bytes()).ok_or(KeyError::WrongMasterKey)?;
        rewrapped.push(new.wrap(&subject, &bytes));
        subjects.push(subject);
    }
    sqlx::query(
        "UPDATE personal_data_keys k SET wrapped_key = u.w
           FROM UNNEST($1::text[], $2::bytea[]) AS u(s, w) WHERE k.subject = u.s",
    )
    .bind(&subjects)
    .bind(&rewrapped)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO personal_data_master (key_check) VALUES ($1)
         ON CONFLICT (one) DO UPDATE SET key_check = EXCLUDED.key_check, set_at = now()",
    )
    .bind(new.check_value())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(subjects.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_key_is_64_hex_digits_or_base64_of_32_bytes() {
        let text = MasterKey::generate_text();
        assert!(MasterKey::parse(&text).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7_u8; 32]);
        assert!(MasterKey::parse(&b64).is_ok());
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&"ab".repeat(31)).is_err());
        assert_eq!(
            format!("{:?}", MasterKey::parse(&text).unwrap()),
            "[redacted]"
        );
    }

    #[test]
    fn a_wrapped_key_opens_only_with_its_master_key_and_subject() {
        let one = MasterKey::parse(&MasterKey::generate_text()).unwrap();
        let other = MasterKey::parse(&MasterKey::generate_text()).unwrap();
        let wrapped = one.wrap("alice", &[1_u8; 32]);
        assert!(one.unwrap("alice", &wrapped).is_ok());
        assert!(other.unwrap("alice", &wrapped).is_err());
        assert!(one.unwrap("bob", &wrapped).is_err());
        assert!(one.opens_check(&one.check_value()));
        assert!(!other.opens_check(&one.check_value()));
    }

    #[test]
    fn each_sealed_value_gets_its_own_nonce() {
        let key = DataKey(Aes256Gcm::new(&Aes256Gcm::generate_key(OsRng)));
        let a = key.seal(b"Ada", b"f");
        let b = key.seal(b"Ada", b"f");
        assert_ne!(a, b);
        assert_eq!(key.open(&a, b"f").unwrap(), b"Ada");
        assert!(key.open(&a, b"g").is_err());
    }
}
