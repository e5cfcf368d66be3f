//! Token-making for the JWT and DPoP tests: signing keys with their public JWKs, hand-built
//! compact JWTs (any header an attacker may send), DPoP proofs, and a key-set server on loopback
//! whose content can change and which can go down.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha2::Digest;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An ES256 (P-256) key pair: its signing key, its public JWK, and its private scalar.
pub struct EcKey {
    pub kid: String,
    pub enc: EncodingKey,
    /// Public JWK (kty, crv, x, y) with kid, alg and use.
    pub jwk: Value,
    /// The private scalar `d`, base64url: what a careless client might leak into a JWK.
    pub d: String,
}

impl EcKey {
    pub fn new(kid: &str) -> EcKey {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = kp.public_key_raw(); // 0x04 || x || y
        let der = kp.serialize_der();
        // PKCS#8 wraps ECPrivateKey { version 1, privateKey OCTET STRING (32) ... }.
        let at = der
            .windows(5)
            .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
            .expect("ECPrivateKey in PKCS#8")
            + 5;
        EcKey {
            kid: kid.to_string(),
            enc: EncodingKey::from_ec_der(&der),
            jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..65]), "kid": kid, "alg": "ES256", "use": "sig"}),
            d: b64(&der[at..at + 32]),
        }
    }

    /// The public JWK without kid/alg/use (as a DPoP proof carries it).
    pub fn bare_jwk(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.jwk["x"], "y": self.jwk["y"]})
    }

    /// RFC 7638 thumbprint of the public key.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().unwrap(),
            self.jwk["y"].as_str().unwrap()
        );
        b64(sha2::Sha256::digest(canonical.as_bytes()))
    }

    /// A compact JWS with exactly this header and payload, signed ES256.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let message = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.enc, Algorithm::ES256).unwrap();
        format!("{message}.{sig}")
    }

    /// An access token: header {alg ES256, typ at+jwt, kid} merged with `header_extra`.
    pub fn token(&self, header_extra: Value, claims: &Value) -> String {
        let mut header = json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid});
        merge(&mut header, header_extra);
        self.sign(&header, claims)
    }

    /// A DPoP proof for `method url`, bound to `access_token` (ath) when given.
    pub fn dpop_proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        self.dpop_proof_with(self.bare_jwk(), method, url, access_token.map(ath))
    }

    pub fn dpop_proof_with(
        &self,
        jwk: Value,
        method: &str,
        url: &str,
        ath: Option<String>,
    ) -> String {
        let mut claims = json!({"jti": unique(), "htm": method, "htu": url, "iat": now()});
        if let Some(a) = ath {
            claims["ath"] = json!(a);
        }
        self.sign(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}), &claims)
    }
}

/// base64url(SHA-256(token)).
pub fn ath(token: &str) -> String {
    b64(sha2::Sha256::digest(token.as_bytes()))
}

pub fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}-{}", std::process::id(), now(), N.fetch_add(1, Ordering::Relaxed))
}

/// Shallow-merges the members of `extra` into `base` (a `null` removes one).
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(&k);
            } else {
                b.insert(k, v);
            }
        }
    }
}

/// A JWKS document of these public keys.
pub fn jwks(keys: &[&EcKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

/// A key-set server on loopback: serves `body` at any path, counts hits, closes every
/// connection after one response (so stopping it really makes it unreachable).
pub struct JwksServer {
    pub addr: SocketAddr,
    pub body: Arc<Mutex<String>>,
    pub hits: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl JwksServer {
    pub async fn start(body: String) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Arc::new(Mutex::new(body));
        let hits = Arc::new(AtomicU64::new(0));
        let (b, h) = (body.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (b, h) = (b.clone(), h.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let text = b.lock().unwrap().clone();
                        async move {
                            let mut r = Response::new(Full::new(Bytes::from(text)));
                            r.headers_mut()
                                .insert("content-type", "application/json".parse().unwrap());
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        JwksServer { addr, body, hits, task: Some(task) }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn set(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    /// Stops accepting: the issuer is down.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
