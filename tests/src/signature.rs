//! The webhook signature, recomputed in the test from RFC 2104 and FIPS 180-4 SHA-256 — deliberately not
//! with the service's code or its HMAC crate, so a shared mistake cannot make both sides agree.

use sha2::{Digest, Sha256};

/// SHA-256 processes 64-byte blocks; HMAC pads (or hashes) the key to exactly one block.
const BLOCK_BYTES: usize = 64;
const INNER_PAD: u8 = 0x36;
const OUTER_PAD: u8 = 0x5c;

/// HMAC-SHA256(key, message) as lowercase hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut block = [0_u8; BLOCK_BYTES];
    if key.len() > BLOCK_BYTES {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_key: Vec<u8> = block.iter().map(|byte| byte ^ INNER_PAD).collect();
    let outer_key: Vec<u8> = block.iter().map(|byte| byte ^ OUTER_PAD).collect();
    let inner = Sha256::new().chain_update(&inner_key).chain_update(message).finalize();
    let outer = Sha256::new().chain_update(&outer_key).chain_update(inner).finalize();
    hex::encode(outer)
}

/// Whether `signature_header` (`v1=<hex>`, possibly several space-separated versions) carries the HMAC of
/// `"{timestamp}.{body}"` under `secret`.
pub fn webhook_signature_matches(secret: &str, timestamp: &str, body: &[u8], signature_header: &str) -> bool {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = hmac_sha256_hex(secret.as_bytes(), &signed);
    signature_header
        .split([' ', ','])
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .any(|candidate| candidate.eq_ignore_ascii_case(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (a short key).
    #[test]
    fn matches_rfc_4231_short_key_vector() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// RFC 4231 test case 6 (a key longer than one block is hashed first).
    #[test]
    fn matches_rfc_4231_long_key_vector() {
        let key = [0xaa_u8; 131];
        assert_eq!(
            hmac_sha256_hex(&key, b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn checks_the_timestamp_and_body_together() {
        let signature = format!("v1={}", hmac_sha256_hex(b"secret", b"1700000000.{\"a\":1}"));
        assert!(webhook_signature_matches("secret", "1700000000", b"{\"a\":1}", &signature));
        assert!(!webhook_signature_matches("secret", "1700000001", b"{\"a\":1}", &signature));
        assert!(!webhook_signature_matches("other", "1700000000", b"{\"a\":1}", &signature));
        assert!(!webhook_signature_matches("secret", "1700000000", b"{\"a\":1}", "v0=00"));
    }
}
