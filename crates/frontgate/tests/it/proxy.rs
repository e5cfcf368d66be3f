//! Forwarding: what the backend sees, what the client sees, and the failure modes in between.

use crate::common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

#[tokio::test]
async fn forwards_declared_routes_and_strips_spoofed_identity_and_fingerprints() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let client = gate.tls();
    let r = req("GET", "/echo/a?x=1&y=%20")
        .header("x-frontgate-subject", "admin")
        .header("X-Frontgate-Scopes", "everything")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-real-ip", "6.6.6.6")
        .header("x-request-id", "chosen-by-attacker")
        .body(Full::default())
        .unwrap();
    let (status, headers, body) = client.send(r).await;
    assert_eq!(status, 200);
    let seen = json(&body);
    assert_eq!(seen["path"], "/echo/a?x=1&y=%20");
    let h = &seen["headers"];
    assert!(h.get("x-frontgate-subject").is_none() && h.get("x-frontgate-scopes").is_none(), "{h}");
    assert_eq!(h["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"][0], "https");
    assert!(h.get("x-real-ip").is_none());
    assert_eq!(h["forwarded"][0], "for=127.0.0.1;proto=https;host=\"localhost\"");
    assert_ne!(h["x-request-id"][0], "chosen-by-attacker");
    assert_eq!(headers["x-request-id"].to_str().unwrap(), h["x-request-id"][0].as_str().unwrap());
    assert!(headers.get("server").is_none() && headers.get("x-powered-by").is_none());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn the_admin_consoles_cookie_never_reaches_the_backend() {
    // A browser signed in to the console on this host name sends its cookie to the gateway's
    // port too (cookies are not kept apart by port); with no [oidc] or [pow] configured.
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let r = req("GET", "/echo/a")
        .header("cookie", "frontgate_console=0123abcd; app=1")
        .body(Full::default())
        .unwrap();
    let (status, _, body) = gate.tls().send(r).await;
    assert_eq!(status, 200);
    let h = &json(&body)["headers"];
    assert_eq!(h["cookie"][0], "app=1", "{h}");
}

#[tokio::test]
async fn undeclared_paths_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"GET /echo/{{id}}\"\n", up.config()));
    let client = gate.tls();
    let (s1, _, b1) = client.get("/nope").await;
    let (s2, _, b2) = client.get("/echo/1/2").await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (404, 404));
    let (p1, p2) = (json(&b1), json(&b2));
    assert_eq!(p1["code"], "route_not_found");
    // Indistinguishable apart from the request id.
    assert_eq!(p1["detail"], p2["detail"]);
    assert_eq!(b1.len(), b2.len());
    let (s, h, b) =
        client.send(req("DELETE", "/echo/1").body(Full::<Bytes>::default()).unwrap()).await;
    assert_eq!(s, 405);
    assert_eq!(h["allow"], "GET, HEAD");
    assert_eq!(json(&b)["code"], "method_not_allowed");
    assert_eq!(up.hits(), 0);
}

// ---- helpers for bodies the harness's `Full`-typed clients cannot send ----

type TestBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// A body sent in chunks with no Content-Length, so hyper uses Transfer-Encoding: chunked.
fn chunked(chunks: Vec<Bytes>) -> TestBody {
    use http_body_util::BodyExt;
    let frames =
        futures_util::stream::iter(chunks.into_iter().map(|c| Ok(hyper::body::Frame::data(c))));
    http_body_util::StreamBody::new(frames).boxed()
}

/// One request with any body on a fresh HTTP/1.1-over-TLS connection.
async fn send_h1(
    client: &TlsClient,
    r: http::Request<TestBody>,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let tls = client.connect(&[b"http/1.1"]).await;
    let (mut s, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    collect(s.send_request(r).await.expect("response")).await
}

/// Asserts a problem document: status, content type, code, and a request id that matches the header.
fn assert_problem(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &Bytes,
    want_status: u16,
    want_code: &str,
) -> serde_json::Value {
    assert_eq!(status.as_u16(), want_status, "{}", String::from_utf8_lossy(body));
    assert_eq!(headers["content-type"], "application/problem+json");
    let p = json(body);
    assert_eq!(p["code"], want_code, "{p}");
    assert_eq!(p["status"], want_status);
    assert_eq!(p["type"], format!("/.frontgate/problems/{want_code}"));
    let rid = p["request_id"].as_str().expect("request_id");
    assert!(!rid.is_empty());
    assert_eq!(headers["x-request-id"].to_str().unwrap(), rid);
    p
}

fn seen_headers(up: &Upstream) -> std::collections::HashMap<String, Vec<String>> {
    up.last.lock().unwrap().as_ref().expect("the upstream saw a request").2.clone()
}

#[tokio::test]
async fn the_upstream_base_path_prefixes_the_normalized_path() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!(
            "[upstream]\nurl = \"http://{}/echo/v1/\"\n\n[[routes]]\nmatch = \"/items/**\"\n",
            up.addr
        ),
    );
    let client = gate.tls();
    let (s, _, b) = client.get("/items/7?x=%2F").await;
    assert_eq!(s, 200);
    assert_eq!(json(&b)["path"], "/echo/v1/items/7?x=%2F");
    let out = client
        .raw(b"GET /items/%37 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    assert!(out.contains("\"path\":\"/echo/v1/items/7\""), "{out}");
}

// ---- upstream failure modes ----

#[tokio::test]
async fn upstream_down_is_502_upstream_unavailable() {
    // A loopback port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gate = start(
        "",
        &format!("[upstream]\nurl = \"http://{closed}\"\n\n[[routes]]\nmatch = \"/echo/**\"\n"),
    );
    let (s, h, b) = gate.tls().get("/echo/x").await;
    let p = assert_problem(s, &h, &b, 502, "upstream_unavailable");
    // Nothing about the backend (address, OS error) leaks to the client.
    assert!(!p.to_string().contains(&closed.port().to_string()), "{p}");
}

#[tokio::test]
async fn slow_upstream_is_504_upstream_timeout() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}timeout = \"500ms\"\n\n[[routes]]\nmatch = \"GET /slow\"\n", up.config()),
    );
    let (s, h, b) = gate.tls().get("/slow?ms=3000").await;
    assert_problem(s, &h, &b, 504, "upstream_timeout");
    assert_eq!(up.hits(), 1);
    // The abandoned upstream exchange does not poison the next request.
    let (s, _, b) = gate.tls().get("/slow?ms=0").await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"slow"[..]));
}

#[tokio::test]
async fn a_route_timeout_overrides_the_upstream_timeout_both_ways() {
    let up = Upstream::start().await;
    // Lower than the default of 30s: times out.
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"GET /slow\"\ntimeout = \"400ms\"\n", up.config()),
    );
    let (s, h, b) = gate.tls().get("/slow?ms=3000").await;
    assert_problem(s, &h, &b, 504, "upstream_timeout");
    drop(gate);
    // Higher than a short upstream timeout: the slow answer gets through.
    let gate = start(
        "",
        &format!(
            "{}timeout = \"300ms\"\n\n[[routes]]\nmatch = \"GET /slow\"\ntimeout = \"20s\"\n",
            up.config()
        ),
    );
    let (s, _, b) = gate.tls().get("/slow?ms=1000").await;
    assert_eq!(s, 200);
    assert_eq!(&b[..], b"slow");
}

#[tokio::test]
async fn response_deadlines_hold_on_pooled_connections_earlier_or_later() {
    // Each pooled upstream connection keeps one timer and moves its deadline per request:
    // later (the cheap path), or earlier, which must re-arm it. A long-timeout request first
    // leaves its connection in the pool with a deadline 20 s out; the short-timeout route
    // that reuses it must still time out at its own 400 ms, not at 20 s.
    let up = Upstream::start().await;
    let routes = "[[routes]]\nmatch = \"GET /slow\"\ntimeout = \"400ms\"\n\n[[routes]]\nmatch = \"GET /echo/**\"\ntimeout = \"20s\"\n";
    let gate = start("", &format!("{}\n{routes}", up.config()));
    let client = gate.tls();
    for _ in 0..2 {
        let (s, _, _) = client.get("/echo/warm").await;
        assert_eq!(s, 200);
        let (s, h, b) = client.get("/slow?ms=3000").await;
        assert_problem(s, &h, &b, 504, "upstream_timeout");
        // Later deadlines on a connection that already timed a request out, then a quick one.
        let (s, _, b) = client.get("/slow?ms=0").await;
        assert_eq!((s.as_u16(), &b[..]), (200, &b"slow"[..]));
    }
    assert_eq!(up.hits(), 6);
}

#[tokio::test]
async fn upstream_5xx_bodies_are_masked_but_status_and_retry_after_kept() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/status/**\"\n", up.config()));
    let client = gate.tls();
    for code in [500u16, 503] {
        let (s, h, b) = client.get(&format!("/status/{code}")).await;
        let p = assert_problem(s, &h, &b, code, "upstream_error");
        let text = String::from_utf8_lossy(&b);
        assert!(!text.contains("stack trace") && !text.contains("Db.java"), "{text}");
        assert_eq!(p["title"], "Upstream error");
        assert_eq!(h["retry-after"], "7");
    }
    // 4xx are the backend's own answers and pass through untouched.
    let (s, _, b) = client.get("/status/404").await;
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&b).contains("stack trace"));
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn upstream_5xx_bodies_pass_through_when_masking_is_off() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}mask_5xx = false\n\n[[routes]]\nmatch = \"/status/**\"\n", up.config()),
    );
    let (s, h, b) = gate.tls().get("/status/503").await;
    assert_eq!(s, 503);
    assert_eq!(&b[..], b"internal details: stack trace at Db.java:42");
    assert_eq!(h["retry-after"], "7");
    assert!(h.get("content-type").is_none_or(|v| v != "application/problem+json"));
}

// ---- request limits ----

#[tokio::test]
async fn declared_oversize_body_is_413_before_the_upstream() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\nmax_body_bytes = 1024\n", up.config()),
    );
    let client = gate.tls();
    let r = req("POST", "/echo/up").body(Full::new(Bytes::from(vec![b'a'; 2048]))).unwrap();
    let (s, h, b) = client.send(r).await;
    assert_problem(s, &h, &b, 413, "payload_too_large");
    assert_eq!(up.hits(), 0, "the upstream must not see an oversize request");

    // Exactly at the limit and below it: forwarded whole.
    for n in [1024usize, 1000] {
        let r = req("POST", "/echo/up").body(Full::new(Bytes::from(vec![b'a'; n]))).unwrap();
        let (s, _, b) = client.send(r).await;
        assert_eq!(s, 200);
        assert_eq!(json(&b)["body_len"], n);
    }
}

/// Bodies up to 16 KiB are read whole by the gateway's own HTTP/1.1 reader and larger ones
/// streamed by hyper: either way, on one kept-alive connection, each reaches the upstream byte
/// for byte, the bytes after a body are the next request, and the route's limit holds.
#[tokio::test]
async fn request_bodies_around_the_read_whole_size_are_forwarded_exactly() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\nmax_body_bytes = 20000\n", up.config()),
    );
    let client = gate.tls();
    let mut h1 = client.h1().await;
    for n in [1usize, 100, 4096, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 20000, 20001, 7] {
        // Bytes that look like a request line, so a body misread as the next head would show.
        let body: String = "GET /echo/smuggled HTTP/1.1\r\n\r\n".chars().cycle().take(n).collect();
        let r = req("POST", "/echo/b").body(Full::new(Bytes::from(body.clone()))).unwrap();
        let (s, h, b) = collect(h1.send_request(r).await.unwrap()).await;
        if n > 20000 {
            assert_problem(s, &h, &b, 413, "payload_too_large");
            // hyper answers a body it did not read by closing the connection.
            h1 = client.h1().await;
            continue;
        }
        assert_eq!(s, 200, "{n}");
        let echoed = json(&b);
        assert_eq!(echoed["body_len"], n);
        if n <= 4096 {
            // (The test upstream echoes bodies up to 4 KiB.)
            assert_eq!(echoed["body"], body.as_str(), "{n}");
        }
        let (s, _, b) = collect(
            h1.send_request(req("GET", "/echo/next").body(Full::new(Bytes::new())).unwrap())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (s.as_u16(), json(&b)["path"].as_str()),
            (200, Some("/echo/next")),
            "after a body of {n}"
        );
    }
    // Each body and each following GET, nothing else (no request read out of a body).
    assert_eq!(up.hits(), 16);
}

/// A small body that arrives after its head (in pieces) is not waited for by the gateway's own
/// reader: hyper takes the connection and forwards the body whole, and the requests after it.
#[tokio::test]
async fn a_small_body_arriving_after_its_head_is_forwarded_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let mut tls = gate.tls().connect(&[b"http/1.1"]).await;
    tls.write_all(b"POST /echo/pieces HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        .await
        .unwrap();
    for piece in [&b"ab"[..], b"cd", b"ef"] {
        tls.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        tls.write_all(piece).await.unwrap();
    }
    tls.write_all(b"GET /echo/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
    assert!(out.contains("\"body\":\"abcdef\""), "{out}");
    assert!(out.contains("\"path\":\"/echo/after\""), "{out}");
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn chunked_oversize_body_is_413_and_chunked_small_body_is_forwarded_whole() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\nmax_body_bytes = 1024\n", up.config()),
    );
    let client = gate.tls();

    let big = chunked(vec![
        Bytes::from(vec![b'a'; 600]),
        Bytes::from(vec![b'b'; 600]),
        Bytes::from(vec![b'c'; 600]),
    ]);
    let r = req("POST", "/echo/chunked").body(big).unwrap();
    assert!(r.headers().get("content-length").is_none());
    let (s, h, b) = send_h1(&client, r).await;
    assert_problem(s, &h, &b, 413, "payload_too_large");

    let small = chunked(vec![Bytes::from(vec![b'a'; 500]), Bytes::from(vec![b'b'; 500])]);
    let (s, _, b) = send_h1(&client, req("POST", "/echo/chunked").body(small).unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(json(&b)["body_len"], 1000);
}

#[tokio::test]
async fn chunked_oversize_body_over_raw_bytes_is_413() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\nmax_body_bytes = 100\n", up.config()),
    );
    let chunk = "x".repeat(90);
    let raw = format!(
        "POST /echo/raw HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5a\r\n{chunk}\r\n5a\r\n{chunk}\r\n0\r\n\r\n"
    );
    let out = gate.tls().raw(raw.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(out.contains("\"code\":\"payload_too_large\""), "{out}");
}

#[tokio::test]
async fn expect_100_continue_with_an_oversize_length_is_refused_without_reading_the_body() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\nmax_body_bytes = 1024\n", up.config()),
    );
    // No body follows: the answer must come without the gateway asking for it (no 100 Continue).
    let out = gate
        .tls()
        .raw(b"POST /echo/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .await;
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(out.contains("\"code\":\"payload_too_large\""), "{out}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn an_unread_oversize_body_is_never_parsed_as_the_next_request() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\nmax_body_bytes = 1024\n", up.config()),
    );
    // The gateway refuses this without reading the body; the body is itself a request. Those
    // bytes are body bytes, and must never be answered (or forwarded) as a request of their own.
    let inner = "GET /echo/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let body = format!("{inner}{}", "x".repeat(2048 - inner.len()));
    let raw =
        format!("POST /echo/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2048\r\n\r\n{body}");
    let out = gate.tls().raw(raw.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn http2_streamed_oversize_body_is_413() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\nmax_body_bytes = 1024\n", up.config()),
    );
    let tls = gate.tls().connect(&[b"h2"]).await;
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let body = chunked(vec![Bytes::from(vec![b'a'; 800]), Bytes::from(vec![b'b'; 800])]);
    let r = http::Request::builder()
        .method("POST")
        .uri("https://localhost/echo/h2")
        .body(body)
        .unwrap();
    let (s, h, b) = collect(h2.send_request(r).await.unwrap()).await;
    assert_problem(s, &h, &b, 413, "payload_too_large");
    let body = chunked(vec![Bytes::from(vec![b'a'; 500]), Bytes::from(vec![b'b'; 500])]);
    let r = http::Request::builder()
        .method("POST")
        .uri("https://localhost/echo/h2")
        .body(body)
        .unwrap();
    let (s, _, b) = collect(h2.send_request(r).await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(json(&b)["body_len"], 1000);
}

#[tokio::test]
async fn ambiguous_message_framing_never_smuggles_a_request_upstream() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let client = gate.tls();
    let refused: [&[u8]; 2] = [
        // Two different Content-Lengths.
        b"POST /echo/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nContent-Length: 40\r\nConnection: close\r\n\r\nabcd",
        // A transfer coding other than chunked last.
        b"POST /echo/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\nConnection: close\r\n\r\n0\r\n\r\n",
    ];
    for raw in refused {
        let out = client.raw(raw).await;
        assert!(out.starts_with("HTTP/1.1 400 "), "{}\n---\n{out}", String::from_utf8_lossy(raw));
    }
    assert_eq!(up.hits(), 0);
    // Content-Length with Transfer-Encoding (CL.TE smuggling): RFC 9112 §6.3 lets a server either
    // refuse it or read it as chunked and close the connection afterwards. Either way the bytes
    // after the chunked body must never become a second request, here or at the upstream.
    for order in [
        "Content-Length: 60\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n",
    ] {
        let raw = format!(
            "POST /echo/x HTTP/1.1\r\nHost: localhost\r\n{order}\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
        );
        let out = client.raw(raw.as_bytes()).await;
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
        assert!(out.starts_with("HTTP/1.1 400 ") || out.starts_with("HTTP/1.1 200 "), "{out}");
        if out.starts_with("HTTP/1.1 200 ") {
            let seen = json(&Bytes::from(out.split_once("\r\n\r\n").unwrap().1.to_owned()));
            assert_eq!(seen["path"], "/echo/x");
            assert_eq!(seen["body_len"], 0);
            // The upstream must not get the client's Content-Length for a body framed otherwise.
            assert!(seen["headers"].get("content-length").is_none_or(|v| v[0] == "0"), "{seen}");
        }
        let last = up.last.lock().unwrap().clone();
        assert!(last.is_none_or(|(_, path, _)| path != "/echo/smuggled"));
    }
}

#[tokio::test]
async fn oversize_and_too_many_headers_are_431_before_the_upstream() {
    let up = Upstream::start().await;
    let gate = start(
        "max_header_bytes = 4096\nmax_header_count = 20\n",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()),
    );
    let client = gate.tls();
    // Over max_header_bytes but within hyper's read buffer: the gateway's own check answers.
    let r = req("GET", "/echo/a").header("x-big", "a".repeat(6000)).body(Full::default()).unwrap();
    let (s, h, b) = client.send(r).await;
    assert_problem(s, &h, &b, 431, "headers_too_large");
    // Far over: hyper's buffer limit answers 431 itself.
    let out = client
        .raw(
            format!(
                "GET /echo/a HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
                "a".repeat(20000)
            )
            .as_bytes(),
        )
        .await;
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    // More headers than max_header_count.
    let mut r = req("GET", "/echo/a");
    for i in 0..30 {
        r = r.header(format!("x-h{i}"), "1");
    }
    let (s, _, _) = client.send(r.body(Full::default()).unwrap()).await;
    assert_eq!(s, 431);
    // Over HTTP/2 hyper applies no count limit: the gateway's does.
    let mut h2 = client.h2().await;
    let mut r = http::Request::builder().method("GET").uri("https://localhost/echo/a");
    for i in 0..30 {
        r = r.header(format!("x-h{i}"), "1");
    }
    let (s, h, b) = collect(h2.send_request(r.body(Full::default()).unwrap()).await.unwrap()).await;
    assert_problem(s, &h, &b, 431, "headers_too_large");
    assert_eq!(up.hits(), 0);
}

// ---- protocols ----

#[tokio::test]
async fn http2_requests_are_forwarded_as_http11_with_the_body_and_upstream_host() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let mut h2 = gate.tls().h2().await;
    let body = Bytes::from(vec![b'z'; 70_000]);
    let r = http::Request::builder()
        .method("POST")
        .uri("https://localhost/echo/h2?q=1")
        .header("content-type", "application/octet-stream")
        .body(Full::new(body))
        .unwrap();
    let resp = h2.send_request(r).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let (s, _, b) = collect(resp).await;
    assert_eq!(s, 200);
    let seen = json(&b);
    // The upstream is an HTTP/1.1-only server: that it answered at all means it got HTTP/1.1.
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/echo/h2?q=1");
    assert_eq!(seen["body_len"], 70_000);
    let h = &seen["headers"];
    assert_eq!(h["host"][0], up.addr.to_string());
    assert_eq!(h["x-forwarded-host"][0], "localhost");
    assert_eq!(h["x-forwarded-proto"][0], "https");
    assert_eq!(h["content-type"][0], "application/octet-stream");
}

#[tokio::test]
async fn each_field_the_gateway_sets_reaches_the_backend_once() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    // A request with nothing to strip (the gateway adds its fields beside the client's) and
    // one with (they are replaced in place): the backend sees one copy of each either way.
    for spoof in [None, Some(("x-request-id", "mine")), Some(("x-forwarded-host", "evil.test"))] {
        let mut r = req("GET", "/echo/once")
            .header("accept", "application/json")
            .header("x-custom", "kept");
        if let Some((name, value)) = spoof {
            r = r.header(name, value);
        }
        let (status, _, body) = gate.tls().send(r.body(Full::default()).unwrap()).await;
        assert_eq!(status, 200);
        let h = &json(&body)["headers"];
        for name in [
            "host",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
            "x-request-id",
            "x-custom",
            "accept",
        ] {
            assert_eq!(h[name].as_array().map(Vec::len), Some(1), "{spoof:?}: {name} in {h}");
        }
        assert_eq!(h["host"][0], up.addr.to_string());
        assert_eq!(h["x-forwarded-host"][0], "localhost");
        assert_ne!(h["x-request-id"][0], "mine");
    }
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"GET /ws\"\n", up.config()));
    let tls = gate.tls().connect(&[b"http/1.1"]).await;
    let (mut ws, resp) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio_tungstenite::client_async("wss://localhost/ws", tls),
    )
    .await
    .expect("handshake in time")
    .expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    assert!(resp.headers().get("server").is_none());
    ws.send(Message::text("hello through the gate")).await.unwrap();
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("echo in time")
            .expect("open")
            .unwrap();
        if msg.is_text() || msg.is_binary() {
            got.push(msg);
        }
    }
    assert_eq!(got[0], Message::text("hello through the gate"));
    assert_eq!(got[1], Message::binary(vec![0u8, 1, 2, 255]));
    ws.close(None).await.unwrap();
    let seen = seen_headers(&up);
    assert_eq!(seen["upgrade"][0].to_ascii_lowercase(), "websocket");
    assert_eq!(seen["host"][0], up.addr.to_string());
}

#[tokio::test]
async fn cross_site_websocket_handshakes_are_refused() {
    let up = Upstream::start().await;
    let gate = start(
        "public_url = \"https://localhost\"\n",
        &format!("{}\n[[routes]]\nmatch = \"GET /ws\"\n", up.config()),
    );
    let handshake = |origin: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nOrigin: {origin}\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    // Reads until `needle` shows up (the connection stays open either way).
    async fn exchange(client: &TlsClient, bytes: &[u8], needle: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = client.connect(&[b"http/1.1"]).await;
        tls.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !String::from_utf8_lossy(&out).contains(needle) {
            match tokio::time::timeout_at(deadline, tls.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    // A page on another site opening a socket with the user's cookies (CSWSH).
    let out = exchange(&gate.tls(), handshake("https://evil.test").as_bytes(), "}").await;
    assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
    assert!(out.contains("origin_denied"), "{out}");
    assert_eq!(up.hits(), 0);
    // The app's own page may.
    let head = exchange(&gate.tls(), handshake("https://localhost").as_bytes(), "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn pooled_upstream_connections_never_mix_up_responses() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/**\"\n", up.config()));
    let client = gate.tls();
    // One client connection, a mix of exchanges that end the upstream body in different ways.
    let mut h1 = client.h1().await;
    for round in 0..3 {
        for n in [0usize, 1, 70_000, 3_000_000] {
            let r = req("GET", &format!("/big?bytes={n}")).body(Full::default()).unwrap();
            let (s, _, b) = collect(h1.send_request(r).await.unwrap()).await;
            assert_eq!((s.as_u16(), b.len()), (200, n), "round {round}");
            assert!(b.iter().all(|&c| c == b'x'));
            let r = req("HEAD", &format!("/big?bytes={n}")).body(Full::default()).unwrap();
            let (s, _, b) = collect(h1.send_request(r).await.unwrap()).await;
            assert_eq!((s.as_u16(), b.len()), (200, 0));
            let r = req("GET", "/status/500").body(Full::default()).unwrap();
            let (s, _, b) = collect(h1.send_request(r).await.unwrap()).await;
            assert_eq!((s.as_u16(), json(&b)["code"].as_str()), (500, Some("upstream_error")));
            let r = req("POST", &format!("/echo/{round}/{n}"))
                .body(Full::new(Bytes::from(vec![b'p'; n % 5000])))
                .unwrap();
            let (s, _, b) = collect(h1.send_request(r).await.unwrap()).await;
            assert_eq!(s, 200);
            let seen = json(&b);
            assert_eq!(seen["path"], format!("/echo/{round}/{n}"));
            assert_eq!(seen["body_len"], n % 5000);
        }
    }
    // Many concurrent streams on one HTTP/2 connection, each with its own body.
    let h2 = client.h2().await;
    let mut tasks = Vec::new();
    for i in 0..40usize {
        let mut h2 = h2.clone();
        tasks.push(tokio::spawn(async move {
            let r = http::Request::builder()
                .method("POST")
                .uri(format!("https://localhost/echo/c/{i}"))
                .body(Full::new(Bytes::from(vec![b'q'; i * 997])))
                .unwrap();
            let (s, _, b) = collect(h2.send_request(r).await.unwrap()).await;
            (i, s, json(&b))
        }));
    }
    for t in tasks {
        let (i, s, seen) = t.await.unwrap();
        assert_eq!(s, 200);
        assert_eq!(seen["path"], format!("/echo/c/{i}"));
        assert_eq!(seen["body_len"], i * 997);
    }
}

#[tokio::test]
async fn hop_by_hop_headers_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let r = req("GET", "/echo/hop")
        .header("connection", "x-custom, keep-alive")
        .header("x-custom", "1")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic dXNlcjpwYXNz")
        .header("proxy-connection", "keep-alive")
        .header("upgrade", "h2c")
        .header("x-kept", "yes")
        .body(Full::default())
        .unwrap();
    let (s, _, b) = gate.tls().send(r).await;
    assert_eq!(s, 200);
    let h = &json(&b)["headers"];
    for name in [
        "x-custom",
        "keep-alive",
        "te",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
        "connection",
    ] {
        assert!(h.get(name).is_none(), "{name} reached the upstream: {h}");
    }
    assert_eq!(h["x-kept"][0], "yes");
}

// ---- plain mode behind a load balancer ----

#[tokio::test]
async fn plain_mode_behind_a_trusted_load_balancer_extends_the_forwarding_chain() {
    let up = Upstream::start().await;
    let gate = start(
        "tls = \"off\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()),
    );
    let r = req("GET", "/echo/lb")
        .header("x-forwarded-for", "1.2.3.4")
        .header("x-forwarded-proto", "https")
        .header("x-request-id", "lb-req-42")
        .body(Full::default())
        .unwrap();
    let (s, h, b) = plain_send(gate.addr, r).await;
    assert_eq!(s, 200);
    let seen = &json(&b)["headers"];
    assert_eq!(seen["x-forwarded-for"][0], "1.2.3.4, 127.0.0.1");
    assert_eq!(seen["x-forwarded-for"].as_array().unwrap().len(), 1);
    assert_eq!(seen["x-forwarded-proto"][0], "https");
    // The load balancer's request id is kept end to end.
    assert_eq!(seen["x-request-id"][0], "lb-req-42");
    assert_eq!(h["x-request-id"], "lb-req-42");
    // With tls = "off" the gateway sends no HSTS of its own; that is the load balancer's job.
    assert!(h.get("strict-transport-security").is_none());

    // A prior Forwarded chain from the load balancer is extended too.
    let r = req("GET", "/echo/lb")
        .header("forwarded", "for=1.2.3.4;proto=https")
        .body(Full::default())
        .unwrap();
    let (_, _, b) = plain_send(gate.addr, r).await;
    let seen = &json(&b)["headers"];
    assert_eq!(
        seen["forwarded"][0],
        "for=1.2.3.4;proto=https, for=127.0.0.1;proto=http;host=\"localhost\""
    );
}

#[tokio::test]
async fn a_forwarding_chain_split_over_several_header_lines_is_kept_whole() {
    // A client sends its own X-Forwarded-For; the load balancer appends its entry as a second
    // line (which HTTP allows: it means the same as one comma-joined line). Keeping only the
    // first line would drop the address the load balancer saw and keep the client's claim.
    let up = Upstream::start().await;
    let gate = start(
        "tls = \"off\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()),
    );
    let r = req("GET", "/echo/lb")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-for", "1.2.3.4")
        .header("forwarded", "for=6.6.6.6")
        .header("forwarded", "for=1.2.3.4;proto=https")
        .body(Full::default())
        .unwrap();
    let (s, _, b) = plain_send(gate.addr, r).await;
    assert_eq!(s, 200);
    let seen = &json(&b)["headers"];
    assert_eq!(seen["x-forwarded-for"].as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(seen["x-forwarded-for"][0], "6.6.6.6, 1.2.3.4, 127.0.0.1");
    assert_eq!(seen["forwarded"].as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(
        seen["forwarded"][0],
        "for=6.6.6.6, for=1.2.3.4;proto=https, for=127.0.0.1;proto=http;host=\"localhost\""
    );
}

#[tokio::test]
async fn plain_mode_without_trusted_proxies_replaces_inbound_forwarding_headers() {
    let up = Upstream::start().await;
    let gate = start(
        "tls = \"off\"\ntrusted_proxies = []\n",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()),
    );
    let r = req("GET", "/echo/direct")
        .header("x-forwarded-for", "1.2.3.4")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.test")
        .header("forwarded", "for=1.2.3.4;proto=https")
        .header("x-request-id", "spoofed-id")
        .body(Full::default())
        .unwrap();
    let (s, _, b) = plain_send(gate.addr, r).await;
    assert_eq!(s, 200);
    let seen = &json(&b)["headers"];
    assert_eq!(seen["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"][0], "http");
    assert_eq!(seen["x-forwarded-host"][0], "localhost");
    assert_eq!(seen["forwarded"][0], "for=127.0.0.1;proto=http;host=\"localhost\"");
    assert_ne!(seen["x-request-id"][0], "spoofed-id");
}

/// A backend that answers each request with bytes a test chose for its path, over raw TCP: the
/// responses a well-behaved HTTP library would never produce. Counts the connections it took,
/// and records each request it read whole (`METHOD path`).
struct ScriptedBackend {
    addr: std::net::SocketAddr,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// What a [`ScriptedBackend`] answers: the bytes to send (empty for none) and whether to close
/// the connection after them.
type Script = (&'static [u8], bool);

impl ScriptedBackend {
    async fn start(script: fn(&str) -> Script) -> ScriptedBackend {
        Self::start_with(move |path, _| script(path)).await
    }

    /// [`ScriptedBackend::start`], with a script that also gets the request's place on its
    /// connection (0 for the first).
    async fn start_with(
        script: impl Fn(&str, usize) -> Script + Copy + Send + Sync + 'static,
    ) -> ScriptedBackend {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count, seen) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    for nth in 0.. {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end);
                        // The body, by its Content-Length (the gateway sends small ones so).
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.split_once(':')
                                    .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                                    .map(|(_, v)| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        while buf.len() < length {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..length);
                        let mut words = head.split(' ');
                        let (method, path) = (
                            words.next().unwrap_or("").to_owned(),
                            words.next().unwrap_or("/").to_owned(),
                        );
                        seen.lock().unwrap().push(format!("{method} {path}"));
                        let (bytes, close) = script(&path, nth);
                        if sock.write_all(bytes).await.is_err() {
                            return;
                        }
                        if close {
                            let _ = sock.shutdown().await;
                            return;
                        }
                    }
                });
            }
        });
        ScriptedBackend { addr, connections, requests }
    }

    /// How many times a request `METHOD path` arrived whole.
    fn received(&self, request: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| *r == request).count()
    }

    /// A gateway forwarding every path to this backend; `upstream_extra` goes into `[upstream]`.
    fn gate(&self, upstream_extra: &str) -> Gate {
        start(
            "",
            &format!(
                "[upstream]\nurl = \"http://{}\"\n{upstream_extra}\n[[routes]]\nmatch = \"/**\"\n",
                self.addr
            ),
        )
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn backend_script(path: &str) -> (&'static [u8], bool) {
    match path {
        "/chunked" => (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", false),
        // Framing a client could read differently from the gateway: each is refused with a 502.
        // They keep the connection open, so a body read "to the end of the connection" stalls.
        "/chunked-and-length" => (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false),
        "/length-list" => (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", false),
        "/length-twice" => (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", false),
        "/length-leading-zero" => (b"HTTP/1.1 200 OK\r\nContent-Length: 05\r\n\r\nhello", false),
        "/gzip-and-length" => (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello", false),
        "/gzip-chunked" => (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false),
        "/chunked-twice" => (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false),
        "/until-close" => (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", true),
        "/early-hints" => (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
        "/conflicting-length" => (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", true),
        "/not-http" => (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", true),
        "/bad-chunk" => (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", true),
        "/truncated" => (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", true),
        "/unasked-upgrade" => (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", true),
        // Answers, then closes the kept-alive connection as a backend's idle timeout would.
        "/then-close" => (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce", true),
        "/own-policies" => (
            b"HTTP/1.1 200 OK\r\nReferrer-Policy: no-referrer\r\nPermissions-Policy: camera=(self)\r\n\
              Cross-Origin-Opener-Policy: unsafe-none\r\nX-Frame-Options: SAMEORIGIN\r\n\
              Content-Security-Policy: default-src 'self'\r\nContent-Length: 2\r\n\r\nok",
            false,
        ),
        "/hop-by-hop" => (
            b"HTTP/1.1 200 OK\r\nConnection: X-Internal, keep-alive\r\nKeep-Alive: timeout=5\r\nX-Internal: 1\r\n\
              Server: nginx/1.2\r\nX-Powered-By: PHP\r\nX-Frontgate-Subject: forged\r\nUpgrade: h2c\r\n\
              Trailer: x-t\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
            false,
        ),
        _ => (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
    }
}

#[tokio::test]
async fn backend_responses_are_relayed_by_their_framing_and_bad_ones_refused() {
    let backend = ScriptedBackend::start(backend_script).await;
    let gate = backend.gate("mask_5xx = false");
    let client = gate.tls();
    let mut h1 = client.h1().await;
    let mut get = async |path: &str| {
        let r = req("GET", path).body(Full::default()).unwrap();
        match h1.send_request(r).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                match http_body_util::BodyExt::collect(resp.into_body()).await {
                    Ok(b) => Ok((status, headers, b.to_bytes())),
                    Err(_) => Err(status),
                }
            }
            Err(_) => Err(0),
        }
    };
    // Chunked: decoded (extensions and trailers dropped), its Content-Length ignored, and the
    // connection reused after the last chunk.
    let (s, h, b) = get("/chunked").await.unwrap();
    assert_eq!((s, &b[..]), (200, &b"hello world"[..]));
    assert!(h.get("content-length").is_none_or(|v| v == "11"), "{h:?}");
    assert_eq!(get("/ok").await.unwrap().2, "ok");
    assert_eq!(backend.connections(), 1, "the connection was not reused after a chunked body");
    // Hop-by-hop fields (and those Connection names), fingerprints and forged identity
    // headers stay between the backend and the gateway; the connection is kept.
    let (s, h, b) = get("/hop-by-hop").await.unwrap();
    assert_eq!((s, &b[..]), (200, &b"ok"[..]));
    for name in [
        "connection",
        "keep-alive",
        "x-internal",
        "server",
        "x-powered-by",
        "x-frontgate-subject",
        "upgrade",
        "trailer",
        "proxy-connection",
    ] {
        assert!(h.get(name).is_none(), "{name} was relayed: {h:?}");
    }
    assert_eq!(h["x-kept"], "yes");
    // A backend's own security policies are kept as it sent them; the gateway fills in the rest.
    let (_, h, _) = get("/own-policies").await.unwrap();
    for (name, value) in [
        ("referrer-policy", "no-referrer"),
        ("permissions-policy", "camera=(self)"),
        ("cross-origin-opener-policy", "unsafe-none"),
        ("x-frame-options", "SAMEORIGIN"),
        ("content-security-policy", "default-src 'self'"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(h.get_all(name).iter().collect::<Vec<_>>(), [value], "{name}: {h:?}");
    }
    assert_eq!(backend.connections(), 1, "keep-alive in Connection was not honoured");
    // Interim responses are skipped.
    assert_eq!(get("/early-hints").await.unwrap().2, "ok");
    // A body that runs to the end of the connection arrives whole.
    let (s, _, b) = get("/until-close").await.unwrap();
    assert_eq!((s, &b[..]), (200, &b"until the end"[..]));
    // Responses that cannot be relayed faithfully are a 502 problem, never passed on, and
    // promptly (not after waiting for a connection the backend keeps open).
    for path in
        AMBIGUOUS_FRAMING.iter().chain(&["/conflicting-length", "/not-http", "/unasked-upgrade"])
    {
        let (s, h, b) = tokio::time::timeout(WAIT, get(path))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"))
            .unwrap_or_else(|s| panic!("{path}: failed ({s})"));
        assert_problem(http::StatusCode::from_u16(s).unwrap(), &h, &b, 502, "upstream_unavailable");
    }
    assert!(gate.logs().contains("malformed response"), "{}", gate.logs());
}

/// Responses whose framing is not one canonical Content-Length or one `chunked`.
const AMBIGUOUS_FRAMING: &[&str] = &[
    "/length-list",
    "/length-twice",
    "/length-leading-zero",
    "/gzip-and-length",
    "/chunked-and-length",
    "/gzip-chunked",
    "/chunked-twice",
];
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Response framing over HTTP/2: a backend response with an ambiguous length is a 502 on the
/// stream (never a 200 head followed by a reset), and the access log records the 502.
#[tokio::test]
async fn ambiguous_response_framing_is_a_502_over_http2_and_logged_as_one() {
    let backend = ScriptedBackend::start(backend_script).await;
    let gate = backend.gate("");
    let mut h2 = gate.tls().h2().await;
    for path in AMBIGUOUS_FRAMING {
        let r = http::Request::builder()
            .uri(format!("https://localhost:{}{path}", gate.addr.port()))
            .body(Full::<Bytes>::default())
            .unwrap();
        let resp = tokio::time::timeout(WAIT, h2.send_request(r))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"))
            .expect("h2 response");
        let (s, h, b) = tokio::time::timeout(WAIT, collect(resp))
            .await
            .unwrap_or_else(|_| panic!("{path}: body stalled"));
        assert_problem(s, &h, &b, 502, "upstream_unavailable");
    }
    for path in AMBIGUOUS_FRAMING {
        // The access line is written as the response ends: wait for each (bounded).
        let access = || {
            gate.logs()
                .lines()
                .find(|l| {
                    l.contains("frontgate::access") && l.contains(&format!("\"path\":\"{path}\""))
                })
                .map(str::to_owned)
        };
        let deadline = std::time::Instant::now() + WAIT;
        while access().is_none() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let line = access();
        let line =
            line.unwrap_or_else(|| panic!("no access log line for {path}:\n{}", gate.logs()));
        assert!(line.contains("\"status\":502"), "{line}");
    }
}

/// Answers a connection's first request; a later one on the same connection is read whole and
/// the connection closed without an answer: a backend whose keep-alive ended as the request
/// came, or that took it and died.
fn drops_reused_connections(path: &str, nth: usize) -> Script {
    if path == "/drop" && nth > 0 {
        (b"", true)
    } else {
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
    }
}

/// RFC 9110 §9.2.2: a request whose pooled connection closed after it was written, before any
/// response, is sent again only when its method is idempotent. A POST (which the backend may
/// have acted on) reaches the backend once and the client gets a 502; a GET or PUT is retried
/// once on a fresh connection and succeeds.
#[tokio::test]
async fn only_idempotent_requests_are_sent_again_after_the_backend_closed_without_answering() {
    let backend = ScriptedBackend::start_with(drops_reused_connections).await;
    let gate = backend.gate("");
    let client = gate.tls();
    for (method, retried) in
        [("POST", false), ("PATCH", false), ("GET", true), ("PUT", true), ("DELETE", true)]
    {
        // A first request pools a connection; the next one goes on it and is dropped.
        let (s, _, _) = client.get("/pool").await;
        assert_eq!(s, 200);
        let r = req(method, "/drop")
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"x=1")))
            .unwrap();
        let (s, h, b) = client.send(r).await;
        let request = format!("{method} /drop");
        if retried {
            assert_eq!((s.as_u16(), &b[..]), (200, &b"ok"[..]), "{method}");
            assert_eq!(backend.received(&request), 2, "{method}: sent once, dropped, sent again");
        } else {
            assert_problem(s, &h, &b, 502, "upstream_unavailable");
            assert_eq!(backend.received(&request), 1, "{method} was sent to the backend again");
        }
    }
}

#[tokio::test]
async fn a_backend_breaking_off_a_body_breaks_off_the_clients_too() {
    let backend = ScriptedBackend::start(backend_script).await;
    let gate = backend.gate("");
    for path in ["/truncated", "/bad-chunk"] {
        // Whatever of the response was relayed before the body failed, the client's connection
        // ends without a complete response: never a short body that looks whole.
        let out = gate
            .tls()
            .raw(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .await;
        if out.is_empty() {
            continue;
        }
        assert!(out.starts_with("HTTP/1.1 200"), "{path}: {out}");
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        match path {
            "/truncated" => {
                assert!(out.contains("content-length: 100") && body.len() < 100, "{out}")
            }
            _ => assert!(!body.ends_with("0\r\n\r\n"), "a chunked body was terminated: {out}"),
        }
        // The access log line went out with the 200 head; a line under the same request id
        // says the response was cut short.
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("{out}"))
            .trim();
        assert!(
            gate.wait_for_log_count(&format!("\"request_id\":\"{id}\",\"error\""), 1, WAIT).await,
            "{path}: not logged as broken off:\n{}",
            gate.logs()
        );
    }
    assert_eq!(backend.connections(), 2, "a broken connection was reused");
    // Over HTTP/2 the stream is reset (before or after the 200 head reached the client), while
    // the access log line says 200: the broken-off line under its request id says otherwise.
    let mut h2 = gate.tls().h2().await;
    let r = http::Request::builder()
        .uri(format!("https://localhost:{}/truncated", gate.addr.port()))
        .body(Full::<Bytes>::default())
        .unwrap();
    if let Ok(resp) = tokio::time::timeout(WAIT, h2.send_request(r)).await.expect("h2 answer") {
        assert_eq!(resp.status(), 200);
        assert!(
            tokio::time::timeout(WAIT, http_body_util::BodyExt::collect(resp.into_body()))
                .await
                .unwrap()
                .is_err(),
            "the body looked whole"
        );
    }
    assert!(gate.wait_for_log_count("\"path\":\"/truncated\"", 2, WAIT).await, "{}", gate.logs());
    let logs = gate.logs();
    let access = logs
        .lines()
        .rfind(|l| l.contains("frontgate::access") && l.contains("\"path\":\"/truncated\""))
        .unwrap();
    let id = access.split("\"request_id\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap();
    let line = format!("\"request_id\":\"{id}\",\"error\"");
    assert!(
        gate.wait_for_log_count(&line, 1, WAIT).await,
        "not logged as broken off:\n{}",
        gate.logs()
    );
    assert!(
        gate.logs()
            .lines()
            .any(|l| l.contains(&line) && l.contains("upstream response body broken off")),
        "{}",
        gate.logs()
    );
}

#[tokio::test]
async fn a_pooled_connection_the_backend_closed_is_replaced_without_failing_the_request() {
    let backend = ScriptedBackend::start(backend_script).await;
    let gate = backend.gate("");
    let client = gate.tls();
    let mut h1 = client.h1().await;
    for i in 0..20 {
        // Each answer closes its upstream connection right after the (keep-alive) response:
        // the next request finds a dead pooled connection and must get a fresh one.
        let r = req("GET", "/then-close").body(Full::default()).unwrap();
        let (s, _, b) = collect(h1.send_request(r).await.unwrap()).await;
        assert_eq!((s.as_u16(), &b[..]), (200, &b"once"[..]), "request {i}");
    }
    assert_eq!(backend.connections(), 20);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_across_the_handover_to_hyper() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!(
            "{}\n[[routes]]\nmatch = \"/echo/**\"\n\n[[routes]]\nmatch = \"GET /big\"\n",
            up.config()
        ),
    );
    // Bodiless requests and small Content-Length bodies are read by the gateway's own
    // HTTP/1.1 reader; the chunked POST hands the connection to hyper together with the bytes
    // already read after it.
    let big = 100_000;
    let raw = format!(
        "GET /echo/one HTTP/1.1\r\nHost: localhost\r\n\r\n\
         GET /big?bytes={big} HTTP/1.1\r\nHost: localhost\r\n\r\n\
         HEAD /echo/two HTTP/1.1\r\nHost: localhost\r\n\r\n\
         POST /echo/small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhowdy\
         POST /echo/three HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
         GET /echo/four HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let out = gate.tls().raw(raw.as_bytes()).await;
    assert_eq!(out.matches("HTTP/1.1 ").count(), 6, "{out}");
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 6, "{out}");
    let at = |needle: &str| out.find(needle).unwrap_or_else(|| panic!("no {needle:?} in {out}"));
    let order = [
        at("\"path\":\"/echo/one\""),
        at(&"x".repeat(big)),
        at("\"body\":\"howdy\""),
        at("\"body\":\"hello\""),
        at("\"path\":\"/echo/four\""),
    ];
    assert!(order.is_sorted(), "{order:?}");
    assert!(
        out.contains("\"path\":\"/echo/small\"") && out.contains("\"path\":\"/echo/three\""),
        "{out}"
    );
    assert!(!out.contains("\"path\":\"/echo/two\""), "a HEAD answer has no body: {out}");
    let last = &out[out.rfind("HTTP/1.1 ").unwrap()..];
    assert!(last.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{last}");

    // `Connection: close` on a bodiless request: answered, and nothing after it is read.
    let out = gate
        .tls()
        .raw(b"GET /echo/a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\nGET /echo/b HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    assert!(out.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{out}");
    assert!(!out.contains("/echo/b"), "{out}");
}

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let mut tls = gate.tls().connect(&[b"http/1.1"]).await;
    // Both kinds of line end; the head is only complete with its very last byte.
    let head = b"GET /echo/slow HTTP/1.1\r\nHost: localhost\nX-A: 1\r\nConnection: close\r\n\n";
    for b in head {
        tls.write_all(&[*b]).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let mut out = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("\"path\":\"/echo/slow\""), "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
}
