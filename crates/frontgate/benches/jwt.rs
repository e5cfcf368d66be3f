//! What bearer-token checks cost, in µs per token: uncached ES256 and RS256 verification (the
//! first request with a token: header and claims parsing, issuer selection, signature, claim
//! checks), a cached verification (every later request with the same token), and a DPoP proof
//! check (every request with a DPoP-bound token: the proof cannot be cached). Keys come from a
//! static jwks_file, so nothing here touches the network.
//!
//! Run with `cargo bench -p frontgate --bench jwt`. Plain `std::time` loops, best and median
//! of 15 rounds; nothing here asserts a time.

mod support;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::measure;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use frontgate::checks::dpop::{DpopVerifier, access_token_hash};
use frontgate::checks::jwt::JwtAuthenticator;
use frontgate::config::JwtConfig;
use frontgate::state::Services;
use frontgate::state::replay::MemoryReplaySet;
use futures_util::FutureExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::PublicKeyData;
use serde_json::json;

/// A named timed case.
type Case = (&'static str, Box<dyn FnMut()>);

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// One DER TLV: (tag, content, rest).
fn tlv(d: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = d[0];
    let (len, head) = if d[1] < 0x80 {
        (d[1] as usize, 2)
    } else {
        let n = (d[1] & 0x7f) as usize;
        (d[2..2 + n].iter().fold(0usize, |a, b| a << 8 | *b as usize), 2 + n)
    };
    (tag, &d[head..head + len], &d[head + len..])
}

/// RSA modulus and exponent from a SubjectPublicKeyInfo.
fn rsa_components(spki: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, seq, _) = tlv(spki);
    let (_, _alg, rest) = tlv(seq);
    let (_, bits, _) = tlv(rest);
    let (_, key, _) = tlv(&bits[1..]);
    let (_, n, rest) = tlv(key);
    let (_, e, _) = tlv(rest);
    let strip = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
    (strip(n), strip(e))
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let raw = ec.public_key_raw();
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key (aws-lc-rs)");
    let (n, e) = rsa_components(&rsa.subject_public_key_info());
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..65]), "kid": "ec", "alg": "ES256", "use": "sig"},
        {"kty": "RSA", "n": b64(&n), "e": b64(&e), "kid": "rsa", "alg": "RS256", "use": "sig"},
    ]});
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string()).expect("write jwks");
    let config: JwtConfig = toml::from_str(&format!(
        "[[issuers]]\nissuer = \"https://issuer.test\"\naudiences = [\"api\"]\njwks_file = {:?}\nalgorithms = [\"ES256\", \"RS256\"]\n",
        path.display().to_string()
    ))
    .expect("bench config");
    let services = Arc::new(Services::runtime_only().expect("state runtime"));
    let auth: &'static JwtAuthenticator = Box::leak(Box::new(
        JwtAuthenticator::new(
            &config,
            "https://gateway.test",
            services,
            Arc::new(MemoryReplaySet::new(100_000)),
        )
        .expect("authenticator"),
    ));

    let claims = json!({"iss": "https://issuer.test", "aud": "api", "sub": "alice", "scope": "read write", "iat": 1_700_000_000u64, "exp": 4_000_000_000u64});
    let sign = |alg: Algorithm, kid: &str, key: &EncodingKey| {
        let mut h = Header::new(alg);
        h.typ = Some("at+jwt".into());
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, key).expect("sign")
    };
    let es256: &'static str = Box::leak(
        sign(Algorithm::ES256, "ec", &EncodingKey::from_ec_der(&ec.serialize_der()))
            .into_boxed_str(),
    );
    let rs256: &'static str = Box::leak(
        sign(Algorithm::RS256, "rsa", &EncodingKey::from_rsa_der(&pkcs1_of(&rsa.serialize_der())))
            .into_boxed_str(),
    );
    // Static keys: every future completes without waiting.
    let verify_uncached = |t: &'static str| {
        move || {
            let v =
                auth.verify_uncached(black_box(t)).now_or_never().expect("no I/O with static keys");
            black_box(v.expect("verifies"));
        }
    };
    let mut cases: Vec<Case> = vec![
        ("uncached ES256 verification", Box::new(verify_uncached(es256))),
        ("uncached RS256 (2048-bit) verification", Box::new(verify_uncached(rs256))),
        (
            "cached verification (ES256 token)",
            Box::new(move || {
                let v = auth.verify(black_box(es256)).now_or_never().expect("cached");
                black_box(v.expect("verifies"));
            }),
        ),
    ];
    let selected = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!("{:<44} {:>12} {:>12}", "case", "best µs", "median µs");
    for (name, f) in cases.iter_mut() {
        if !selected(name) {
            continue;
        }
        let (best, median) = measure(f);
        println!("{name:<44} {:>12.2} {:>12.2}", best / 1000.0, median / 1000.0);
    }

    // DPoP: each proof verifies once, so proofs are made first and timed in one pass.
    if selected("DPoP proof verification (ES256)") {
        let client =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("client key");
        let craw = client.public_key_raw();
        let jwk =
            json!({"kty": "EC", "crv": "P-256", "x": b64(&craw[1..33]), "y": b64(&craw[33..65])});
        let jkt = b64(&sha256(
            format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap()
            )
            .as_bytes(),
        ));
        let key = EncodingKey::from_ec_der(&client.serialize_der());
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let count = 3000;
        let proofs: Vec<http::HeaderMap> = (0..count)
            .map(|i| {
                let mut h = Header::new(Algorithm::ES256);
                h.typ = Some("dpop+jwt".into());
                h.jwk = Some(serde_json::from_value(jwk.clone()).unwrap());
                let c = json!({"jti": format!("p{i}"), "htm": "GET", "htu": "https://gateway.test/api/items", "iat": now, "ath": access_token_hash(es256)});
                let mut m = http::HeaderMap::new();
                m.insert("dpop", jsonwebtoken::encode(&h, &c, &key).unwrap().parse().unwrap());
                m
            })
            .collect();
        let verifier = DpopVerifier::new(
            Arc::new(MemoryReplaySet::new(count * 2)),
            Duration::from_secs(60),
            "https://gateway.test",
        );
        let t = Instant::now();
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            for m in &proofs {
                verifier
                    .verify(m, &http::Method::GET, "/api/items", es256, &jkt)
                    .await
                    .expect("proof verifies");
            }
        });
        let per = t.elapsed().as_nanos() as f64 / count as f64;
        println!(
            "{:<44} {:>12.2} {:>12}",
            "DPoP proof verification (ES256, one pass)",
            per / 1000.0,
            "-"
        );
    }
}

fn sha256(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

/// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (jsonwebtoken's RSA DER form).
fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
    let (_, info, _) = tlv(pkcs8);
    let (_, _version, rest) = tlv(info);
    let (_, _alg, rest) = tlv(rest);
    let (_, key, _) = tlv(rest);
    key.to_vec()
}
