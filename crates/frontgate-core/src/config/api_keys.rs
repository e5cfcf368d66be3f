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

/// The rules of `[api_keys.self_service]` that span sections. `oidc_broken`: `[oidc]` had
/// errors of its own, so its absence is not reported again. (Its scopes are held to the
/// routes and the OpenAPI document by the plan, which loads the document.)
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

// Plans sections that need the SQL store: without `sql` they are refused (plan::tests).
#[cfg(all(test, feature = "sql"))]
mod tests {
    const SPEC: &str = r#"openapi: 3.1.0
info: { title: t, version: "1" }
components:
  securitySchemes:
    key: { type: apiKey, in: header, name: X-API-Key }
paths:
  /items:
    get:
      security: [ { key: [items:read] } ]
      responses: { "200": { description: ok } }
  /overridden:
    get:
      security: [ { key: [spec:scope] } ]
      responses: { "200": { description: ok } }
"#;

    /// Scopes users may grant themselves are checked against what routes ask of API keys,
    /// from `[[routes]]` and from OpenAPI operations' security alike.
    fn errors(scopes: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
        let text = format!(
            "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[openapi]\nspec = \"spec.yaml\"\n\
             [api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\n\
             [api_keys.self_service]\nscopes = {scopes}\n\
             [oidc]\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             session_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n\
             [server]\ntls = \"self-signed\"\n\
             [[routes]]\nmatch = \"/admin/**\"\nauth = \"api_key\"\nscopes = [\"admin\"]\n\
             [[routes]]\nmatch = \"GET /overridden\"\nscopes = [\"route:scope\"]\n\
             [[routes]]\nmatch = \"/app/**\"\nauth = \"session\"\nscopes = [\"reports:read\"]\n"
        );
        match crate::plan::Plan::parse(&text, "t.toml", dir.path()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| e.message).collect(),
        }
    }

    // Plans sections that need the SQL store: without `sql` they are refused (plan::tests).

    #[cfg(feature = "sql")]
    #[test]
    fn self_service_scopes_must_be_required_of_api_keys_somewhere() {
        assert_eq!(errors(r#"["items:read", "admin", "route:scope"]"#), Vec::<String>::new());
        for (scope, why) in [
            ("reports:read", "required only of sessions"),
            ("spec:scope", "the route's scopes replace the operation's"),
            ("nowhere", "required by nothing"),
        ] {
            let errors = errors(&format!("[\"{scope}\"]"));
            assert!(
                errors.len() == 1 && errors[0].contains(&format!("`{scope}` is not required")),
                "{scope} ({why}): {errors:?}"
            );
        }
    }
}
