//! Bearer JWT, token introspection and DPoP, from an attacker's view: real tokens from the real
//! `oidc-provider` fixture, and hand-signed tokens for the attacks.
use crate::common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::jwt::{EcKey, JwksServer, b64, jwks, merge, now};
use common::oidc::{CLIENT_ID, CLIENT_SECRET, Provider};
use http_body_util::Full;
use serde_json::{Value, json};

/// DPoP `htu` names this origin ([server] public_url).
const PUBLIC: &str = "http://gateway.test";
/// The hand-signed tokens' issuer (keys from a static jwks_file).
const ISS: &str = "https://issuer.test";
const API: &str = "https://api.example.test/";
const API_RS256: &str = "https://rs256.example.test/";
const API_OPAQUE: &str = "https://api.example.test/opaque";

/// A request to the gateway with these headers: (status, problem code or "", body JSON).
async fn call(
    gate: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Value) {
    let mut b = common::req(method, path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (status, _, body) =
        common::plain_send(gate, b.body(Full::new(Bytes::new())).unwrap()).await;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status.as_u16(), v["code"].as_str().unwrap_or("").to_string(), v)
}

/// Request headers as owned pairs.
type Headers = Vec<(String, String)>;

async fn bearer(gate: SocketAddr, path: &str, token: &str) -> (u16, String, Value) {
    call(gate, "GET", path, &[("authorization", &format!("Bearer {token}"))]).await
}

fn routes() -> &'static str {
    "[[routes]]\nmatch = \"/echo/**\"\nauth = \"jwt\"\n\n[[routes]]\nmatch = \"/admin/**\"\nauth = \"jwt\"\nscopes = [\"admin\"]\n\n\
     [[routes]]\nmatch = \"/tenant/**\"\nauth = \"jwt\"\nclaims = { tenant = \"acme\", groups = \"ops\", email_verified = true }\n"
}

fn start_gate(upstream: &common::Upstream, jwt: &str) -> common::Gate {
    common::start(
        &format!("tls = \"off\"\npublic_url = \"{PUBLIC}\""),
        &format!("{}\n{jwt}\n{}", upstream.config(), routes()),
    )
}

/// The real IdP as an issuer: keys by discovery, opaque tokens by introspection.
fn idp_issuer(idp: &Provider, extra: &str) -> String {
    format!(
        "[[jwt.issuers]]\nissuer = \"{}\"\naudiences = [\"{API}\", \"{API_RS256}\", \"{API_OPAQUE}\"]\nalgorithms = [\"ES256\", \"RS256\"]\n{extra}\n[jwt.issuers.introspection]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
        idp.issuer
    )
}

/// The fixture itself: discovery, a JWT access token for a resource, introspection of an
/// opaque one. Other suites (OIDC login) rely on it.
#[tokio::test]
async fn oidc_fixture_issues_tokens() {
    let idp = Provider::start();
    let (status, _, body) = common::plain_get(idp.addr, "/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    let discovery = common::json(&body);
    assert_eq!(discovery["issuer"], idp.issuer.as_str());
    assert!(
        discovery["dpop_signing_alg_values_supported"].as_array().is_some_and(|a| !a.is_empty())
    );

    let jwt = idp.client_credentials(API, "read", None).await;
    assert_eq!(jwt.split('.').count(), 3, "ES256 JWT access token: {jwt}");
    let opaque = idp.client_credentials(API_OPAQUE, "read", None).await;
    assert_eq!(opaque.split('.').count(), 1);
    let (status, v) = idp.post_form("/token/introspection", &[("token", &opaque)], &[]).await;
    assert_eq!(status, 200);
    assert_eq!(v["active"], true, "{v}");
    let (_, v) = idp.post_form("/token/introspection", &[("token", "not-a-token")], &[]).await;
    assert_eq!(v["active"], false);
}

/// Real tokens from the real IdP: ES256 and RS256 JWTs verify with keys found by discovery,
/// opaque tokens by introspection; the upstream learns who called with which scopes; scopes
/// are enforced per route; an inactive (revoked or made-up) opaque token is refused.
#[tokio::test]
async fn real_idp_tokens_authenticate_and_scopes_are_enforced() {
    let idp = Provider::start();
    let up = common::Upstream::start().await;
    let gate = start_gate(&up, &idp_issuer(&idp, ""));

    let es256 = idp.client_credentials(API, "read write", None).await;
    let (status, code, v) = bearer(gate.addr, "/echo/items", &es256).await;
    assert_eq!((status, code.as_str()), (200, ""), "{v}\n{}", gate.logs());
    assert_eq!(v["headers"]["x-frontgate-subject"][0], CLIENT_ID);
    assert_eq!(v["headers"]["x-frontgate-scopes"][0], "read write");
    // Cached the second time: same answer.
    assert_eq!(bearer(gate.addr, "/echo/items", &es256).await.0, 200);
    // The route needs `admin`, the token has read and write.
    let (status, code, _) = bearer(gate.addr, "/admin/x", &es256).await;
    assert_eq!((status, code.as_str()), (403, "insufficient_scope"));
    let admin = idp.client_credentials(API, "admin", None).await;
    assert_eq!(bearer(gate.addr, "/admin/x", &admin).await.0, 200);

    let rs256 = idp.client_credentials(API_RS256, "read", None).await;
    assert!(rs256.starts_with(&b64(r#"{"alg":"RS256""#)[..10]), "an RS256 token");
    let (status, _, v) = bearer(gate.addr, "/echo/items", &rs256).await;
    assert_eq!(status, 200, "{v}");

    let opaque = idp.client_credentials(API_OPAQUE, "read", None).await;
    let (status, _, v) = bearer(gate.addr, "/echo/items", &opaque).await;
    assert_eq!(status, 200, "{v}\n{}", gate.logs());
    assert_eq!(v["headers"]["x-frontgate-scopes"][0], "read");

    // Revoked before first use: introspection says inactive.
    let revoked = idp.client_credentials(API_OPAQUE, "read", None).await;
    let (s, _) = idp.post_form("/token/revocation", &[("token", &revoked)], &[]).await;
    assert_eq!(s, 200);
    let (status, code, _) = bearer(gate.addr, "/echo/items", &revoked).await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    let (status, code, _) = bearer(gate.addr, "/echo/items", "made-up-opaque-token").await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));

    // No credential at all.
    let (status, code, _) = call(gate.addr, "GET", "/echo/items", &[]).await;
    assert_eq!((status, code.as_str()), (401, "unauthenticated"));

    // Every 401 names the schemes that would work (RFC 6750 §3, RFC 9449 §7.1); a refused token
    // adds error="invalid_token", a missing scope names the scopes wanted.
    let challenges = |h: &http::HeaderMap| {
        h.get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let send = |headers: &[(&str, &str)]| {
        let mut b = common::req("GET", "/echo/items");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        common::plain_send(gate.addr, b.body(Full::new(Bytes::new())).unwrap())
    };
    let (_, h, _) = send(&[]).await;
    assert_eq!(
        challenges(&h),
        ["Bearer realm=\"frontgate\"", "DPoP algs=\"ES256 ES384 PS256 RS256 EdDSA\""]
    );
    let (_, h, _) = send(&[("authorization", "Bearer made-up-opaque-token")]).await;
    assert_eq!(
        challenges(&h),
        [
            "Bearer realm=\"frontgate\", error=\"invalid_token\"",
            "DPoP algs=\"ES256 ES384 PS256 RS256 EdDSA\", error=\"invalid_token\""
        ]
    );
    let (status, h, _) = common::plain_send(
        gate.addr,
        common::req("GET", "/admin/x")
            .header("authorization", format!("Bearer {es256}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(challenges(&h)[0].ends_with("error=\"insufficient_scope\", scope=\"admin\""), "{h:?}");
}

/// Why each attack must be refused (a fragment of the problem's detail), so that a refusal for
/// another reason (a broken set-up) fails the test.
fn because(case: &str) -> &'static str {
    match case {
        c if c.starts_with("alg none") || c == "alg NONE" || c == "garbage" => {
            "unsupported algorithm"
        }
        c if c.starts_with("HS256") => "algorithm is not accepted",
        "tampered payload"
        | "signed by another key under the issuer's kid"
        | "embedded jwk"
        | "x5c chain" => "signature does not verify",
        c if c.starts_with("kid") || c.starts_with("jku") || c.starts_with("x5u") => {
            "does not publish"
        }
        "expired beyond the leeway" => "expired",
        "nbf in the future" => "not valid yet",
        "no exp" | "no audience" => "lacks a required claim",
        "wrong audience" => "not for this API",
        "unlisted issuer" | "issuer differing in case" => "issuer is not accepted",
        "no issuer" => "no readable `iss`",
        c if c.starts_with("typ") || c == "no typ" => "`typ`",
        "unknown crit extension" => "critical header",
        "required claim missing" => "required claim `jti`",
        "unbound bearer token where DPoP is required" => "requires DPoP",
        "JWE-shaped token" => "not a signed JWT",
        "bound token as a bearer token" => "DPoP-bound",
        "DPoP scheme without a proof" => "needs a DPoP proof",
        "proof for another URL" | "proof for another origin" => "another URL",
        "proof for another method" => "another method",
        "proof with the wrong ath" | "proof without ath" => "ath",
        "proof by a thief's key" => "not the key the token is bound to",
        "proof whose jwk carries the private key" => "private key",
        "proof typ JWT" => "dpop+jwt",
        "proof from the past" => "not fresh",
        "two proofs" => "More than one DPoP header",
        other => panic!("no expected reason for case `{other}`"),
    }
}

/// Claims of a good hand-signed token; `extra` overrides members (null removes one).
fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": ISS, "aud": "api", "sub": "alice", "exp": now() + 300, "iat": now(), "scope": "read", "jti": common::jwt::unique()});
    merge(&mut c, extra);
    c
}

/// A route's `claims`: each must be in the token with exactly that value (or, for a list,
/// among its items); anything else is a 403 naming the claim, and nothing reaches the upstream.
#[tokio::test]
async fn route_claims_must_be_carried_with_their_values() {
    let up = common::Upstream::start().await;
    let issuer_key = EcKey::new("issuer-key-1");
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks(&[&issuer_key])).unwrap();
    let gate = start_gate(
        &up,
        &format!(
            "[[jwt.issuers]]\nissuer = \"{ISS}\"\naudiences = [\"api\"]\njwks_file = {:?}\nalgorithms = [\"ES256\"]\n",
            jwks_path.display().to_string()
        ),
    );
    let token = |extra: Value| issuer_key.token(json!({}), &claims(extra));
    let good = token(json!({"tenant": "acme", "groups": ["dev", "ops"], "email_verified": true}));
    let (status, _, v) = bearer(gate.addr, "/tenant/x", &good).await;
    assert_eq!(status, 200, "{v}\n{}", gate.logs());
    assert_eq!(
        bearer(
            gate.addr,
            "/tenant/x",
            &token(json!({"tenant": "acme", "groups": "ops", "email_verified": true}))
        )
        .await
        .0,
        200
    );
    let hits = up.hits();
    let cases = [
        (
            "another tenant",
            json!({"tenant": "evil", "groups": ["ops"], "email_verified": true}),
            "tenant",
        ),
        ("tenant missing", json!({"groups": ["ops"], "email_verified": true}), "tenant"),
        (
            "not in the group",
            json!({"tenant": "acme", "groups": ["dev"], "email_verified": true}),
            "groups",
        ),
        (
            "a prefix of the group",
            json!({"tenant": "acme", "groups": "op", "email_verified": true}),
            "groups",
        ),
        (
            "a string where a boolean is required",
            json!({"tenant": "acme", "groups": ["ops"], "email_verified": "true"}),
            "email_verified",
        ),
        (
            "false",
            json!({"tenant": "acme", "groups": ["ops"], "email_verified": false}),
            "email_verified",
        ),
        (
            "nested where a string is required",
            json!({"tenant": {"id": "acme"}, "groups": ["ops"], "email_verified": true}),
            "tenant",
        ),
    ];
    for (name, extra, claim) in cases {
        let (status, code, v) = bearer(gate.addr, "/tenant/x", &token(extra)).await;
        assert_eq!((status, code.as_str()), (403, "insufficient_scope"), "{name}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(&format!("`{claim}`")), "{name}: {v}");
    }
    assert_eq!(up.hits(), hits, "a token without the route's claims reached the upstream");
    // Other routes do not ask for them.
    assert_eq!(bearer(gate.addr, "/echo/x", &token(json!({}))).await.0, 200);
}

/// Every forgery an attacker can make without the issuer's private key, and every token the
/// issuer made that is not for here or not for now, is refused with `invalid_token`; the
/// control token passes (so the refusals are not an artefact of the set-up).
#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let up = common::Upstream::start().await;
    let issuer_key = EcKey::new("issuer-key-1");
    let attacker = EcKey::new("attacker-key");
    // The attacker's own key-set server: a token pointing at it (jku, x5u) must not make the
    // gateway fetch anything.
    let attacker_jwks = JwksServer::start(jwks(&[&attacker])).await;
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks(&[&issuer_key])).unwrap();
    let gate = start_gate(
        &up,
        &format!(
            "[[jwt.issuers]]\nissuer = \"{ISS}\"\naudiences = [\"api\"]\njwks_file = {:?}\nalgorithms = [\"ES256\"]\nleeway = \"5s\"\nrequired_claims = [\"jti\"]\n\n[[jwt.issuers]]\nissuer = \"https://dpop-only.test\"\naudiences = [\"api\"]\njwks_file = {:?}\nalgorithms = [\"ES256\"]\ndpop = \"required\"\n",
            jwks_path.display().to_string(),
            jwks_path.display().to_string()
        ),
    );

    let good = issuer_key.token(json!({}), &claims(json!({})));
    let (status, _, v) = bearer(gate.addr, "/echo/x", &good).await;
    assert_eq!(status, 200, "control token: {v}\n{}", gate.logs());
    assert_eq!(v["headers"]["x-frontgate-subject"][0], "alice");

    let parts: Vec<&str> = good.split('.').collect();
    let header_json = |h: Value| b64(h.to_string());
    let hmac = |secret: &[u8], header: Value, c: &Value| {
        let message = format!("{}.{}", header_json(header), b64(c.to_string()));
        let sig = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(secret),
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap();
        format!("{message}.{sig}")
    };
    let public_key_text = serde_json::to_string(&issuer_key.jwk).unwrap();
    let tampered_claims = claims(json!({"sub": "admin", "scope": "read admin"}));
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none, no signature",
            format!("{}.{}.", header_json(json!({"alg": "none", "typ": "at+jwt"})), parts[1]),
        ),
        (
            "alg none, original signature",
            format!(
                "{}.{}.{}",
                header_json(json!({"alg": "none", "typ": "at+jwt", "kid": "issuer-key-1"})),
                parts[1],
                parts[2]
            ),
        ),
        (
            "alg NONE",
            format!("{}.{}.", header_json(json!({"alg": "NONE", "typ": "at+jwt"})), parts[1]),
        ),
        // RS256/ES256 -> HS256 key confusion: HMAC with the public key as the secret.
        (
            "HS256 keyed with the public JWK",
            hmac(
                public_key_text.as_bytes(),
                json!({"alg": "HS256", "typ": "at+jwt", "kid": "issuer-key-1"}),
                &claims(json!({})),
            ),
        ),
        (
            "HS256 keyed with the public x coordinate",
            hmac(
                issuer_key.jwk["x"].as_str().unwrap().as_bytes(),
                json!({"alg": "HS256", "typ": "at+jwt", "kid": "issuer-key-1"}),
                &claims(json!({})),
            ),
        ),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], b64(tampered_claims.to_string()), parts[2]),
        ),
        (
            "signed by another key under the issuer's kid",
            attacker.token(json!({"kid": "issuer-key-1"}), &claims(json!({}))),
        ),
        (
            "kid path traversal",
            attacker.token(json!({"kid": "../../../../../../etc/passwd"}), &claims(json!({}))),
        ),
        (
            "kid path to the key file",
            attacker.token(json!({"kid": jwks_path.display().to_string()}), &claims(json!({}))),
        ),
        ("kid SQL injection", attacker.token(json!({"kid": "x' OR '1'='1"}), &claims(json!({})))),
        (
            "kid with NUL",
            attacker.token(json!({"kid": "issuer-key-1\u{0000}"}), &claims(json!({}))),
        ),
        (
            "jku to the attacker's keys",
            attacker.token(json!({"jku": attacker_jwks.url()}), &claims(json!({}))),
        ),
        (
            "x5u to the attacker's keys",
            attacker.token(json!({"x5u": attacker_jwks.url()}), &claims(json!({}))),
        ),
        (
            "embedded jwk",
            attacker.token(json!({"jwk": attacker.bare_jwk(), "kid": null}), &claims(json!({}))),
        ),
        (
            "x5c chain",
            attacker.token(json!({"x5c": ["MIIBfake"], "kid": null}), &claims(json!({}))),
        ),
        (
            "expired beyond the leeway",
            issuer_key.token(json!({}), &claims(json!({"exp": now() - 60}))),
        ),
        ("nbf in the future", issuer_key.token(json!({}), &claims(json!({"nbf": now() + 120})))),
        ("no exp", issuer_key.token(json!({}), &claims(json!({"exp": null})))),
        ("wrong audience", issuer_key.token(json!({}), &claims(json!({"aud": "other-api"})))),
        ("no audience", issuer_key.token(json!({}), &claims(json!({"aud": null})))),
        (
            "unlisted issuer",
            issuer_key.token(json!({}), &claims(json!({"iss": "https://evil.example"}))),
        ),
        (
            "issuer differing in case",
            issuer_key.token(json!({}), &claims(json!({"iss": "https://ISSUER.test"}))),
        ),
        ("no issuer", issuer_key.token(json!({}), &claims(json!({"iss": null})))),
        (
            "typ JWT where at+jwt is required (an ID token, say)",
            issuer_key.token(json!({"typ": "JWT"}), &claims(json!({}))),
        ),
        ("no typ", issuer_key.token(json!({"typ": null}), &claims(json!({})))),
        ("typ dpop+jwt", issuer_key.token(json!({"typ": "dpop+jwt"}), &claims(json!({})))),
        (
            "unknown crit extension",
            issuer_key.token(json!({"crit": ["exp-ext"], "exp-ext": 1}), &claims(json!({}))),
        ),
        ("required claim missing", issuer_key.token(json!({}), &claims(json!({"jti": null})))),
        (
            "unbound bearer token where DPoP is required",
            issuer_key.token(json!({}), &claims(json!({"iss": "https://dpop-only.test"}))),
        ),
        ("JWE-shaped token", format!("{}.a.b.c.d", parts[0])),
        ("garbage", "a.b.c".to_string()),
    ];
    for (name, token) in &cases {
        let (status, code, v) = bearer(gate.addr, "/echo/x", token).await;
        assert_eq!((status, code.as_str()), (401, "invalid_token"), "{name}: {v}");
        assert!(
            v["detail"].as_str().unwrap_or("").contains(because(name)),
            "{name}: refused for the wrong reason: {v}"
        );
    }
    assert_eq!(attacker_jwks.hits(), 0, "a token header made the gateway fetch a URL");
    // Two Authorization headers, and a token with characters no token has.
    let (status, code, _) = call(
        gate.addr,
        "GET",
        "/echo/x",
        &[("authorization", &format!("Bearer {good}")), ("authorization", "Bearer a.b.c")],
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    let (status, code, _) =
        call(gate.addr, "GET", "/echo/x", &[("authorization", "Bearer a.b\".c")]).await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    // The gateway is still healthy and the good token still passes.
    assert_eq!(bearer(gate.addr, "/echo/x", &good).await.0, 200);
}

/// Key rotation: a token signed with a key published after the gateway fetched the set makes
/// it refetch (once: a flood of unknown kids does not hammer the issuer). When the issuer
/// goes down, the keys already fetched keep verifying.
#[tokio::test]
async fn jwks_rotation_refreshes_once_and_stale_keys_survive_an_outage() {
    let up = common::Upstream::start().await;
    let old = EcKey::new("2025-old");
    let new = EcKey::new("2026-new");
    let mut server = JwksServer::start(jwks(&[&old])).await;
    let jwt = |interval: &str| {
        format!(
            "[jwt]\njwks_refresh_interval = \"{interval}\"\n\n[[jwt.issuers]]\nissuer = \"{ISS}\"\naudiences = [\"api\"]\njwks_url = \"{}\"\nalgorithms = [\"ES256\"]\n",
            server.url()
        )
    };
    let gate = start_gate(&up, &jwt("1h"));
    let (status, _, v) =
        bearer(gate.addr, "/echo/x", &old.token(json!({}), &claims(json!({})))).await;
    assert_eq!(status, 200, "{v}\n{}", gate.logs());
    let fetched = server.hits();
    assert!(fetched >= 1);

    // The issuer rotates: the new kid is unknown to the gateway, which refetches.
    server.set(jwks(&[&old, &new]));
    let (status, _, v) =
        bearer(gate.addr, "/echo/x", &new.token(json!({}), &claims(json!({})))).await;
    assert_eq!(status, 200, "rotated key: {v}\n{}", gate.logs());
    assert_eq!(server.hits(), fetched + 1);

    // An attacker's random kids: refused, and within the interval no further fetch.
    let stranger = EcKey::new("random-kid-1");
    for kid in ["random-kid-1", "random-kid-2", "random-kid-3"] {
        let (status, code, _) =
            bearer(gate.addr, "/echo/x", &stranger.token(json!({"kid": kid}), &claims(json!({}))))
                .await;
        assert_eq!((status, code.as_str()), (401, "invalid_token"));
    }
    assert_eq!(
        server.hits(),
        fetched + 1,
        "unknown kids must not refetch more than once per interval"
    );
    drop(gate);

    // A gateway that refetches on every unknown kid, with the issuer down. Its start-up
    // prefetch must be over first: one still running when the issuer goes down would succeed
    // after the next request arrived, and that request would (rightly) use its fresh set.
    let gate = start_gate(&up, &jwt("0s"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gate.metrics().await.contains("frontgate_jwt_jwks_fetches_total{result=\"ok\"} 1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the start-up prefetch did not finish: {}",
            gate.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        bearer(gate.addr, "/echo/x", &old.token(json!({}), &claims(json!({})))).await.0,
        200
    );
    server.stop().await;
    // The refetch for an unknown kid fails: that is a 503 (retry later), not a verdict.
    let (status, code, _) =
        bearer(gate.addr, "/echo/x", &stranger.token(json!({}), &claims(json!({})))).await;
    assert_eq!((status, code.as_str()), (503, "invalid_token"));
    // Keys fetched before the outage still verify fresh (uncached) tokens.
    for _ in 0..2 {
        let (status, _, v) =
            bearer(gate.addr, "/echo/x", &new.token(json!({}), &claims(json!({})))).await;
        assert_eq!(status, 200, "stale keys: {v}");
    }
    let metrics = gate.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("frontgate_jwt_jwks_fetches_total{result=\"error\"}")),
        "{metrics}"
    );
}

/// DPoP with a real DPoP-bound token from the real IdP: a valid proof passes once; replays,
/// proofs for another URL or method, proofs without the token hash, with a private key in the
/// jwk, or by another key, and the token without (or with the wrong) scheme are all refused.
#[tokio::test]
async fn dpop_bound_tokens_need_a_fresh_proof_of_the_bound_key() {
    let idp = Provider::start();
    let up = common::Upstream::start().await;
    let gate = start_gate(&up, &idp_issuer(&idp, "dpop = \"optional\""));
    let client = EcKey::new("client");
    let token_proof = client.dpop_proof("POST", &idp.token_url(), None);
    let token = idp.client_credentials(API, "read", Some(&token_proof)).await;
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["cnf"]["jkt"],
        client.thumbprint(),
        "the IdP bound the token to the client's key"
    );

    let url = format!("{PUBLIC}/echo/items");
    let dpop = |proof: &str| {
        vec![
            ("authorization".to_string(), format!("DPoP {token}")),
            ("dpop".to_string(), proof.to_string()),
        ]
    };
    let send = |headers: Vec<(String, String)>, method: &'static str| {
        let addr = gate.addr;
        async move {
            let h: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            call(addr, method, "/echo/items", &h).await
        }
    };

    let proof = client.dpop_proof("GET", &url, Some(&token));
    let (status, _, v) = send(dpop(&proof), "GET").await;
    assert_eq!(status, 200, "valid proof: {v}\n{}", gate.logs());
    assert_eq!(v["headers"]["x-frontgate-subject"][0], CLIENT_ID);
    // The same proof again: a replay.
    let (status, code, v) = send(dpop(&proof), "GET").await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"), "replay: {v}");
    assert!(v["detail"].as_str().unwrap().contains("already used"), "{v}");

    let thief = EcKey::new("thief");
    let cases: Vec<(&str, Headers, &'static str)> = vec![
        ("bound token as a bearer token", vec![("authorization".into(), format!("Bearer {token}"))], "GET"),
        ("DPoP scheme without a proof", vec![("authorization".into(), format!("DPoP {token}"))], "GET"),
        ("proof for another URL", dpop(&client.dpop_proof("GET", &format!("{PUBLIC}/echo/other"), Some(&token))), "GET"),
        ("proof for another origin", dpop(&client.dpop_proof("GET", "https://evil.example/echo/items", Some(&token))), "GET"),
        ("proof for another method", dpop(&client.dpop_proof("POST", &url, Some(&token))), "GET"),
        ("proof with the wrong ath", dpop(&client.dpop_proof("GET", &url, Some("another-token"))), "GET"),
        ("proof without ath", dpop(&client.dpop_proof("GET", &url, None)), "GET"),
        ("proof by a thief's key", dpop(&thief.dpop_proof("GET", &url, Some(&token))), "GET"),
        ("proof whose jwk carries the private key", {
            let mut jwk = client.bare_jwk();
            jwk["d"] = json!(client.d);
            dpop(&client.dpop_proof_with(jwk, "GET", &url, Some(common::jwt::ath(&token))))
        }, "GET"),
        ("proof typ JWT", dpop(&client.sign(&json!({"typ": "JWT", "alg": "ES256", "jwk": client.bare_jwk()}), &json!({"jti": common::jwt::unique(), "htm": "GET", "htu": url, "iat": now(), "ath": common::jwt::ath(&token)}))), "GET"),
        ("proof from the past", dpop(&client.sign(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": client.bare_jwk()}), &json!({"jti": common::jwt::unique(), "htm": "GET", "htu": url, "iat": now() - 3600, "ath": common::jwt::ath(&token)}))), "GET"),
        ("two proofs", {
            let mut h = dpop(&client.dpop_proof("GET", &url, Some(&token)));
            h.push(("dpop".into(), client.dpop_proof("GET", &url, Some(&token))));
            h
        }, "GET"),
    ];
    for (name, headers, method) in cases {
        let (status, code, v) = send(headers, method).await;
        assert_eq!((status, code.as_str()), (401, "invalid_token"), "{name}: {v}");
        assert!(
            v["detail"].as_str().unwrap_or("").contains(because(name)),
            "{name}: refused for the wrong reason: {v}"
        );
    }
    // An unbound token under the DPoP scheme.
    let unbound = idp.client_credentials(API, "read", None).await;
    let proof = client.dpop_proof("GET", &url, Some(&unbound));
    let (status, code, _) = send(
        vec![("authorization".into(), format!("DPoP {unbound}")), ("dpop".into(), proof)],
        "GET",
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    // A fresh proof still works (the token is cached; the proof is checked every time), and
    // the query string is not part of htu.
    let proof = client.dpop_proof("GET", &format!("{url}?page=2"), Some(&token));
    let (status, _, v) = send(dpop(&proof), "GET").await;
    assert_eq!(status, 200, "fresh proof: {v}");
}

/// `[jwt] dpop_replay_capacity`: `frontgate check` accepts what `serve` does, and the capacity
/// takes effect: with room for 5 live `jti`s, the 6th valid proof is refused (the set refuses
/// rather than forgets). 0 is refused at load.
#[tokio::test]
async fn dpop_replay_capacity_bounds_the_dpop_replay_set() {
    let up = common::Upstream::start().await;
    let issuer_key = EcKey::new("issuer-key-1");
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks(&[&issuer_key])).unwrap();
    let jwt = |capacity: &str| {
        format!(
            "[jwt]\ndpop_replay_capacity = {capacity}\n[[jwt.issuers]]\nissuer = \"{ISS}\"\naudiences = [\"api\"]\njwks_file = {:?}\nalgorithms = [\"ES256\"]\n",
            jwks_path.display().to_string()
        )
    };
    let check = |capacity: &str| {
        let cfg = dir.path().join(format!("check-{capacity}.toml"));
        std::fs::write(&cfg, format!("{}\n{}\n{}", up.config(), jwt(capacity), routes())).unwrap();
        let out = std::process::Command::new(common::BIN)
            .args(["check", "-c"])
            .arg(&cfg)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert!(check("5").0, "{}", check("5").1);
    let (ok, text) = check("0");
    assert!(!ok && text.contains("dpop_replay_capacity"), "{text}");

    let gate = start_gate(&up, &jwt("5"));
    let client = EcKey::new("client");
    let token = issuer_key.token(json!({}), &claims(json!({"cnf": {"jkt": client.thumbprint()}})));
    let url = format!("{PUBLIC}/echo/items");
    let authorization = format!("DPoP {token}");
    for i in 0..5 {
        let proof = client.dpop_proof("GET", &url, Some(&token));
        let (status, _, v) = call(
            gate.addr,
            "GET",
            "/echo/items",
            &[("authorization", &authorization), ("dpop", &proof)],
        )
        .await;
        assert_eq!(status, 200, "proof {i}: {v}\n{}", gate.logs());
    }
    let proof = client.dpop_proof("GET", &url, Some(&token));
    let (status, code, v) = call(
        gate.addr,
        "GET",
        "/echo/items",
        &[("authorization", &authorization), ("dpop", &proof)],
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"), "the 6th live proof: {v}");
    assert!(v["detail"].as_str().unwrap_or("").contains("replay set"), "{v}");
    assert_eq!(up.hits(), 5);
}
