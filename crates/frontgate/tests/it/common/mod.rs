//! Test harness: starts the real `frontgate` binary on free ports with its own temp dir, a real
//! upstream on loopback, and speaks HTTP/1.1, HTTP/2 and raw TLS to it. Every process started
//! here is killed when its handle drops.
#![allow(dead_code)]

pub mod api_keys;
pub mod attack;
pub mod jwt;
pub mod node;
pub mod oidc;
pub mod sessions;
pub mod stores;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod openapi;
pub mod raw_backend;

pub const BIN: &str = env!("CARGO_BIN_EXE_frontgate");

/// A running frontgate process.
pub struct Gate {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub redirect: Option<SocketAddr>,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `config` (TOML without [server] listen / [admin] listen / data_dir, which the harness
/// sets to free ports and a temp dir) and starts `frontgate serve`. `server_extra` goes into the
/// [server] table.
pub fn start(server_extra: &str, rest: &str) -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    start_in(dir, server_extra, rest)
}

pub fn config_text(dir: &Path, server_extra: &str, rest: &str) -> String {
    format!(
        "data_dir = {data:?}\n\n[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = \"info\"\n\n{rest}\n",
        data = dir.join("data").display().to_string(),
    )
}

pub fn start_in(dir: tempfile::TempDir, server_extra: &str, rest: &str) -> Gate {
    let config_path = dir.path().join("frontgate.toml");
    std::fs::write(&config_path, config_text(dir.path(), server_extra, rest))
        .expect("write config");
    spawn(dir, config_path, &["serve", "-c"])
}

pub fn spawn(dir: tempfile::TempDir, config_path: PathBuf, args: &[&str]) -> Gate {
    // FRONTGATE_TEST_BIN runs the gateways of a suite from another build (a release binary,
    // for the attack suites' latency figures in docs/security.md); unset, the build under test.
    let bin = std::env::var_os("FRONTGATE_TEST_BIN").unwrap_or_else(|| BIN.into());
    let mut cmd = Command::new(bin);
    cmd.args(args);
    if args.last() == Some(&"-c") {
        cmd.arg(&config_path);
    }
    let mut child = cmd
        .env_remove("FRONTGATE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start frontgate");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    let stdout = child.stdout.take().expect("stdout");
    for stream in [Box::new(stderr) as Box<dyn std::io::Read + Send>, Box::new(stdout)] {
        let logs = logs.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                logs.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
    }
    // Wait for every listener the config asks for, not just the first ones logged.
    let (want_admin, want_redirect) = expected_listeners(&config_path);
    let (mut addr, mut admin, mut redirect) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while addr.is_none() || (want_admin && admin.is_none()) || (want_redirect && redirect.is_none())
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("frontgate did not start; output:\n{}", logs.lock().unwrap().join("\n"));
            }
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if v["message"] != "listening" {
            continue;
        }
        let a: SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
        match v["scheme"].as_str().unwrap() {
            "https" | "http" => addr = Some(a),
            "admin" => admin = Some(a),
            "http-redirect" => redirect = Some(a),
            _ => {}
        }
    }
    Gate { child, dir, config_path, addr: addr.unwrap(), admin, redirect, logs }
}

/// Which optional listeners a config file turns on: (admin, redirect). Unreadable configs
/// expect neither, so the process's own error output is what the caller sees.
fn expected_listeners(config_path: &Path) -> (bool, bool) {
    let Some(v) =
        std::fs::read_to_string(config_path).ok().and_then(|t| t.parse::<toml::Table>().ok())
    else {
        return (false, false);
    };
    let admin =
        v.get("admin").and_then(|a| a.get("enabled")).and_then(|e| e.as_bool()).unwrap_or(true);
    let redirect = v.get("server").and_then(|s| s.get("redirect_http")).is_some();
    (admin, redirect)
}

impl Gate {
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("data/tls/self-signed.crt")
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until a log line contains `needle` (bounded).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.logs.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// How many log lines contain `needle` so far.
    pub fn log_count(&self, needle: &str) -> usize {
        self.logs.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits (without blocking the async runtime) until at least `n` log lines contain `needle`.
    pub async fn wait_for_log_count(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_count(needle) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.log_count(needle) >= n
    }

    /// Waits (bounded) for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub fn tls(&self) -> TlsClient {
        TlsClient::new(self.addr, &self.cert_path())
    }

    pub async fn metrics(&self) -> String {
        let (_, _, body) = plain_get(self.admin.unwrap(), "/metrics").await;
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// A TLS client that trusts the gateway's self-signed certificate.
#[derive(Clone)]
pub struct TlsClient {
    pub addr: SocketAddr,
    roots: Arc<rustls::RootCertStore>,
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl TlsClient {
    pub fn new(addr: SocketAddr, cert: &Path) -> TlsClient {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_file_iter(cert).expect("cert file") {
            roots.add(c.unwrap()).unwrap();
        }
        TlsClient { addr, roots: Arc::new(roots) }
    }

    pub fn config(
        &self,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        cfg
    }

    pub async fn connect(&self, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<TcpStream> {
        self.connect_with(self.config(alpn, rustls::ALL_VERSIONS)).await.expect("TLS connect")
    }

    pub async fn connect_with(
        &self,
        cfg: rustls::ClientConfig,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        connector.connect("localhost".try_into().unwrap(), tcp).await
    }

    /// An HTTP/1.1 connection that can send several requests.
    pub async fn h1(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let tls = self.connect(&[b"http/1.1"]).await;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender
    }

    pub async fn h2(&self) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
        let tls = self.connect(&[b"h2"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "server did not pick h2");
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender
    }

    /// One request on a fresh HTTP/1.1 connection.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, Bytes) {
        let mut s = self.h1().await;
        let resp = s.send_request(req).await.expect("response");
        collect(resp).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Bytes) {
        self.send(req("GET", path).body(Full::default()).unwrap()).await
    }

    /// Sends raw bytes over TLS (HTTP/1.1) and returns everything read until close or timeout.
    pub async fn raw(&self, bytes: &[u8]) -> String {
        let mut tls = self.connect(&[b"http/1.1"]).await;
        tls.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// HTTP/1.1 over an already-open stream (e.g. a TLS stream whose handshake the test inspected).
pub async fn h1_on<S>(io: S) -> hyper::client::conn::http1::SendRequest<Full<Bytes>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
}

pub fn req(method: &str, path: &str) -> http::request::Builder {
    Request::builder().method(method).uri(path).header("host", "localhost")
}

pub async fn collect(resp: Response<Incoming>) -> (StatusCode, HeaderMap, Bytes) {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (parts.status, parts.headers, body)
}

pub fn json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// A plain HTTP/1.1 GET (admin listener, redirect listener, plain-mode gateway).
pub async fn plain_get(addr: SocketAddr, path: &str) -> (StatusCode, HeaderMap, Bytes) {
    plain_send(addr, req("GET", path).body(Full::default()).unwrap()).await
}

/// Bounded: a peer that never answers fails the test with where, instead of hanging it until
/// nextest's 5-minute limit (which says nothing of which peer or request).
pub async fn plain_send(
    addr: SocketAddr,
    r: Request<Full<Bytes>>,
) -> (StatusCode, HeaderMap, Bytes) {
    plain_send_from(None, addr, r).await
}

/// [`plain_send`] from the source address `from` (any of 127.0.0.0/8 on Linux), for what is
/// counted per client address.
pub async fn plain_send_from(
    from: Option<std::net::IpAddr>,
    addr: SocketAddr,
    r: Request<Full<Bytes>>,
) -> (StatusCode, HeaderMap, Bytes) {
    let what = format!("{} {} to {addr}", r.method(), r.uri());
    let exchange = async {
        let tcp = match from {
            None => TcpStream::connect(addr).await.unwrap(),
            Some(ip) => {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::new(ip, 0)).unwrap();
                socket.connect(addr).await.unwrap()
            }
        };
        let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        collect(s.send_request(r).await.unwrap()).await
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer within 60 s to {what}"))
}

/// What the upstream saw of a request: method, raw path-and-query, headers.
pub type SeenRequest = (String, String, HashMap<String, Vec<String>>);

/// A real upstream on loopback that records what reaches it.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    /// The last request seen: method, raw path-and-query, headers.
    pub last: Arc<Mutex<Option<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Endpoints: `/echo/**` (JSON of the request; `?delay_ms=N` answers after N ms), `/slow?ms=N`, `/status/N`, `/ws` (WebSocket
    /// echo), `/big?bytes=N`; anything else is 200 "ok".
    pub async fn start() -> Upstream {
        Upstream::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// The same upstream on a given address (a restarted backend comes back on its port).
    pub async fn start_on(addr: SocketAddr) -> Upstream {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let last = Arc::new(Mutex::new(None));
        let (h, l) = (hits.clone(), last.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (h, l) = (h.clone(), l.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (h, l) = (h.clone(), l.clone());
                        async move {
                            Ok::<_, std::convert::Infallible>(upstream_handle(req, h, l).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Upstream { addr, hits, last, task }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn config(&self) -> String {
        format!("[upstream]\nurl = \"http://{}\"\n", self.addr)
    }
}

fn query_num(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

async fn upstream_handle(
    mut req: Request<Incoming>,
    hits: Arc<AtomicU64>,
    last: Arc<Mutex<Option<SeenRequest>>>,
) -> Response<BoxBody> {
    hits.fetch_add(1, Ordering::SeqCst);
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let method = req.method().to_string();
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    *last.lock().unwrap() = Some((method.clone(), pq.clone(), headers.clone()));
    let path = req.uri().path().to_owned();
    let full = |status: u16, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r
    };
    if path == "/ws" {
        let key = req.headers().get("sec-websocket-key").cloned();
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                use futures_util::{SinkExt, StreamExt};
                let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                let (mut tx, mut rx) = ws.split();
                while let Some(Ok(msg)) = rx.next().await {
                    if (msg.is_text() || msg.is_binary()) && tx.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        });
        let accept =
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.unwrap().as_bytes());
        let mut r = full(101, String::new());
        r.headers_mut().insert("upgrade", "websocket".parse().unwrap());
        r.headers_mut().insert("connection", "upgrade".parse().unwrap());
        r.headers_mut().insert("sec-websocket-accept", accept.parse().unwrap());
        return r;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let mut r =
            full(code.parse().unwrap_or(500), "internal details: stack trace at Db.java:42".into());
        r.headers_mut().insert("retry-after", "7".parse().unwrap());
        return r;
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_millis(query_num(&req, "ms").unwrap_or(1000))).await;
        return full(200, "slow".into());
    }
    if path == "/big" {
        let n = query_num(&req, "bytes").unwrap_or(1 << 20) as usize;
        return full(200, "x".repeat(n));
    }
    if let Some(code) = path.strip_prefix("/echo/answer/") {
        // An operation's error answer, as an API would send it.
        let mut r =
            full(code.parse().unwrap_or(500), "{\"error\":\"not here\",\"internal_id\":42}".into());
        r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        return r;
    }
    if path.starts_with("/echo") {
        // `?delay_ms=N`: answer late (route timeouts).
        if let Some(ms) = query_num(&req, "delay_ms") {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        // Small bodies are echoed too, so a test can see exactly what reached the backend.
        let text = (body.len() <= 4096).then(|| String::from_utf8_lossy(&body).into_owned());
        let v = serde_json::json!({
            "method": method, "path": pq, "headers": headers, "body_len": body.len(), "body": text,
        });
        let mut r = full(200, v.to_string());
        r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        r.headers_mut().insert("server", "secret-backend/1.2.3".parse().unwrap());
        r.headers_mut().insert("x-powered-by", "php/5".parse().unwrap());
        return r;
    }
    // Read the body before answering, as a well-behaved API does: hyper closes a connection
    // whose request body was left unread, and a POST that then meets the closing pooled
    // connection is a 502 by design (never sent twice; tests/it/proxy.rs holds that race).
    let _ = req.into_body().collect().await;
    full(200, "ok".into())
}
