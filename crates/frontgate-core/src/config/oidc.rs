//! `[oidc]`: OpenID Connect login for the browser app (backend-for-frontend). frontgate does the
//! authorization-code flow itself, keeps the tokens server-side and gives the browser only an
//! opaque session cookie. Read by `crate::oidc` and `crate::session`.

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::values::{Dur, EnvString};

/// `[oidc]`: the OpenID Connect client that `auth = "session"` routes log in with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The identity provider's issuer URL; discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: toml::Spanned<Issuer>,
    /// The client registered at the IdP (with the redirect URI
    /// `<public origin>/.frontgate/callback`). Required.
    pub client_id: String,
    /// Absent for a public client (then PKCE alone protects the code).
    pub client_secret: Option<EnvString>,
    /// How the client secret is sent to the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Scopes to ask for; must include `openid`. With `offline_access` the login asks for consent
    /// and the session gets a refresh token. Default `["openid"]`.
    #[serde(default = "d_scopes")]
    pub scopes: Vec<String>,
    /// A session unused this long ends.
    #[serde(default = "d_idle")]
    pub session_idle: Dur,
    /// A session ends this long after login, however it is used.
    #[serde(default = "d_absolute")]
    pub session_absolute: Dur,
    /// 32 random bytes, base64: encrypts tokens at rest (AES-256-GCM).
    pub session_key: SessionKey,
    /// Send `Authorization: Bearer <access token>` upstream.
    #[serde(default = "d_true")]
    pub forward_access_token: bool,
    /// The ID token claims `/.frontgate/session` returns to the SPA.
    #[serde(default = "d_claims")]
    pub session_claims: Vec<String>,
    /// Refresh the access token when it expires within this long.
    #[serde(default = "d_refresh_before")]
    pub refresh_before: Dur,
    /// Where the IdP sends the browser after logout: a path on the public origin.
    #[serde(default = "d_post_logout")]
    pub post_logout_path: String,
    /// How long a started login may take (state, nonce and PKCE verifier are kept this long).
    #[serde(default = "d_login_timeout")]
    pub login_timeout: Dur,
    /// Logins each client address may start (and callbacks it may complete) per period on
    /// this node: each start stores a pending login and calls the IdP.
    #[serde(default = "d_login_rate_limit")]
    pub login_rate_limit: super::Rate,
}

fn d_scopes() -> Vec<String> {
    vec!["openid".into()]
}
fn d_idle() -> Dur {
    Dur(Duration::from_secs(30 * 60))
}
fn d_absolute() -> Dur {
    Dur(Duration::from_secs(12 * 3600))
}
fn d_true() -> bool {
    true
}
fn d_claims() -> Vec<String> {
    ["sub", "name", "email"].map(String::from).to_vec()
}
fn d_refresh_before() -> Dur {
    Dur(Duration::from_secs(60))
}
fn d_post_logout() -> String {
    "/".into()
}
fn d_login_rate_limit() -> super::Rate {
    super::Rate { count: 30, period: Duration::from_secs(60) }
}
fn d_login_timeout() -> Dur {
    Dur(Duration::from_secs(600))
}

/// `client_auth`: how the client secret reaches the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP basic authentication (the default).
    #[default]
    ClientSecretBasic,
    /// `client_secret_post`: in the form body.
    ClientSecretPost,
}

/// An issuer URL: https, or http only for a loopback host (local tests and development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(pub String);

impl Issuer {
    /// Checks an issuer URL: `https://`, or `http://` for a loopback host only.
    pub fn parse(raw: &str) -> Result<Issuer, String> {
        let uri: http::Uri = raw
            .parse()
            .map_err(|_| format!("`{raw}` is not a URL; write e.g. \"https://idp.example.com\""))?;
        let host = uri.host().ok_or_else(|| format!("`{raw}` has no host"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback_host(host) => {}
            Some("http") => {
                return Err(format!(
                    "`{raw}`: an issuer must use https:// (http:// is accepted only for loopback hosts)"
                ));
            }
            _ => return Err(format!("`{raw}`: an issuer URL starts with https://")),
        }
        if uri.query().is_some() || raw.contains('#') {
            return Err(format!("`{raw}`: an issuer has no query or fragment"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(format!("`{raw}`: an issuer has no user information"));
        }
        Ok(Issuer(raw.to_owned()))
    }
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = EnvString::deserialize(d)?.0;
        Issuer::parse(&raw).map_err(de::Error::custom)
    }
}

/// The 32-byte AES-256-GCM key for sessions at rest.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// Decodes a base64 key of exactly 32 bytes that are not all the same; the error says how
    /// to make one.
    pub fn parse(raw: &str) -> Result<SessionKey, String> {
        let raw = raw.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
            .map_err(|_| {
                "session_key is not base64; make one with `openssl rand -base64 32`".to_owned()
            })?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "session_key must be 32 bytes, got {}; make one with `openssl rand -base64 32`",
                b.len()
            )
        })?;
        if key.iter().all(|&b| b == key[0]) {
            return Err("session_key is a repeated byte, not a random key; make one with `openssl rand -base64 32`".into());
        }
        Ok(SessionKey(key))
    }
}

impl<'de> Deserialize<'de> for SessionKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = EnvString::deserialize(d)?.0;
        SessionKey::parse(&raw).map_err(de::Error::custom)
    }
}

impl OidcConfig {
    /// Rules that span keys: (message) for each problem.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.scopes.iter().any(|s| s == "openid") {
            out.push("[oidc] scopes must include \"openid\"".into());
        }
        if self.client_id.is_empty() {
            out.push("[oidc] client_id is empty".into());
        }
        if self.session_idle.0.is_zero()
            || self.session_absolute.0.is_zero()
            || self.login_timeout.0.is_zero()
        {
            out.push(
                "[oidc] session_idle, session_absolute and login_timeout must be longer than 0"
                    .into(),
            );
        }
        if self.session_idle.0 > self.session_absolute.0 {
            out.push(
                "[oidc] session_idle is longer than session_absolute; it would never apply".into(),
            );
        }
        if !self.post_logout_path.starts_with('/')
            || self.post_logout_path.starts_with("//")
            || self.post_logout_path.contains('\\')
        {
            out.push(
                "[oidc] post_logout_path must be a path on the public origin, like \"/\"".into(),
            );
        }
        if self.client_secret.as_ref().is_some_and(|s| s.0.is_empty()) {
            out.push("[oidc] client_secret is empty; remove it for a public client".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        assert!(Issuer::parse("https://idp.example.com").is_ok());
        assert!(Issuer::parse("http://127.0.0.1:8080").is_ok());
        assert!(Issuer::parse("http://[::1]:8080").is_ok());
        assert!(Issuer::parse("http://localhost:9").is_ok());
        for bad in [
            "http://idp.example.com",
            "http://127.0.0.1.evil.com",
            "ftp://x",
            "idp.example.com",
            "https://u@idp",
            "https://idp?x=1",
        ] {
            assert!(Issuer::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn session_keys_must_be_32_random_bytes() {
        let good = base64::engine::general_purpose::STANDARD.encode((0u8..32).collect::<Vec<_>>());
        assert_eq!(SessionKey::parse(&good).unwrap().0[31], 31);
        assert!(SessionKey::parse("c2hvcnQ=").unwrap_err().contains("32 bytes"));
        assert!(SessionKey::parse("not base64!").unwrap_err().contains("base64"));
        let zeros = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        assert!(SessionKey::parse(&zeros).unwrap_err().contains("repeated"));
        assert_eq!(format!("{:?}", SessionKey::parse(&good).unwrap()), "SessionKey(<redacted>)");
    }
}
