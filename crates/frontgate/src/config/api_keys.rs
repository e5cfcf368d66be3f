//! `[api_keys]`: revocable API keys (docs/api-keys.md). The key format's prefix, the server
//! secret keys are hashed with at rest, and how long verified keys stay cached.

use serde::Deserialize;

use super::values::{Dur, EnvString};

/// `[api_keys]`: revocable API keys; needs the store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// Starts every key, so secret scanners can find leaked ones: 2 to 16 of `a-z0-9_`,
    /// ending in `_`.
    #[serde(default = "d_prefix")]
    pub prefix: String,
    /// The HMAC-SHA-256 secret keys are stored under: at least 32 characters. Changing it makes
    /// every existing key unknown.
    pub hash_secret: EnvString,
    /// How long a verified (or unknown) key is trusted from memory. A revocation reaches other
    /// nodes at once through Redis; if that event is lost, this bounds the delay.
    #[serde(default = "d_cache_ttl")]
    pub cache_ttl: Dur,
    /// Most keys held in the in-process cache.
    #[serde(default = "d_cache_capacity")]
    pub cache_capacity: u64,
    /// Most unknown keys remembered as unknown (bounded separately, so guessing cannot evict
    /// real keys).
    #[serde(default = "d_negative_capacity")]
    pub negative_cache_capacity: u64,
    /// How often last-used times are written to the store, in one batch.
    #[serde(default = "d_last_used_flush")]
    pub last_used_flush: Dur,
}

fn d_prefix() -> String {
    "fgk_".into()
}
fn d_cache_ttl() -> Dur {
    Dur(std::time::Duration::from_secs(5))
}
fn d_cache_capacity() -> u64 {
    100_000
}
fn d_negative_capacity() -> u64 {
    10_000
}
fn d_last_used_flush() -> Dur {
    Dur(std::time::Duration::from_secs(10))
}

impl ApiKeysConfig {
    pub(super) fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let p = &self.prefix;
        if !(2..=16).contains(&p.len())
            || !p.ends_with('_')
            || !p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            errors.push(format!("[api_keys] prefix `{p}` must be 2 to 16 characters of a-z, 0-9 and _, ending in _ (like \"fgk_\")"));
        }
        if self.hash_secret.0.len() < 32 {
            errors.push("[api_keys] hash_secret must be at least 32 characters (e.g. `openssl rand -base64 32`)".into());
        }
        if self.cache_ttl.0.is_zero() || self.cache_ttl.0 > std::time::Duration::from_secs(300) {
            errors.push("[api_keys] cache_ttl must be between 1ms and 5m: it bounds how long a revoked key may still pass".into());
        }
        if self.cache_capacity == 0 || self.negative_cache_capacity == 0 {
            errors.push(
                "[api_keys] cache_capacity and negative_cache_capacity must be at least 1".into(),
            );
        }
        if self.last_used_flush.0.is_zero() {
            errors.push("[api_keys] last_used_flush must be longer than 0".into());
        }
        errors
    }
}
