//! Browser sessions (OIDC backend-for-frontend), end to end: headless Chromium logs in through
//! the real oidc-provider and frontgate, then plays the attacker (state mismatch, code replay,
//! a code without PKCE, open redirects, session fixation, cross-site POSTs from another
//! origin); refresh under concurrent requests (exactly one refresh grant at the IdP, across two
//! nodes sharing Redis), back-channel logout reaching every node, and forged logout tokens.
use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::Gate;
use common::sessions::{GateOptions, OtherOrigin, World, browser, free_port, start_gate};
use http_body_util::Full;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn get(path: &str, headers: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder().method("GET").uri(path).header("host", "127.0.0.1");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

fn cookie(value: &str) -> String {
    format!("__Host-frontgate={value}")
}

/// Every byte frontgate keeps in its data dir (the SQLite file and its WAL).
fn data_bytes(gate: &Gate) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(gate.dir.path().join("data")).unwrap().flatten() {
        if entry.path().is_file() {
            all.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn browser_login_fixation_api_call_csrf_and_logout() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let gate = start_gate(&GateOptions::new(port, &origin, &idp.issuer, &key, &upstream));
    let out = browser("login", env(&[("FG", &origin), ("IDP", &idp.issuer)]), || {
        format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs())
    })
    .await;
    let token = out["access_token"].as_str().expect("access token seen upstream");
    // Tokens are encrypted at rest: neither the access token nor the cookie value is in the store.
    let stored = data_bytes(&gate);
    assert!(!stored.is_empty());
    assert!(!contains(&stored, token), "access token found in the data dir in the clear");
    assert!(!contains(&stored, out["cookie"].as_str().unwrap()), "session id stored in the clear");
    // After logout the old cookie is worth nothing, even replayed by hand.
    let (status, _, body) = common::plain_send(
        gate.addr,
        get(
            "/echo/x",
            &[("accept", "application/json"), ("cookie", &cookie(out["cookie"].as_str().unwrap()))],
        ),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(common::json(&body)["code"], "unauthenticated");
}

#[tokio::test]
async fn browser_attacks_state_mismatch_pkce_code_replay_open_redirect() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let gate = start_gate(&GateOptions::new(port, &origin, &idp.issuer, &key, &upstream));
    browser("attacks", env(&[("FG", &origin), ("IDP", &idp.issuer)]), || {
        format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs())
    })
    .await;
    // One code grant succeeded (the genuine callback); the one without a verifier did not.
    assert_eq!(idp.logs().matches("grant.success authorization_code").count(), 1, "{}", idp.logs());
}

#[tokio::test]
async fn browser_cross_site_post_with_the_cookie_is_csrf_failed() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let attacker = OtherOrigin::start().await;
    // Even an origin trusted for CORS reads cannot make cookie-authenticated writes.
    let gate = start_gate(&GateOptions {
        cors_origin: Some(&attacker.origin),
        ..GateOptions::new(port, &origin, &idp.issuer, &key, &upstream)
    });
    browser(
        "csrf",
        env(&[("FG", &origin), ("IDP", &idp.issuer), ("ATTACKER", &attacker.origin)]),
        || format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs()),
    )
    .await;
    // None of the attacker's posts reached the upstream.
    let last =
        upstream.last.lock().unwrap().clone().expect("the login's navigation reached the upstream");
    assert_eq!(last.0, "GET", "a POST got through: {last:?}");
    assert_eq!(gate.log_count("\"code\":\"csrf_failed\""), 3, "{}", gate.logs());
}

#[tokio::test]
async fn without_a_session_api_calls_get_401_and_navigations_go_to_login() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let gate = start_gate(&GateOptions::new(port, &origin, &idp.issuer, &key, &upstream));
    browser("anonymous", env(&[("FG", &origin), ("IDP", &idp.issuer)]), || {
        format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs())
    })
    .await;
    // The same by hand, and with a cookie that names no session (made up, or the wrong shape).
    for c in [
        "",
        "__Host-frontgate=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "__Host-frontgate=../../etc",
    ] {
        let (status, headers, body) = common::plain_send(
            gate.addr,
            get(
                "/echo/x",
                &[("accept", "application/json"), ("sec-fetch-mode", "cors"), ("cookie", c)],
            ),
        )
        .await;
        assert_eq!(status, 401, "{c}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(common::json(&body)["code"], "unauthenticated");
        let (status, headers, _) = common::plain_send(
            gate.addr,
            get(
                "/echo/x?a=1",
                &[("accept", "text/html"), ("sec-fetch-mode", "navigate"), ("cookie", c)],
            ),
        )
        .await;
        assert_eq!(status, 302, "{c}");
        assert_eq!(headers["location"], "/.frontgate/login?return_to=%2Fecho%2Fx%3Fa%3D1");
    }
    assert_eq!(upstream.hits(), 0);
    // Open redirects are refused before anything is stored or the IdP is asked.
    for target in
        ["//evil.example", "/%5Cevil.example", "https%3A%2F%2Fevil.example", "%2F%2Fevil.example"]
    {
        let (status, _, body) = common::plain_send(
            gate.addr,
            get(&format!("/.frontgate/login?return_to={target}"), &[]),
        )
        .await;
        assert_eq!(status, 400, "{target}");
        assert_eq!(common::json(&body)["code"], "bad_request");
    }
    let (status, headers, _) =
        common::plain_send(gate.addr, get("/.frontgate/login?return_to=%2Fapp%3Fx%3D1", &[])).await;
    assert_eq!(status, 302);
    let location = headers["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("{}/auth?", idp.issuer)), "{location}");
    assert!(
        headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-frontgate-login-"))
    );
}

const LOGIN_PREFIX: &str = "__Host-frontgate-login-";

/// The `Set-Cookie` fields of a response, as `(name, value, cleared)`.
fn set_cookies(headers: &http::HeaderMap) -> Vec<(String, String, bool)> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned(), attrs.contains("Max-Age=0"))
        })
        .collect()
}

/// A browser's cookie jar, by hand: what `Set-Cookie` sets and clears, sent in the order the
/// cookies were first set (as browsers do).
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn apply(&mut self, headers: &http::HeaderMap) {
        for (name, value, cleared) in set_cookies(headers) {
            let at = self.0.iter().position(|(n, _)| *n == name);
            match (at, cleared) {
                (Some(i), true) => {
                    self.0.remove(i);
                }
                (Some(i), false) => self.0[i].1 = value,
                (None, false) => self.0.push((name, value)),
                (None, true) => {}
            }
        }
    }
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
    fn logins(&self) -> Vec<String> {
        self.0.iter().map(|(k, _)| k).filter(|k| k.starts_with(LOGIN_PREFIX)).cloned().collect()
    }
}

/// Starts a login with the jar's cookies; the `state` the IdP is sent, and the login cookie
/// set for it (name, value).
async fn start_login(addr: std::net::SocketAddr, jar: &mut Jar) -> (String, String, String) {
    let cookie = jar.header();
    let mut h = vec![];
    if !cookie.is_empty() {
        h.push(("cookie", cookie.as_str()));
    }
    let (status, headers, _) =
        common::plain_send(addr, get("/.frontgate/login?return_to=%2Fecho%2Fhome", &h)).await;
    assert_eq!(status, 302);
    let location = headers["location"].to_str().unwrap();
    let state = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .expect("state in the authorization URL")
        .to_owned();
    let set: Vec<_> = set_cookies(&headers).into_iter().filter(|(_, _, c)| !c).collect();
    assert_eq!(set.len(), 1, "one login cookie set: {set:?}");
    assert!(set[0].0.starts_with(LOGIN_PREFIX), "{set:?}");
    jar.apply(&headers);
    (state, set[0].0.clone(), set[0].1.clone())
}

/// A callback with `state`, a made-up code and `cookie`; status, problem detail, and whether the
/// response cleared the login cookie `cleared`.
async fn callback(
    addr: std::net::SocketAddr,
    state: &str,
    cookie: &str,
    cleared: &str,
) -> (u16, String, bool) {
    let path = format!("/.frontgate/callback?state={state}&code=made-up-code");
    let (status, headers, body) = common::plain_send(addr, get(&path, &[("cookie", cookie)])).await;
    let detail = common::json(&body)["detail"].as_str().unwrap_or_default().to_owned();
    let clears = set_cookies(&headers).iter().any(|(n, _, c)| *c && n == cleared);
    (status.as_u16(), detail, clears)
}

/// A login start stores nothing: the started login travels sealed in a `__Host-` cookie named
/// by its state. The callback refuses that cookie tampered with, moved to another state, sent
/// without, or past `login_timeout`, and clears it; a browser keeps at most three.
#[tokio::test]
async fn login_cookies_tampered_for_another_state_expired_or_missing_are_refused() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let gate = start_gate(&GateOptions::new(port, &origin, &idp.issuer, &key, &upstream));
    let mut jar = Jar::default();
    let (state1, name1, value1) = start_login(gate.addr, &mut jar).await;
    let (state2, name2, _) = start_login(gate.addr, &mut jar).await;
    assert_ne!(name1, name2, "each login has its own cookie");
    let not_started = "this browser did not start this login";
    let not_this = "the login cookie does not belong to this login";
    let refusals = |(status, detail, clears): (u16, String, bool), why: &str, what: &str| {
        assert_eq!(status, 401, "{what}: {detail}");
        assert!(detail.contains(why), "{what}: {detail}");
        assert!(clears, "{what}: the refusal did not clear the login cookie");
    };
    // Tampered: a character of the sealed part flipped; the expiry moved.
    let (expiry, sealed) = value1.split_once('.').unwrap();
    let mut flipped = sealed.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{expiry}.{}", String::from_utf8(flipped).unwrap());
    let later = format!("{}.{sealed}", expiry.parse::<i64>().unwrap() + 3600);
    for (value, what) in [(flipped, "a flipped character"), (later, "a later expiry")] {
        let r = callback(gate.addr, &state1, &format!("{name1}={value}"), &name1).await;
        refusals(r, not_this, what);
    }
    // Another state's: login 1's cookie under login 2's name, and as it is.
    let r = callback(gate.addr, &state2, &format!("{name2}={value1}"), &name2).await;
    refusals(r, not_this, "login 1's cookie renamed for login 2");
    let r = callback(gate.addr, &state2, &format!("{name1}={value1}"), &name2).await;
    refusals(r, not_started, "login 1's cookie for login 2");
    let r = callback(gate.addr, &state1, "app=1", &name1).await;
    refusals(r, not_started, "no login cookie");
    // The genuine cookie gets past these checks to the code exchange, where the IdP refuses the
    // made-up code (and the cookie is cleared all the same).
    let (status, detail, clears) =
        callback(gate.addr, &state1, &format!("{name1}={value1}"), &name1).await;
    assert_eq!(status, 401, "{detail}");
    assert!(detail.contains("refused the authorization code"), "{detail}");
    assert!(clears);
    // A browser keeps at most three started logins: a start clears the oldest beyond that.
    for _ in 0..4 {
        start_login(gate.addr, &mut jar).await;
    }
    assert_eq!(jar.logins().len(), 3, "{:?}", jar.logins());
    assert!(!jar.logins().contains(&name1) && !jar.logins().contains(&name2));

    // Past login_timeout (1 s): refused, though the cookie is genuine.
    let short = start_gate(&GateOptions {
        oidc_extra: "login_timeout = \"1s\"",
        ..GateOptions::new(free_port(), &origin, &idp.issuer, &key, &upstream)
    });
    let (state, name, value) = start_login(short.addr, &mut Jar::default()).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let r = callback(short.addr, &state, &format!("{name}={value}"), &name).await;
    refusals(r, "the login took longer than login_timeout", "an expired login cookie");
    // Nothing of the refused logins reached the upstream.
    assert_eq!(upstream.hits(), 0);
}

/// Two tabs of one browser log in at the same time: each login has its own cookie, and both
/// complete.
#[tokio::test]
async fn two_logins_in_parallel_in_one_browser_both_complete() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let gate = start_gate(&GateOptions::new(port, &origin, &idp.issuer, &key, &upstream));
    browser("two-tabs", env(&[("FG", &origin), ("IDP", &idp.issuer)]), || {
        format!(
            "--- frontgate
{}
--- idp
{}",
            gate.logs(),
            idp.logs()
        )
    })
    .await;
    assert_eq!(idp.logs().matches("grant.success authorization_code").count(), 2, "{}", idp.logs());
}

/// A login started on node A completes on node B: the started login is in the browser's cookie,
/// sealed with the `session_key` both share, and in no store (B has its own SQLite store and
/// nothing shared with A). The same callback again is refused.
#[tokio::test]
async fn a_login_started_on_node_a_completes_on_node_b() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let node_a = start_gate(&GateOptions::new(port, &origin, &idp.issuer, &key, &upstream));
    let node_b = start_gate(&GateOptions::new(free_port(), &origin, &idp.issuer, &key, &upstream));
    let context = || {
        format!(
            "--- node a\n{}\n--- node b\n{}\n--- idp\n{}",
            node_a.logs(),
            node_b.logs(),
            idp.logs()
        )
    };
    let out =
        browser("capture-callback", env(&[("FG", &origin), ("IDP", &idp.issuer)]), context).await;
    let callback = out["callback"].as_str().expect("callback URL");
    let path = callback.strip_prefix(&origin).expect("callback on the public origin");
    let cookies: Vec<&str> =
        out["cookies"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let send = || common::plain_send(node_b.addr, get(path, &[("cookie", cookies[0])]));
    let (status, headers, body) = send().await;
    assert_eq!(status, 303, "{}\n{}", String::from_utf8_lossy(&body), context());
    assert_eq!(headers["location"], "/echo/home");
    let set = set_cookies(&headers);
    let session = set.iter().find(|(n, _, c)| n == "__Host-frontgate" && !c).expect("session");
    let login = cookies[0].split_once('=').unwrap().0;
    assert!(set.iter().any(|(n, _, c)| n == login && *c), "login cookie cleared: {set:?}");
    let (status, _, _) = common::plain_send(
        node_b.addr,
        get("/echo/x", &[("accept", "application/json"), ("cookie", &cookie(&session.1))]),
    )
    .await;
    assert_eq!(status, 200);
    // A replayed callback, login cookie and all: the IdP's code is spent, and the state is
    // marked used.
    let (status, _, body) = send().await;
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert_eq!(idp.logs().matches("grant.success authorization_code").count(), 1, "{}", idp.logs());
}

/// Each login start stores a pending login and calls the IdP, so starts are limited per address.
#[tokio::test]
async fn login_starts_are_rate_limited_per_address() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let gate = start_gate(&GateOptions {
        oidc_extra: "login_rate_limit = \"3/h\"",
        ..GateOptions::new(port, &origin, &idp.issuer, &key, &upstream)
    });
    for i in 0..3 {
        let (status, _, _) =
            common::plain_send(gate.addr, get("/.frontgate/login?return_to=%2F", &[])).await;
        assert_eq!(status, 302, "login {i}");
    }
    // The callback counts too: it is the other half of the same flow.
    for path in ["/.frontgate/login?return_to=%2F", "/.frontgate/callback?state=x&code=y"] {
        let (status, headers, body) = common::plain_send(gate.addr, get(path, &[])).await;
        assert_eq!(status, 429, "{path}");
        let v = common::json(&body);
        assert_eq!(v["code"], "rate_limited");
        assert!(v["detail"].as_str().unwrap().contains("oidc_login"), "{v}");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=1200).contains(&retry), "Retry-After {retry}");
        assert!(headers.get("set-cookie").is_none(), "a refused login set a cookie");
    }
    let metrics = gate.metrics().await;
    assert!(metrics.contains("frontgate_rate_limited_total{limit=\"oidc_login\"} 2"), "{metrics}");
}

/// Back-channel logout with tokens the IdP did not sign: refused, nothing ends.
#[tokio::test]
async fn forged_logout_tokens_are_refused() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let gate = start_gate(&GateOptions::new(port, &origin, &idp.issuer, &key, &upstream));
    let (_, _, jwks) = common::plain_get(idp.addr, "/jwks").await;
    let idp_kid = common::json(&jwks)["keys"][0]["kid"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "iss": idp.issuer, "aud": common::oidc::CLIENT_ID, "iat": now, "exp": now + 120, "jti": "j1", "sub": "alice",
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} }
    });
    let b64 = |v: &serde_json::Value| {
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.to_string())
    };
    // An attacker's own EC key, claiming the IdP's kid.
    let attacker_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(idp_kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(attacker_key.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    // HS256 with the client secret (key confusion), alg none, garbage.
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(idp_kid.clone());
    let hmac = jsonwebtoken::encode(
        &hs,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(common::oidc::CLIENT_SECRET.as_bytes()),
    )
    .unwrap();
    let none =
        format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "kid": idp_kid})), b64(&claims));
    for (name, token) in
        [("forged", forged), ("hs256", hmac), ("none", none), ("garbage", "a.b.c".to_owned())]
    {
        let body = format!("logout_token={token}");
        let req = http::Request::builder()
            .method("POST")
            .uri("/.frontgate/backchannel-logout")
            .header("host", "127.0.0.1")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let (status, _, body) = common::plain_send(gate.addr, req).await;
        assert_eq!(status, 400, "{name}: {}", String::from_utf8_lossy(&body));
        assert_eq!(common::json(&body)["code"], "invalid_token", "{name}");
    }
    // Refused for the right reasons, not because the IdP was unreachable.
    // (The log lines arrive through a reader thread: wait for them, bounded.)
    assert!(
        gate.wait_for_log("signature does not verify", std::time::Duration::from_secs(10)),
        "{}",
        gate.logs()
    );
    assert!(
        gate.wait_for_log("alg is not allowed", std::time::Duration::from_secs(10)),
        "{}",
        gate.logs()
    );
    let logs = gate.logs();
    assert!(!logs.contains("discovery failed"), "{logs}");
    let req = http::Request::builder()
        .method("POST")
        .uri("/.frontgate/backchannel-logout")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::from("x")))
        .unwrap();
    assert_eq!(common::plain_send(gate.addr, req).await.0, 415);
}

/// Two nodes share sessions through Redis. Many concurrent requests on both nodes while the
/// access token needs refreshing cause exactly one refresh grant at the IdP; then the user
/// logs out at the IdP, whose back-channel logout (delivered to one node) ends the session on
/// both.
#[tokio::test]
async fn two_nodes_on_redis_one_refresh_and_backchannel_logout_everywhere() {
    two_nodes_sharing_sessions(Shared::Redis).await;
}

#[tokio::test]
async fn two_nodes_on_postgres_one_refresh_and_backchannel_logout_everywhere() {
    two_nodes_sharing_sessions(Shared::Postgres).await;
}

/// Where two nodes keep the sessions they share.
enum Shared {
    Redis,
    Postgres,
}

async fn two_nodes_sharing_sessions(shared: Shared) {
    // Access tokens live 20 s; both nodes refresh when under 15 s are left.
    let World { port, origin, idp, upstream, key } = World::start(Some(20)).await;
    let prefix = common::stores::redis_prefix();
    let pg = matches!(shared, Shared::Postgres).then(common::stores::PgDb::create);
    let store =
        pg.as_ref().map(|db| format!("[store]\nurl = \"{}\"\n", db.url())).unwrap_or_default();
    let options = |port| GateOptions {
        refresh_before: "15s",
        redis_prefix: matches!(shared, Shared::Redis).then_some(prefix.as_str()),
        extra: &store,
        ..GateOptions::new(port, &origin, &idp.issuer, &key, &upstream)
    };
    let node_a = start_gate(&options(port));
    let node_b = start_gate(&options(free_port()));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("browser-state.json").display().to_string();
    let context = || {
        format!(
            "--- node a\n{}\n--- node b\n{}\n--- idp\n{}",
            node_a.logs(),
            node_b.logs(),
            idp.logs()
        )
    };
    let out = browser(
        "login-save",
        env(&[("FG", &origin), ("IDP", &idp.issuer), ("STATE", &state)]),
        context,
    )
    .await;
    let session = cookie(out["cookie"].as_str().expect("cookie"));
    let api = |addr| {
        let session = session.clone();
        async move {
            let (status, _, body) = common::plain_send(
                addr,
                get("/echo/x", &[("accept", "application/json"), ("cookie", &session)]),
            )
            .await;
            (status, body)
        }
    };
    // Node B knows the session node A created.
    assert_eq!(api(node_b.addr).await.0, 200);
    let token_before = upstream.last.lock().unwrap().clone().unwrap().2["authorization"][0].clone();
    // On a slow machine the call above may already have refreshed; count from here. After the
    // wait (not a timed assertion) the current token is inside the refresh window either way.
    let refreshes_before = idp.logs().matches("grant.success refresh_token").count();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut calls = Vec::new();
    for i in 0..12 {
        let addr = if i % 2 == 0 { node_a.addr } else { node_b.addr };
        calls.push(tokio::spawn(api(addr)));
    }
    for c in calls {
        let (status, body) = c.await.unwrap();
        assert_eq!(status, 200, "{}\n{}", String::from_utf8_lossy(&body), context());
    }
    assert_eq!(
        idp.logs().matches("grant.success refresh_token").count(),
        refreshes_before + 1,
        "{}",
        context()
    );
    let token_after = upstream.last.lock().unwrap().clone().unwrap().2["authorization"][0].clone();
    assert_ne!(token_before, token_after, "the upstream gets the refreshed access token");
    // Logout at the IdP: its back-channel call reaches node A only.
    browser(
        "idp-logout",
        env(&[("FG", &origin), ("IDP", &idp.issuer), ("STATE", &state)]),
        context,
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !idp.logs().contains("backchannel.success") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(idp.logs().contains("backchannel.success"), "{}", context());
    for node in [&node_b, &node_a] {
        let (status, body) = api(node.addr).await;
        assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    }
}

/// One node on SQLite: concurrent requests during the refresh window, one refresh grant; a
/// failed refresh (the grant revoked at the IdP) ends the session cleanly.
#[tokio::test]
async fn sqlite_one_refresh_for_concurrent_requests() {
    let World { port, origin, idp, upstream, key } = World::start(Some(20)).await;
    let gate = start_gate(&GateOptions {
        refresh_before: "15s",
        ..GateOptions::new(port, &origin, &idp.issuer, &key, &upstream)
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("browser-state.json").display().to_string();
    let out = browser(
        "login-save",
        env(&[("FG", &origin), ("IDP", &idp.issuer), ("STATE", &state)]),
        || format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs()),
    )
    .await;
    let context = || format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs());
    let session = cookie(out["cookie"].as_str().expect("cookie"));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut calls = Vec::new();
    for _ in 0..10 {
        let session = session.clone();
        let addr = gate.addr;
        calls.push(tokio::spawn(async move {
            common::plain_send(
                addr,
                get("/echo/x", &[("accept", "application/json"), ("cookie", &session)]),
            )
            .await
            .0
        }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap(), 200, "{}", context());
    }
    assert_eq!(idp.logs().matches("grant.success refresh_token").count(), 1, "{}", context());
    // The IdP goes away; the next refresh fails and the session ends (401, not a stale token).
    drop(idp);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, _, body) = common::plain_send(
        gate.addr,
        get("/echo/x", &[("accept", "application/json"), ("cookie", &session)]),
    )
    .await;
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert!(
        gate.wait_for_log("refresh failed; session ended", Duration::from_secs(10)),
        "{}",
        gate.logs()
    );
}

/// Cross-site WebSocket hijacking: a handshake is a GET, but on a session route it gets the
/// Origin check of an unsafe method. An origin that CORS allows (it may read responses) still
/// may not open a socket with the user's cookie; the app's own page may.
#[tokio::test]
async fn websocket_handshakes_with_the_session_cookie_must_come_from_this_site() {
    let World { port, origin, idp, upstream, key } = World::start(None).await;
    let other = OtherOrigin::start().await;
    let ws_route = "[[routes]]\nmatch = \"GET /ws\"\nauth = \"session\"\n";
    let gate = start_gate(&GateOptions {
        cors_origin: Some(&other.origin),
        extra: ws_route,
        ..GateOptions::new(port, &origin, &idp.issuer, &key, &upstream)
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("browser-state.json").display().to_string();
    let context = || format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs());
    let out = browser(
        "login-save",
        env(&[("FG", &origin), ("IDP", &idp.issuer), ("STATE", &state)]),
        context,
    )
    .await;
    let session = cookie(out["cookie"].as_str().expect("cookie"));
    let hits_before = upstream.hits();
    // Writes a handshake and reads until `needle` (or close, or 10 s).
    let handshake = |origin: Option<&str>| {
        let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
        format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{origin}Cookie: {session}\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    async fn exchange(addr: std::net::SocketAddr, bytes: String, needle: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(bytes.as_bytes()).await.unwrap();
        let (mut out, mut buf) = (Vec::new(), vec![0u8; 4096]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&out).contains(needle) {
            match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    // From the CORS-allowed origin, and from a page that sends no Origin but says it is
    // cross-site: refused before the backend.
    let out = exchange(gate.addr, handshake(Some(&other.origin)), "}").await;
    assert!(
        out.starts_with("HTTP/1.1 403 ") && out.contains("csrf_failed"),
        "{out}\n{}",
        context()
    );
    let out = exchange(
        gate.addr,
        handshake(None).replace("Cookie:", "Sec-Fetch-Site: cross-site\r\nCookie:"),
        "}",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 403 ") && out.contains("csrf_failed"), "{out}");
    // From any other site: refused by the Origin check already.
    let out = exchange(gate.addr, handshake(Some("http://evil.test")), "}").await;
    assert!(out.starts_with("HTTP/1.1 403 ") && out.contains("origin_denied"), "{out}");
    assert_eq!(upstream.hits(), hits_before, "no refused handshake reached the backend");
    // The app's own page: the tunnel opens.
    let head = exchange(gate.addr, handshake(Some(&origin)), "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}\n{}", context());
    assert_eq!(upstream.hits(), hits_before + 1);
}

/// A logout that lands while a refresh waits for the IdP wins: the refresh may not write the
/// session back. The IdP holds the refresh's token request (a fixture hook, not a sleep) until
/// the logout is done.
#[tokio::test]
async fn a_logout_during_a_refresh_is_not_undone_by_it() {
    // Access tokens live 20 s and are refreshed when under 60 s are left: every call refreshes.
    let World { port, origin, idp, upstream, key } = World::start(Some(20)).await;
    let gate = start_gate(&GateOptions::new(port, &origin, &idp.issuer, &key, &upstream));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("browser-state.json").display().to_string();
    let context = || format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs());
    let out = browser(
        "login-save",
        env(&[("FG", &origin), ("IDP", &idp.issuer), ("STATE", &state)]),
        context,
    )
    .await;
    let session = cookie(out["cookie"].as_str().expect("cookie"));
    let api = |session: String| {
        let addr = gate.addr;
        async move {
            common::plain_send(
                addr,
                get("/echo/x", &[("accept", "application/json"), ("cookie", &session)]),
            )
            .await
            .0
            .as_u16()
        }
    };
    assert_eq!(idp.post_form("/test/hold-token", &[], &[]).await.0, 200);
    let held_before = idp.logs().matches("token.held").count();
    let refreshing = tokio::spawn(api(session.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while idp.logs().matches("token.held").count() == held_before
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        idp.logs().matches("token.held").count() > held_before,
        "the refresh never reached the IdP\n{}",
        context()
    );
    // The user logs out while the IdP has not answered the refresh.
    let logout = http::Request::builder()
        .method("POST")
        .uri("/.frontgate/logout")
        .header("host", "127.0.0.1")
        .header("origin", &origin)
        .header("cookie", &session)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = common::plain_send(gate.addr, logout).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(idp.post_form("/test/release-token", &[], &[]).await.0, 200);
    assert_eq!(
        refreshing.await.unwrap(),
        401,
        "the refresh found the session ended\n{}",
        context()
    );
    assert_eq!(api(session.clone()).await, 401, "the logout stands\n{}", context());
}
