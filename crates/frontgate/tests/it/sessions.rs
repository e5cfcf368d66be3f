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
            .any(|c| c.to_str().unwrap().starts_with("__Host-frontgate-login="))
    );
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
