//! The signing keys of one token issuer: from a static file, a `jwks_url`, or the issuer's
//! discovery document; fetched on the state runtime, cached, refetched when a token names an
//! unknown `kid` (at most once per `jwks_refresh_interval`) or when the set is older than
//! `jwks_max_age` (in the background), and served stale for up to `jwks_max_stale` while the
//! issuer cannot be reached.
//!
//! A key set only ever comes from configuration: nothing in a token (`jku`, `x5u`, `x5c`, `jwk`,
//! `kid`) can point the gateway at a key, a URL or a file. `kid` is compared as a string.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::jwt::fetchable_url;
use crate::state::Services;

/// Key sets larger than this are refused (a real one is a few KiB).
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Keys kept from one set.
const MAX_KEYS: usize = 64;
pub const METRIC_FETCHES: &str = "frontgate_jwt_jwks_fetches_total";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the key set is not a JWKS document: {0}")]
    Format(String),
    #[error("reading {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the issuer's keys are unavailable and the last copy is too old")]
    Unavailable,
}

/// One verification key.
pub struct VerifyKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// The algorithm the key is published for, when the set says.
    pub alg: Option<Algorithm>,
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`: same family, and the key's own
    /// `alg` (if published) agrees. A public key is never usable as an HMAC secret.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family()
            && self.alg.is_none_or(|a| a == alg)
            && alg.family() != jsonwebtoken::AlgorithmFamily::Hmac
    }
}

/// A parsed key set: asymmetric signing keys only.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
}

impl KeySet {
    pub fn parse(bytes: &[u8]) -> Result<KeySet, KeyError> {
        let doc: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| KeyError::Format(e.to_string()))?;
        let list = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| KeyError::Format("no `keys` array".into()))?;
        let mut keys = Vec::new();
        for raw in list.iter().take(MAX_KEYS) {
            // Keys of other kinds (encryption keys, curves we do not verify) are skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                continue;
            }
            if matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)) {
                continue; // a shared secret has no place in a public key set
            }
            let alg = match jwk.common.key_algorithm {
                Some(a) => match a.to_string().parse::<Algorithm>() {
                    Ok(a) => Some(a),
                    Err(_) => continue,
                },
                None => None,
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
            keys.push(Arc::new(VerifyKey { kid: jwk.common.key_id.clone(), key, alg }));
        }
        Ok(KeySet { keys })
    }

    /// Keys that may verify a token with this header: by exact `kid` when it has one.
    pub fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<VerifyKey>> {
        self.keys
            .iter()
            .filter(|k| k.fits(alg) && (kid.is_none() || k.kid.as_deref() == kid))
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The HTTP client for key sets, discovery and introspection: no redirects, no proxies, a
/// timeout, bounded bodies. Requests run on the state runtime.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    services: Arc<Services>,
}

impl Fetcher {
    pub fn new(services: Arc<Services>, timeout: Duration) -> Result<Fetcher, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("frontgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Fetcher { client, services })
    }

    /// GETs a JSON document.
    pub async fn get_json(&self, url: &str) -> Result<serde_json::Value, KeyError> {
        let req = self.client.get(url).header("accept", "application/json");
        self.send(url, req).await
    }

    /// POSTs a form with HTTP basic client authentication (RFC 6749 §2.3.1) and reads JSON.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        user: &str,
        password: &str,
    ) -> Result<serde_json::Value, KeyError> {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let req = self
            .client
            .post(url)
            .header("accept", "application/json")
            .basic_auth(enc(user), Some(enc(password)))
            .form(form);
        self.send(url, req).await
    }

    async fn send(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, KeyError> {
        if !fetchable_url(url) {
            return Err(KeyError::Fetch {
                url: url.into(),
                reason: "not https:// (http:// is allowed only for loopback)".into(),
            });
        }
        let fail = |reason: String| KeyError::Fetch { url: url.to_string(), reason };
        let work = async move {
            let mut resp = req.send().await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("status {}", resp.status()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                if body.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Err(format!("response larger than {MAX_JWKS_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| format!("not JSON: {e}"))
        };
        match self.services.run(work).await {
            Ok(r) => r.map_err(fail),
            Err(e) => Err(fail(e.to_string())),
        }
    }
}

/// Where an issuer's keys come from.
pub enum KeySource {
    Static(Arc<KeySet>),
    Url(String),
    Discovery { issuer: String },
}

impl KeySource {
    pub fn load_file(path: &Path) -> Result<KeySource, KeyError> {
        let bytes = std::fs::read(path).map_err(|e| KeyError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(KeySource::Static(Arc::new(KeySet::parse(&bytes)?)))
    }
}

/// The endpoints an issuer's discovery document names.
#[derive(Clone, Default)]
pub struct Discovered {
    pub jwks_uri: Option<String>,
    pub introspection_endpoint: Option<String>,
}

/// Fetches and checks `{issuer}/.well-known/openid-configuration`.
pub async fn discover(fetcher: &Fetcher, issuer: &str) -> Result<Discovered, KeyError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let doc = fetcher.get_json(&url).await?;
    // OpenID Connect Discovery §4.3: the document must be for exactly this issuer.
    if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
        return Err(KeyError::Fetch {
            url,
            reason: "its `issuer` is not the configured issuer".into(),
        });
    }
    let field = |name: &str| {
        doc.get(name).and_then(|v| v.as_str()).filter(|u| fetchable_url(u)).map(String::from)
    };
    Ok(Discovered {
        jwks_uri: field("jwks_uri"),
        introspection_endpoint: field("introspection_endpoint"),
    })
}

struct Loaded {
    set: Arc<KeySet>,
    fetched: Instant,
}

/// Timing rules for one issuer's key set.
#[derive(Clone, Copy)]
pub struct Freshness {
    pub refresh_interval: Duration,
    pub max_age: Duration,
    pub max_stale: Duration,
}

/// One issuer's keys, cached.
pub struct IssuerKeys {
    source: KeySource,
    issuer: String,
    fetcher: Fetcher,
    freshness: Freshness,
    loaded: RwLock<Option<Loaded>>,
    discovered: RwLock<Option<Discovered>>,
    /// When a token's unknown `kid` last caused a fetch (the rate limit).
    last_unknown_kid_fetch: Mutex<Option<Instant>>,
    /// When a background refresh was last started.
    last_background: Mutex<Option<Instant>>,
    /// When a fetch last failed: with no key set at all, requests fail fast for a second
    /// instead of queueing fetches at an issuer that is down.
    last_failure: Mutex<Option<Instant>>,
    /// One fetch at a time per issuer; others wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

impl IssuerKeys {
    pub fn new(
        source: KeySource,
        issuer: String,
        fetcher: Fetcher,
        freshness: Freshness,
    ) -> Arc<IssuerKeys> {
        let loaded = match &source {
            KeySource::Static(set) => Some(Loaded { set: set.clone(), fetched: Instant::now() }),
            _ => None,
        };
        Arc::new(IssuerKeys {
            source,
            issuer,
            fetcher,
            freshness,
            loaded: RwLock::new(loaded),
            discovered: RwLock::new(None),
            last_unknown_kid_fetch: Mutex::new(None),
            last_background: Mutex::new(None),
            last_failure: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn is_static(&self) -> bool {
        matches!(self.source, KeySource::Static(_))
    }

    fn snapshot(&self) -> Option<(Arc<KeySet>, Duration)> {
        let g = self.loaded.read().ok()?;
        g.as_ref().map(|l| (l.set.clone(), l.fetched.elapsed()))
    }

    /// The discovery document's endpoints (fetched once, on first need).
    pub async fn discovered(&self) -> Result<Discovered, KeyError> {
        if let Some(d) = self.discovered.read().ok().and_then(|g| g.clone()) {
            return Ok(d);
        }
        let d = discover(&self.fetcher, &self.issuer).await?;
        if let Ok(mut g) = self.discovered.write() {
            *g = Some(d.clone());
        }
        Ok(d)
    }

    async fn jwks_url(&self) -> Result<String, KeyError> {
        match &self.source {
            KeySource::Url(u) => Ok(u.clone()),
            KeySource::Discovery { .. } => {
                self.discovered().await?.jwks_uri.ok_or_else(|| KeyError::Fetch {
                    url: self.issuer.clone(),
                    reason: "the discovery document has no usable jwks_uri".into(),
                })
            }
            KeySource::Static(_) => Err(KeyError::Unavailable),
        }
    }

    /// Fetches the set now (one fetch at a time; a caller that waited on another's fetch
    /// takes its result when it is newer than `since`).
    pub async fn refresh(&self, since: Option<Instant>) -> Result<(), KeyError> {
        if self.is_static() {
            return Ok(());
        }
        let _one = self.fetching.lock().await;
        if let (Some(since), Ok(g)) = (since, self.loaded.read())
            && g.as_ref().is_some_and(|l| l.fetched > since)
        {
            return Ok(());
        }
        let result = async {
            let url = self.jwks_url().await?;
            let doc = self.fetcher.get_json(&url).await?;
            let bytes = serde_json::to_vec(&doc).map_err(|e| KeyError::Format(e.to_string()))?;
            KeySet::parse(&bytes)
        }
        .await;
        match result {
            Ok(set) => {
                metrics::counter!(METRIC_FETCHES, "result" => "ok").increment(1);
                if let Ok(mut g) = self.loaded.write() {
                    *g = Some(Loaded { set: Arc::new(set), fetched: Instant::now() });
                }
                Ok(())
            }
            Err(e) => {
                metrics::counter!(METRIC_FETCHES, "result" => "error").increment(1);
                if let Ok(mut f) = self.last_failure.lock() {
                    *f = Some(Instant::now());
                }
                tracing::warn!(issuer = %self.issuer, error = %e, "cannot fetch the issuer's key set");
                Err(e)
            }
        }
    }

    /// Keys that may verify a token with this `kid` and `alg`. An empty answer means "no such
    /// key": the token cannot verify.
    pub async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<Arc<VerifyKey>>, KeyError> {
        let now = Instant::now();
        if let Some((set, age)) = self.snapshot() {
            let found = set.candidates(kid, alg);
            if !found.is_empty() {
                if self.is_static() {
                    return Ok(found);
                }
                if age > self.freshness.max_stale {
                    // Too old to trust without the issuer: one blocking attempt (not more than
                    // one a second while it fails), then refuse.
                    if self.failed_recently(now) {
                        return Err(KeyError::Unavailable);
                    }
                    self.refresh(Some(now)).await.map_err(|_| KeyError::Unavailable)?;
                    return Ok(self
                        .snapshot()
                        .map(|(s, _)| s.candidates(kid, alg))
                        .unwrap_or_default());
                }
                if age > self.freshness.max_age {
                    self.background_refresh();
                }
                return Ok(found);
            }
            if self.is_static() || !self.may_fetch_for_unknown_kid(now) {
                return Ok(Vec::new());
            }
        }
        // No key set yet, or an unknown kid (rate-limited above): fetch and look again.
        if self.failed_recently(now) && self.snapshot().is_none() {
            return Err(KeyError::Unavailable);
        }
        self.refresh(Some(now)).await?;
        Ok(self.snapshot().map(|(s, _)| s.candidates(kid, alg)).unwrap_or_default())
    }

    fn failed_recently(&self, now: Instant) -> bool {
        self.last_failure
            .lock()
            .ok()
            .and_then(|f| *f)
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
    }

    fn may_fetch_for_unknown_kid(&self, now: Instant) -> bool {
        let Ok(mut last) = self.last_unknown_kid_fetch.lock() else { return false };
        if last.is_some_and(|t| now.duration_since(t) < self.freshness.refresh_interval) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Starts a refresh on the state runtime without waiting for it (at most one per
    /// `jwks_refresh_interval`); requests keep using the current set meanwhile.
    pub fn background_refresh(self: &Arc<Self>) {
        if self.is_static() {
            return;
        }
        {
            let Ok(mut last) = self.last_background.lock() else { return };
            let now = Instant::now();
            if last.is_some_and(|t| {
                now.duration_since(t)
                    < self.freshness.refresh_interval.max(Duration::from_millis(100))
            }) {
                return;
            }
            *last = Some(now);
        }
        let me = self.clone();
        let services = me.fetcher.services.clone();
        // The fetch itself hops to the state runtime; this task only drives it.
        services.runtime().spawn(async move {
            let _ = me.refresh(None).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"JK_3yc4UcJ1TiDwZyC8lOSoymNuC363DJzlEd9FTc08","y":"FEkjGyoPAJ-l2ZFsLrr7JhuvIcXSSBeJb6Xzx6yZ0dE","kid":"ec1","alg":"ES256","use":"sig"}"#;

    #[test]
    fn symmetric_and_encryption_keys_are_dropped() {
        let doc = format!(
            r#"{{"keys":[{EC},{{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}},{{"kty":"EC","crv":"P-256","x":"JK_3yc4UcJ1TiDwZyC8lOSoymNuC363DJzlEd9FTc08","y":"FEkjGyoPAJ-l2ZFsLrr7JhuvIcXSSBeJb6Xzx6yZ0dE","kid":"enc","use":"enc"}},{{"kty":"weird"}}]}}"#
        );
        let set = KeySet::parse(doc.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.candidates(Some("ec1"), Algorithm::ES256).len(), 1);
        assert!(set.candidates(Some("hmac"), Algorithm::HS256).is_empty());
        // An EC key never verifies RSA or HMAC signatures, and kid must match exactly.
        assert!(set.candidates(Some("ec1"), Algorithm::RS256).is_empty());
        assert!(set.candidates(Some("ec1"), Algorithm::HS256).is_empty());
        assert!(set.candidates(Some("EC1"), Algorithm::ES256).is_empty());
        assert!(set.candidates(Some("../ec1"), Algorithm::ES256).is_empty());
        assert_eq!(set.candidates(None, Algorithm::ES256).len(), 1);
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(KeySet::parse(b"not json").is_err());
        assert!(KeySet::parse(b"{\"nokeys\":1}").is_err());
        assert!(KeySet::parse(b"{\"keys\":[]}").unwrap().is_empty());
    }
}
