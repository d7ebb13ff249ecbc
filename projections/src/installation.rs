//! Secrets of the installation, kept in its database (`installation_secrets`)
//! so that every process using it agrees on them, and ids keyed by them.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

/// The secret `name` of this installation, made (from the operating system's
/// random source) by whichever process asks first.
pub async fn secret(pool: &PgPool, name: &str) -> Result<String, sqlx::Error> {
    let fresh = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO installation_secrets (name, secret) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(&fresh)
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT secret FROM installation_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
}

/// A UUID that only a holder of `key` can compute from `kind` and `text`:
/// the first 16 bytes of HMAC-SHA256(key, "kind:text"), marked as a random
/// (version 4) UUID, which it cannot be told apart from.
pub fn keyed_id(key: &[u8], kind: &str, text: &str) -> Uuid {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(kind.as_bytes());
    mac.update(b":");
    mac.update(text.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_id_depends_on_the_key_the_kind_and_the_text() {
        let a = keyed_id(b"one key", "customer", "alice");
        assert_eq!(a, keyed_id(b"one key", "customer", "alice"));
        assert_ne!(a, keyed_id(b"another key", "customer", "alice"));
        assert_ne!(a, keyed_id(b"one key", "customer", "alicf"));
        assert_ne!(a, keyed_id(b"one key", "shop", "alice"));
        assert_eq!(a.get_version_num(), 4);
    }
}
