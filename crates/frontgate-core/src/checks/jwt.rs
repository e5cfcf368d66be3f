//! Bearer (and DPoP-bound) access tokens from the issuers in `[[jwt.issuers]]`: the `jwt`
//! authentication method.
//!
//! A JWT is matched to its issuer by `iss` before anything is verified, and then verified with
//! that issuer's keys and rules only: its algorithm allow-list (asymmetric only, so neither
//! `none` nor RS256→HS256 confusion can pass), `typ`, `iss`, `aud`, `exp` and `nbf` with a
//! bounded leeway, required claims. Header fields that would let a token choose its own key
//! (`jku`, `x5u`, `x5c`, `jwk`) are ignored; `kid` is only compared. Opaque tokens go to the one
//! issuer with introspection. Verified tokens are cached until they expire, so a repeat costs a
//! hash lookup; a DPoP proof is still checked on every request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use jsonwebtoken::{Algorithm, Validation};

use super::auth::{AuthFuture, AuthResult, Authenticator};
use super::dpop::DpopVerifier;
use super::introspect::{IntrospectError, Introspector};
use super::jwks::{Fetcher, Freshness, IssuerKeys, KeyError, KeySource};
use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::AuthMethod;
use crate::config::jwt::{DpopMode, JwtConfig, TokenType};
use crate::exchange::{Exchange, Identity};
use crate::problem::{Code, Problem};
use crate::state::Services;
use crate::state::replay::ReplaySet;

/// Tokens longer than this are refused unread.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
const MAX_KID_CHARS: usize = 256;
/// Keys tried for one token without a `kid`.
const MAX_KEYS_TRIED: usize = 8;
/// Verified tokens are never cached longer than this, whatever their `exp`.
const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
const MAX_SCOPES: usize = 256;
pub const METRIC_VERIFICATIONS: &str = "frontgate_jwt_verifications_total";

/// A token that verified: what the identity is made of.
#[derive(Debug)]
pub struct Verified {
    /// Index into the issuers.
    issuer: usize,
    pub subject: String,
    pub scopes: Vec<String>,
    /// The DPoP key thumbprint the token is bound to (`cnf.jkt`).
    pub jkt: Option<String>,
    /// All the token's claims, for routes that require some (`claims`).
    pub claims: Arc<serde_json::Map<String, serde_json::Value>>,
    cache_for: Duration,
}

struct Issuer {
    name: String,
    audiences: Vec<String>,
    /// One prepared validation per allowed algorithm.
    validations: Vec<(Algorithm, Validation)>,
    dpop: DpopMode,
    required_claims: Vec<String>,
    typ: TokenType,
    keys: Arc<IssuerKeys>,
}

/// The two authorization schemes a token may come in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scheme {
    Bearer,
    Dpop,
}

pub struct JwtAuthenticator {
    issuers: Vec<Issuer>,
    /// Verified tokens until they expire (bounded; S3-FIFO, so a hit never pays for
    /// deferred cache maintenance).
    cache: quick_cache::sync::Cache<Box<str>, (Arc<Verified>, Instant)>,
    hits: metrics::Counter,
    /// The introspecting issuer's index, its client, and how long answers are reused.
    introspection: Option<(usize, Introspector, Duration)>,
    dpop: DpopVerifier,
}

fn invalid(detail: &str) -> Problem {
    Problem::new(Code::InvalidToken).with_detail(detail.to_string())
}

/// The issuer's keys (or introspection) cannot be had: the caller may retry, so 503.
fn unavailable(e: &KeyError) -> Problem {
    tracing::warn!(error = %e, "token issuer unavailable");
    Problem::new(Code::InvalidToken)
        .with_status(http::StatusCode::SERVICE_UNAVAILABLE)
        .with_detail("The token issuer's keys cannot be fetched right now; retry shortly.")
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Scopes from `scope` (space-separated, RFC 8693/9068) or `scp` (a list or a string).
pub(crate) fn scopes_of(claims: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(serde_json::Value::String(s)) => {
            out.extend(s.split(' ').filter(|s| !s.is_empty()).map(String::from))
        }
        Some(serde_json::Value::Array(list)) => {
            out.extend(list.iter().filter_map(|v| v.as_str()).map(String::from))
        }
        _ => {}
    }
    out.truncate(MAX_SCOPES);
    out
}

/// Why `[jwt]` could not be built from a config that parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtBuildError {
    /// The HTTP client for key sets and introspection could not be made.
    #[error("[jwt]: cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// An issuer's `jwks_file` cannot be read or is not a key set.
    #[error("[[jwt.issuers]] `{issuer}`: {source}")]
    KeyFile {
        /// The issuer whose file it is.
        issuer: String,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
}

impl JwtAuthenticator {
    /// Builds the authenticator; `origin` is the public origin DPoP `htu` must name. Static key
    /// files are read now (an unreadable one is an error); URLs are fetched in the background.
    /// `replay` is where DPoP proof `jti`s are spent (Redis across nodes, or this process).
    pub fn new(
        config: &JwtConfig,
        origin: &str,
        services: Arc<Services>,
        replay: Arc<dyn ReplaySet>,
    ) -> Result<JwtAuthenticator, JwtBuildError> {
        describe_metrics();
        let fetcher =
            Fetcher::new(services, config.fetch_timeout.0).map_err(JwtBuildError::HttpClient)?;
        let freshness = Freshness {
            refresh_interval: config.jwks_refresh_interval.0,
            max_age: config.jwks_max_age.0,
            max_stale: config.jwks_max_stale.0,
        };
        let mut issuers = Vec::new();
        let mut introspection = None;
        for (index, c) in config.issuers.iter().enumerate() {
            let source = if let Some(path) = &c.jwks_file {
                KeySource::load_file(path)
                    .map_err(|source| JwtBuildError::KeyFile { issuer: c.issuer.clone(), source })?
            } else if let Some(url) = &c.jwks_url {
                KeySource::Url(url.0.clone())
            } else {
                KeySource::Discovery { issuer: c.issuer.clone() }
            };
            let keys = IssuerKeys::new(source, c.issuer.clone(), fetcher.clone(), freshness);
            let validations = c
                .algorithms
                .iter()
                .map(|a| {
                    let mut v = Validation::new(a.0);
                    v.leeway = c.leeway.0.as_secs();
                    v.validate_nbf = true;
                    v.set_issuer(&[c.issuer.as_str()]);
                    v.set_audience(&c.audiences);
                    v.set_required_spec_claims(&["exp", "iss", "aud"]);
                    (a.0, v)
                })
                .collect();
            if let Some(i) = &c.introspection {
                let introspector = Introspector {
                    url: i.url.as_ref().map(|u| u.0.clone()),
                    client_id: i.client_id.clone(),
                    client_secret: i.client_secret.0.clone(),
                    issuer: c.issuer.clone(),
                    audiences: c.audiences.clone(),
                    keys: keys.clone(),
                    fetcher: fetcher.clone(),
                };
                introspection = Some((index, introspector, i.cache_ttl.0));
            }
            issuers.push(Issuer {
                name: c.issuer.clone(),
                audiences: c.audiences.clone(),
                validations,
                dpop: c.dpop,
                required_claims: c.required_claims.clone(),
                typ: c.typ,
                keys,
            });
        }
        let cache = quick_cache::sync::Cache::new(config.cache_size as usize);
        let hits = metrics::counter!(METRIC_VERIFICATIONS, "result" => "ok", "cache" => "hit");
        Ok(JwtAuthenticator {
            issuers,
            cache,
            hits,
            introspection,
            dpop: DpopVerifier::new(replay, config.dpop_window.0, origin),
        })
    }

    /// Starts fetching every issuer's keys, so the first request does not wait for them.
    pub fn prefetch(&self) {
        for i in &self.issuers {
            i.keys.background_refresh();
        }
    }

    /// Verifies a token, from the cache when it verified before and has not expired.
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified>, Problem> {
        if let Some(v) = self.cached(token) {
            return Ok(v);
        }
        let result = self.verify_uncached(token).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(p) if p.status() == http::StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            Err(_) => "invalid",
        };
        metrics::counter!(METRIC_VERIFICATIONS, "result" => label, "cache" => "miss").increment(1);
        let v = Arc::new(result?);
        if !v.cache_for.is_zero() {
            self.cache.insert(token.into(), (v.clone(), Instant::now() + v.cache_for));
        }
        Ok(v)
    }

    /// A token verified before and not yet expired.
    fn cached(&self, token: &str) -> Option<Arc<Verified>> {
        let (v, until) = self.cache.get(token)?;
        if until > Instant::now() {
            self.hits.increment(1);
            return Some(v);
        }
        self.cache.remove(token);
        None
    }

    /// Verifies a token without the cache (a JWT, or an opaque token by introspection).
    pub async fn verify_uncached(&self, token: &str) -> Result<Verified, Problem> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("The token is too long."));
        }
        match token.bytes().filter(|b| *b == b'.').count() {
            2 => self.verify_jwt(token).await,
            0 if self.introspection.is_some() => self.verify_opaque(token).await,
            _ => Err(invalid("The token is not a signed JWT.")),
        }
    }

    async fn verify_jwt(&self, token: &str) -> Result<Verified, Problem> {
        // The typed header parse fails for `alg: none` and algorithms we do not know.
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid("The token header is malformed or names an unsupported algorithm.")
        })?;
        // Pick the issuer by the (not yet verified) `iss`; everything after uses only its rules.
        let iss =
            unverified_issuer(token).ok_or_else(|| invalid("The token has no readable `iss`."))?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == iss)
            .ok_or_else(|| invalid("The token's issuer is not accepted."))?;
        let validation =
            issuer.validations.iter().find(|(a, _)| *a == header.alg).map(|(_, v)| v).ok_or_else(
                || invalid("The token's signature algorithm is not accepted for its issuer."),
            )?;
        if header.crit.is_some() {
            return Err(invalid(
                "The token has critical header extensions this gateway does not understand.",
            ));
        }
        if !typ_accepted(issuer.typ, header.typ.as_deref()) {
            return Err(invalid(
                "The token's `typ` is not an access token type accepted for its issuer.",
            ));
        }
        let kid = header.kid.as_deref();
        if kid.is_some_and(|k| k.chars().count() > MAX_KID_CHARS) {
            return Err(invalid("The token's `kid` is too long."));
        }
        let keys = issuer.keys.keys_for(kid, header.alg).await.map_err(|e| unavailable(&e))?;
        if keys.is_empty() {
            return Err(invalid("The token is signed with a key its issuer does not publish."));
        }
        let mut claims = None;
        for key in keys.iter().take(MAX_KEYS_TRIED) {
            match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                token, &key.key, validation,
            ) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {
                    continue;
                }
                Err(e) => return Err(invalid(explain(&e))),
            }
        }
        let claims = claims.ok_or_else(|| invalid("The token's signature does not verify."))?;
        self.accept_claims(index, issuer, claims)
    }

    fn accept_claims(
        &self,
        index: usize,
        issuer: &Issuer,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Verified, Problem> {
        if let Some(missing) =
            issuer.required_claims.iter().find(|c| !claims.contains_key(c.as_str()))
        {
            return Err(invalid(&format!("The token lacks the required claim `{missing}`.")));
        }
        let subject = claims
            .get("sub")
            .or_else(|| claims.get("client_id"))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("The token has no subject (`sub`)."))?
            .to_string();
        let jkt = match claims.get("cnf").and_then(|c| c.get("jkt")) {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid("The token's `cnf.jkt` is malformed.")),
        };
        let exp = claims.get("exp").and_then(|v| v.as_u64()).unwrap_or(0);
        let cache_for = Duration::from_secs(exp.saturating_sub(now_secs())).min(MAX_CACHE);
        Ok(Verified {
            issuer: index,
            subject,
            scopes: scopes_of(&claims),
            jkt,
            claims: Arc::new(claims),
            cache_for,
        })
    }

    async fn verify_opaque(&self, token: &str) -> Result<Verified, Problem> {
        let Some((index, introspector, ttl)) = &self.introspection else {
            return Err(invalid("The token is not a signed JWT."));
        };
        let answer = introspector.introspect(token).await.map_err(|e| match e {
            IntrospectError::Inactive => invalid("The token is not active."),
            IntrospectError::Mismatch => invalid("The token is for another issuer or audience."),
            IntrospectError::Unreachable(e) => unavailable(&e),
        })?;
        let issuer = &self.issuers[*index];
        if let Some(missing) =
            issuer.required_claims.iter().find(|c| !answer.claims.contains_key(c.as_str()))
        {
            return Err(invalid(&format!("The token lacks the required claim `{missing}`.")));
        }
        let subject = answer.subject.ok_or_else(|| invalid("The token has no subject (`sub`)."))?;
        let until_exp =
            answer.exp.map_or(*ttl, |e| Duration::from_secs(e.saturating_sub(now_secs())));
        Ok(Verified {
            issuer: *index,
            subject,
            scopes: answer.scopes,
            jkt: answer.jkt,
            claims: Arc::new(answer.claims),
            cache_for: until_exp.min(*ttl),
        })
    }

    /// Sender constraint: a DPoP-bound token needs the DPoP scheme and a valid proof; an
    /// unbound one the Bearer scheme, unless its issuer requires DPoP.
    async fn check_binding(
        &self,
        v: &Verified,
        scheme: Scheme,
        token: &str,
        head: &Parts,
    ) -> Result<(), Problem> {
        match (self.binding_without_proof(v, scheme), &v.jkt) {
            (Some(answer), _) => answer,
            (None, Some(jkt)) => self
                .dpop
                .verify(&head.headers, &head.method, head.uri.path(), token, jkt)
                .await
                .map_err(|e| invalid(&format!("{}.", capitalize(&e.to_string())))),
            (None, None) => Err(invalid("The DPoP scheme needs a DPoP-bound token.")),
        }
    }

    /// The sender-constraint answer when no DPoP proof must be checked; `None` when one must.
    fn binding_without_proof(&self, v: &Verified, scheme: Scheme) -> Option<Result<(), Problem>> {
        let mode = self.issuers.get(v.issuer).map_or(DpopMode::Off, |i| i.dpop);
        match (&v.jkt, scheme, mode) {
            (Some(_), _, DpopMode::Off) => {
                Some(Err(invalid("The token is DPoP-bound, and DPoP is off for its issuer.")))
            }
            (Some(_), Scheme::Bearer, _) => Some(Err(invalid(
                "The token is DPoP-bound: send it with `Authorization: DPoP` and a DPoP proof.",
            ))),
            (None, Scheme::Dpop, _) => {
                Some(Err(invalid("The DPoP scheme needs a DPoP-bound token.")))
            }
            (None, Scheme::Bearer, DpopMode::Required) => {
                Some(Err(invalid("The token's issuer requires DPoP-bound tokens.")))
            }
            (None, Scheme::Bearer, _) => Some(Ok(())),
            (Some(_), Scheme::Dpop, _) => None,
        }
    }

    /// Whether any issuer accepts opaque tokens.
    fn introspects(&self) -> bool {
        self.introspection.is_some()
    }

    /// The issuer names, for logs.
    pub fn issuer_names(&self) -> Vec<&str> {
        self.issuers.iter().map(|i| i.name.as_str()).collect()
    }

    /// The audiences an issuer accepts (for docs and tests).
    pub fn audiences(&self, issuer: &str) -> Option<&[String]> {
        self.issuers.iter().find(|i| i.name == issuer).map(|i| i.audiences.as_slice())
    }
}

fn describe_metrics() {
    metrics::describe_counter!(
        METRIC_VERIFICATIONS,
        "Bearer token verifications by result (ok, invalid, unavailable) and cache (hit, miss)"
    );
    metrics::describe_counter!(
        super::jwks::METRIC_FETCHES,
        "Token issuer key-set fetches by result (ok, error)"
    );
    metrics::describe_counter!(
        super::introspect::METRIC_INTROSPECTIONS,
        "Token introspection calls by result (active, inactive, error)"
    );
    metrics::describe_counter!(
        super::dpop::METRIC_PROOFS,
        "DPoP proof checks by result (ok, or the rule that failed)"
    );
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

fn explain(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "The token has expired.",
        K::ImmatureSignature => "The token is not valid yet (`nbf`).",
        K::InvalidAudience => "The token is not for this API (`aud`).",
        K::InvalidIssuer => "The token's issuer is not accepted.",
        K::MissingRequiredClaim(_) => "The token lacks a required claim (`exp`, `iss`, `aud`).",
        K::InvalidAlgorithm => "The token's signature algorithm is not accepted for its issuer.",
        _ => "The token is malformed or its signature does not verify.",
    }
}

/// RFC 9068 §4: `at+jwt` (or `application/at+jwt`); the JWT setting also takes `JWT` or none.
fn typ_accepted(want: TokenType, typ: Option<&str>) -> bool {
    let at =
        |t: &str| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt");
    match (want, typ) {
        (TokenType::AtJwt, Some(t)) => at(t),
        (TokenType::AtJwt, None) => false,
        (TokenType::Jwt, None) => true,
        (TokenType::Jwt, Some(t)) => {
            at(t) || t.eq_ignore_ascii_case("jwt") || t.eq_ignore_ascii_case("application/jwt")
        }
    }
}

/// The `iss` of a JWT before verification, only to choose whose keys to verify it with.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(String::from)
}

/// `Authorization: Bearer <token>` or `Authorization: DPoP <token>`; exactly one header.
fn credentials(head: &Parts) -> Result<Option<(Scheme, &str)>, Problem> {
    let mut all = head.headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = all.next() else { return Ok(None) };
    let Ok(value) = value.to_str() else { return Ok(None) };
    let Some((scheme, token)) = value.split_once(' ') else { return Ok(None) };
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(invalid("More than one Authorization header."));
    }
    let token = token.trim();
    // RFC 6750 b64token: the characters a token may have.
    let b64token = !token.is_empty()
        && token.trim_end_matches('=').bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !b64token {
        return Err(invalid("The token has characters a token cannot have."));
    }
    Ok(Some((scheme, token)))
}

impl Authenticator for JwtAuthenticator {
    fn method(&self) -> AuthMethod {
        AuthMethod::Jwt
    }

    /// A `DPoP` credential, or a `Bearer` one shaped like a JWT/JWE (dotted; or any, when an
    /// issuer introspects opaque tokens): other bearer values (API keys) are left to their method.
    fn presented(&self, head: &Parts) -> bool {
        let Some(value) =
            head.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else { return false };
        if scheme.eq_ignore_ascii_case("dpop") {
            return true;
        }
        scheme.eq_ignore_ascii_case("bearer") && (self.introspects() || token.contains('.'))
    }

    fn challenges(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.issuers.iter().any(|i| i.dpop != DpopMode::Required) {
            out.push(super::auth::BEARER_CHALLENGE.to_owned());
        }
        if self.issuers.iter().any(|i| i.dpop != DpopMode::Off) {
            out.push(format!("DPoP algs=\"{}\"", super::dpop::algorithm_names()));
        }
        out
    }

    fn authenticate<'a>(&'a self, ex: &'a Exchange<'_>) -> AuthFuture<'a> {
        Box::pin(async move {
            let (scheme, token) =
                credentials(ex.head)?.ok_or_else(|| Problem::new(Code::Unauthenticated))?;
            let verified = self.verify(token).await?;
            self.check_binding(&verified, scheme, token, ex.head).await?;
            Ok(identity(&verified))
        })
    }

    fn authenticate_cached(&self, ex: &Exchange<'_>) -> Option<AuthResult> {
        let (scheme, token) = match credentials(ex.head) {
            Ok(Some(c)) => c,
            Ok(None) => return Some(Err(Problem::new(Code::Unauthenticated))),
            Err(p) => return Some(Err(p)),
        };
        let verified = self.cached(token)?;
        Some(self.binding_without_proof(&verified, scheme)?.map(|()| identity(&verified)))
    }
}

fn identity(verified: &Verified) -> Identity {
    Identity {
        method: AuthMethod::Jwt,
        subject: verified.subject.clone(),
        key_id: None,
        scopes: verified.scopes.clone(),
        claims: Some(verified.claims.clone()),
        rate_limit: None,
        upstream_headers: Vec::new(),
    }
}

/// The bearer-token feature: JWT (with DPoP and introspection) authentication.
pub struct Jwt(Arc<JwtAuthenticator>);

/// `[jwt]`: its key sets are fetched in the background from here on.
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    let Some(jwt) = &inputs.config.jwt else { return Ok(None) };
    let replay = crate::state::replay::for_config(
        inputs.config,
        inputs.services,
        crate::state::replay::Feature::Dpop,
    );
    let origin = inputs.config.public_origin();
    let jwt = JwtAuthenticator::new(jwt, origin.as_str(), inputs.services.clone(), replay)?;
    jwt.prefetch();
    Ok(Some(Arc::new(Jwt(Arc::new(jwt)))))
}

impl Feature for Jwt {
    fn authenticators(&self) -> Vec<Arc<dyn Authenticator>> {
        vec![self.0.clone()]
    }

    fn route_checks(&self, _: &RouteContext<'_>, _: &mut Vec<Arc<dyn crate::exchange::Check>>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An authenticator over one static EC key; returns it with a token it accepts.
    fn fixture() -> (JwtAuthenticator, String, tempfile::TempDir) {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = kp.public_key_raw();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65]), "kid": "k"});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, serde_json::json!({"keys": [jwk]}).to_string()).unwrap();
        let config: JwtConfig = toml::from_str(&format!(
            "[[issuers]]\nissuer = \"https://i.test\"\naudiences = [\"api\"]\njwks_file = {:?}\n",
            path.display().to_string()
        ))
        .unwrap();
        let services = Arc::new(Services::runtime_only().unwrap());
        let replay = Arc::new(crate::state::replay::MemoryReplaySet::new(100));
        let auth = JwtAuthenticator::new(&config, "https://g.test", services, replay).unwrap();
        let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
        h.typ = Some("at+jwt".into());
        h.kid = Some("k".into());
        let claims = serde_json::json!({"iss": "https://i.test", "aud": "api", "sub": "s", "exp": now_secs() + 600});
        let token = jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&kp.serialize_der()),
        )
        .unwrap();
        (auth, token, dir)
    }

    #[test]
    fn the_fixture_token_verifies() {
        let (auth, token, _dir) = fixture();
        let v = futures_util::FutureExt::now_or_never(auth.verify(&token)).unwrap().unwrap();
        assert_eq!(v.subject, "s");
    }

    proptest::proptest! {
        /// Arbitrary text and arbitrary single-byte changes to a good token never panic and
        /// never verify (static keys: no I/O, so the futures complete at once).
        #[test]
        fn garbage_and_mutations_never_verify(text in "\\PC{0,300}", at in 0usize..4096, byte in 0u8..128) {
            let (auth, token, _dir) = fixture();
            let r = futures_util::FutureExt::now_or_never(auth.verify_uncached(&text)).unwrap();
            proptest::prop_assert!(r.is_err());
            let mut bytes = token.into_bytes();
            let i = at % bytes.len();
            proptest::prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            let r = futures_util::FutureExt::now_or_never(auth.verify_uncached(&mutated)).unwrap();
            proptest::prop_assert!(r.is_err(), "mutated at {}: {}", i, mutated);
        }
    }

    #[test]
    fn typ_rules() {
        assert!(typ_accepted(TokenType::AtJwt, Some("at+jwt")));
        assert!(typ_accepted(TokenType::AtJwt, Some("application/AT+JWT")));
        assert!(!typ_accepted(TokenType::AtJwt, Some("JWT")));
        assert!(!typ_accepted(TokenType::AtJwt, None));
        assert!(typ_accepted(TokenType::Jwt, None));
        assert!(typ_accepted(TokenType::Jwt, Some("JWT")));
        assert!(!typ_accepted(TokenType::Jwt, Some("dpop+jwt")));
        assert!(!typ_accepted(TokenType::Jwt, Some("logout+jwt")));
    }

    #[test]
    fn scopes_from_scope_or_scp() {
        let m = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(scopes_of(&m(serde_json::json!({"scope": "a  b"}))), ["a", "b"]);
        assert_eq!(scopes_of(&m(serde_json::json!({"scp": ["a", 1, "b"]}))), ["a", "b"]);
        assert_eq!(scopes_of(&m(serde_json::json!({"scp": "a b"}))), ["a", "b"]);
        assert!(scopes_of(&m(serde_json::json!({"scope": 5}))).is_empty());
    }

    #[test]
    fn credentials_parse_strictly() {
        let head = |values: &[&str]| {
            let mut b = http::Request::builder();
            for v in values {
                b = b.header("authorization", *v);
            }
            b.body(()).unwrap().into_parts().0
        };
        assert_eq!(credentials(&head(&["Bearer a.b.c"])).unwrap(), Some((Scheme::Bearer, "a.b.c")));
        assert_eq!(credentials(&head(&["dpop a.b.c"])).unwrap(), Some((Scheme::Dpop, "a.b.c")));
        assert_eq!(credentials(&head(&["Basic abc"])).unwrap(), None);
        assert!(credentials(&head(&["Bearer a.b.c", "Bearer d.e.f"])).is_err());
        assert!(credentials(&head(&["Bearer a b"])).is_err());
        assert!(credentials(&head(&["Bearer a\"b"])).is_err());
    }
}
