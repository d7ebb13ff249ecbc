//! HMAC-SHA256 signatures of gateway callbacks.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying a callback's signature: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-gateway-signature";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str) -> HmacSha256 {
    // HMAC takes a key of any length; this cannot fail.
    HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// The header value signing `body` with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is a valid signature of `body` (compared in constant
/// time).
pub fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(signature) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(signature) = hex::decode(signature) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_its_body_and_secret() {
        let header = sign("secret", b"{\"a\":1}");
        assert!(verify("secret", b"{\"a\":1}", &header));
        assert!(!verify("secret", b"{\"a\":2}", &header));
        assert!(!verify("other", b"{\"a\":1}", &header));
        assert!(!verify("secret", b"{\"a\":1}", "sha256=zz"));
        assert!(!verify("secret", b"{\"a\":1}", ""));
    }

    #[test]
    fn the_signature_is_the_rfc_4231_hmac() {
        // RFC 4231 test case 2.
        let header = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            header,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
