//! Routing: path normalization against real parsers, the route table's 404/405 answers, the
//! gateway's reserved paths, and origin/CORS checks.

use crate::common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

/// The status code and body of a raw HTTP/1.1 response.
fn parse_raw(out: &str) -> (u16, String) {
    let status = out
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {out:?}"));
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn raw_get(path: &str) -> Vec<u8> {
    let mut v = b"GET ".to_vec();
    v.extend_from_slice(path.as_bytes());
    v.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    v
}

fn raw_get_bytes(path: &[u8]) -> Vec<u8> {
    let mut v = b"GET ".to_vec();
    v.extend_from_slice(path);
    v.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    v
}

/// Paths two parsers could read differently. With a catch-all route in place, any of these that
/// slipped through normalization would reach the upstream.
const AMBIGUOUS: &[&str] = &[
    "/api/%2e%2e/admin",
    "/api/%2E%2E%2Fadmin",
    "/api/..%2fadmin",
    "/api/..%2Fadmin",
    "/api/%252e%252e/admin",
    "/api/%25252e/admin",
    "/api/%2e/items",
    "/api/.%2e/admin",
    "/api//items",
    "//api/items",
    "/api/./items",
    "/api/../admin",
    "/api/items/..",
    "/api/items/.",
    "/..",
    "/api/%2e%2E/admin",
    "/api/%2F",
    "/api/items%2f..%2fadmin",
    "/api/%5c..%5cadmin",
    "/api/%5Cadmin",
    "/api/%C0%AE%C0%AE/admin",
    "/api/%C0%AF",
    "/api/%E0%80%AF",
    "/api/%C1%9C",
    "/api/%F0%80%80%AF",
    "/api/%ED%A0%80",
    "/api/%C3",
    "/api/items%00.json",
    "/api/%00",
    "/api/%0d%0aX-Injected:%201",
    "/api/%7f",
    "/api/items.",
    "/api/items./x",
    "/api/items..",
    "/api/items;x",
    "/api/items;jsessionid=1/x",
    "/api/..;/admin",
    "/api/items%3bx",
    "/api/%",
    "/api/%zz",
    "/api/%2",
    "/api/items\\..\\admin",
    "/api\\items",
];

#[tokio::test]
async fn ambiguous_paths_are_400_and_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/**\"\n", up.config()));
    let client = gate.tls();
    for path in AMBIGUOUS {
        let out = client.raw(&raw_get(path)).await;
        let (status, body) = parse_raw(&out);
        assert_eq!(status, 400, "{path}: {out}");
        // Each of these gets past hyper's parser: refusing them is the gateway's job.
        let p = json(&Bytes::from(body));
        assert_eq!(p["code"], "invalid_path", "{path}: {p}");
        assert_eq!(up.hits(), 0, "{path} reached the upstream");
    }

    // Raw bytes no client would send unencoded: NUL, control bytes, non-ASCII, overlong UTF-8.
    // hyper refuses most of them itself (a bare 400); whoever answers, it is a 400.
    let raw: &[&[u8]] = &[
        b"/api/\x00x",
        b"/api/\x01",
        b"/api/caf\xc3\xa9",
        b"/api/\xc0\xae\xc0\xae/admin",
        b"/api/\xff",
        b"/api/a\x7f",
    ];
    for path in raw {
        let out = client.raw(&raw_get_bytes(path)).await;
        assert_eq!(parse_raw(&out).0, 400, "{path:?}: {out}");
        assert_eq!(up.hits(), 0, "{path:?} reached the upstream");
    }

    // A control: a plain path does get through, so the zero above means something.
    let (s, _, _) = client.get("/api/items").await;
    assert_eq!(s, 200);
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn unreserved_escapes_are_decoded_and_the_normalized_path_is_forwarded() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"GET /echo/items/**\"\n", up.config()));
    let client = gate.tls();
    let cases = [
        ("/echo/%69tems", "/echo/items"),
        ("/echo/%69%74%65%6D%73/a", "/echo/items/a"),
        ("/echo/items/%7euser", "/echo/items/~user"),
        ("/echo/items/a%2db_c", "/echo/items/a-b_c"),
        ("/echo/items/a%2ab", "/echo/items/a%2Ab"),
        ("/echo/items/%c3%a9t%c3%a9", "/echo/items/%C3%A9t%C3%A9"),
        ("/echo/items/a%20b", "/echo/items/a%20b"),
        ("/echo/items/100%25", "/echo/items/100%25"),
        ("/echo/%69tems/x?q=%2e%2e&r=a%2Fb", "/echo/items/x?q=%2e%2e&r=a%2Fb"),
    ];
    for (sent, want) in cases {
        let out = client.raw(&raw_get(sent)).await;
        let (status, body) = parse_raw(&out);
        assert_eq!(status, 200, "{sent}: {out}");
        let seen = json(&Bytes::from(body));
        assert_eq!(seen["path"], want, "{sent}");
        let (_, raw_path, _) = up.last.lock().unwrap().clone().unwrap();
        assert_eq!(raw_path, want, "{sent}");
    }
}

#[tokio::test]
async fn a_public_prefix_cannot_be_escaped_to_reach_an_undeclared_path() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"GET /api/public/**\"\n", up.config()));
    let client = gate.tls();
    let attempts = [
        "/api/public/../admin",
        "/api/public/%2e%2e/admin",
        "/api/public%2F..%2Fadmin",
        "/api/public/%2e%2e%2fadmin",
        "/api/public/..%2fadmin",
        "/api/public/.%2e/admin",
        "/api/public/%252e%252e/admin",
        "/api/public/..;/admin",
        "/api/public;/../admin",
        "/api/public/%C0%AE%C0%AE/admin",
        "/api/public/..\\admin",
        "/api/public//../admin",
        "/api/publicx/admin",
        "/api/admin",
        "/API/public/x",
    ];
    for path in attempts {
        let out = client.raw(&raw_get(path)).await;
        let (status, _) = parse_raw(&out);
        assert!(status == 400 || status == 404, "{path}: {out}");
        assert_eq!(up.hits(), 0, "{path} reached the upstream");
    }
    // The absolute form and the asterisk form of the request target get no special pass.
    for raw in [
        &b"GET https://localhost/api/public/../admin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"[..],
        b"GET https://localhost/api/public/%2e%2e/admin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"GET http://admin.internal/api/admin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    ] {
        let out = client.raw(raw).await;
        let (status, _) = parse_raw(&out);
        assert!(status == 400 || status == 404, "{}: {out}", String::from_utf8_lossy(raw));
        assert_eq!(up.hits(), 0, "{} reached the upstream", String::from_utf8_lossy(raw));
    }
    let (s, _, _) = client.get("/api/public/x").await;
    assert_eq!(s, 200);
    assert_eq!(up.hits(), 1);
}

/// A response's body with its request id blanked, and its headers minus the per-request ones.
fn comparable(h: &http::HeaderMap, b: &Bytes) -> (String, Vec<(String, String)>) {
    let rid = json(b)["request_id"].as_str().unwrap().to_owned();
    assert_eq!(h["x-request-id"].to_str().unwrap(), rid);
    let body = String::from_utf8_lossy(b).replace(&rid, "");
    let mut headers: Vec<(String, String)> = h
        .iter()
        .filter(|(k, _)| *k != "x-request-id" && *k != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (body, headers)
}

#[tokio::test]
async fn every_404_looks_the_same() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!(
            "{}\n[[routes]]\nmatch = \"GET /api/items/{{id}}\"\n[[routes]]\nmatch = \"/api/files/**\"\n",
            up.config()
        ),
    );
    let client = gate.tls();
    let mut seen = Vec::new();
    for path in [
        "/nope",
        "/api/items/1/2",
        "/api/items",
        "/api/itemsx/1",
        "/.frontgate/unknown",
        "/.frontgate",
        "/.frontgate/problems/nope",
    ] {
        let (s, h, b) = client.get(path).await;
        assert_eq!(s, 404, "{path}");
        assert_eq!(json(&b)["code"], "route_not_found");
        seen.push((path, comparable(&h, &b)));
    }
    for (path, c) in &seen[1..] {
        assert_eq!(c, &seen[0].1, "{path} differs from {}", seen[0].0);
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn wrong_methods_are_405_with_exactly_the_declared_methods() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!(
            "{}\n[[routes]]\nmatch = \"GET,POST /api/items/{{id}}\"\n[[routes]]\nmatch = \"PUT /api/items/{{id}}\"\n[[routes]]\nmatch = \"/any/**\"\n",
            up.config()
        ),
    );
    let client = gate.tls();
    for m in ["DELETE", "PATCH", "OPTIONS", "TRACE"] {
        let (s, h, b) =
            client.send(req(m, "/api/items/7").body(Full::<Bytes>::default()).unwrap()).await;
        assert_eq!(s, 405, "{m}");
        assert_eq!(h["allow"], "GET, HEAD, POST, PUT", "{m}");
        assert_eq!(json(&b)["code"], "method_not_allowed");
    }
    assert_eq!(up.hits(), 0);
    for m in ["GET", "HEAD", "POST", "PUT"] {
        let (s, _, _) =
            client.send(req(m, "/api/items/7").body(Full::<Bytes>::default()).unwrap()).await;
        assert_eq!(s, 200, "{m}");
    }
    assert_eq!(up.hits(), 4);

    // An any-method route forwards OPTIONS (not a preflight: no Origin) but never TRACE or CONNECT.
    let (s, _, _) =
        client.send(req("OPTIONS", "/any/x").body(Full::<Bytes>::default()).unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(up.hits(), 5);
    let (s, h, b) =
        client.send(req("TRACE", "/any/x").body(Full::<Bytes>::default()).unwrap()).await;
    assert_eq!(s, 405);
    assert_eq!(json(&b)["code"], "method_not_allowed");
    let allow = h["allow"].to_str().unwrap();
    assert!(!allow.contains("TRACE") && !allow.contains("CONNECT"), "{allow}");
    assert_eq!(allow, "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
    let out = client
        .raw(b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\nConnection: close\r\n\r\n")
        .await;
    let (status, _) = parse_raw(&out);
    assert!((400..500).contains(&status), "{out}");
    let out =
        client.raw(b"TRACE /any/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert_eq!(parse_raw(&out).0, 405, "{out}");
    assert_eq!(up.hits(), 5);
}

#[tokio::test]
async fn problem_pages_exist_for_every_code_and_health_answers() {
    let gate = start("", "[upstream]\nurl = \"http://127.0.0.1:9\"\n");
    let client = gate.tls();
    for code in frontgate::problem::Code::ALL {
        let (s, h, b) = client.get(&format!("/.frontgate/problems/{}", code.as_str())).await;
        assert_eq!(s, 200, "{}", code.as_str());
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        let page = String::from_utf8_lossy(&b);
        assert!(page.starts_with("<!doctype html>") && page.contains(code.as_str()), "{page}");
        assert!(page.contains(&code.status().as_u16().to_string()));
        assert!(h.get("content-security-policy").is_some());
    }
    for unknown in ["nope", "ROUTE_NOT_FOUND", "route_not_found/x", "%3Cscript%3E"] {
        let (s, _, b) = client.get(&format!("/.frontgate/problems/{unknown}")).await;
        assert_eq!(s, 404, "{unknown}");
        assert_eq!(json(&b)["code"], "route_not_found");
    }
    let (s, h, b) = client.get("/.frontgate/health").await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(json(&b)["status"], "ok");
    let (s, _, _) = client
        .send(req("POST", "/.frontgate/health").body(Full::<Bytes>::default()).unwrap())
        .await;
    assert_eq!(s, 404);
}

/// The problem pages render as designed in a real browser under the gateway's own CSP (a route
/// or `[frontend] csp` cannot break them), with code spans rendered, not raw backticks.
#[tokio::test]
async fn problem_pages_render_in_chromium_under_the_gateways_csp() {
    common::sessions::ensure_browser_installed();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><p>app</p>").unwrap();
    let gate = start(
        "",
        &format!(
            "[upstream]\nurl = \"http://127.0.0.1:9\"\n[frontend]\ndir = {:?}\ncsp = \"default-src 'none'\"\n",
            dir.path().display().to_string()
        ),
    );
    let codes = ["credentials_in_query", "csrf_failed", "route_not_found", "ambiguous_request"];
    let urls: Vec<String> = codes
        .iter()
        .map(|c| format!("https://localhost:{}/.frontgate/problems/{c}", gate.addr.port()))
        .collect();
    let out_dir = gate.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("pages.mjs")
            .args(&urls)
            .arg("--host-resolver-rules=MAP localhost 127.0.0.1")
            .current_dir(common::sessions::browser_dir())
            .env("OUT", &out_dir)
            .output()
            .expect("node (run scripts/test.sh to install it)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let pages: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the script's JSON line");
    for page in pages.as_array().unwrap() {
        assert_eq!(page["status"], 200, "{page}");
        assert_eq!(
            page["violations"],
            serde_json::json!([]),
            "CSP blocked part of the page: {page}"
        );
        assert_eq!(page["maxWidth"], "640px", "the page's style did not apply: {page}");
        assert!(page["fontFamily"].as_str().unwrap().contains("system-ui"), "{page}");
        assert_eq!(page["backticks"], false, "raw backticks in the page text: {page}");
        assert!(std::path::Path::new(page["screenshot"].as_str().unwrap()).exists());
    }
}

// ---- origin / CORS ----

const APP: &str = "https://app.example.test";

fn cors_config(up: &Upstream) -> String {
    format!(
        "{}\n[cors]\nallow_origins = [\"{APP}\"]\nallow_credentials = true\n\n\
         [[routes]]\nmatch = \"/api/**\"\n\n\
         [[routes]]\nmatch = \"/internal/**\"\ncors = false\n",
        up.config()
    )
}

fn vary_has(h: &http::HeaderMap, token: &str) -> bool {
    h.get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn preflight(origin: &str, method: &str, headers: &str) -> http::Request<Full<Bytes>> {
    let mut r = req("OPTIONS", "/api/items")
        .header("origin", origin)
        .header("access-control-request-method", method);
    if !headers.is_empty() {
        r = r.header("access-control-request-headers", headers);
    }
    r.body(Full::default()).unwrap()
}

#[tokio::test]
async fn cors_preflights_are_answered_by_the_gateway() {
    let up = Upstream::start().await;
    let gate = start("public_url = \"https://localhost\"\n", &cors_config(&up));
    let client = gate.tls();

    let (s, h, b) = client.send(preflight(APP, "POST", "content-type")).await;
    assert_eq!(s, 204, "{}", String::from_utf8_lossy(&b));
    assert!(b.is_empty());
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("content-type"));
    assert!(vary_has(&h, "Origin"), "{h:?}");
    // Header names are case-insensitive.
    let (s, _, _) = client.send(preflight(APP, "PUT", "Content-Type")).await;
    assert_eq!(s, 204);

    let denied = [
        preflight("https://evil.test", "POST", "content-type"),
        preflight("https://app.example.test.evil.test", "POST", ""),
        preflight("http://app.example.test", "POST", ""),
        preflight("https://app.example.test:8443", "POST", ""),
        preflight("null", "POST", ""),
        preflight(APP, "POST", "content-type, x-secret"),
        preflight(APP, "POST", "authorization"),
    ];
    for r in denied {
        let what = format!("{:?}", r.headers());
        let (s, h, b) = client.send(r).await;
        assert_eq!(s, 403, "{what}");
        assert_eq!(json(&b)["code"], "origin_denied", "{what}");
        assert!(h.get("access-control-allow-origin").is_none(), "{what}");
    }
    // A method no route accepts is a 405 like any other, and gets no CORS grant.
    let (s, h, _) = client.send(preflight(APP, "TRACE", "")).await;
    assert_eq!(s, 405);
    assert!(h.get("access-control-allow-origin").is_none());
    assert_eq!(up.hits(), 0, "preflights never reach the upstream");
}

#[tokio::test]
async fn cross_origin_requests_are_forwarded_only_from_listed_origins() {
    let up = Upstream::start().await;
    let gate = start("public_url = \"https://localhost\"\n", &cors_config(&up));
    let client = gate.tls();
    let post = |origin: &str, path: &str| {
        req("POST", path)
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    };

    let (s, h, _) = client.send(post(APP, "/api/items")).await;
    assert_eq!(s, 200);
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(vary_has(&h, "Origin"));
    assert_eq!(up.hits(), 1);

    for origin in ["https://evil.test", "null", "https://APP.example.test"] {
        let (s, h, b) = client.send(post(origin, "/api/items")).await;
        assert_eq!(s, 403, "{origin}");
        assert_eq!(json(&b)["code"], "origin_denied");
        assert!(h.get("access-control-allow-origin").is_none());
    }
    assert_eq!(up.hits(), 1);

    // Two Origin headers are never resolved by picking one.
    let r = req("POST", "/api/items")
        .header("origin", APP)
        .header("origin", "https://evil.test")
        .body(Full::<Bytes>::default())
        .unwrap();
    let (s, _, b) = client.send(r).await;
    assert_eq!(s, 403);
    assert_eq!(json(&b)["code"], "origin_denied");
    let r = req("POST", "/api/items")
        .header("origin", APP)
        .header("origin", APP)
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(client.send(r).await.0, 403);
    assert_eq!(up.hits(), 1);

    // Same-origin and Origin-less requests pass.
    assert_eq!(client.send(post("https://localhost", "/api/items")).await.0, 200);
    assert_eq!(
        client.send(req("POST", "/api/items").body(Full::<Bytes>::default()).unwrap()).await.0,
        200
    );
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn a_route_without_cors_accepts_only_same_origin() {
    let up = Upstream::start().await;
    let gate = start("public_url = \"https://localhost\"\n", &cors_config(&up));
    let client = gate.tls();
    let r =
        req("POST", "/internal/x").header("origin", APP).body(Full::<Bytes>::default()).unwrap();
    let (s, h, b) = client.send(r).await;
    assert_eq!(s, 403);
    assert_eq!(json(&b)["code"], "origin_denied");
    assert!(h.get("access-control-allow-origin").is_none());
    let (s, _, _) = client.send(preflight(APP, "POST", "")).await;
    assert_eq!(s, 204, "the /api route still answers preflights");
    let r = req("OPTIONS", "/internal/x")
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .body(Full::<Bytes>::default())
        .unwrap();
    let (s, h, _) = client.send(r).await;
    assert_eq!(s, 403);
    assert!(h.get("access-control-allow-origin").is_none());
    assert_eq!(up.hits(), 0);

    let r = req("POST", "/internal/x")
        .header("origin", "https://localhost")
        .body(Full::<Bytes>::default())
        .unwrap();
    let (s, h, _) = client.send(r).await;
    assert_eq!(s, 200);
    assert!(h.get("access-control-allow-origin").is_none());
    assert_eq!(up.hits(), 1);
}

/// Without `public_url`, the request's own scheme and Host define same-origin: a same-origin
/// POST (browsers send Origin on those) passes, a foreign one is refused before the upstream.
#[tokio::test]
async fn same_origin_without_public_url_follows_the_host() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"POST /echo\"\n", up.config()));
    let client = gate.tls();
    let post = |origin: &'static str| {
        req("POST", "/echo").header("origin", origin).body(Full::<Bytes>::default()).unwrap()
    };
    assert_eq!(client.send(post("https://localhost")).await.0, 200);
    assert_eq!(client.send(post("https://LOCALHOST:443")).await.0, 200);
    assert_eq!(client.send(post("http://localhost")).await.0, 403);
    assert_eq!(client.send(post("https://localhost.evil.example")).await.0, 403);
    assert_eq!(up.hits(), 2);
}

/// A preflight-shaped OPTIONS is answered by the gateway, never forwarded: otherwise routing it
/// by its Access-Control-Request-Method would let an OPTIONS reach a route declared GET only.
#[tokio::test]
async fn preflights_are_never_forwarded() {
    let up = Upstream::start().await;
    let gate = start(
        "public_url = \"https://app.example.test\"",
        &format!("{}\n[[routes]]\nmatch = \"GET /echo\"\n", up.config()),
    );
    let client = gate.tls();
    for origin in ["https://app.example.test", "https://evil.example"] {
        let r = req("OPTIONS", "/echo")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .body(Full::<Bytes>::default())
            .unwrap();
        let (status, _, body) = client.send(r).await;
        assert_eq!(status, 403, "{origin}");
        assert_eq!(json(&body)["code"], "origin_denied");
    }
    assert_eq!(up.hits(), 0);
}
