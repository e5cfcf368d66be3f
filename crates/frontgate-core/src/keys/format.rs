//! The key format: `<prefix><30 random base62><6 base62 CRC32>`, e.g.
//! `fgk_2bX...Q9kZ01`. 30 base62 characters carry 178 bits of randomness. The checksum (CRC32
//! of prefix and random part) lets a mistyped or made-up key be refused before any lookup, and
//! the fixed prefix and shape let secret scanners recognise a leaked key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const RANDOM_LEN: usize = 30;
pub const CHECKSUM_LEN: usize = 6;

/// Why a presented string is not a well-formed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// Wrong prefix, length or alphabet.
    Malformed,
    /// The shape is right but the checksum does not match.
    Checksum,
}

/// Uniform random base62 characters (rejection sampling: no modulo bias).
pub fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).expect("the OS random source failed");
        for &b in &buf {
            // 248 = 4 * 62: bytes at or above it would bias the first characters.
            if b < 248 && out.len() < n {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

fn checksum(prefix: &str, random: &str) -> [u8; CHECKSUM_LEN] {
    let mut h = crc32fast::Hasher::new();
    h.update(prefix.as_bytes());
    h.update(random.as_bytes());
    let mut n = h.finalize() as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A new key with `prefix`.
pub fn generate(prefix: &str) -> String {
    let random = random_base62(RANDOM_LEN);
    let sum = checksum(prefix, &random);
    let mut key = String::with_capacity(prefix.len() + RANDOM_LEN + CHECKSUM_LEN);
    key.push_str(prefix);
    key.push_str(&random);
    key.push_str(std::str::from_utf8(&sum).unwrap_or("000000"));
    key
}

/// Checks shape and checksum, touching nothing else.
pub fn check(prefix: &str, key: &str) -> Result<(), FormatError> {
    let Some(body) = key.strip_prefix(prefix) else { return Err(FormatError::Malformed) };
    if body.len() != RANDOM_LEN + CHECKSUM_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FormatError::Malformed);
    }
    let (random, sum) = body.split_at(RANDOM_LEN);
    if checksum(prefix, random) != sum.as_bytes() {
        return Err(FormatError::Checksum);
    }
    Ok(())
}

/// What may be shown of a key after creation: the prefix and its last four characters.
pub fn hint(prefix: &str, key: &str) -> String {
    let tail = &key[key.len().saturating_sub(4)..];
    format!("{prefix}...{tail}")
}

/// The HMAC-SHA-256 keyed by the server's secret: what is stored and looked up.
#[derive(Clone)]
pub struct Hasher(Hmac<Sha256>);

impl Hasher {
    pub fn new(secret: &[u8]) -> Hasher {
        Hasher(Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length"))
    }

    pub fn digest(&self, key: &str) -> [u8; 32] {
        let mut m = self.0.clone();
        m.update(key.as_bytes());
        m.finalize().into_bytes().into()
    }
}

/// A public key id: `key_` and 16 base62 characters.
pub fn new_id() -> String {
    format!("key_{}", random_base62(16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_check_and_mistyped_ones_do_not() {
        let k = generate("fgk_");
        assert_eq!(k.len(), 4 + RANDOM_LEN + CHECKSUM_LEN);
        assert_eq!(check("fgk_", &k), Ok(()));
        assert_eq!(check("xyz_", &k), Err(FormatError::Malformed));
        // One character changed in the random part: the checksum catches it.
        let mut b = k.clone().into_bytes();
        b[10] = if b[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(check("fgk_", std::str::from_utf8(&b).unwrap()), Err(FormatError::Checksum));
        assert_eq!(check("fgk_", &k[..k.len() - 1]), Err(FormatError::Malformed));
        assert_eq!(check("fgk_", &format!("{}-", &k[..k.len() - 1])), Err(FormatError::Malformed));
        assert_eq!(check("fgk_", ""), Err(FormatError::Malformed));
        assert_ne!(generate("fgk_"), k);
        assert_eq!(hint("fgk_", &k), format!("fgk_...{}", &k[k.len() - 4..]));
        assert!(new_id().starts_with("key_") && new_id().len() == 20);
    }

    #[test]
    fn digests_depend_on_the_secret() {
        let (a, b) = (Hasher::new(b"one secret"), Hasher::new(b"another secret"));
        assert_eq!(a.digest("fgk_x"), a.digest("fgk_x"));
        assert_ne!(a.digest("fgk_x"), b.digest("fgk_x"));
    }

    proptest! {
        #[test]
        fn check_never_panics_and_accepts_only_well_formed(s in "\\PC{0,60}") {
            if check("fgk_", &s).is_ok() {
                prop_assert!(s.starts_with("fgk_") && s.len() == 40);
            }
        }
    }
}
