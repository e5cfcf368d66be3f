//! Every `[[routes]]` key takes effect, on a plain route and on an OpenAPI operation the entry
//! merges into (the seam where a key could silently apply to nothing). One gate per key: the
//! same entry is written for `POST /echo/plain` (a plain route) and `POST /echo/op` (an
//! operation of the document), and the same probe must show the key's effect on both.

use crate::common;

use bytes::Bytes;
use common::api_keys::{ADMIN_TOKEN, HASH_SECRET, admin_call, start_with_token};
use common::jwt::{EcKey, jwks, now};
use common::{Gate, Upstream, req};
use http::StatusCode;
use http_body_util::Full;
use serde_json::{Value, json};

const PATHS: [&str; 2] = ["/echo/plain/1", "/echo/op/1"];
const ISS: &str = "https://issuer.route-keys.test";

/// The document: one operation, `POST /echo/op/{id}`, taking any JSON object, public. The
/// config's entry names its parameter differently (`{x}`): the route's text and the
/// operation's name differ, as they do in real configs.
const SPEC: &str = "openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths:\n  /echo/op/{id}:\n    post:\n      security: []\n      parameters:\n        - { name: id, in: path, required: true, schema: { type: integer } }\n        - { name: delay_ms, in: query, schema: { type: integer } }\n      requestBody:\n        content:\n          application/json:\n            schema: { type: object }\n      responses:\n        '200': { description: ok }\n";

struct Keyed {
    gate: Gate,
    _upstream: Upstream,
    _dir: tempfile::TempDir,
    signer: EcKey,
}

/// A gate whose two routes carry `entry` (TOML lines for a `[[routes]]` table), with every
/// section the keys need.
async fn gate_with(entry: &str) -> Keyed {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("api.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let signer = EcKey::new("route-keys");
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks(&[&signer])).unwrap();
    let config = format!(
        "{up}\n[store]\nurl = \"sqlite://frontgate.db\"\n[api_keys]\nhash_secret = \"{HASH_SECRET}\"\n\
         [[jwt.issuers]]\nissuer = \"{ISS}\"\naudiences = [\"api\"]\njwks_file = {jwks:?}\nalgorithms = [\"ES256\"]\n\
         [pow]\nsecret = \"0123456789abcdef0123456789abcdef-route-keys\"\n\
         [cors]\nallow_origins = [\"https://app.example.com\"]\n\
         [rate_limits.one]\nkey = \"ip\"\nrate = \"1/min\"\nburst = 1\n\
         [openapi]\nspec = {spec:?}\n\
         [[routes]]\nmatch = \"POST /echo/plain/{{x}}\"\n{entry}\n[[routes]]\nmatch = \"POST /echo/op/{{x}}\"\n{entry}\n",
        up = upstream.config(),
        jwks = jwks_path.display().to_string(),
        spec = spec.display().to_string(),
    );
    Keyed { gate: start_with_token(&config), _upstream: upstream, _dir: dir, signer }
}

/// POSTs `{}` to `path` with `headers`; (status, response headers, JSON body or a string).
async fn post(
    k: &Keyed,
    path: &str,
    headers: &[(&str, String)],
    body: &'static str,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut r = req("POST", path).header("content-type", "application/json");
    for (n, v) in headers {
        r = r.header(*n, v);
    }
    let (status, h, b) =
        k.gate.tls().send(r.body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()).await;
    let v = serde_json::from_slice(&b)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into_owned()));
    (status, h, v)
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

async fn api_key(k: &Keyed, scopes: Value) -> String {
    let (status, v) = admin_call(
        k.gate.admin.unwrap(),
        Some(ADMIN_TOKEN),
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "k", "scopes": scopes})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["key"].as_str().unwrap().to_owned()
}

fn token(k: &Keyed, claims: Value) -> String {
    let mut all =
        json!({"iss": ISS, "aud": "api", "sub": "alice", "exp": now() + 300, "iat": now()});
    for (name, value) in claims.as_object().unwrap() {
        all[name] = value.clone();
    }
    k.signer.token(json!({}), &all)
}

#[tokio::test]
async fn max_body_bytes_applies() {
    let k = gate_with("max_body_bytes = 8").await;
    for path in PATHS {
        assert_eq!(post(&k, path, &[], "{}").await.0, 200, "{path}");
        let (status, _, v) = post(&k, path, &[], "{\"a\":\"0123456789\"}").await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            "{path}: {v}"
        );
    }
}

#[tokio::test]
async fn timeout_applies() {
    let k = gate_with("timeout = \"200ms\"").await;
    for path in PATHS {
        let (status, _, v) = post(&k, &format!("{path}?delay_ms=3000"), &[], "{}").await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            "{path}: {v}"
        );
    }
}

#[tokio::test]
async fn cors_false_applies() {
    let origin = [("origin", "https://app.example.com".to_owned())];
    let k = gate_with("").await;
    for path in PATHS {
        assert_eq!(post(&k, path, &origin, "{}").await.0, 200, "{path}: [cors] applies by default");
    }
    let k = gate_with("cors = false").await;
    for path in PATHS {
        let (status, _, v) = post(&k, path, &origin, "{}").await;
        assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "origin_denied"), "{path}: {v}");
    }
}

#[tokio::test]
async fn csp_and_headers_apply() {
    let k = gate_with("csp = \"default-src 'none'; sandbox\"\nheaders = { x-route-key = \"yes\", referrer-policy = \"same-origin\" }").await;
    for path in PATHS {
        let (status, h, _) = post(&k, path, &[], "{}").await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox", "{path}");
        assert_eq!(h["x-route-key"], "yes", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
}

#[tokio::test]
async fn auth_and_scopes_apply() {
    let k = gate_with("auth = \"api_key\"\nscopes = [\"items:write\"]").await;
    let reader = api_key(&k, json!(["items:read"])).await;
    let writer = api_key(&k, json!(["items:write"])).await;
    for path in PATHS {
        let (status, _, v) = post(&k, path, &[], "{}").await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{path}: {v}"
        );
        let (status, _, v) = post(&k, path, &[("x-api-key", reader.clone())], "{}").await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::FORBIDDEN, "insufficient_scope"),
            "{path}: {v}"
        );
        assert_eq!(post(&k, path, &[("x-api-key", writer.clone())], "{}").await.0, 200, "{path}");
    }
}

#[tokio::test]
async fn claims_apply() {
    let k = gate_with("auth = \"jwt\"\nclaims = { tenant = \"acme\" }").await;
    let bearer = |t: String| vec![("authorization", format!("Bearer {t}"))];
    for path in PATHS {
        let (status, _, v) =
            post(&k, path, &bearer(token(&k, json!({"tenant": "evil"}))), "{}").await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::FORBIDDEN, "insufficient_scope"),
            "{path}: {v}"
        );
        let (status, _, v) =
            post(&k, path, &bearer(token(&k, json!({"tenant": "acme"}))), "{}").await;
        assert_eq!(status, 200, "{path}: {v}");
    }
}

#[tokio::test]
async fn challenge_applies_and_its_challenge_can_be_fetched() {
    let k = gate_with("challenge = \"pow\"").await;
    for path in PATHS {
        let (status, _, v) = post(&k, path, &[], "{}").await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::FORBIDDEN, "challenge_required"),
            "{path}: {v}"
        );
        // The challenge endpoint knows the route by the same key the pipeline does.
        let challenge = v["challenge"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no challenge URL in {v}"))
            .to_owned();
        let (status, _, body) = k.gate.tls().get(&challenge).await;
        assert_eq!(status, 200, "{path}: {challenge}: {}", String::from_utf8_lossy(&body));
    }
}

#[tokio::test]
async fn rate_limit_applies() {
    for path in PATHS {
        // One gate per route: the `ip` bucket is shared by every route that names the limit.
        let k = gate_with("rate_limit = [\"one\"]").await;
        assert_eq!(post(&k, path, &[], "{}").await.0, 200, "{path}");
        let (status, _, v) = post(&k, path, &[], "{}").await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            "{path}: {v}"
        );
    }
}

#[tokio::test]
async fn method_override_applies() {
    let over = [("x-http-method-override", "DELETE".to_owned())];
    for (entry, forwarded) in [("", false), ("method_override = true", true)] {
        let k = gate_with(entry).await;
        for path in PATHS {
            let (status, _, v) = post(&k, path, &over, "{}").await;
            assert_eq!(status, 200, "{path}: {v}");
            assert_eq!(
                v["headers"].get("x-http-method-override").is_some(),
                forwarded,
                "{entry:?} {path}: {v}"
            );
        }
    }
}

/// `csrf` needs a browser session to show its effect: tests/it/sessions.rs drives it in Chromium
/// against a real IdP. Here: the key is accepted on both kinds of route, and refused without a
/// session method, on both, with the same message.
#[test]
fn csrf_is_checked_the_same_on_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api.yaml"), SPEC).unwrap();
    let text = "[upstream]\nurl = \"http://127.0.0.1:9\"\n[server]\ntls = \"off\"\n[openapi]\nspec = \"api.yaml\"\n\
         [[routes]]\nmatch = \"POST /echo/plain/{x}\"\ncsrf = true\n[[routes]]\nmatch = \"POST /echo/op/{x}\"\ncsrf = true\n".to_string();
    let err = frontgate::plan::Plan::parse(&text, "t.toml", dir.path())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    for route in ["POST /echo/plain/{x}", "POST /echo/op/{x}"] {
        assert!(
            err.contains(&format!("route `{route}`: csrf = true protects cookie sessions")),
            "{err}"
        );
    }
}

/// Every key `[[routes]]` accepts is walked above (`match` and `to` are what every test uses);
/// a key added to the parser without a test here fails this.
#[test]
fn every_route_key_is_walked() {
    const WALKED: [&str; 14] = [
        "match",
        "to",
        "max_body_bytes",
        "timeout",
        "cors",
        "csp",
        "headers",
        "auth",
        "scopes",
        "claims",
        "csrf",
        "challenge",
        "rate_limit",
        "method_override",
    ];
    let dir = tempfile::tempdir().unwrap();
    let err = frontgate::plan::Plan::parse("[[routes]]\nzz_unknown = 1\n", "t.toml", dir.path())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    let list = err.split("expected one of ").nth(1).expect("the parser lists the keys");
    let list = list.split(". ").next().unwrap();
    for key in list.split(", ").map(|k| k.trim_matches('`')) {
        assert!(
            WALKED.contains(&key),
            "[[routes]] key `{key}` has no test in tests/it/route_keys.rs"
        );
    }
}
