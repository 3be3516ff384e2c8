//! Randomness, secrets and signatures: the one place that touches key material.
//!
//! Share secrets are stored only as SHA-256 digests and compared in constant time; upload URLs of
//! the local object store and client-address hashes are HMAC-SHA256 under server keys.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `N` bytes from the operating system's CSPRNG.
///
/// # Panics
/// When the operating system has no randomness to give, which leaves nothing safe to do.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// A share secret: 24 random bytes, base64url without padding.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<24>())
}

/// A server-chosen share id: 12 random base62 characters.
pub fn new_share_id() -> String {
    // Rejection sampling keeps every character equally likely (256 is not a multiple of 62).
    let mut out = String::with_capacity(12);
    while out.len() < 12 {
        for b in random_bytes::<16>() {
            if b < 248 && out.len() < 12 {
                out.push(BASE62[usize::from(b % 62)] as char);
            }
        }
    }
    out
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    hex(&bytes)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The digest stored in place of a share secret.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    sha256(secret.as_bytes()).to_vec()
}

/// Whether `secret` is the one whose digest is `stored`, in constant time.
pub fn secret_matches(secret: &str, stored: &[u8]) -> bool {
    sha256(secret.as_bytes()).ct_eq(stored).into()
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Whether `signature` is the HMAC of `message` under `key`, in constant time.
pub fn hmac_verify(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.verify_slice(signature).is_ok()
}

pub fn base64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_24_bytes_and_distinct() {
        let a = new_secret();
        assert_eq!(base64url_decode(&a).unwrap().len(), 24);
        assert_ne!(a, new_secret());
    }

    #[test]
    fn share_ids_are_valid_base62() {
        for _ in 0..100 {
            let id = new_share_id();
            assert_eq!(id.len(), 12);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(crate::model::is_valid_share_id(&id));
        }
    }

    #[test]
    fn secret_hash_matches_only_its_secret() {
        let stored = secret_hash("right");
        assert!(secret_matches("right", &stored));
        assert!(!secret_matches("wrong", &stored));
        assert!(!secret_matches("right", &stored[..31]));
    }

    #[test]
    fn hmac_round_trip() {
        let sig = hmac_sha256(b"k", b"m");
        assert!(hmac_verify(b"k", b"m", &sig));
        assert!(!hmac_verify(b"k", b"n", &sig));
        assert!(!hmac_verify(b"j", b"m", &sig));
    }
}
