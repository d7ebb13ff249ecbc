//! The master key of the personal data keys (see `projections::keys`):
//! configured (`SHOP_MASTER_KEY`), or kept in the data folder for a local
//! run, and checked against the database before anything reads or writes
//! personal data. Every `shop` command that opens the database goes
//! through [`open`].

use std::path::{Path, PathBuf};

use projections::keys::{self, MasterKey, MasterKeyCheck};
use sqlx::PgPool;

use crate::config::DatabaseSettings;

/// The file in the data folder that keeps the master key of a local run.
pub const FILE: &str = "master-key";

/// Where the master key came from.
#[derive(Debug, Clone)]
pub enum Source {
    Configured,
    DataFolder(PathBuf),
}

/// Why the master key cannot be used; each says so in one sentence.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error(
        "SHOP_MASTER_KEY is malformed: it must be 32 bytes written as 64 hex digits or in base64"
    )]
    Malformed,
    #[error("the master key in {0} is malformed: it must be 32 bytes written as 64 hex digits or in base64")]
    MalformedFile(PathBuf),
    #[error("SHOP_MASTER_KEY is not set and the data folder holds no master key, but this database's personal data keys were wrapped by one: set SHOP_MASTER_KEY to that key")]
    Missing,
    #[error("the master key given is not the one this database's personal data keys were wrapped with: start with that key (see docs/personal-data.md)")]
    Wrong,
    #[error("cannot keep the master key in the data folder: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The master key `settings` name, without checking it against a database.
pub async fn resolve(
    pool: &PgPool,
    settings: &DatabaseSettings,
) -> Result<(MasterKey, Source), MasterKeyError> {
    if let Some(text) = &settings.master_key {
        let key = MasterKey::parse(text.expose()).map_err(|_| MasterKeyError::Malformed)?;
        return Ok((key, Source::Configured));
    }
    let path = settings.data_dir.join(FILE);
    let existed = path.exists();
    if !existed && keys::has_master_key(pool).await? {
        return Err(MasterKeyError::Missing);
    }
    let text = crate::secrets::load_or_create(&path)?;
    let key = MasterKey::parse(&text).map_err(|_| MasterKeyError::MalformedFile(path.clone()))?;
    Ok((key, Source::DataFolder(path)))
}

/// Resolves the master key, checks it against the database (whose first
/// start records it) and makes it this process's.
pub async fn open(pool: &PgPool, settings: &DatabaseSettings) -> Result<Source, MasterKeyError> {
    let (key, source) = resolve(pool, settings).await?;
    check(pool, &key).await?;
    keys::install(key);
    Ok(source)
}

/// Whether `key` is this database's master key.
pub async fn check(pool: &PgPool, key: &MasterKey) -> Result<(), MasterKeyError> {
    match keys::verify_master_key(pool, key).await {
        Ok(MasterKeyCheck::Matches) => Ok(()),
        Ok(MasterKeyCheck::Differs) => Err(MasterKeyError::Wrong),
        Err(keys::KeyError::Database(e)) => Err(MasterKeyError::Database(e)),
        Err(_) => Err(MasterKeyError::Wrong),
    }
}

/// `shop keys rotate`: rewraps every data key with `new` and, when the
/// current key was kept in the data folder, keeps `new` there instead.
/// Answers how many keys were rewrapped.
pub async fn rotate(pool: &PgPool, settings: &DatabaseSettings, new: &str) -> anyhow::Result<u64> {
    let new_key = MasterKey::parse(new).map_err(|_| {
        anyhow::anyhow!("the new master key must be 32 bytes written as 64 hex digits or in base64")
    })?;
    let (current, source) = resolve(pool, settings).await?;
    check(pool, &current).await?;
    let count = keys::rotate(pool, &current, &new_key)
        .await
        .map_err(|e| anyhow::anyhow!("cannot rotate the master key: {e}"))?;
    if let Source::DataFolder(path) = source {
        keep(&path, new)?;
    }
    Ok(count)
}

fn keep(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.trim().as_bytes())
}
