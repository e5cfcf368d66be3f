//! `[api_keys]`: revocable API keys (docs/api-keys.md). The key format's prefix, the server
//! secret keys are hashed with at rest, and how long verified keys stay cached.

use serde::Deserialize;

use super::values::{Dur, EnvString};

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
    /// `[api_keys.self_service]`: signed-in users mint, list and revoke their own keys under
    /// `/.frontgate/keys` (docs/api-keys.md#self-service-keys). Present: enabled.
    pub self_service: Option<SelfServiceConfig>,
}

/// `[api_keys.self_service]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfServiceConfig {
    /// The scopes a user may put on their own keys; each must be one some route requires of
    /// an API key.
    pub scopes: Vec<String>,
    /// Most live (not revoked, not expired) keys per user.
    #[serde(default = "d_max_keys")]
    pub max_keys: u32,
    /// The longest lifetime a user may give a key; also the default.
    #[serde(default = "d_max_ttl")]
    pub max_ttl: Dur,
}

fn d_max_keys() -> u32 {
    10
}
fn d_max_ttl() -> Dur {
    Dur(std::time::Duration::from_secs(90 * 24 * 3600))
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

/// The scopes some route requires of an API key: its `[[routes]] scopes`, or the OpenAPI
/// operation's, on routes whose auth accepts `"api_key"` (as `checks::openapi::route_policy`
/// decides a route's policy).
fn key_scopes(config: &super::Config) -> std::collections::BTreeSet<&str> {
    use super::AuthMethod;
    let mut scopes = std::collections::BTreeSet::new();
    for r in &config.routes {
        if r.auth.accepts(AuthMethod::ApiKey) {
            scopes.extend(r.scopes.iter().map(String::as_str));
        }
    }
    if let Some(spec) = config.openapi.as_ref().and_then(|o| o.compiled.as_ref()) {
        for op in &spec.operations {
            let route =
                crate::route::table::merged_route(config, op).and_then(|i| config.routes.get(i));
            let auth_on_route = route.is_some_and(|r| !r.auth.is_none());
            let accepts = if auth_on_route {
                route.is_some_and(|r| r.auth.accepts(AuthMethod::ApiKey))
            } else {
                op.auth.contains(&AuthMethod::ApiKey)
            };
            let route_scopes = route.map(|r| r.scopes.as_slice()).unwrap_or_default();
            if accepts {
                let own = if route_scopes.is_empty() { &op.scopes[..] } else { route_scopes };
                scopes.extend(own.iter().map(String::as_str));
            }
        }
    }
    scopes
}

/// The rules of `[api_keys.self_service]` that span sections. `oidc_broken`: `[oidc]` had
/// errors of its own, so its absence is not reported again.
pub(super) fn self_service_problems(config: &super::Config, oidc_broken: bool) -> Vec<String> {
    let Some(s) = config.api_keys.as_ref().and_then(|k| k.self_service.as_ref()) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    if config.oidc.is_none() && !oidc_broken {
        errors.push("[api_keys.self_service] needs [oidc]: users manage their own keys with a browser session; add an [oidc] section, or remove [api_keys.self_service]".into());
    }
    if s.scopes.is_empty() {
        errors.push("[api_keys.self_service] scopes must list at least one scope users may put on their own keys".into());
    }
    let required = key_scopes(config);
    for scope in &s.scopes {
        if !required.contains(scope.as_str()) {
            errors.push(format!("[api_keys.self_service] scopes: `{scope}` is not required by any route that takes API keys (a route with auth including \"api_key\" and this scope in its scopes, or an OpenAPI operation's security), so a key with it would open nothing"));
        }
    }
    if !(1..=1000).contains(&s.max_keys) {
        errors.push("[api_keys.self_service] max_keys must be between 1 and 1000".into());
    }
    if s.max_ttl.0.is_zero() || s.max_ttl.0 > std::time::Duration::from_secs(10 * 366 * 24 * 3600) {
        errors.push(
            "[api_keys.self_service] max_ttl must be longer than 0 and at most 10 years".into(),
        );
    }
    errors
}
