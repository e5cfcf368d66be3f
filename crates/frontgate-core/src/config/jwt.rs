//! `[jwt]` and `[[jwt.issuers]]`: which token issuers the gateway trusts for bearer (and DPoP)
//! access tokens, where their keys come from, and how strictly tokens are checked.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::values::{Dur, EnvString};

/// The longest leeway allowed for clock skew: a larger one would keep expired tokens alive.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The longest an introspection answer may be cached: revocation must show within it.
pub const MAX_INTROSPECTION_CACHE: Duration = Duration::from_secs(300);

/// `[jwt]`: the trusted token issuers and the settings they share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `[[jwt.issuers]]` tables; at least one.
    pub issuers: Vec<IssuerConfig>,
    /// Verified tokens remembered until they expire (entries).
    #[serde(default = "d_cache_size")]
    pub cache_size: u64,
    /// An unknown `kid` refetches the key set at most this often per issuer.
    #[serde(default = "d_refresh_interval")]
    pub jwks_refresh_interval: Dur,
    /// Key sets older than this are refetched in the background.
    #[serde(default = "d_max_age")]
    pub jwks_max_age: Dur,
    /// When the issuer cannot be reached, its last key set keeps being used for this long.
    #[serde(default = "d_max_stale")]
    pub jwks_max_stale: Dur,
    /// Timeout for each fetch (discovery, key set, introspection).
    #[serde(default = "d_fetch_timeout")]
    pub fetch_timeout: Dur,
    /// How far a DPoP proof's `iat` may be from now.
    #[serde(default = "d_dpop_window")]
    pub dpop_window: Dur,
    /// DPoP proof `jti`s remembered at once (the DPoP replay set's capacity).
    #[serde(default = "d_dpop_replay_capacity")]
    pub dpop_replay_capacity: usize,
}

/// `[jwt] dpop_replay_capacity` when not given.
pub const DEFAULT_DPOP_REPLAY_CAPACITY: usize = 100_000;
/// The most `dpop_replay_capacity` may be: bounds the memory a flood of valid proofs can take.
pub const MAX_DPOP_REPLAY_CAPACITY: usize = 10_000_000;

/// `[[jwt.issuers]]`: one trusted token issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` value of its tokens.
    pub issuer: String,
    /// Accepted `aud` values: a token must name at least one.
    pub audiences: Vec<String>,
    /// The key set's URL; default: `jwks_uri` from the issuer's discovery document.
    pub jwks_url: Option<EnvString>,
    /// A static key set (JWKS JSON) instead of a URL.
    pub jwks_file: Option<PathBuf>,
    /// Fetch `{issuer}/.well-known/openid-configuration` for `jwks_uri` (and the introspection
    /// endpoint) when no `jwks_url`/`jwks_file` is given. Default true.
    #[serde(default = "d_true")]
    pub discovery: bool,
    /// Accepted signature algorithms (asymmetric only).
    #[serde(default = "d_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Clock skew allowed on `exp` and `nbf`; at most [`MAX_LEEWAY`]. Default 30 s.
    #[serde(default = "d_leeway")]
    pub leeway: Dur,
    /// Whether tokens are DPoP-bound. Default `optional`.
    #[serde(default)]
    pub dpop: DpopMode,
    /// Claims every token must carry (besides iss, aud, exp).
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// The `typ` header tokens must have.
    #[serde(default)]
    pub typ: TokenType,
    /// Opaque (non-JWT) tokens are checked by RFC 7662 introspection at this issuer.
    pub introspection: Option<IntrospectionConfig>,
}

/// `[jwt.issuers.introspection]`: RFC 7662 introspection of opaque tokens (one issuer at
/// most).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The introspection endpoint; default: `introspection_endpoint` from discovery.
    pub url: Option<EnvString>,
    /// The gateway's client at the issuer (HTTP basic authentication). Required.
    pub client_id: String,
    /// Its secret; `${VAR}` accepted. Required.
    pub client_secret: EnvString,
    /// How long an answer is reused (at most 5m, never past the token's `exp`).
    #[serde(default = "d_introspection_cache")]
    pub cache_ttl: Dur,
}

/// Whether tokens of an issuer are sender-constrained with DPoP (RFC 9449).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpopMode {
    /// DPoP-bound tokens are refused (their binding cannot be honoured); bearer tokens only.
    Off,
    /// Bound tokens need a valid proof; unbound tokens are accepted as bearer tokens.
    #[default]
    Optional,
    /// Every token must be DPoP-bound and come with a valid proof.
    Required,
}

/// The `typ` header a token must have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TokenType {
    /// RFC 9068 access tokens: `at+jwt` (or `application/at+jwt`). Keeps ID tokens and other
    /// JWTs of the same issuer from being used as access tokens.
    #[default]
    #[serde(rename = "at+jwt")]
    AtJwt,
    /// `JWT` or no `typ` (issuers that do not follow RFC 9068).
    #[serde(rename = "JWT", alias = "jwt")]
    Jwt,
}

/// An accepted signature algorithm. HMAC (`HS*`) and `none` are refused at load: a verifier that
/// takes a shared secret from a public key set is the RS256→HS256 confusion attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwtAlgorithm(pub jsonwebtoken::Algorithm);

impl<'de> Deserialize<'de> for JwtAlgorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use jsonwebtoken::Algorithm as A;
        let raw = String::deserialize(d)?;
        let alg = match raw.as_str() {
            "RS256" => A::RS256,
            "RS384" => A::RS384,
            "RS512" => A::RS512,
            "PS256" => A::PS256,
            "PS384" => A::PS384,
            "PS512" => A::PS512,
            "ES256" => A::ES256,
            "ES384" => A::ES384,
            "EdDSA" => A::EdDSA,
            "HS256" | "HS384" | "HS512" => {
                return Err(de::Error::custom(format!(
                    "`{raw}` is refused: HMAC algorithms need a shared secret, and accepting them beside public keys enables key-confusion attacks; use RS256, PS256, ES256, ES384 or EdDSA"
                )));
            }
            "none" | "None" | "NONE" => {
                return Err(de::Error::custom("`none` (unsigned tokens) is never accepted"));
            }
            _ => {
                return Err(de::Error::custom(format!(
                    "`{raw}` is not a supported algorithm; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"
                )));
            }
        };
        Ok(JwtAlgorithm(alg))
    }
}

fn d_cache_size() -> u64 {
    10_000
}
fn d_refresh_interval() -> Dur {
    Dur(Duration::from_secs(30))
}
fn d_max_age() -> Dur {
    Dur(Duration::from_secs(600))
}
fn d_max_stale() -> Dur {
    Dur(Duration::from_secs(24 * 3600))
}
fn d_fetch_timeout() -> Dur {
    Dur(Duration::from_secs(5))
}
fn d_dpop_window() -> Dur {
    Dur(Duration::from_secs(60))
}
fn d_dpop_replay_capacity() -> usize {
    DEFAULT_DPOP_REPLAY_CAPACITY
}
fn d_true() -> bool {
    true
}
fn d_algorithms() -> Vec<JwtAlgorithm> {
    vec![JwtAlgorithm(jsonwebtoken::Algorithm::ES256), JwtAlgorithm(jsonwebtoken::Algorithm::RS256)]
}
fn d_leeway() -> Dur {
    Dur(Duration::from_secs(30))
}
fn d_introspection_cache() -> Dur {
    Dur(Duration::from_secs(60))
}

/// Whether a URL may be fetched: https, or http to a loopback host (local tests only).
pub fn fetchable_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl JwtConfig {
    /// Rules that span keys; each message names the issuer.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.issuers.is_empty() {
            out.push("[jwt] has no issuers: add a [[jwt.issuers]] table".to_string());
        }
        if self.cache_size == 0 {
            out.push("[jwt] cache_size must be at least 1".to_string());
        }
        if self.fetch_timeout.0.is_zero() {
            out.push("[jwt] fetch_timeout must be longer than 0".to_string());
        }
        if self.dpop_window.0.is_zero() || self.dpop_window.0 > Duration::from_secs(600) {
            out.push("[jwt] dpop_window must be between 1s and 10m".to_string());
        }
        if self.dpop_replay_capacity == 0 || self.dpop_replay_capacity > MAX_DPOP_REPLAY_CAPACITY {
            out.push(format!(
                "[jwt] dpop_replay_capacity must be between 1 and {MAX_DPOP_REPLAY_CAPACITY}"
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut introspecting = 0;
        for i in &self.issuers {
            let name = &i.issuer;
            if !seen.insert(name.as_str()) {
                out.push(format!("[[jwt.issuers]] `{name}` is listed twice"));
            }
            if !fetchable_url(name) {
                out.push(format!("[[jwt.issuers]] issuer `{name}` must be an https:// URL (http:// only for loopback)"));
            }
            if i.audiences.is_empty() || i.audiences.iter().any(String::is_empty) {
                out.push(format!("[[jwt.issuers]] `{name}`: audiences must list the values of `aud` this API accepts"));
            }
            if i.algorithms.is_empty() {
                out.push(format!("[[jwt.issuers]] `{name}`: algorithms is empty"));
            }
            if i.leeway.0 > MAX_LEEWAY {
                out.push(format!("[[jwt.issuers]] `{name}`: leeway must be at most 5m"));
            }
            if i.jwks_url.is_some() && i.jwks_file.is_some() {
                out.push(format!("[[jwt.issuers]] `{name}`: set jwks_url or jwks_file, not both"));
            }
            if i.jwks_url.is_none() && i.jwks_file.is_none() && !i.discovery {
                out.push(format!(
                    "[[jwt.issuers]] `{name}`: discovery = false needs jwks_url or jwks_file"
                ));
            }
            if let Some(u) = &i.jwks_url
                && !fetchable_url(&u.0)
            {
                out.push(format!("[[jwt.issuers]] `{name}`: jwks_url must be https:// (http:// only for loopback)"));
            }
            if let Some(intro) = &i.introspection {
                introspecting += 1;
                if intro.cache_ttl.0 > MAX_INTROSPECTION_CACHE {
                    out.push(format!(
                        "[[jwt.issuers]] `{name}`: introspection cache_ttl must be at most 5m"
                    ));
                }
                match &intro.url {
                    Some(u) if !fetchable_url(&u.0) => {
                        out.push(format!("[[jwt.issuers]] `{name}`: introspection url must be https:// (http:// only for loopback)"));
                    }
                    None if !i.discovery => {
                        out.push(format!("[[jwt.issuers]] `{name}`: introspection needs url when discovery = false"));
                    }
                    _ => {}
                }
            }
        }
        // An opaque token says nothing about its issuer: sending it to several would leak one
        // issuer's tokens to another.
        if introspecting > 1 {
            out.push("[jwt] only one issuer may have introspection: an opaque token does not name its issuer, and it must not be sent to the others".to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<JwtConfig, String> {
        toml::from_str::<JwtConfig>(text).map_err(|e| e.to_string())
    }

    const ONE: &str = "[[issuers]]\nissuer = \"https://idp.example\"\naudiences = [\"api\"]\n";

    #[test]
    fn defaults_are_strict() {
        let c = parse(ONE).unwrap();
        let i = &c.issuers[0];
        assert_eq!(i.algorithms, d_algorithms());
        assert_eq!(i.leeway.0, Duration::from_secs(30));
        assert_eq!(i.dpop, DpopMode::Optional);
        assert_eq!(i.typ, TokenType::AtJwt);
        assert!(i.discovery);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn dpop_replay_capacity_is_read_and_bounded() {
        assert_eq!(parse(ONE).unwrap().dpop_replay_capacity, DEFAULT_DPOP_REPLAY_CAPACITY);
        let c = parse(&format!("dpop_replay_capacity = 5\n{ONE}")).unwrap();
        assert_eq!(c.dpop_replay_capacity, 5);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        for bad in ["0", "10000001"] {
            let c = parse(&format!("dpop_replay_capacity = {bad}\n{ONE}")).unwrap();
            assert!(c.problems().iter().any(|p| p.contains("dpop_replay_capacity")), "{bad}");
        }
        for bad in ["-1", "\"5\"", "1.5"] {
            assert!(parse(&format!("dpop_replay_capacity = {bad}\n{ONE}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn hmac_and_none_are_refused_at_load() {
        for alg in ["HS256", "HS512", "none", "RS1"] {
            let e = parse(&format!("{ONE}algorithms = [\"{alg}\"]\n")).unwrap_err();
            assert!(e.contains(alg), "{alg}: {e}");
        }
        assert!(
            parse(&format!("{ONE}algorithms = [\"HS256\"]\n"))
                .unwrap_err()
                .contains("key-confusion")
        );
    }

    #[test]
    fn cross_key_rules() {
        let problems = |extra: &str| parse(&format!("{ONE}{extra}")).unwrap().problems().join("\n");
        assert!(problems("leeway = \"10m\"\n").contains("leeway must be at most 5m"));
        assert!(
            problems("jwks_url = \"https://a/j\"\njwks_file = \"j.json\"\n").contains("not both")
        );
        assert!(
            problems("jwks_url = \"http://idp.example/jwks\"\n").contains("jwks_url must be https")
        );
        assert!(problems("jwks_url = \"http://127.0.0.1:9/jwks\"\n").is_empty());
        assert!(problems("discovery = false\n").contains("needs jwks_url"));
        assert!(problems("[issuers.introspection]\nclient_id = \"a\"\nclient_secret = \"b\"\ncache_ttl = \"1h\"\n").contains("at most 5m"));
        let two = format!(
            "{ONE}[issuers.introspection]\nclient_id = \"a\"\nclient_secret = \"b\"\n[[issuers]]\nissuer = \"https://other.example\"\naudiences = [\"api\"]\n[issuers.introspection]\nclient_id = \"a\"\nclient_secret = \"b\"\n"
        );
        assert!(
            parse(&two)
                .unwrap()
                .problems()
                .join("\n")
                .contains("only one issuer may have introspection")
        );
        let plain = parse("[[issuers]]\nissuer = \"http://idp.example\"\naudiences = []\n")
            .unwrap()
            .problems()
            .join("\n");
        assert!(
            plain.contains("must be an https://") && plain.contains("audiences must list"),
            "{plain}"
        );
    }

    #[test]
    fn fetchable_urls() {
        assert!(fetchable_url("https://idp.example/x"));
        assert!(fetchable_url("http://127.0.0.1:8080/x"));
        assert!(fetchable_url("http://[::1]:8080/x"));
        assert!(fetchable_url("http://localhost/x"));
        assert!(!fetchable_url("http://localhost.evil.example/x"));
        assert!(!fetchable_url("http://10.0.0.1/x"));
        assert!(!fetchable_url("file:///etc/passwd"));
    }
}
