//! Secrets generated for a local run.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The shortest secret accepted from the configuration (the token secret,
/// the payment webhook secret).
pub const MIN_SECRET_LEN: usize = 32;

/// 64 hex characters from the operating system's random source (two v4 UUIDs).
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The secret kept in `path`, created (mode 0600) on first use.
pub fn load_or_create(path: &Path) -> std::io::Result<String> {
    match fs::read_to_string(path) {
        Ok(secret) if !secret.trim().is_empty() => return Ok(secret.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let secret = random_secret();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())?;
    Ok(secret)
}
