//! `[admin]`: the separate listener for metrics, health and management, and `[admin.oidc]`, the
//! console's sign-in through the gateway's OpenID Connect provider.

use serde::Deserialize;

use super::values::{EnvString, ListenAddr, Origin};

/// `[admin]`: the admin listener (`/metrics`, `/health`, `/ready`, the management API).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where the admin listener binds; set `enabled = false` to run without one.
    pub listen: ListenAddr,
    /// `false` runs without an admin listener. Default `true`.
    pub enabled: bool,
    /// The bearer token for the management API under `/admin/v1/`, compared in constant time;
    /// without it that API answers 401 to everything. `/metrics`, `/health` and `/ready` never
    /// require it.
    pub token: Option<EnvString>,
    /// `[admin.oidc]`: the console may also be signed in through `[oidc]`'s provider, by users
    /// whose ID token holds an allowed value in a claim.
    pub oidc: Option<AdminOidcConfig>,
    /// Host names (without port) the admin listener answers to, besides IP addresses,
    /// `localhost` and names under `.localhost`: any other `Host` is refused (421), so that a
    /// web page whose DNS name was rebound to this address cannot reach the admin API or the
    /// console from a visitor's browser.
    pub allowed_hosts: Vec<String>,
}

/// An admin token shorter than this is refused: it could be guessed.
pub const MIN_TOKEN_CHARS: usize = 24;

/// Whether `name` is a DNS host name as `allowed_hosts` takes it: lowercase letters, digits,
/// `-` and `.`, labels of 1-63 characters, no port, no scheme, no wildcard.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: ListenAddr("127.0.0.1:9901".parse().expect("static")),
            enabled: true,
            token: None,
            oidc: None,
            allowed_hosts: Vec::new(),
        }
    }
}

/// `[admin.oidc]`: console sign-in through the identity provider of `[oidc]` (its issuer, client
/// id and secret), for users holding one of `allow` in the ID token's `claim`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminOidcConfig {
    /// The admin listener's origin as the browser reaches it (`http://127.0.0.1:9901`, or the
    /// TLS proxy in front of it): the redirect URI registered at the IdP is
    /// `<origin>/console/oidc/callback`.
    #[serde(deserialize_with = "console_origin")]
    pub origin: Origin,
    /// The ID token claim that names the user's roles or groups: a string or an array of
    /// strings (e.g. `groups`, `roles`).
    pub claim: String,
    /// The values of `claim` that may sign in (exact, case-sensitive); one is enough.
    pub allow: Vec<String>,
}

/// An absolute `http://` or `https://` origin; the error names the key.
fn console_origin<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Origin, D::Error> {
    let raw = String::deserialize(d)?;
    raw.parse::<Origin>().map_err(|e| {
        serde::de::Error::custom(format!(
            "[admin.oidc] origin must be the admin listener's origin as the browser reaches it, like \"http://127.0.0.1:9901\": {e}"
        ))
    })
}

impl AdminConfig {
    /// Rules that span keys of `[admin]` and `[admin.oidc]`; `has_oidc`: whether `[oidc]` is set
    /// (or was set with errors of its own).
    pub fn problems(&self, has_oidc: bool) -> Vec<String> {
        let Some(o) = &self.oidc else { return Vec::new() };
        let mut out = Vec::new();
        if !has_oidc {
            out.push("[admin.oidc] needs an [oidc] section: the console signs in through its provider (issuer, client_id, client_secret)".into());
        }
        if !self.enabled {
            out.push("[admin.oidc] is set but [admin] enabled = false: there is no console to sign in to; remove [admin.oidc]".into());
        }
        if self.token.as_ref().is_none_or(|t| t.0.is_empty()) {
            out.push("[admin.oidc] needs [admin] token: the console and the management API are disabled without it (it stays the API's credential and the console's break-glass sign-in)".into());
        }
        if o.claim.trim().is_empty() {
            out.push("[admin.oidc] claim is empty: name the ID token claim that holds roles or groups, e.g. claim = \"groups\"".into());
        }
        // A name, not a role: anyone who can register at the IdP with an allowed name or
        // address (unverified, at a self-service IdP) would be let in.
        const IDENTITY_CLAIMS: &[&str] = &[
            "sub",
            "email",
            "preferred_username",
            "name",
            "given_name",
            "family_name",
            "nickname",
            "upn",
            "unique_name",
            "phone_number",
        ];
        if IDENTITY_CLAIMS.contains(&o.claim.as_str()) {
            out.push(format!("[admin.oidc] claim = \"{}\" names a person, not a role: at an identity provider where people choose or register it, anyone could take an allowed value; use a claim the IdP's administrators set, e.g. claim = \"groups\" or \"roles\"", o.claim));
        }
        if o.claim.contains('.') {
            out.push(format!("[admin.oidc] claim = \"{}\": nested claims are not read (the claim is looked up by its whole name at the top of the ID token); make the IdP put the roles in a top-level claim", o.claim));
        }
        if o.allow.is_empty() {
            out.push("[admin.oidc] allow is empty: nobody could sign in; list the claim values that may, e.g. allow = [\"frontgate-admins\"]".into());
        }
        if o.allow.iter().any(|v| v.is_empty()) {
            out.push(
                "[admin.oidc] allow has an empty value: list the claim values that may sign in"
                    .into(),
            );
        }
        out
    }
}
