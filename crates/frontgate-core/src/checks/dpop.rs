//! DPoP proofs (RFC 9449): a sender-constrained access token comes with a fresh JWT signed by
//! the client's private key, for this exact method and URL, used once. A stolen token is then
//! useless without the key.
//!
//! What is checked, in order: one `DPoP` header; `typ` = `dpop+jwt`; an asymmetric `alg`; a
//! public `jwk` (a private member such as `d` is refused); the signature with that jwk; `htm`
//! = the request method; `htu` = `[server] public_url` + path (query and fragment ignored);
//! `iat` within the window; `ath` = SHA-256 of the access token; the jwk's RFC 7638 thumbprint
//! = the token's `cnf.jkt`; and last, `jti` not seen before (recorded only once everything
//! else verified, so invalid proofs cannot fill the replay set).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Method};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::state::replay::{Inserted, ReplayError, ReplaySet};

/// Proof algorithms accepted: asymmetric only.
const ALGORITHMS: &[Algorithm] =
    &[Algorithm::ES256, Algorithm::ES384, Algorithm::PS256, Algorithm::RS256, Algorithm::EdDSA];

/// The proof algorithms, space-separated, for the `DPoP algs` challenge parameter.
pub fn algorithm_names() -> String {
    ALGORITHMS.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" ")
}
/// JWK members that only a private key has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const MAX_PROOF_BYTES: usize = 8 * 1024;
const MAX_JTI_CHARS: usize = 256;
pub const METRIC_PROOFS: &str = "frontgate_dpop_proofs_total";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DpopError {
    #[error("a DPoP-bound token needs a DPoP proof header")]
    Missing,
    #[error("more than one DPoP header")]
    Multiple,
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(&'static str),
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Type,
    #[error("the DPoP proof's algorithm is not accepted")]
    Algorithm,
    #[error("the DPoP proof's jwk carries private key material")]
    PrivateKey,
    #[error("the DPoP proof's signature does not verify")]
    Signature,
    #[error("the DPoP proof is for another method")]
    Method,
    #[error("the DPoP proof is for another URL")]
    Url,
    #[error("the DPoP proof is not fresh (iat outside the allowed window)")]
    Stale,
    #[error("the DPoP proof's ath does not match the access token")]
    AccessTokenHash,
    #[error("the DPoP proof's key is not the key the token is bound to")]
    KeyMismatch,
    #[error("the DPoP proof was already used")]
    Replayed,
    #[error("the DPoP replay set cannot answer")]
    Store,
}

impl DpopError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DpopError::Missing => "missing",
            DpopError::Multiple => "multiple",
            DpopError::Malformed(_) => "malformed",
            DpopError::Type => "typ",
            DpopError::Algorithm => "alg",
            DpopError::PrivateKey => "private_key",
            DpopError::Signature => "signature",
            DpopError::Method => "htm",
            DpopError::Url => "htu",
            DpopError::Stale => "iat",
            DpopError::AccessTokenHash => "ath",
            DpopError::KeyMismatch => "jkt",
            DpopError::Replayed => "replayed",
            DpopError::Store => "store",
        }
    }
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
}

/// Checks proofs against one public origin, with one replay set.
pub struct DpopVerifier {
    replay: Arc<dyn ReplaySet>,
    window: Duration,
    /// `scheme://host[:port]` as browsers and clients see it (`[server] public_url`).
    origin: String,
}

impl DpopVerifier {
    pub fn new(replay: Arc<dyn ReplaySet>, window: Duration, origin: &str) -> Self {
        DpopVerifier { replay, window, origin: normalize_origin(origin) }
    }

    /// Verifies the request's proof for `access_token`, which is bound to `jkt`, and spends its
    /// `jti` in the replay set (shared through Redis across nodes when configured).
    pub async fn verify(
        &self,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
        access_token: &str,
        jkt: &str,
    ) -> Result<(), DpopError> {
        let result = self.verify_at(headers, method, path, access_token, jkt, now_secs()).await;
        let label = match &result {
            Ok(()) => "ok",
            Err(e) => e.label(),
        };
        metrics::counter!(METRIC_PROOFS, "result" => label).increment(1);
        result
    }

    async fn verify_at(
        &self,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
        access_token: &str,
        jkt: &str,
        now: i64,
    ) -> Result<(), DpopError> {
        let replay_key = self.verify_inner(headers, method, path, access_token, jkt, now)?;
        // Written only after everything else verified, so a forged proof cannot burn a real jti.
        // Entries outlive the window on both sides of now, so a proof cannot be used twice.
        match self.replay.insert_once(&replay_key, self.window * 2 + Duration::from_secs(1)).await {
            Ok(Inserted::Fresh) => Ok(()),
            Ok(Inserted::Replayed) => Err(DpopError::Replayed),
            Err(ReplayError::Full | ReplayError::Unavailable(_)) => Err(DpopError::Store),
        }
    }

    /// Everything but the replay check; returns the proof's replay-set key.
    fn verify_inner(
        &self,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
        access_token: &str,
        jkt: &str,
        now: i64,
    ) -> Result<String, DpopError> {
        let mut values = headers.get_all("dpop").iter();
        let proof = values.next().ok_or(DpopError::Missing)?;
        if values.next().is_some() {
            return Err(DpopError::Multiple);
        }
        let proof = proof.to_str().map_err(|_| DpopError::Malformed("not ASCII"))?;
        if proof.len() > MAX_PROOF_BYTES {
            return Err(DpopError::Malformed("too long"));
        }
        let raw_header = raw_header(proof)?;
        if raw_header.get("typ").and_then(|t| t.as_str()) != Some("dpop+jwt") {
            return Err(DpopError::Type);
        }
        let raw_jwk = raw_header
            .get("jwk")
            .and_then(|j| j.as_object())
            .ok_or(DpopError::Malformed("no jwk"))?;
        if PRIVATE_MEMBERS.iter().any(|m| raw_jwk.contains_key(*m)) {
            return Err(DpopError::PrivateKey);
        }
        // The typed header parse fails for `none` and unknown algorithms.
        let header = jsonwebtoken::decode_header(proof).map_err(|_| DpopError::Algorithm)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(DpopError::Algorithm);
        }
        let jwk: Jwk = header.jwk.ok_or(DpopError::Malformed("no jwk"))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| DpopError::Malformed("unusable jwk"))?;
        if key.family() != header.alg.family() {
            return Err(DpopError::Algorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => DpopError::Signature,
                jsonwebtoken::errors::ErrorKind::Json(_) => {
                    DpopError::Malformed("missing or mistyped claims")
                }
                _ => DpopError::Signature,
            })?
            .claims;
        if claims.htm != method.as_str() {
            return Err(DpopError::Method);
        }
        if !self.htu_matches(&claims.htu, path) {
            return Err(DpopError::Url);
        }
        let window = self.window.as_secs() as i64;
        if (claims.iat - now).abs() > window {
            return Err(DpopError::Stale);
        }
        if claims.ath.as_deref() != Some(access_token_hash(access_token).as_str()) {
            return Err(DpopError::AccessTokenHash);
        }
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| DpopError::Malformed("unusable jwk"))?;
        if thumbprint != jkt {
            return Err(DpopError::KeyMismatch);
        }
        if claims.jti.is_empty() || claims.jti.chars().count() > MAX_JTI_CHARS {
            return Err(DpopError::Malformed("jti"));
        }
        Ok(format!("dpop:{jkt}:{}", claims.jti))
    }

    /// `htu` must name this gateway's public origin and the request path; query and fragment
    /// are ignored (RFC 9449 §4.3), scheme and host compare case-insensitively.
    fn htu_matches(&self, htu: &str, path: &str) -> bool {
        let htu = htu.split(['?', '#']).next().unwrap_or("");
        let Some((scheme, rest)) = htu.split_once("://") else { return false };
        let (authority, htu_path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let origin = normalize_origin(&format!("{scheme}://{authority}"));
        origin == self.origin && htu_path == path
    }
}

/// `ath`: base64url(SHA-256(access token)).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn raw_header(jwt: &str) -> Result<serde_json::Map<String, serde_json::Value>, DpopError> {
    let first = jwt.split('.').next().ok_or(DpopError::Malformed("not a JWT"))?;
    if jwt.split('.').count() != 3 {
        return Err(DpopError::Malformed("not a JWT"));
    }
    let bytes =
        URL_SAFE_NO_PAD.decode(first).map_err(|_| DpopError::Malformed("header encoding"))?;
    serde_json::from_slice(&bytes).map_err(|_| DpopError::Malformed("header JSON"))
}

/// Lower-cased scheme and host, default port dropped.
fn normalize_origin(origin: &str) -> String {
    let o = origin.trim_end_matches('/').to_ascii_lowercase();
    o.strip_suffix(":443")
        .filter(|_| o.starts_with("https://"))
        .or_else(|| o.strip_suffix(":80").filter(|_| o.starts_with("http://")))
        .map(String::from)
        .unwrap_or(o)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::replay::MemoryReplaySet;
    use jsonwebtoken::EncodingKey;

    struct Client {
        enc: EncodingKey,
        jwk: serde_json::Value,
    }

    fn client() -> Client {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = kp.public_key_raw(); // 0x04 || x || y
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
        });
        Client { enc: EncodingKey::from_ec_der(&kp.serialize_der()), jwk }
    }

    fn thumb(c: &Client) -> String {
        serde_json::from_value::<Jwk>(c.jwk.clone())
            .unwrap()
            .thumbprint(ThumbprintHash::SHA256)
            .unwrap()
    }

    /// Signs a proof with a hand-written header, so the jwk goes out exactly as given.
    fn proof(c: &Client, jwk: serde_json::Value, typ: &str, claims: serde_json::Value) -> String {
        let header = serde_json::json!({"typ": typ, "alg": "ES256", "jwk": jwk});
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &c.enc, Algorithm::ES256).unwrap();
        format!("{message}.{signature}")
    }

    fn headers(p: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("dpop", p.parse().unwrap());
        h
    }

    fn verifier() -> DpopVerifier {
        DpopVerifier::new(
            Arc::new(MemoryReplaySet::new(100)),
            Duration::from_secs(60),
            "https://App.Example:443",
        )
    }

    const NOW: i64 = 1_800_000_000;

    fn good_claims(jti: &str) -> serde_json::Value {
        serde_json::json!({"jti": jti, "htm": "GET", "htu": "https://app.example/api/items?x=1", "iat": NOW, "ath": access_token_hash("tok")})
    }

    #[tokio::test]
    async fn a_good_proof_verifies_once() {
        let c = client();
        let v = verifier();
        let p = proof(&c, c.jwk.clone(), "dpop+jwt", good_claims("1"));
        let get = Method::GET;
        assert_eq!(
            v.verify_at(&headers(&p), &get, "/api/items", "tok", &thumb(&c), NOW).await,
            Ok(())
        );
        assert_eq!(
            v.verify_at(&headers(&p), &get, "/api/items", "tok", &thumb(&c), NOW).await,
            Err(DpopError::Replayed)
        );
    }

    /// The whole verification, replay set included.
    async fn full(
        v: &DpopVerifier,
        p: &str,
        method: &Method,
        path: &str,
        token: &str,
        jkt: &str,
    ) -> Result<(), DpopError> {
        v.verify_at(&headers(p), method, path, token, jkt, NOW).await
    }

    #[tokio::test]
    async fn each_wrong_part_is_refused() {
        let c = client();
        let v = verifier();
        let get = Method::GET;
        let jkt = thumb(&c);
        let p = proof(&c, c.jwk.clone(), "dpop+jwt", good_claims("a"));
        assert_eq!(
            full(&v, &p, &Method::POST, "/api/items", "tok", &jkt).await,
            Err(DpopError::Method)
        );
        assert_eq!(full(&v, &p, &get, "/api/other", "tok", &jkt).await, Err(DpopError::Url));
        assert_eq!(
            full(&v, &p, &get, "/api/items", "other-token", &jkt).await,
            Err(DpopError::AccessTokenHash)
        );
        assert_eq!(
            full(&v, &p, &get, "/api/items", "tok", "someone-else").await,
            Err(DpopError::KeyMismatch)
        );
        let p = proof(&c, c.jwk.clone(), "jwt", good_claims("b"));
        assert_eq!(full(&v, &p, &get, "/api/items", "tok", &jkt).await, Err(DpopError::Type));
        let mut private = c.jwk.clone();
        private["d"] = serde_json::json!("AAAA");
        let p = proof(&c, private, "dpop+jwt", good_claims("c"));
        assert_eq!(full(&v, &p, &get, "/api/items", "tok", &jkt).await, Err(DpopError::PrivateKey));
        let mut old = good_claims("d");
        old["iat"] = serde_json::json!(NOW - 120);
        let p = proof(&c, c.jwk.clone(), "dpop+jwt", old);
        assert_eq!(full(&v, &p, &get, "/api/items", "tok", &jkt).await, Err(DpopError::Stale));
        let mut other_host = good_claims("e");
        other_host["htu"] = serde_json::json!("https://evil.example/api/items");
        let p = proof(&c, c.jwk.clone(), "dpop+jwt", other_host);
        assert_eq!(full(&v, &p, &get, "/api/items", "tok", &jkt).await, Err(DpopError::Url));
        // Another key's jwk in the header: the signature does not verify with it.
        let other = client();
        let p = proof(&c, other.jwk.clone(), "dpop+jwt", good_claims("f"));
        assert_eq!(
            full(&v, &p, &get, "/api/items", "tok", &thumb(&other)).await,
            Err(DpopError::Signature)
        );
        // Tampered payload.
        let p = proof(&c, c.jwk.clone(), "dpop+jwt", good_claims("g"));
        let parts: Vec<&str> = p.split('.').collect();
        let mut claims = good_claims("g");
        claims["htm"] = serde_json::json!("DELETE");
        let forged =
            format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
        assert_eq!(
            full(&v, &forged, &Method::DELETE, "/api/items", "tok", &jkt).await,
            Err(DpopError::Signature)
        );
        // alg none.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD
                .encode(serde_json::json!({"typ":"dpop+jwt","alg":"none","jwk":c.jwk}).to_string()),
            parts[1]
        );
        assert_eq!(
            full(&v, &none, &get, "/api/items", "tok", &jkt).await,
            Err(DpopError::Algorithm)
        );
        // Two headers.
        let mut two = headers(&p);
        two.append("dpop", p.parse().unwrap());
        assert_eq!(
            v.verify_at(&two, &get, "/api/items", "tok", &jkt, NOW).await,
            Err(DpopError::Multiple)
        );
        assert_eq!(
            v.verify_at(&HeaderMap::new(), &get, "/api/items", "tok", &jkt, NOW).await,
            Err(DpopError::Missing)
        );
        // None of the refused proofs used up a jti: the good one still verifies.
        let p = proof(&c, c.jwk.clone(), "dpop+jwt", good_claims("a"));
        assert_eq!(full(&v, &p, &get, "/api/items", "tok", &jkt).await, Ok(()));
    }

    #[test]
    fn origins_normalize() {
        assert_eq!(normalize_origin("HTTPS://A.example:443/"), "https://a.example");
        assert_eq!(normalize_origin("http://a.example:80"), "http://a.example");
        assert_eq!(normalize_origin("http://a.example:8443"), "http://a.example:8443");
    }
}
