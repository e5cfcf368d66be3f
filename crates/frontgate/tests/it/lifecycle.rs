//! Connection and process lifecycle: slow and idle clients are cut off, reloads never drop a
//! request and refuse bad configs, SIGTERM drains in-flight requests, the connection cap holds,
//! and the admin listener reports health, readiness and metrics. All against the real binary.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn routes(up: &Upstream, extra: &[&str]) -> String {
    let mut s = up.config();
    for m in ["/echo/**", "/slow"].iter().chain(extra) {
        s.push_str(&format!("\n[[routes]]\nmatch = \"{m}\"\n"));
    }
    s
}

/// Reads until the peer closes (EOF or reset) and returns what arrived, or `None` if the
/// connection was still open after `within`.
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    within: Duration,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok().map(|_| out)
}

/// Slowloris: a client that sends part of a request head and then nothing is disconnected once
/// header_read_timeout passes, and it does not stop another client from being served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_head_is_cut_off_and_others_are_served() {
    let up = Upstream::start().await;
    let gate = start("header_read_timeout = \"1s\"", &routes(&up, &[]));
    let client = gate.tls();

    let mut slow = client.connect(&[b"http/1.1"]).await;
    slow.write_all(b"GET /echo/slow HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    slow.flush().await.unwrap();
    let slow_task =
        tokio::spawn(async move { read_until_closed(&mut slow, Duration::from_secs(5)).await });

    let (status, _, _) = client.get("/echo/other").await;
    assert_eq!(status, 200, "a normal client is served while the slow one waits");

    let got = slow_task
        .await
        .unwrap()
        .expect("the slow connection was still open 5s after a 1s header timeout");
    let got = String::from_utf8_lossy(&got);
    assert!(!got.contains(" 200 "), "the partial request must not be served: {got}");
    assert_eq!(up.hits(), 1, "only the complete request reached the upstream");
}

/// Slowloris, trickling: a client that keeps sending one header byte at a time, each well within
/// any per-read timeout, is still cut off: the deadline covers the whole request head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_request_head_is_cut_off() {
    let up = Upstream::start().await;
    let gate = start("header_read_timeout = \"1s\"", &routes(&up, &[]));
    let mut tls = gate.tls().connect(&[b"http/1.1"]).await;
    tls.write_all(b"GET /echo/t HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    // At most 5s of trickling (25 bytes), a byte every 200ms.
    for b in b"X-Slow: aaaaaaaaaaaaaaaaaaa".iter() {
        if tls.write_all(&[*b]).await.is_err() || tls.flush().await.is_err() {
            closed = true;
            break;
        }
        if read_until_closed(&mut tls, Duration::from_millis(200)).await.is_some() {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a trickling client kept its connection for {:?} past a 1s header timeout",
        started.elapsed()
    );
    assert_eq!(up.hits(), 0);
}

/// The header timeout runs again for each request head on a kept-alive connection: three
/// quick requests 400 ms apart outlast one 1 s window between them, and a later head that
/// stalls is cut off just like a first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_later_head_on_a_kept_alive_connection_is_cut_off() {
    let up = Upstream::start().await;
    let gate = start("header_read_timeout = \"1s\"", &routes(&up, &[]));
    let mut tls = gate.tls().connect(&[b"http/1.1"]).await;
    for i in 0..3 {
        tls.write_all(format!("GET /echo/k{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let head = read_response(&mut tls).await;
        assert!(head.starts_with("http/1.1 200 "), "request {i}: {head}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tls.write_all(b"GET /echo/stalled HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let got = read_until_closed(&mut tls, Duration::from_secs(5))
        .await
        .expect("a stalled head was still open 5s after a 1s header timeout");
    assert!(
        !String::from_utf8_lossy(&got).contains(" 200 "),
        "the partial request must not be served"
    );
    assert_eq!(up.hits(), 3);
}

/// Reads one response with a Content-Length body; returns its head.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("response within 5s")
            .unwrap();
        assert!(n > 0, "closed mid-response: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if got.len() >= end + 4 + len {
                return head;
            }
        }
    }
}

/// Idle slot-holding: a client that completes the TLS handshake and then never sends a request
/// (HTTP/1.1 or HTTP/2) is disconnected after header_read_timeout, so idle sockets cannot
/// exhaust max_connections. (hyper has no such timeout for HTTP/2; the gateway adds one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_that_never_sends_a_request_is_closed() {
    let up = Upstream::start().await;
    let gate = start("header_read_timeout = \"1s\"", &routes(&up, &[]));
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let mut tls = gate.tls().connect(&[alpn]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        let got = read_until_closed(&mut tls, Duration::from_secs(5)).await;
        assert!(
            got.is_some(),
            "{}: an idle connection was still open after 5s",
            String::from_utf8_lossy(alpn)
        );
    }
    // HTTP/2 with only the connection preface, and no request, is also closed.
    let mut tls = gate.tls().connect(&[b"h2"]).await;
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let got = read_until_closed(&mut tls, Duration::from_secs(5)).await;
    assert!(got.is_some(), "h2: a connection with no stream was still open after 5s");
    // The deadline only covers the first request: an HTTP/2 connection in use outlives it.
    let mut h2 = gate.tls().h2().await;
    for i in 0..2 {
        let r = http::Request::builder()
            .uri(format!("https://localhost/echo/h2-{i}"))
            .body(Full::default())
            .unwrap();
        assert_eq!(collect(h2.send_request(r).await.expect("h2 request")).await.0, 200);
        if i == 0 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }
    assert_eq!(up.hits(), 2);
}

/// A TCP connection that never starts the TLS handshake is closed after the handshake timeout
/// (header_read_timeout), so idle sockets cannot pile up.
#[tokio::test]
async fn tcp_connection_without_tls_handshake_is_closed() {
    let up = Upstream::start().await;
    let gate = start("header_read_timeout = \"1s\"", &routes(&up, &[]));
    let mut tcp = TcpStream::connect(gate.addr).await.unwrap();
    let got = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
    assert_eq!(got.as_deref(), Some(&[][..]), "expected a silent close within 5s");
    // A handshake that starts and stalls half-way is cut off too.
    let mut tcp = TcpStream::connect(gate.addr).await.unwrap();
    tcp.write_all(&[22, 3, 1, 0, 200, 1, 0]).await.unwrap();
    let got = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
    assert!(got.is_some(), "a stalled handshake was still open after 5s");
    assert!(gate.metrics().await.contains("frontgate_tls_handshake_failures_total"));
}

/// Reload under load: while four clients send 600 requests (keep-alive, with reconnects), the
/// config is rewritten twice and SIGHUP sent each time. Not one request may fail, and the routes
/// added by the reloads work afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_drops_no_request() {
    const TASKS: usize = 4;
    const PER_TASK: usize = 150;
    let up = Upstream::start().await;
    let gate = start("", &routes(&up, &[]));
    let client = gate.tls();
    assert_eq!(client.get("/status/201").await.0, 404, "not routed before the reload");

    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (client, done) = (client.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut conn = None;
            for i in 0..PER_TASK {
                // A new connection every 25 requests: handshakes happen across the reloads too.
                if i % 25 == 0 {
                    conn = Some(client.h1().await);
                }
                let s = conn.as_mut().unwrap();
                let r = req("GET", "/slow?ms=5").body(Full::default()).unwrap();
                match s.send_request(r).await {
                    Ok(resp) => {
                        let (status, _, body) = collect(resp).await;
                        if status != 200 || &body[..] != b"slow" {
                            failures.push(format!("request {i}: {status} {body:?}"));
                        }
                    }
                    Err(e) => failures.push(format!("request {i}: {e}")),
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            failures
        }));
    }

    let wait_done = |n: usize| {
        let done = done.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while done.load(Ordering::SeqCst) < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let mut done_at_reload = Vec::new();
    for (i, extra) in [&["/status/**"][..], &["/status/**", "/big"]].iter().enumerate() {
        wait_done(60 * (i + 1) + done_at_reload.last().copied().unwrap_or(0)).await;
        std::fs::write(&gate.config_path, config_text(gate.dir.path(), "", &routes(&up, extra)))
            .unwrap();
        gate.signal("HUP");
        assert!(
            gate.wait_for_log_count("configuration reloaded", i + 1, WAIT).await,
            "reload {i}:\n{}",
            gate.logs()
        );
        done_at_reload.push(done.load(Ordering::SeqCst));
    }

    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    assert_eq!(done.load(Ordering::SeqCst), TASKS * PER_TASK);
    assert!(failures.is_empty(), "{} failed requests: {failures:?}", failures.len());
    assert!(
        done_at_reload.iter().all(|&d| d < TASKS * PER_TASK),
        "both reloads should land while requests are still running: {done_at_reload:?}"
    );
    assert_eq!(client.get("/status/201").await.0, 201, "route added by the first reload");
    let (status, _, body) = client.get("/big?bytes=10").await;
    assert_eq!(
        (status.as_u16(), &body[..]),
        (200, &b"xxxxxxxxxx"[..]),
        "route added by the second reload"
    );
}

/// A broken config never replaces a working one: an unknown key (or a file that is not TOML)
/// makes SIGHUP log "reload refused" naming file:line, and the previous routes keep serving.
#[tokio::test]
async fn invalid_config_is_refused_on_reload() {
    let up = Upstream::start().await;
    let gate = start("", &routes(&up, &[]));
    let client = gate.tls();
    assert_eq!(client.get("/echo/before").await.0, 200);

    let text =
        config_text(gate.dir.path(), "listen_backlog_typo = 5", &routes(&up, &["/status/**"]));
    let line = text.lines().position(|l| l.starts_with("listen_backlog_typo")).unwrap() + 1;
    std::fs::write(&gate.config_path, &text).unwrap();
    gate.signal("HUP");
    assert!(gate.wait_for_log_count("reload refused", 1, WAIT).await, "{}", gate.logs());
    let refused =
        gate.logs.lock().unwrap().iter().find(|l| l.contains("reload refused")).cloned().unwrap();
    let place = format!("{}:{line}:", gate.config_path.display());
    assert!(refused.contains(&place), "the refusal should name {place}: {refused}");
    assert!(refused.contains("listen_backlog_typo"), "{refused}");
    assert_eq!(client.get("/echo/after").await.0, 200, "old config keeps serving");
    assert_eq!(
        client.get("/status/201").await.0,
        404,
        "nothing from the refused config took effect"
    );

    std::fs::write(&gate.config_path, "data_dir = \"x\"\n[server\nlisten = ").unwrap();
    gate.signal("HUP");
    assert!(gate.wait_for_log_count("reload refused", 2, WAIT).await, "{}", gate.logs());
    let refused = gate
        .logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("reload refused"))
        .nth(1)
        .cloned()
        .unwrap();
    assert!(refused.contains(&format!("{}:2:", gate.config_path.display())), "{refused}");
    assert_eq!(client.get("/echo/still").await.0, 200);

    // And a good config after the bad ones is taken.
    std::fs::write(
        &gate.config_path,
        config_text(gate.dir.path(), "", &routes(&up, &["/status/**"])),
    )
    .unwrap();
    gate.signal("HUP");
    assert!(gate.wait_for_log_count("configuration reloaded", 1, WAIT).await, "{}", gate.logs());
    assert_eq!(client.get("/status/201").await.0, 201);
    assert_eq!(gate.log_count("configuration reloaded"), 1);
    assert!(gate.metrics().await.contains("frontgate_config_reloads_total{result=\"refused\"} 2"));
}

/// Graceful shutdown: on SIGTERM the gateway stops accepting, lets the requests already in
/// flight finish (here 5 slow ones), and exits successfully well within shutdown_grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let up = Upstream::start().await;
    let mut gate = start("shutdown_grace = \"10s\"", &routes(&up, &[]));
    let client = gate.tls();

    let mut inflight = Vec::new();
    for _ in 0..5 {
        let client = client.clone();
        inflight.push(tokio::spawn(async move { client.get("/slow?ms=1500").await }));
    }
    let deadline = Instant::now() + WAIT;
    while up.hits() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(up.hits(), 5, "all five requests reached the upstream");
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.signal("TERM");
    assert!(gate.wait_for_log_count("draining", 1, WAIT).await, "{}", gate.logs());

    // A newcomer is turned away: the connection is refused, or dropped before any response.
    let late = async {
        let tls = client.connect_with(client.config(&[b"http/1.1"], rustls::ALL_VERSIONS)).await?;
        let mut s = h1_on(tls).await;
        let resp = s
            .send_request(req("GET", "/echo/late").body(Full::default()).unwrap())
            .await
            .map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>(resp.status())
    };
    let late = tokio::time::timeout(WAIT, late)
        .await
        .expect("a late connection should fail fast, not hang");
    assert!(late.is_err(), "a request after the drain began was served: {late:?}");
    // Load balancers see the drain on the admin listener.
    let (ready, _, body) = plain_get(gate.admin.unwrap(), "/ready").await;
    assert_eq!((ready.as_u16(), &body[..]), (503, &b"{\"status\":\"draining\"}"[..]));

    for t in inflight {
        let (status, _, body) = t.await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (200, &b"slow"[..]));
    }
    let status =
        gate.wait_exit(Duration::from_secs(10)).await.expect("did not exit within shutdown_grace");
    assert!(status.success(), "exit status {status:?}\n{}", gate.logs());
    assert!(gate.logs().contains("stopped"));
    assert!(!gate.logs().contains("shutdown grace ran out"), "{}", gate.logs());
    assert_eq!(up.hits(), 5);
}

/// Connection exhaustion: with max_connections = 2 and two connections held open, a third is
/// closed at once without a response; when one of the two goes away, new connections work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_enforced() {
    let up = Upstream::start().await;
    let gate = start("max_connections = 2", &routes(&up, &[]));
    let client = gate.tls();

    let mut held = Vec::new();
    for i in 0..2 {
        let mut s = client.h1().await;
        let (status, _, _) = collect(
            s.send_request(req("GET", &format!("/echo/{i}")).body(Full::default()).unwrap())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        held.push(s);
    }

    // Closed at once (default handshake timeout is 10s, so a close within 3s is the cap).
    let mut tcp = TcpStream::connect(gate.addr).await.unwrap();
    let got = read_until_closed(&mut tcp, Duration::from_secs(3)).await;
    assert_eq!(got.as_deref(), Some(&[][..]), "third connection should be closed without a byte");
    let third = tokio::time::timeout(
        WAIT,
        client.connect_with(client.config(&[b"http/1.1"], rustls::ALL_VERSIONS)),
    )
    .await
    .unwrap();
    assert!(third.is_err(), "third connection completed a TLS handshake");
    assert!(
        gate.metrics().await.contains("frontgate_connections_refused_total 2"),
        "{}",
        gate.metrics().await
    );

    // The held ones still work.
    for s in held.iter_mut() {
        let (status, _, _) = collect(
            s.send_request(req("GET", "/echo/again").body(Full::default()).unwrap()).await.unwrap(),
        )
        .await;
        assert_eq!(status, 200);
    }

    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        // The gateway frees the slot when it sees the close; retry until it has (bounded).
        if let Ok(tls) =
            client.connect_with(client.config(&[b"http/1.1"], rustls::ALL_VERSIONS)).await
        {
            let mut s = h1_on(tls).await;
            if let Ok(resp) =
                s.send_request(req("GET", "/echo/new").body(Full::default()).unwrap()).await
            {
                break collect(resp).await.0;
            }
        }
        assert!(Instant::now() < deadline, "no slot freed after closing a connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 200);
    assert_eq!(up.hits(), 5);
}

/// Orchestrators and monitoring: /health and /ready on the admin listener answer 200 with JSON,
/// and /metrics counts requests. None of these are reachable on the public listener.
#[tokio::test]
async fn admin_health_ready_and_metrics() {
    let up = Upstream::start().await;
    let gate = start("", &routes(&up, &[]));
    let admin = gate.admin.unwrap();
    for (path, state) in [("/health", "ok"), ("/ready", "ready")] {
        let (status, headers, body) = plain_get(admin, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(json(&body)["status"], state, "{path}");
    }
    let client = gate.tls();
    assert_eq!(client.get("/echo/counted").await.0, 200);
    let metrics = gate.metrics().await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("frontgate_requests_total{")
                && l.contains("route=\"/echo/**\"")
                && l.contains("decision=\"forwarded\"")
        })
        .unwrap_or_else(|| panic!("no forwarded request counted:\n{metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
    // Both latency histograms hold that one request: cumulative buckets ending in the count,
    // and the gateway's overhead no larger than the whole duration.
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}{{route=\"/echo/**\"");
        let l = metrics
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {name}:\n{metrics}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    };
    for histogram in ["frontgate_request_duration_seconds", "frontgate_overhead_seconds"] {
        assert!(metrics.contains(&format!("# TYPE {histogram} histogram\n")), "{metrics}");
        assert_eq!(value(&format!("{histogram}_count")), 1.0);
        let buckets: Vec<f64> = metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{histogram}_bucket{{route=\"/echo/**\",le=")))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(buckets.len(), 20, "19 bounds and +Inf:\n{metrics}");
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]) && buckets[19] == 1.0, "{buckets:?}");
    }
    let (total, overhead) =
        (value("frontgate_request_duration_seconds_sum"), value("frontgate_overhead_seconds_sum"));
    assert!(total > 0.0 && overhead <= total, "duration {total}, overhead {overhead}");
    for path in ["/metrics", "/health", "/ready"] {
        assert_eq!(client.get(path).await.0, 404, "{path} must not be on the public listener");
    }
}

/// HTTP/2 idle connections do not hold a slot forever: after its last request, a connection with
/// nothing running is closed once idle_timeout passes (between one and two windows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connection_is_closed_after_idle_timeout() {
    let up = Upstream::start().await;
    let gate = start("idle_timeout = \"1s\"\nheader_read_timeout = \"1s\"", &routes(&up, &[]));
    let mut h2 = gate.tls().h2().await;
    let resp = h2.send_request(req("GET", "/echo/x").body(Full::default()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(8);
    while !h2.is_closed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(h2.is_closed(), "idle HTTP/2 connection still open");
}

/// A response still streaming keeps its HTTP/2 connection busy: the idle timeout does not close
/// a connection whose only stream is a slow download, and new requests still go through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_http2_response_is_not_idle() {
    use http_body_util::BodyExt;
    let up = Upstream::start().await;
    let gate =
        start("idle_timeout = \"1s\"\nheader_read_timeout = \"1s\"", &routes(&up, &["/big"]));
    let mut h2 = gate.tls().h2().await;
    let resp = h2
        .send_request(req("GET", "/big?bytes=20000000").body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // Read slowly for ~3 s (three idle windows), so flow control keeps the stream open.
    let mut got = 0usize;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        match tokio::time::timeout(WAIT, body.frame()).await.expect("stalled") {
            Some(Ok(f)) => got += f.data_ref().map_or(0, |d| d.len()),
            other => panic!("stream ended early after {got} bytes: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!h2.is_closed(), "connection closed while a response was streaming");
    let second =
        h2.send_request(req("GET", "/echo/again").body(Full::default()).unwrap()).await.unwrap();
    assert_eq!(second.status(), 200);
}
