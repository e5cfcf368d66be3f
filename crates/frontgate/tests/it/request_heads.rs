//! Request heads the gateway and the backend could read differently (docs/security.md,
//! "Request heads"), against the real binary and a backend that records the raw bytes it
//! receives: every ambiguity is refused before the backend is contacted, and what is
//! forwarded is in one canonical spelling.

use crate::common;

use common::raw_backend::{RawBackend, RawRequest};
use common::{Gate, start};

/// A gateway forwarding everything to `backend`.
fn gate(backend: &RawBackend, server_extra: &str, routes: &str) -> Gate {
    start(server_extra, &format!("{}\n[[routes]]\nmatch = \"/**\"\n{routes}\n", backend.config()))
}

/// The final status of a raw response (after any interim 1xx).
fn status(response: &str) -> u16 {
    let last = response.split("HTTP/1.1 ").skip(1).find(|r| !r.starts_with('1')).unwrap_or("");
    last.split(' ').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn problem_code(response: &str) -> String {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str::<serde_json::Value>(body)
        .map(|v| v["code"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

/// Sends `head` (and `body`) on a fresh HTTP/1.1 connection; asserts the status.
async fn send(gate: &Gate, head: &str, body: &str, want: u16) -> String {
    let out = gate.tls().raw(format!("{head}{body}").as_bytes()).await;
    let short = |s: &str| s.chars().take(300).collect::<String>();
    assert_eq!(status(&out), want, "{}\n---\n{}", short(head), short(&out));
    out
}

fn last(backend: &RawBackend) -> RawRequest {
    backend.last().expect("the backend got the request")
}

#[tokio::test]
async fn duplicate_or_conflicting_host_and_content_type_are_refused() {
    let backend = RawBackend::start().await;
    let g = gate(&backend, "", "");
    let refused = [
        // Two Host fields: servers differ on which one they believe.
        "GET /a HTTP/1.1\r\nHost: localhost\r\nHost: evil.test\r\nConnection: close\r\n\r\n",
        // An absolute target whose authority is not the Host.
        "GET https://evil.test/a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        // Two Content-Types on a body: validated as one, parsed as the other.
        "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        // The same, with a body large enough to be streamed by hyper rather than read whole.
        &format!(
            "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\nContent-Length: 20000\r\nConnection: close\r\n\r\n{}",
            "x".repeat(20000)
        ),
    ];
    for head in refused {
        let out = send(&g, head, "", 400).await;
        assert_eq!(problem_code(&out), "ambiguous_request", "{head}\n---\n{out}");
    }
    assert_eq!(
        backend.count(),
        0,
        "an ambiguous request reached the backend: {:?}",
        backend.requests()
    );
    // The same requests spelt once are forwarded.
    send(
        &g,
        "GET https://localhost/a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "",
        200,
    )
    .await;
    send(&g, "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n", "{}", 200).await;
    assert_eq!(backend.count(), 2);
}

#[tokio::test]
async fn host_and_authority_disagreeing_over_http2_is_refused() {
    let backend = RawBackend::start().await;
    let g = gate(&backend, "", "");
    // Node's HTTP/2 client sends both `:authority` and a `host` field when asked to.
    let script: &'static str = r#"
const http2 = require('node:http2');
const [url, host] = process.argv.slice(1);
const client = http2.connect(url, { rejectUnauthorized: false });
client.on('error', e => { console.error(e); process.exit(2); });
const headers = { ':method': 'GET', ':path': '/a', ':authority': 'localhost' };
if (host) headers.host = host;
const req = client.request(headers);
let body = '';
req.on('response', h => { body += h[':status'] + ' '; });
req.on('data', d => { body += d; });
req.on('end', () => { console.log(body); client.close(); });
req.end();
"#;
    // The backend runs on this test's runtime: node runs on a blocking thread meanwhile.
    let url = format!("https://{}", g.addr);
    let run = |host: &'static str| {
        let url = url.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("node")
                    .args(["-e", script, &url, host])
                    .output()
                    .expect("node (run scripts/test.sh to install it)")
            })
            .await
            .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let out = run("evil.test").await;
    assert!(out.starts_with("400 ") && out.contains("\"ambiguous_request\""), "{out}");
    assert_eq!(backend.count(), 0);
    let out = run("localhost").await;
    assert!(out.starts_with("200 "), "{out}");
    let out = run("").await;
    assert!(out.starts_with("200 "), "{out}");
    assert_eq!(backend.count(), 2);
}

#[tokio::test]
async fn header_names_with_underscores_never_reach_the_backend_unless_allowed() {
    let backend = RawBackend::start().await;
    let g = gate(&backend, "", "");
    let spoof = "X_Frontgate_Subject: admin\r\nX-Frontgate_Scopes: all\r\nx_api_key: k\r\nX_Forwarded_For: 1.2.3.4\r\n";
    // The gateway's own reader (no body, small body), hyper's (a streamed body), and HTTP/2.
    send(
        &g,
        &format!("GET /a HTTP/1.1\r\nHost: localhost\r\n{spoof}Connection: close\r\n\r\n"),
        "",
        200,
    )
    .await;
    send(&g, &format!("POST /a HTTP/1.1\r\nHost: localhost\r\n{spoof}Content-Length: 2\r\nConnection: close\r\n\r\n"), "{}", 200).await;
    let big = "y".repeat(40_000);
    send(&g, &format!("POST /a HTTP/1.1\r\nHost: localhost\r\n{spoof}Content-Length: {}\r\nConnection: close\r\n\r\n", big.len()), &big, 200).await;
    let mut h2 = g.tls().h2().await;
    let req = http::Request::builder()
        .uri(format!("https://localhost:{}/a", g.addr.port()))
        .header("x_frontgate_subject", "admin")
        .header("x_api_key", "k")
        .body(http_body_util::Full::default())
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = backend.requests();
    assert_eq!(seen.len(), 4);
    for r in &seen {
        let names: Vec<String> = r.fields().into_iter().map(|(n, _)| n).collect();
        assert!(
            names.iter().all(|n| !n.contains('_')),
            "a name with _ reached the backend: {}",
            r.head_text()
        );
        assert!(
            r.all("x-frontgate-subject").is_empty() && r.all("x-frontgate-scopes").is_empty(),
            "{}",
            r.head_text()
        );
    }
    let metrics = g.metrics().await;
    let dropped: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("frontgate_request_fields_dropped_total{")
                && l.contains("reason=\"underscore\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        dropped, 14.0,
        "4 fields on each of 3 HTTP/1.1 requests and 2 on HTTP/2:\n{metrics}"
    );

    // With underscores allowed, other names pass; identity fields never do, in any spelling.
    let backend = RawBackend::start().await;
    let g = gate(&backend, "underscores_in_headers = true", "");
    send(
        &g,
        &format!(
            "GET /a HTTP/1.1\r\nHost: localhost\r\n{spoof}X_Custom: 1\r\nConnection: close\r\n\r\n"
        ),
        "",
        200,
    )
    .await;
    let r = last(&backend);
    assert_eq!(r.all("x_custom"), ["1"], "{}", r.head_text());
    // Names a CGI-style backend folds into a field the gateway checks, sets or removes never
    // pass, whatever the switch says.
    for folded in [
        "x_api_key",
        "x_frontgate_subject",
        "x-frontgate_scopes",
        "x-frontgate-subject",
        "x-frontgate-scopes",
        "x_forwarded_for",
    ] {
        assert!(r.all(folded).is_empty(), "{folded} reached the backend: {}", r.head_text());
    }
    let more = "X_HTTP_Method_Override: DELETE\r\nX-HTTP_Method-Override: PUT\r\nX_Request_Id: spoof\r\nX_Real_IP: 6.6.6.6\r\nAuthorization_: x\r\n";
    send(
        &g,
        &format!("GET /a HTTP/1.1\r\nHost: localhost\r\n{more}Connection: close\r\n\r\n"),
        "",
        200,
    )
    .await;
    let r = last(&backend);
    for folded in ["x_http_method_override", "x-http_method-override", "x_request_id", "x_real_ip"]
    {
        assert!(r.all(folded).is_empty(), "{folded} reached the backend: {}", r.head_text());
    }
    assert_eq!(
        r.all("authorization_"),
        ["x"],
        "a name that folds to no field the gateway reads passes"
    );
}

#[tokio::test]
async fn client_claims_and_path_overrides_reach_the_backend_only_from_a_trusted_proxy() {
    let claims = [
        "X-Client-IP",
        "True-Client-IP",
        "X-Cluster-Client-IP",
        "CF-Connecting-IP",
        "Fastly-Client-IP",
        "X-Forwarded",
        "Forwarded-For",
        "X-Forwarded-Ssl",
        "X-Forwarded-Scheme",
        "Front-End-Https",
        "X-Url-Scheme",
        "X-Forwarded-Prefix",
        "X-Forwarded-Server",
        "X-Original-Forwarded-For",
        "X-Host",
        "X-Original-Host",
    ];
    let overrides = ["X-Original-URL", "X-Rewrite-URL"];
    let fields: String =
        claims.iter().chain(&overrides).map(|n| format!("{n}: /admin\r\n")).collect();
    let head = format!("GET /a HTTP/1.1\r\nHost: localhost\r\n{fields}Connection: close\r\n\r\n");
    let backend = RawBackend::start().await;
    let g = gate(&backend, "", "");
    send(&g, &head, "", 200).await;
    let r = last(&backend);
    for name in claims.iter().chain(&overrides) {
        assert!(
            r.all(name).is_empty(),
            "{name} reached the backend from an untrusted client: {}",
            r.head_text()
        );
    }
    // From a trusted proxy the claims are its to make; path overrides never pass.
    let g = gate(&backend, "trusted_proxies = [\"127.0.0.0/8\"]", "");
    send(&g, &head, "", 200).await;
    let r = last(&backend);
    for name in claims {
        assert_eq!(r.all(name), ["/admin"], "{name}: {}", r.head_text());
    }
    for name in overrides {
        assert!(r.all(name).is_empty(), "{name}: {}", r.head_text());
    }
}

#[tokio::test]
async fn cookies_sent_as_several_fields_reach_the_backend_as_one_line() {
    let backend = RawBackend::start().await;
    let g = gate(&backend, "", "");
    // HTTP/2 clients (Chrome, Firefox) send each cookie as a field of its own.
    let mut h2 = g.tls().h2().await;
    let req = http::Request::builder()
        .uri(format!("https://localhost:{}/a", g.addr.port()))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(http_body_util::Full::default())
        .unwrap();
    assert_eq!(h2.send_request(req).await.unwrap().status(), 200);
    let r = last(&backend);
    assert_eq!(r.all("cookie"), ["a=1; b=2"], "{}", r.head_text());
}

#[tokio::test]
async fn every_connection_field_nominates_hop_by_hop_fields() {
    let backend = RawBackend::start().await;
    let g = gate(&backend, "", "");
    let head = "GET /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nConnection: X-Secret, X-Other\r\nX-Secret: 1\r\nX-Other: 2\r\nX-Kept: 3\r\n\r\n";
    let out = g.tls().raw(head.as_bytes()).await;
    assert_eq!(status(&out), 200, "{out}");
    let r = last(&backend);
    assert!(
        r.all("x-secret").is_empty() && r.all("x-other").is_empty(),
        "a nominated field was forwarded: {}",
        r.head_text()
    );
    assert_eq!(r.all("x-kept"), ["3"]);
    assert!(r.all("connection").iter().all(|v| !v.to_ascii_lowercase().contains("x-secret")));
}

#[tokio::test]
async fn content_length_is_forwarded_in_canonical_form() {
    let backend = RawBackend::start().await;
    let g = gate(&backend, "", "");
    // "010" is kept by the gateway's own reader, "00000000005" goes through hyper; a list of
    // equal copies is one length.
    for (declared, body, want) in
        [("010", "0123456789", "10"), ("00000000005", "hello", "5"), ("5, 5", "hello", "5")]
    {
        let head = format!(
            "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
        );
        let out = g.tls().raw(format!("{head}{body}").as_bytes()).await;
        if status(&out) == 400 {
            // hyper refuses a list outright: also no disagreement.
            assert_eq!(declared, "5, 5", "{out}");
            continue;
        }
        assert_eq!(status(&out), 200, "{declared}: {out}");
        let r = last(&backend);
        assert_eq!(r.all("content-length"), [want], "{declared}: {}", r.head_text());
        assert_eq!(r.body, body.as_bytes());
    }
}

#[tokio::test]
async fn expect_is_answered_by_the_gateway_and_not_forwarded() {
    let backend = RawBackend::start().await;
    let g = gate(&backend, "", "");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = g.tls().connect(&[b"http/1.1"]).await;
    tls.write_all(b"POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").await.unwrap();
    // The gateway says to go on, as the backend would have.
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut chunk))
            .await
            .expect("an interim answer")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 100 Continue\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    tls.write_all(b"hello").await.unwrap();
    let mut rest = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(10), tls.read_to_end(&mut rest)).await;
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("HTTP/1.1 200 OK"), "{rest}");
    let r = last(&backend);
    assert!(r.all("expect").is_empty(), "Expect reached the backend: {}", r.head_text());
    assert_eq!(r.body, b"hello");
    // A client that sends its body at once, Expect or not: the same.
    send(&g, "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", "{}", 200).await;
    assert!(last(&backend).all("expect").is_empty());
}

#[tokio::test]
async fn method_override_fields_are_removed_unless_the_route_opts_in() {
    let backend = RawBackend::start().await;
    let routes = format!(
        "{}\n[[routes]]\nmatch = \"POST /forms/**\"\nmethod_override = true\n[[routes]]\nmatch = \"POST /api/**\"\n",
        backend.config()
    );
    let g = start("", &routes);
    let overrides =
        "X-HTTP-Method-Override: DELETE\r\nX-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\n";
    send(&g, &format!("POST /api/items/1 HTTP/1.1\r\nHost: localhost\r\n{overrides}Content-Length: 0\r\nConnection: close\r\n\r\n"), "", 200).await;
    let r = last(&backend);
    for name in ["x-http-method-override", "x-method-override", "x-http-method"] {
        assert!(r.all(name).is_empty(), "{name} reached the backend: {}", r.head_text());
    }
    assert!(r.line().starts_with("POST /api/items/1 "));
    send(&g, &format!("POST /forms/items/1 HTTP/1.1\r\nHost: localhost\r\n{overrides}Content-Length: 0\r\nConnection: close\r\n\r\n"), "", 200).await;
    let r = last(&backend);
    assert_eq!(r.all("x-http-method-override"), ["DELETE"], "{}", r.head_text());
}

#[tokio::test]
async fn a_target_too_long_for_the_base_path_is_414_never_another_path() {
    let backend = RawBackend::start().await;
    let config = format!(
        "[upstream]\nurl = \"http://{}/base/path/of/the/api\"\n[[routes]]\nmatch = \"/**\"\n",
        backend.addr
    );
    let g = start("max_header_bytes = \"96KiB\"", &config);
    // Fits in a request line as sent, but not once under the base path.
    let query = "q".repeat(65_525);
    let out = send(
        &g,
        &format!("GET /a?{query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        "",
        414,
    )
    .await;
    assert_eq!(problem_code(&out), "uri_too_long", "{}", &out[..out.len().min(400)]);
    assert_eq!(
        backend.count(),
        0,
        "forwarded: {:?}",
        backend.last().map(|r| r.line().chars().take(80).collect::<String>())
    );
    // A normal request goes under the base path.
    send(&g, "GET /a?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "", 200).await;
    assert!(
        last(&backend).line().starts_with("GET /base/path/of/the/api/a?x=1 "),
        "{}",
        last(&backend).line()
    );
}

#[tokio::test]
async fn frontend_routes_refuse_method_override() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_text(
        dir.path(),
        "",
        "[upstream]\nurl = \"http://127.0.0.1:9\"\n[frontend]\ndir = \".\"\n[[routes]]\nmatch = \"GET /app/**\"\nto = \"frontend\"\nmethod_override = true\n",
    );
    let path = dir.path().join("frontgate.toml");
    std::fs::write(&path, config).unwrap();
    let out =
        std::process::Command::new(common::BIN).args(["check", "-c"]).arg(&path).output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("method_override passes headers to the upstream"), "{text}");
}
