//! Proof of work against the real binary: challenge → solve → verify → clearance → the
//! protected request; and what an attacker tries (replays, tampering, other routes, garbage).

use crate::common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

const SECRET: &str = "integration-test-pow-secret-0123456789";

fn config(up: &Upstream, extra: &str) -> String {
    format!(
        "{}\n[pow]\nsecret = \"{SECRET}\"\nlevels = [ {{ above_rps = 0, cost = 50, counter = 20 }}, {{ above_rps = 1000, cost = 100, counter = 40 }} ]\n{extra}\n\
         [[routes]]\nmatch = \"POST /api/signup\"\nchallenge = \"pow\"\n\
         [[routes]]\nmatch = \"POST /api/other\"\nchallenge = \"pow\"\n\
         [[routes]]\nmatch = \"POST /echo/**\"\nchallenge = \"pow\"\nmax_body_bytes = \"100KiB\"\ntimeout = \"1s\"\n\
         [[routes]]\nmatch = \"/open/**\"\n",
        up.config()
    )
}

fn gate(up: &Upstream, extra: &str) -> Gate {
    start("tls = \"off\"", &config(up, extra))
}

async fn send(
    gate: &Gate,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    let mut r = req(method, path);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let (s, h, b) =
        plain_send(gate.addr, r.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await;
    let v = serde_json::from_slice(&b)
        .unwrap_or(serde_json::Value::String(String::from_utf8_lossy(&b).into_owned()));
    (s, h, v)
}

/// Fetches a challenge for `path` and solves it with the official Rust solver.
async fn solved(gate: &Gate, path: &str) -> String {
    let (s, _, challenge) =
        send(gate, "GET", &format!("/.frontgate/challenge?route={path}"), &[], "").await;
    assert_eq!(s, 200, "{challenge}");
    let c: altcha::Challenge = serde_json::from_value(challenge).unwrap();
    let solution =
        altcha::solve_challenge(altcha::SolveChallengeOptions::new(&c)).unwrap().expect("solvable");
    frontgate::checks::pow::protocol::encode_payload(&altcha::Payload { challenge: c, solution })
}

async fn verify(
    gate: &Gate,
    payload: &str,
) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    let body = serde_json::json!({ "altcha": payload }).to_string();
    send(
        gate,
        "POST",
        "/.frontgate/verify",
        &[("content-type", "application/json"), ("user-agent", "test/1")],
        &body,
    )
    .await
}

#[tokio::test]
async fn solve_verify_and_pass_with_the_clearance_cookie_or_header() {
    let up = Upstream::start().await;
    let gate = gate(&up, "");
    // Without a clearance: an API call gets the problem with the challenge URL.
    let (s, h, p) =
        send(&gate, "POST", "/api/signup", &[("content-type", "application/json")], "{}").await;
    assert_eq!(s, 403);
    assert_eq!(p["code"], "challenge_required");
    assert_eq!(p["challenge"], "/.frontgate/challenge?route=%2Fapi%2Fsignup");
    assert!(h["link"].to_str().unwrap().contains("rel=\"challenge\""));
    assert_eq!(up.hits(), 0);

    let payload = solved(&gate, "/api/signup").await;
    let (s, h, v) = verify(&gate, &payload).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["route"], "POST /api/signup");
    let clearance = v["clearance"].as_str().unwrap().to_owned();
    let cookie = h["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();

    // The header and the cookie both let the request through, as many times as needed (tabs).
    for _ in 0..2 {
        let (s, _, _) = send(
            &gate,
            "POST",
            "/api/signup",
            &[("user-agent", "test/1"), ("x-frontgate-clearance", &clearance)],
            "{}",
        )
        .await;
        assert_eq!(s, 200);
    }
    let (s, _, _) = send(
        &gate,
        "POST",
        "/api/signup",
        &[("user-agent", "test/1"), ("cookie", &cookie_pair)],
        "{}",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(up.hits(), 3);

    // Scope: not for another route; bound: not from another user agent; unforgeable.
    let (s, _, p) = send(
        &gate,
        "POST",
        "/api/other",
        &[("user-agent", "test/1"), ("x-frontgate-clearance", &clearance)],
        "{}",
    )
    .await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_required")));
    let (s, _, _) = send(
        &gate,
        "POST",
        "/api/signup",
        &[("user-agent", "other/2"), ("x-frontgate-clearance", &clearance)],
        "{}",
    )
    .await;
    assert_eq!(s, 403);
    let (exp, rest) = clearance.split_once('.').unwrap();
    let extended = format!("{}.{rest}", exp.parse::<u64>().unwrap() + 3600);
    let (s, _, _) = send(
        &gate,
        "POST",
        "/api/signup",
        &[("user-agent", "test/1"), ("x-frontgate-clearance", &extended)],
        "{}",
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(up.hits(), 3);

    // The same solution a second time: spent.
    let (s, _, p) = verify(&gate, &payload).await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_failed")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("already used"));
}

#[tokio::test]
async fn inline_solution_header_passes_once_and_sets_a_clearance() {
    let up = Upstream::start().await;
    let gate = gate(&up, "");
    let payload = solved(&gate, "/api/signup").await;
    let (s, h, _) =
        send(&gate, "POST", "/api/signup", &[("x-frontgate-pow", &payload)], "{}").await;
    assert_eq!(s, 200);
    assert!(h["set-cookie"].to_str().unwrap().starts_with("fg-clear-"));
    let (s, _, p) =
        send(&gate, "POST", "/api/signup", &[("x-frontgate-pow", &payload)], "{}").await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_failed")));
    // A solution for another route does not open this one.
    let other = solved(&gate, "/api/other").await;
    let (s, _, p) = send(&gate, "POST", "/api/signup", &[("x-frontgate-pow", &other)], "{}").await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_failed")));
    assert!(p["detail"].as_str().unwrap().contains("another route"), "{p}");
    assert_eq!(up.hits(), 1);
}

/// A base64 payload as a form field value.
fn form_value(payload: &str) -> String {
    payload.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

#[tokio::test]
async fn the_altcha_field_of_a_form_or_json_body_is_a_solution() {
    let up = Upstream::start().await;
    let gate = gate(&up, "");
    let form_type = [("content-type", "application/x-www-form-urlencoded")];
    // A form as the ALTCHA widget posts it: its `altcha` field beside the form's own fields.
    let form = format!("name=Ada&altcha={}", form_value(&solved(&gate, "/echo/signup").await));
    let (s, h, v) = send(&gate, "POST", "/echo/signup", &form_type, &form).await;
    assert_eq!(s, 200, "{v}");
    assert!(h["set-cookie"].to_str().unwrap().starts_with("fg-clear-"));
    assert_eq!(v["body"], form.as_str(), "the backend gets the body as it was sent");
    // The clearance cookie then lets requests through; the backend sees only the app's cookies.
    let clearance = h["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let (s, _, v) =
        send(&gate, "POST", "/echo/signup", &[("cookie", &format!("app=1; {clearance}"))], "")
            .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["headers"]["cookie"], serde_json::json!(["app=1"]), "{v}");
    // Spent: the same form again is refused before the backend.
    let (s, _, p) = send(&gate, "POST", "/echo/signup", &form_type, &form).await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_failed")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("already used"), "{p}");

    // A JSON body's top-level `altcha` member.
    let json = serde_json::json!({ "name": "Ada", "altcha": solved(&gate, "/echo/signup").await })
        .to_string();
    let (s, _, v) =
        send(&gate, "POST", "/echo/signup", &[("content-type", "application/json")], &json).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["body"], json.as_str());
    // A multipart form, as `fetch(url, { body: new FormData(form) })` sends it.
    let boundary = "----WebKitFormBoundaryq8Zr3fM1sT0uV2wX";
    let multipart_type = format!("multipart/form-data; boundary={boundary}");
    let part = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    };
    let multipart = format!(
        "{}{}--{boundary}--\r\n",
        part("name", "Ada"),
        part("altcha", &solved(&gate, "/echo/signup").await)
    );
    let (s, _, v) =
        send(&gate, "POST", "/echo/signup", &[("content-type", &multipart_type)], &multipart).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["body"], multipart.as_str());
    assert_eq!(up.hits(), 4);

    // A solution for another route, or a malformed one, is refused as in the header.
    let other = format!("altcha={}", form_value(&solved(&gate, "/api/signup").await));
    let (s, _, p) = send(&gate, "POST", "/echo/signup", &form_type, &other).await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_failed")), "{p}");
    let (s, _, p) =
        send(&gate, "POST", "/echo/signup", &form_type, "altcha=%%%not-a-payload").await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (400, Some("challenge_failed")), "{p}");

    // Where there is no field to read, the request needs a challenge like any other: none,
    // another media type, a field that is a file, a JSON member that is not a string, and a
    // body over the 64 KiB read for the field (its solution goes in the header instead).
    let fresh = form_value(&solved(&gate, "/echo/signup").await);
    let padding = "x".repeat(70 * 1024);
    let cases: Vec<(&str, String)> = vec![
        ("application/x-www-form-urlencoded", "name=Ada".into()),
        ("text/plain", format!("altcha={fresh}")),
        (
            "multipart/form-data; boundary=b",
            format!(
                "--b\r\ncontent-disposition: form-data; name=altcha; filename=a\r\n\r\n{fresh}\r\n--b--\r\n"
            ),
        ),
        (
            "multipart/mixed; boundary=b",
            format!(
                "--b\r\ncontent-disposition: form-data; name=altcha\r\n\r\n{fresh}\r\n--b--\r\n"
            ),
        ),
        ("application/json", "{\"altcha\": 1}".into()),
        ("application/json", "[1, 2]".into()),
        ("application/x-www-form-urlencoded", format!("pad={padding}&altcha={fresh}")),
    ];
    for (content_type, body) in &cases {
        let (s, _, p) =
            send(&gate, "POST", "/echo/signup", &[("content-type", content_type)], body).await;
        assert_eq!(
            (s.as_u16(), p["code"].as_str()),
            (403, Some("challenge_required")),
            "{content_type}: {p}"
        );
    }
    assert_eq!(up.hits(), 4);
    // Where the body could be read more than one way, it is refused outright (400
    // `invalid_body`), not taken for "no solution": the field given twice (in a form or a
    // multipart body), and a multipart body the strict reader refuses (never closed, or a
    // part whose file name hides a `name=altcha` a naive reader would find).
    let ambiguous: Vec<(&str, String)> = vec![
        ("application/x-www-form-urlencoded", format!("altcha={fresh}&altcha={fresh}")),
        (
            multipart_type.as_str(),
            format!("{}{}--{boundary}--\r\n", part("altcha", &fresh), part("altcha", &fresh)),
        ),
        (multipart_type.as_str(), format!("{}--{boundary}\r\n", part("altcha", &fresh))),
        (
            "multipart/form-data; boundary=b",
            format!(
                "--b\r\ncontent-disposition: form-data; name=x; filename=\"a; name=altcha\"\r\n\r\n{fresh}\r\n--b--\r\n"
            ),
        ),
    ];
    for (content_type, body) in &ambiguous {
        let (s, _, p) =
            send(&gate, "POST", "/echo/signup", &[("content-type", content_type)], body).await;
        assert_eq!(
            (s.as_u16(), p["code"].as_str()),
            (400, Some("invalid_body")),
            "{content_type}: {p}"
        );
    }
    assert_eq!(up.hits(), 4);
    // None of them spent the solution: it still passes on its own.
    let (s, _, v) =
        send(&gate, "POST", "/echo/signup", &form_type, &format!("altcha={fresh}")).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn a_body_read_for_its_field_must_arrive_within_the_routes_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let gate = gate(&up, "");
    // A body declared at 100 bytes, of which 7 arrive: the rest never does.
    let mut s = tokio::net::TcpStream::connect(gate.addr).await.unwrap();
    let head = "POST /echo/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\naltcha=";
    s.write_all(head.as_bytes()).await.unwrap();
    // Bounded wait for the answer (the route's timeout is 1 s); not a timing assertion.
    let mut answer = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "the gateway kept waiting for the body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn concurrent_replays_of_one_solution_let_exactly_one_through() {
    let up = Upstream::start().await;
    let gate = gate(&up, "");
    let payload = solved(&gate, "/api/signup").await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (addr, payload) = (gate.addr, payload.clone());
            tokio::spawn(async move {
                let body = serde_json::json!({ "altcha": payload }).to_string();
                let r = req("POST", "/.frontgate/verify")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                plain_send(addr, r).await.0.as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 11, "{statuses:?}");
}

#[tokio::test]
async fn tampered_and_malformed_payloads_are_refused_without_spending_the_real_one() {
    let up = Upstream::start().await;
    let gate = gate(&up, "");
    let payload = solved(&gate, "/api/signup").await;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut v: serde_json::Value = serde_json::from_slice(&b64.decode(&payload).unwrap()).unwrap();
    // Tampered: cheaper cost, another route in the signed data, a far expiry.
    for (pointer, value) in [
        ("/challenge/parameters/cost", serde_json::json!(1)),
        ("/challenge/parameters/data/route", serde_json::json!("POST /api/other")),
        ("/challenge/parameters/expiresAt", serde_json::json!(4_000_000_000u64)),
    ] {
        let mut t = v.clone();
        *t.pointer_mut(pointer).unwrap() = value;
        let (s, _, p) = verify(&gate, &b64.encode(t.to_string())).await;
        assert_eq!(
            (s.as_u16(), p["code"].as_str()),
            (403, Some("challenge_failed")),
            "{pointer}: {p}"
        );
        assert!(p["detail"].as_str().unwrap().contains("signature"), "{p}");
    }
    // Counter 0 with a made-up key.
    *v.pointer_mut("/solution/counter").unwrap() = serde_json::json!(0);
    *v.pointer_mut("/solution/derivedKey").unwrap() = serde_json::json!("00".repeat(32));
    let (s, _, p) = verify(&gate, &b64.encode(v.to_string())).await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_failed")));
    // Malformed: 400 problems, never a crash.
    let huge = "A".repeat(10_000);
    for body in [
        "{\"altcha\":\"***\"}",
        "{\"altcha\":\"bm90IGpzb24=\"}",
        "{\"altcha\":\"e30=\"}",
        "{\"altcha\":1}",
        "not json",
        &format!("{{\"altcha\":\"{huge}\"}}"),
    ] {
        let (s, _, p) = send(
            &gate,
            "POST",
            "/.frontgate/verify",
            &[("content-type", "application/json")],
            body,
        )
        .await;
        assert_eq!(
            (s.as_u16(), p["code"].as_str()),
            (400, Some("challenge_failed")),
            "{body:.60}: {p}"
        );
    }
    let (s, _, p) = send(
        &gate,
        "POST",
        "/.frontgate/verify",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("altcha={}", "B".repeat(20_000)),
    )
    .await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (413, Some("payload_too_large")));
    let (s, _, p) = send(&gate, "POST", "/api/signup", &[("x-frontgate-pow", "%%%")], "{}").await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (400, Some("challenge_failed")));
    // None of that spent the real solution: it still verifies, once (as a form field).
    let form = format!(
        "altcha={}",
        percent_encoding::utf8_percent_encode(&payload, percent_encoding::NON_ALPHANUMERIC)
    );
    let (s, _, p) = send(
        &gate,
        "POST",
        "/.frontgate/verify",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form,
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn challenges_are_scoped_to_protected_routes_and_rate_limited() {
    let up = Upstream::start().await;
    let gate = gate(&up, "challenge_rate = 6\n");
    let (s, _, p) = send(&gate, "GET", "/.frontgate/challenge?route=/open/x", &[], "").await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (404, Some("route_not_found")));
    let (s, _, p) = send(&gate, "GET", "/.frontgate/challenge", &[], "").await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (400, Some("bad_request")));
    let (s, _, c) = send(&gate, "GET", "/.frontgate/challenge?route=/api/signup", &[], "").await;
    assert_eq!(s, 200);
    let params = &c["parameters"];
    assert_eq!(params["algorithm"], "PBKDF2/SHA-256");
    assert_eq!(params["data"]["route"], "POST /api/signup");
    assert!(params["expiresAt"].as_u64().unwrap() > 0);
    assert!(params["keySignature"].is_string() && c["signature"].is_string());
    // Burst of max(6/3, 5) = 5 per client: the 6th and later are refused (two were used above,
    // the 404 and 400 too, since the limit is checked first).
    let mut limited = 0;
    for _ in 0..6 {
        let (s, h, p) =
            send(&gate, "GET", "/.frontgate/challenge?route=/api/signup", &[], "").await;
        if s == 429 {
            limited += 1;
            assert_eq!(p["code"], "rate_limited");
            assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1, "{h:?}");
        }
    }
    assert!(limited >= 4, "{limited}");
}

/// `/.frontgate/verify` is limited per client (`[pow] verify_rate_limit`): every attempt
/// counts, garbage included, before its body is read; over the limit, 429 `rate_limited` with
/// `Retry-After`, and even a good solution waits (unspent).
#[tokio::test]
async fn verify_attempts_are_rate_limited_per_client() {
    let up = Upstream::start().await;
    let gate = gate(&up, "verify_rate_limit = \"4/h\"\n");
    let good = solved(&gate, "/api/signup").await;
    for i in 0..4 {
        let (s, _, p) = verify(&gate, "garbage").await;
        assert_eq!(
            (s.as_u16(), p["code"].as_str()),
            (400, Some("challenge_failed")),
            "attempt {i}: {p}"
        );
    }
    let (s, h, p) = verify(&gate, &good).await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (429, Some("rate_limited")), "{p}");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    // Refused before it was looked at: the solution is still good inline, where the verify
    // limit does not apply.
    let (s, _, _) = send(&gate, "POST", "/api/signup", &[("x-frontgate-pow", &good)], "{}").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn browser_navigations_get_an_accessible_interstitial() {
    let up = Upstream::start().await;
    let gate = start(
        "tls = \"off\"",
        &format!(
            "{}\n[pow]\nsecret = \"{SECRET}\"\n[[routes]]\nmatch = \"GET /members\"\nchallenge = \"pow\"\n",
            up.config()
        ),
    );
    let r = req("GET", "/members")
        .header("accept", "text/html,application/xhtml+xml")
        .header("sec-fetch-mode", "navigate")
        .body(Full::default())
        .unwrap();
    let (s, h, body) = plain_send(gate.addr, r).await;
    let html = String::from_utf8_lossy(&body);
    assert_eq!(s, 403);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(
        html.contains("<noscript>")
            && html.contains("role=\"status\"")
            && html.contains("aria-live=\"polite\""),
        "{html}"
    );
    assert!(html.contains("lang=\"en\"") && html.contains("<h1"), "{html}");
    assert!(html.contains("/.frontgate/widget.js") && html.contains("route=%2Fmembers"), "{html}");
    assert!(h["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let (s, h, js) = plain_get(gate.addr, "/.frontgate/widget.js").await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(String::from_utf8_lossy(&js).contains("window.frontgate"));
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn failures_raise_the_clients_level() {
    let up = Upstream::start().await;
    let gate = gate(&up, "failures_per_level = 2\n");
    let (_, _, c) = send(&gate, "GET", "/.frontgate/challenge?route=/api/signup", &[], "").await;
    assert_eq!(
        (c["parameters"]["cost"].as_u64(), c["parameters"]["data"]["level"].as_u64()),
        (Some(50), Some(0))
    );
    for _ in 0..2 {
        let (s, _, _) = verify(&gate, "e30=").await;
        assert_eq!(s, 400);
    }
    let (_, _, c) = send(&gate, "GET", "/.frontgate/challenge?route=/api/signup", &[], "").await;
    assert_eq!(
        (c["parameters"]["cost"].as_u64(), c["parameters"]["data"]["level"].as_u64()),
        (Some(100), Some(1))
    );
}

#[tokio::test]
async fn a_solution_is_single_use_across_two_nodes_sharing_redis() {
    let up = Upstream::start().await;
    let prefix = stores::redis_prefix();
    // Same secret and public URL (the site inside each challenge); one Redis.
    let shared = format!(
        "[shared]\nredis = \"{}\"\nprefix = \"{prefix}\"\non_outage = {{ replay = \"closed\" }}\n",
        stores::REDIS_URL
    );
    let server = "tls = \"off\"\npublic_url = \"http://app.test\"\ntrusted_proxies = []";
    let a = start(server, &format!("{shared}{}", config(&up, "")));
    let b = start(server, &format!("{shared}{}", config(&up, "")));
    // Issued by A, redeemed at B, then replayed at A and at B.
    let payload = solved(&a, "/api/signup").await;
    let (s, _, v) = verify(&b, &payload).await;
    assert_eq!(s, 200, "{v}");
    for node in [&a, &b] {
        let (s, _, p) = verify(node, &payload).await;
        assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_failed")), "{p}");
    }
    // Concurrently at both nodes: exactly one wins.
    let payload = solved(&b, "/api/signup").await;
    let tasks: Vec<_> = [a.addr, b.addr, a.addr, b.addr]
        .into_iter()
        .map(|addr| {
            let payload = payload.clone();
            tokio::spawn(async move {
                let body = serde_json::json!({ "altcha": payload }).to_string();
                let r = req("POST", "/.frontgate/verify")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                plain_send(addr, r).await.0.as_u16()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap() == 200);
    }
    assert_eq!(ok, 1);
}

/// A `[[routes]]` entry with `challenge = "pow"` merged into an OpenAPI operation: the
/// challenge endpoint, the verify endpoint and the check all key the route by the operation's
/// name (as the pipeline does), so a challenge can be fetched, solved and redeemed there.
#[tokio::test]
async fn pow_on_a_route_merged_into_an_openapi_operation_can_be_solved() {
    let up = Upstream::start().await;
    let rest = format!(
        "{}\n[openapi]\nspec = \"petstore.yaml\"\n[pow]\nsecret = \"{SECRET}\"\nlevels = [ {{ above_rps = 0, cost = 50, counter = 20 }} ]\n\
         [[routes]]\nmatch = \"GET /echo/items/{{id}}\"\nchallenge = \"pow\"\n",
        up.config()
    );
    let gate = common::openapi::start_with_fixtures("tls = \"off\"", &rest);
    let (s, _, p) = send(&gate, "GET", "/echo/items/5", &[], "").await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (403, Some("challenge_required")), "{p}");
    let url = p["challenge"].as_str().unwrap().to_owned();
    assert_eq!(url, "/.frontgate/challenge?route=%2Fecho%2Fitems%2F5");
    let (s, _, c) = send(&gate, "GET", &url, &[], "").await;
    assert_eq!(s, 200, "the challenge endpoint finds the operation's route: {c}");

    // Solved and redeemed at /.frontgate/verify: a clearance for the operation.
    let payload = solved(&gate, "/echo/items/5").await;
    let (s, _, v) = verify(&gate, &payload).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["route"], "GET /echo/items/{itemId}",
        "the operation's name, as in metrics and logs"
    );
    let clearance = v["clearance"].as_str().unwrap().to_owned();
    let (s, _, v) = send(
        &gate,
        "GET",
        "/echo/items/9",
        &[("user-agent", "test/1"), ("x-frontgate-clearance", &clearance)],
        "",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(up.hits(), 1);
    // Inline, in the header of the protected request itself.
    let payload = solved(&gate, "/echo/items/5").await;
    let (s, _, v) = send(&gate, "GET", "/echo/items/5", &[("x-frontgate-pow", &payload)], "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(up.hits(), 2);
    // Validation still runs behind the check.
    let (s, _, _) = send(
        &gate,
        "GET",
        "/echo/items/0",
        &[("user-agent", "test/1"), ("x-frontgate-clearance", &clearance)],
        "",
    )
    .await;
    assert_eq!(s, 400);
    // A path no pow route covers gets no challenge.
    let (s, _, p) =
        send(&gate, "GET", "/.frontgate/challenge?route=/echo/items&method=GET", &[], "").await;
    assert_eq!((s.as_u16(), p["code"].as_str()), (404, Some("route_not_found")), "{p}");
}

/// The per-client pow limits key an IPv6 client by its /64, as rate limits do: rotating the
/// interface id (here through a trusted proxy's X-Forwarded-For) does not buy a fresh budget;
/// another /64 is another client.
#[tokio::test]
async fn per_client_pow_limits_key_ipv6_clients_by_their_64() {
    let up = Upstream::start().await;
    let gate = start(
        "tls = \"off\"\ntrusted_proxies = [\"127.0.0.1/32\"]",
        &config(&up, "verify_rate_limit = \"2/h\"\nchallenge_rate = 6\n"),
    );
    let verify_from = |ip: &'static str| {
        let addr = gate.addr;
        async move {
            let r = req("POST", "/.frontgate/verify")
                .header("content-type", "application/json")
                .header("x-forwarded-for", ip);
            plain_send(
                addr,
                r.body(Full::new(Bytes::from_static(b"{\"altcha\":\"garbage\"}"))).unwrap(),
            )
            .await
            .0
            .as_u16()
        }
    };
    assert_eq!(verify_from("2001:db8:0:1::1").await, 400);
    assert_eq!(verify_from("2001:db8:0:1::2").await, 400);
    assert_eq!(verify_from("2001:db8:0:1:ffff::3").await, 429, "the same /64");
    assert_eq!(verify_from("2001:db8:0:2::1").await, 400, "another /64");
    // Challenges: a burst of 5 per client.
    let challenge_from = |ip: &'static str| {
        let addr = gate.addr;
        async move {
            plain_send(
                addr,
                req("GET", "/.frontgate/challenge?route=/api/signup")
                    .header("x-forwarded-for", ip)
                    .body(Full::default())
                    .unwrap(),
            )
            .await
            .0
            .as_u16()
        }
    };
    for i in 1..=5u16 {
        let ip: &'static str = Box::leak(format!("2001:db8:0:3::{i}").into_boxed_str());
        assert_eq!(challenge_from(ip).await, 200, "{ip}");
    }
    assert_eq!(challenge_from("2001:db8:0:3::99").await, 429, "the same /64");
    assert_eq!(challenge_from("2001:db8:0:4::1").await, 200, "another /64");
}
