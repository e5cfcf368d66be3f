//! Sealing session records at rest (AES-256-GCM, a random 96-bit nonce per record), session ids
//! (32 random bytes, base64url) and their store keys (SHA-256 of the id, so a leaked store holds
//! no usable cookie).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the system random source failed")]
    Random,
    #[error("a sealed record is malformed or was not sealed with this key")]
    Open,
}

/// The key sessions are sealed with.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        // 32 bytes is always a valid AES-256 key.
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .unwrap_or_else(|_| unreachable!("AES-256 takes 32-byte keys"));
        Sealer { key: LessSafeKey::new(unbound) }
    }

    /// `nonce || ciphertext || tag`, bound to `context` (the record's store key), so a sealed
    /// record copied under another key does not open.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut body,
            )
            .map_err(|_| CryptoError::Open)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut body)
            .map_err(|_| CryptoError::Open)?;
        let n = plain.len();
        body.truncate(n);
        Ok(body)
    }
}

/// A new random token: 32 bytes, base64url without padding (43 characters).
pub fn random_token() -> Result<String, CryptoError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CryptoError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether a cookie value has the shape of a token we issued; anything else is not looked up.
pub fn is_token_shaped(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The store key of a token: hex SHA-256.
pub fn store_key(token: &str) -> String {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d.as_ref() {
        s.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        s.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_open_only_with_their_key_and_context() {
        let s = Sealer::new(&[7u8; 32]);
        let sealed = s.seal(b"k1", b"secret tokens").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(s.open(b"k1", &sealed).unwrap(), b"secret tokens");
        assert_eq!(s.open(b"k2", &sealed), Err(CryptoError::Open));
        assert_eq!(Sealer::new(&[8u8; 32]).open(b"k1", &sealed), Err(CryptoError::Open));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(s.open(b"k1", &tampered), Err(CryptoError::Open));
        assert_eq!(s.open(b"k1", &sealed[..10]), Err(CryptoError::Open));
        // A fresh nonce each time.
        assert_ne!(s.seal(b"k1", b"x").unwrap(), s.seal(b"k1", b"x").unwrap());
    }

    #[test]
    fn tokens_are_random_and_shaped() {
        let a = random_token().unwrap();
        assert!(is_token_shaped(&a));
        assert_ne!(a, random_token().unwrap());
        assert!(!is_token_shaped("short"));
        assert!(!is_token_shaped(&format!("{}=", &a[..42])));
        assert_eq!(store_key(&a).len(), 64);
        assert_ne!(store_key(&a), a);
    }
}
