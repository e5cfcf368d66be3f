//! Soak with faults: three frontgate nodes sharing one PostgreSQL and one Redis (both started
//! by this test, on free ports in a temp dir, so it can restart them), a backend it can
//! restart, and the real IdP. Bounded mixed traffic (sessions from a real login, API keys,
//! JWTs from the IdP, proof-of-work solutions, OpenAPI-validated bodies, WebSockets) over
//! HTTP/1.1 and HTTP/2 from a fixed number of clients, while the config is reloaded and the
//! backend, Redis and PostgreSQL are restarted. Every request is counted and classified: an
//! answer that is not the expected success must be the documented outage behaviour (503
//! `store_unavailable` while a store is down, 502 `upstream_unavailable` while the backend is),
//! never a 500, never no answer. Also measured: recovery after each restart (first success)
//! and each node's RSS before and after.
//!
//! `SOAK_SECONDS` sets how long the traffic runs (default 120). Results are printed (run with
//! `--no-capture` to see them); docs/security.md has the figures of a run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::common::oidc::{CLIENT_ID, CLIENT_SECRET, Provider};
use crate::common::sessions::{browser, free_port, session_key, start_idp};
use crate::common::{Gate, TlsClient, Upstream, spawn};

const ADMIN_TOKEN: &str = "soak-admin-token-0123456789abcdef";
const HASH_SECRET: &str = "soak-hash-secret-0123456789abcdef0123";
const POW_SECRET: &str = "soak-pow-secret-0123456789abcdef0123";
/// The resource the IdP issues ES256 JWT access tokens for (tests/fixtures/oidc/provider.mjs).
const API: &str = "https://api.example.test/";
const USER_AGENT: &str = "soak/1";
/// A refusal counts as outage behaviour if it overlaps a fault's window: from the fault's
/// start to this long after the service is back (the first success is measured separately).
const GRACE: Duration = Duration::from_secs(10);
/// What the test asserts for recovery (the target is 5 s; see docs/security.md). Wide, for a
/// loaded 2-core machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The peers this test owns and restarts.

/// Runs a command as the `postgres` user when this process is root (initdb and the server
/// refuse to run as root), else as is.
fn pg_command(bin: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c.current_dir("/");
        c
    } else {
        Command::new(bin)
    }
}

/// The newest PostgreSQL server binaries of the Debian package.
fn pg_bin_dir() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql (the Debian postgresql package; scripts/test.sh installs it)")
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL with pg_ctl under /usr/lib/postgresql/*/bin").1
}

/// A PostgreSQL server of this test's own, in a temp dir, on a free port.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let _ = Command::new("chown").args(["-R", "postgres:"]).arg(dir.path()).status();
        let bin = pg_bin_dir();
        let data = dir.path().join("data");
        let out = pg_command(&bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let pg = Postgres { dir, bin, port: free_port() };
        pg.up();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.path().join("data");
        pg_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl")
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        let out = self.pg_ctl(&["-l", &log, "-w", "-t", "60", "-o", &opts, "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// A fast shutdown: open connections are cut, as in a restart by an operator.
    fn down(&self) {
        let out = self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

/// A Redis server of this test's own, on a free port, without persistence.
struct Redis {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let mut r =
            Redis { dir: tempfile::tempdir().expect("temp dir"), port: free_port(), child: None };
        r.up();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            // Persistent, as a Redis that holds sessions must be: a restart keeps them.
            .args(["--appendonly", "yes", "--dir"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (Debian redis-server; scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, as a service manager stops it; waits for the exit.
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The test upstream (common::Upstream) on a runtime of its own: stopping it drops the runtime,
/// which closes the listener and every open connection, as a process exit would.
struct Backend {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    fn start_on(addr: SocketAddr) -> Backend {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("backend runtime");
            rt.block_on(async move {
                let up = Upstream::start_on(addr).await;
                ready_tx.send(up.addr).expect("report the address");
                let _ = stop_rx.await;
                drop(up);
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        let addr = ready_rx.recv_timeout(Duration::from_secs(20)).expect("backend listening");
        Backend { addr, stop: Some(stop_tx), thread: Some(thread) }
    }

    fn down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.down();
    }
}

// ---------------------------------------------------------------------------------------------
// The gateways.

const SPEC: &str = r#"openapi: 3.0.3
info: {title: soak, version: "1"}
paths:
  /v/items:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [name]
              properties:
                name: {type: string, maxLength: 20}
                n: {type: integer, minimum: 0}
      responses:
        "200": {description: ok}
"#;

struct Shared<'a> {
    upstream: SocketAddr,
    pg: &'a str,
    redis: &'a str,
    prefix: &'a str,
    idp: &'a Provider,
    key: &'a str,
    public: &'a str,
}

/// A node's config; `generation` changes a value a reload must pick up.
fn node_config(dir: &Path, s: &Shared<'_>, generation: u32) -> String {
    format!(
        r#"data_dir = {data:?}

[server]
listen = "127.0.0.1:0"
public_url = "{public}"

[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"

[log]
level = "info"

[upstream]
url = "http://{upstream}"

[store]
url = "{pg}"

[shared]
redis = "{redis}"
prefix = "{prefix}"

[api_keys]
hash_secret = "{HASH_SECRET}"

[oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
scopes = ["openid", "profile", "email", "offline_access"]
session_key = "{key}"

[[jwt.issuers]]
issuer = "{issuer}"
audiences = ["{API}"]
algorithms = ["ES256"]

[pow]
secret = "{POW_SECRET}"
levels = [ {{ above_rps = 0, cost = 50, counter = 20 }} ]
challenge_rate = 1000000
verify_rate_limit = "1000000/min"

[openapi]
spec = "soak.yaml"
response_validation = "off"

[rate_limits.per_ip]
key = "ip"
rate = "{rate}/min"
burst = 100000

[[routes]]
match = "/echo/**"
auth = "session"

[[routes]]
match = "GET /s/**"
auth = "session"
rate_limit = ["per_ip"]

[[routes]]
match = "GET /k/**"
auth = "api_key"
rate_limit = ["per_ip"]

[[routes]]
match = "GET /j/**"
auth = "jwt"

[[routes]]
match = "POST /p/**"
challenge = "pow"

[[routes]]
match = "GET /ws"
rate_limit = ["per_ip"]
"#,
        data = dir.join("data").display().to_string(),
        public = s.public,
        upstream = s.upstream,
        pg = s.pg,
        redis = s.redis,
        prefix = s.prefix,
        issuer = s.idp.issuer,
        key = s.key,
        rate = 6_000_000 + generation,
    )
}

fn start_node(s: &Shared<'_>) -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("soak.yaml"), SPEC).expect("write spec");
    let path = dir.path().join("frontgate.toml");
    std::fs::write(&path, node_config(dir.path(), s, 0)).expect("write config");
    spawn(dir, path, &["serve", "-c"])
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Clients and the tally.

#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    /// The status and the problem document's `code`.
    Refused(u16, String),
    /// No response (connection failure, reset, timeout).
    Lost(String),
}

#[derive(Debug, Clone)]
struct Record {
    kind: &'static str,
    proto: &'static str,
    node: usize,
    sent: Instant,
    done: Instant,
    outcome: Outcome,
}

#[derive(Default)]
struct Tally {
    records: Mutex<Vec<Record>>,
    ws_cut: AtomicU64,
}

enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One client: one connection to one node, reopened when the node closes it.
struct Client {
    tls: TlsClient,
    h2: bool,
    conn: Option<Conn>,
}

impl Client {
    async fn connect(&mut self) -> Result<(), String> {
        let alpn: &[&[u8]] = if self.h2 { &[b"h2"] } else { &[b"http/1.1"] };
        let cfg = self.tls.config(alpn, rustls::ALL_VERSIONS);
        let io = tokio::time::timeout(Duration::from_secs(10), self.tls.connect_with(cfg))
            .await
            .map_err(|_| "TLS connect timed out".to_string())?
            .map_err(|e| format!("TLS connect: {e}"))?;
        let io = TokioIo::new(io);
        self.conn = Some(if self.h2 {
            let (s, c) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
            tokio::spawn(c);
            Conn::H2(s)
        } else {
            let (s, c) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("h1 handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = c.with_upgrades().await;
            });
            Conn::H1(s)
        });
        Ok(())
    }

    /// Sends `req` and reads the whole response. A request the connection never took (it was
    /// closing) is sent again on a new one, as any client does; anything after it was sent
    /// that ends without a response is an error.
    async fn send(&mut self, mut req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        for _ in 0..3 {
            let ready = match &mut self.conn {
                Some(Conn::H1(s)) => s.ready().await.is_ok(),
                Some(Conn::H2(s)) => s.ready().await.is_ok(),
                None => false,
            };
            if !ready {
                self.conn = None;
                self.connect().await?;
            }
            let fut = match self.conn.as_mut().expect("connected") {
                Conn::H1(s) => futures_util::future::Either::Left(s.try_send_request(req)),
                Conn::H2(s) => futures_util::future::Either::Right(s.try_send_request(req)),
            };
            match tokio::time::timeout(Duration::from_secs(30), fut).await {
                Err(_) => {
                    self.conn = None;
                    return Err("no response within 30 s".into());
                }
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    let body =
                        tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
                            .await
                            .map_err(|_| "body not complete within 30 s".to_string())?
                            .map_err(|e| format!("body: {e}"))?
                            .to_bytes();
                    return Ok((status, body));
                }
                Ok(Err(mut e)) => {
                    self.conn = None;
                    match e.take_message() {
                        Some(r) => req = r,
                        None => return Err(format!("request failed: {}", e.into_error())),
                    }
                }
            }
        }
        Err("the node closed three new connections before taking the request".into())
    }
}

fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("user-agent", USER_AGENT);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body)).expect("request")
}

fn problem_code(body: &Bytes) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("(no problem document: {:?})", String::from_utf8_lossy(body)))
}

/// What every worker shares.
struct Ctx {
    nodes: Vec<SocketAddr>,
    certs: Vec<PathBuf>,
    session: String,
    api_key: String,
    jwt: Mutex<(String, Instant)>,
    idp: Arc<Provider>,
    tally: Tally,
    stop: AtomicBool,
}

impl Ctx {
    fn record(
        &self,
        kind: &'static str,
        proto: &'static str,
        node: usize,
        sent: Instant,
        o: Outcome,
    ) {
        let r = Record { kind, proto, node, sent, done: Instant::now(), outcome: o };
        self.tally.records.lock().unwrap().push(r);
    }

    async fn jwt(&self) -> String {
        let (token, at) = self.jwt.lock().unwrap().clone();
        if at.elapsed() < Duration::from_secs(120) {
            return token;
        }
        let fresh = self.idp.client_credentials(API, "read", None).await;
        *self.jwt.lock().unwrap() = (fresh.clone(), Instant::now());
        fresh
    }
}

/// Sends one request and records it; returns the response when it was the expected success.
async fn exchange(
    ctx: &Ctx,
    client: &mut Client,
    node: usize,
    kind: &'static str,
    expect: StatusCode,
    req: Request<Full<Bytes>>,
) -> Option<Bytes> {
    let proto = if client.h2 { "h2" } else { "h1" };
    let sent = Instant::now();
    match client.send(req).await {
        Ok((status, body)) if status == expect => {
            ctx.record(kind, proto, node, sent, Outcome::Ok);
            Some(body)
        }
        Ok((status, body)) => {
            ctx.record(
                kind,
                proto,
                node,
                sent,
                Outcome::Refused(status.as_u16(), problem_code(&body)),
            );
            None
        }
        Err(e) => {
            ctx.record(kind, proto, node, sent, Outcome::Lost(e));
            None
        }
    }
}

/// A proof-of-work clearance: challenge, solve (the official solver), verify.
async fn clearance(ctx: &Ctx, client: &mut Client, node: usize) -> Option<String> {
    let body = exchange(
        ctx,
        client,
        node,
        "pow challenge",
        StatusCode::OK,
        request("GET", "/.frontgate/challenge?route=/p/x", &[], Bytes::new()),
    )
    .await?;
    let c: altcha::Challenge = serde_json::from_slice(&body).expect("challenge JSON");
    let payload = tokio::task::spawn_blocking(move || {
        let solution = altcha::solve_challenge(altcha::SolveChallengeOptions::new(&c))
            .expect("solve")
            .expect("solvable");
        frontgate::checks::pow::protocol::encode_payload(&altcha::Payload {
            challenge: c,
            solution,
        })
    })
    .await
    .expect("solver");
    let body = serde_json::json!({ "altcha": payload }).to_string();
    let v = exchange(
        ctx,
        client,
        node,
        "pow verify",
        StatusCode::OK,
        request("POST", "/.frontgate/verify", &[("content-type", "application/json")], body.into()),
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&v).expect("verify JSON");
    v["clearance"].as_str().map(str::to_owned)
}

/// A WebSocket session through the gateway: handshake, three echoes, close.
async fn websocket(ctx: &Ctx, node: usize) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Error, Message};
    let tls = TlsClient::new(ctx.nodes[node], &ctx.certs[node]);
    let sent = Instant::now();
    let io = match tls.connect_with(tls.config(&[b"http/1.1"], rustls::ALL_VERSIONS)).await {
        Ok(io) => io,
        Err(e) => return ctx.record("websocket", "h1", node, sent, Outcome::Lost(e.to_string())),
    };
    let hs = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async("wss://127.0.0.1/ws", io),
    )
    .await;
    let mut ws = match hs {
        Ok(Ok((ws, _))) => {
            ctx.record("websocket", "h1", node, sent, Outcome::Ok);
            ws
        }
        Ok(Err(Error::Http(resp))) => {
            let body = Bytes::from(resp.body().clone().unwrap_or_default());
            let o = Outcome::Refused(resp.status().as_u16(), problem_code(&body));
            return ctx.record("websocket", "h1", node, sent, o);
        }
        Ok(Err(e)) => {
            return ctx.record("websocket", "h1", node, sent, Outcome::Lost(e.to_string()));
        }
        Err(_) => {
            return ctx.record(
                "websocket",
                "h1",
                node,
                sent,
                Outcome::Lost("handshake timeout".into()),
            );
        }
    };
    // A tunnel cut by a backend restart is counted apart: the handshake was answered.
    for i in 0..3 {
        let text = format!("soak {i}");
        if ws.send(Message::text(text.clone())).await.is_err() {
            ctx.tally.ws_cut.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(m))) if m == Message::text(text) => {}
            _ => {
                ctx.tally.ws_cut.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    let _ = ws.close(None).await;
}

async fn worker(ctx: Arc<Ctx>, id: usize) {
    let node = id % ctx.nodes.len();
    let h2 = (id / ctx.nodes.len()) % 2 == 1;
    let mut client =
        Client { tls: TlsClient::new(ctx.nodes[node], &ctx.certs[node]), h2, conn: None };
    let mut pow: Option<String> = None;
    let mut pow_uses = 0;
    let mut i = id;
    while !ctx.stop.load(Ordering::Relaxed) {
        i += 1;
        match i % 6 {
            0 => {
                let cookie = format!("__Host-frontgate={}", ctx.session);
                let h = [("cookie", cookie.as_str()), ("accept", "application/json")];
                let r = request("GET", "/s/x", &h, Bytes::new());
                exchange(&ctx, &mut client, node, "session", StatusCode::OK, r).await;
            }
            1 => {
                let r = request("GET", "/k/x", &[("x-api-key", &ctx.api_key)], Bytes::new());
                exchange(&ctx, &mut client, node, "api key", StatusCode::OK, r).await;
            }
            2 => {
                let auth = format!("Bearer {}", ctx.jwt().await);
                let r = request("GET", "/j/x", &[("authorization", &auth)], Bytes::new());
                exchange(&ctx, &mut client, node, "jwt", StatusCode::OK, r).await;
            }
            3 => {
                if pow.is_none() || pow_uses >= 20 {
                    pow = clearance(&ctx, &mut client, node).await;
                    pow_uses = 0;
                }
                if let Some(c) = &pow {
                    pow_uses += 1;
                    let r = request("POST", "/p/x", &[("x-frontgate-clearance", c)], "{}".into());
                    exchange(&ctx, &mut client, node, "pow request", StatusCode::OK, r).await;
                }
            }
            4 => {
                let body = format!("{{\"name\":\"soak\",\"n\":{i}}}");
                let h = [("content-type", "application/json")];
                let r = request("POST", "/v/items", &h, body.into());
                exchange(&ctx, &mut client, node, "openapi body", StatusCode::OK, r).await;
            }
            _ => {
                if !h2 && i % 24 == 5 {
                    websocket(&ctx, node).await;
                } else {
                    let cookie = format!("__Host-frontgate={}", ctx.session);
                    let h = [("cookie", cookie.as_str()), ("accept", "application/json")];
                    let r = request("GET", "/s/y", &h, Bytes::new());
                    exchange(&ctx, &mut client, node, "session", StatusCode::OK, r).await;
                }
            }
        }
        // Bounded: each client waits a little between requests, so the machine keeps room for
        // the nodes, the stores and the other suites.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Faults.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Reload,
    Backend,
    Redis,
    Postgres,
}

struct Happened {
    fault: Fault,
    start: Instant,
    /// When the service was back (or the reload done on every node).
    up: Instant,
}

/// Whether a refusal is what the docs say a client gets during this fault.
fn documented(fault: Fault, status: u16, code: &str) -> bool {
    match fault {
        Fault::Redis | Fault::Postgres => status == 503 && code == "store_unavailable",
        Fault::Backend => status == 502 && code == "upstream_unavailable",
        Fault::Reload => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_faults_three_nodes_one_postgres_one_redis() {
    let seconds: u64 =
        std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(120).max(30);
    let run = Duration::from_secs(seconds);
    let warmup = Duration::from_secs(10);

    let pg = Arc::new(tokio::task::spawn_blocking(Postgres::start).await.unwrap());
    let mut redis = tokio::task::spawn_blocking(Redis::start).await.unwrap();
    let mut backend = Backend::start_on("127.0.0.1:0".parse().unwrap());
    let backend_addr = backend.addr;

    // The login origin: a node without TLS on a known port, which the IdP redirects to. The
    // session it makes lives in the shared Redis, so every soak node knows it.
    let login_port = free_port();
    let public = format!("http://127.0.0.1:{login_port}");
    let idp = Arc::new(start_idp(&public, None));
    let key = session_key();
    let prefix = crate::common::stores::redis_prefix();
    let (pg_url, redis_url) = (pg.url(), redis.url());
    let shared = Shared {
        upstream: backend_addr,
        pg: &pg_url,
        redis: &redis_url,
        prefix: &prefix,
        idp: &idp,
        key: &key,
        public: &public,
    };
    let login_node = {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("soak.yaml"), SPEC).expect("write spec");
        let text = node_config(dir.path(), &shared, 0).replace(
            "listen = \"127.0.0.1:0\"\npublic_url",
            &format!("listen = \"127.0.0.1:{login_port}\"\ntls = \"off\"\npublic_url"),
        );
        let path = dir.path().join("frontgate.toml");
        std::fs::write(&path, text).expect("write config");
        spawn(dir, path, &["serve", "-c"])
    };
    let nodes: Vec<Gate> = (0..3).map(|_| start_node(&shared)).collect();
    let context = |nodes: &[Gate]| {
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let logs = n.logs();
                let tail: Vec<&str> = logs.lines().rev().take(40).collect();
                format!(
                    "--- node {i} (last lines)\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("browser-state.json").display().to_string();
    let out = browser(
        "login-save",
        vec![
            ("FG".into(), public.clone()),
            ("IDP".into(), idp.issuer.clone()),
            ("STATE".into(), state),
        ],
        || format!("--- login node\n{}\n--- idp\n{}", login_node.logs(), idp.logs()),
    )
    .await;
    let session = out["cookie"].as_str().expect("session cookie").to_owned();
    drop(login_node);

    let (status, v) = crate::common::api_keys::admin_call(
        nodes[0].admin.unwrap(),
        Some(ADMIN_TOKEN),
        "POST",
        "/admin/v1/keys",
        Some(serde_json::json!({"name": "soak"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let api_key = v["key"].as_str().expect("key").to_owned();
    let jwt = idp.client_credentials(API, "read", None).await;

    let ctx = Arc::new(Ctx {
        nodes: nodes.iter().map(|n| n.addr).collect(),
        certs: nodes.iter().map(|n| n.cert_path()).collect(),
        session,
        api_key,
        jwt: Mutex::new((jwt, Instant::now())),
        idp: idp.clone(),
        tally: Tally::default(),
        stop: AtomicBool::new(false),
    });
    // Twelve clients: four per node, half HTTP/1.1 and half HTTP/2.
    let workers: Vec<_> = (0..12).map(|id| tokio::spawn(worker(ctx.clone(), id))).collect();

    let t0 = Instant::now();
    tokio::time::sleep(warmup).await;
    let rss_before: Vec<u64> = nodes.iter().map(|n| rss_kib(n.child.id())).collect();
    let plan = [
        (0.10, Fault::Reload),
        (0.25, Fault::Backend),
        (0.45, Fault::Redis),
        (0.65, Fault::Postgres),
        (0.85, Fault::Reload),
    ];
    let down = Duration::from_secs(2);
    let mut happened = Vec::new();
    let mut generation = 0;
    for (at, fault) in plan {
        tokio::time::sleep_until((t0 + warmup + run.mul_f64(at)).into()).await;
        let start = Instant::now();
        match fault {
            Fault::Reload => {
                generation += 1;
                for n in &nodes {
                    let before = n.log_count("configuration reloaded");
                    let text = node_config(n.dir.path(), &shared, generation);
                    std::fs::write(&n.config_path, text).expect("rewrite config");
                    n.signal("HUP");
                    assert!(
                        n.wait_for_log_count(
                            "configuration reloaded",
                            before + 1,
                            Duration::from_secs(60)
                        )
                        .await,
                        "reload not done\n{}",
                        n.logs()
                    );
                }
            }
            Fault::Backend => {
                tokio::task::spawn_blocking({
                    let mut b = std::mem::replace(
                        &mut backend,
                        Backend { addr: backend_addr, stop: None, thread: None },
                    );
                    move || b.down()
                })
                .await
                .unwrap();
                tokio::time::sleep(down).await;
                backend = Backend::start_on(backend_addr);
            }
            Fault::Redis => {
                redis = tokio::task::spawn_blocking(move || {
                    redis.down();
                    std::thread::sleep(down);
                    redis.up();
                    redis
                })
                .await
                .unwrap();
            }
            Fault::Postgres => {
                let pg = pg.clone();
                tokio::task::spawn_blocking(move || {
                    pg.down();
                    std::thread::sleep(down);
                    pg.up();
                })
                .await
                .unwrap();
            }
        }
        happened.push(Happened { fault, start, up: Instant::now() });
    }
    tokio::time::sleep_until((t0 + warmup + run).into()).await;
    ctx.stop.store(true, Ordering::Relaxed);
    for w in workers {
        tokio::time::timeout(Duration::from_secs(90), w).await.expect("a client hung").unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after: Vec<u64> = nodes.iter().map(|n| rss_kib(n.child.id())).collect();

    // ---- Classify every request.
    let records = ctx.tally.records.lock().unwrap().clone();
    let mut by_kind: BTreeMap<(&str, &str), [u64; 3]> = BTreeMap::new();
    let mut refusals: BTreeMap<(Fault, &str, u16, String), u64> = BTreeMap::new();
    let mut bad: Vec<String> = Vec::new();
    let mut bad_count = 0u64;
    for r in &records {
        let slot = by_kind.entry((r.kind, r.proto)).or_default();
        match &r.outcome {
            Outcome::Ok => slot[0] += 1,
            Outcome::Refused(status, code) => {
                // The latest fault whose window holds it (windows may overlap).
                let during = happened.iter().rev().find(|h| {
                    documented(h.fault, *status, code)
                        && r.done >= h.start
                        && r.sent <= h.up + GRACE
                });
                match during {
                    Some(h) => {
                        slot[1] += 1;
                        *refusals.entry((h.fault, r.kind, *status, code.clone())).or_default() += 1;
                    }
                    None => {
                        slot[2] += 1;
                        bad_count += 1;
                        if bad.len() < 20 {
                            bad.push(format!(
                                "{} over {} to node {} at {:.1}s: {status} {code}",
                                r.kind,
                                r.proto,
                                r.node,
                                r.sent.duration_since(t0).as_secs_f64()
                            ));
                        }
                    }
                }
            }
            Outcome::Lost(e) => {
                slot[2] += 1;
                bad_count += 1;
                if bad.len() < 20 {
                    bad.push(format!(
                        "{} over {} to node {} at {:.1}s: no response ({e})",
                        r.kind,
                        r.proto,
                        r.node,
                        r.sent.duration_since(t0).as_secs_f64()
                    ));
                }
            }
        }
    }
    // Recovery: for each restart, each kind refused in its window, the first success of a
    // request sent after the service was back.
    let mut recovery: Vec<(Fault, &str, Duration)> = Vec::new();
    for h in happened.iter().filter(|h| h.fault != Fault::Reload) {
        let refused: std::collections::BTreeSet<&str> = records
            .iter()
            .filter(|r| matches!(&r.outcome, Outcome::Refused(s, c) if documented(h.fault, *s, c)))
            .filter(|r| r.done >= h.start && r.sent <= h.up + GRACE)
            .map(|r| r.kind)
            .collect();
        for kind in refused {
            let first = records
                .iter()
                .filter(|r| r.kind == kind && r.sent >= h.up && matches!(r.outcome, Outcome::Ok))
                .map(|r| r.done)
                .min();
            let took = first.map_or(Duration::MAX, |f| f.duration_since(h.up));
            recovery.push((h.fault, kind, took));
        }
    }

    let total = records.len() as u64;
    let mut report = format!(
        "soak: {seconds} s of traffic after {} s warm-up, 3 nodes, 12 clients\n",
        warmup.as_secs()
    );
    report.push_str(&format!("requests: {total}, not as documented: {bad_count}, WebSocket tunnels cut by a restart: {}\n", ctx.tally.ws_cut.load(Ordering::Relaxed)));
    report.push_str("kind / protocol: ok, documented outage refusals, other\n");
    for ((kind, proto), [ok, refused, other]) in &by_kind {
        report.push_str(&format!("  {kind} / {proto}: {ok}, {refused}, {other}\n"));
    }
    report.push_str("documented refusals by fault:\n");
    for ((fault, kind, status, code), n) in &refusals {
        report.push_str(&format!("  {fault:?}: {kind}: {status} {code} x{n}\n"));
    }
    for h in &happened {
        report.push_str(&format!(
            "fault {:?} at {:.1}s, back after {:.2}s\n",
            h.fault,
            h.start.duration_since(t0).as_secs_f64(),
            h.up.duration_since(h.start).as_secs_f64()
        ));
    }
    for (fault, kind, took) in &recovery {
        report.push_str(&format!(
            "recovery after {fault:?}: {kind} first success {:.2}s after\n",
            took.as_secs_f64()
        ));
    }
    for (i, (b, a)) in rss_before.iter().zip(&rss_after).enumerate() {
        report.push_str(&format!(
            "node {i} RSS: {:.1} MiB after warm-up, {:.1} MiB after the run ({:+.1}%)\n",
            *b as f64 / 1024.0,
            *a as f64 / 1024.0,
            (*a as f64 / *b as f64 - 1.0) * 100.0
        ));
    }
    println!("{report}");
    // SOAK_KEEP_LOGS=DIR: every node's whole log, for a look at what happened.
    if let Ok(dir) = std::env::var("SOAK_KEEP_LOGS") {
        for (i, n) in nodes.iter().enumerate() {
            let _ = std::fs::write(Path::new(&dir).join(format!("soak-node-{i}.log")), n.logs());
        }
    }

    assert!(total > 1000, "too little traffic to judge\n{report}");
    assert_eq!(bad_count, 0, "{report}\nfirst ones:\n{}\n{}", bad.join("\n"), context(&nodes));
    for (fault, kind, took) in &recovery {
        assert!(
            *took <= RECOVERY_BOUND,
            "{kind} did not recover within {RECOVERY_BOUND:?} of the {fault:?} restart\n{report}\n{}",
            context(&nodes)
        );
    }
    // The faults were real: with the backend down for 2 s, clients were refused.
    assert!(
        refusals.keys().any(|(fault, ..)| *fault == Fault::Backend),
        "no request met the backend restart\n{report}"
    );
    // Every kind succeeded at all, on both protocols where it runs on both.
    for ((kind, proto), [ok, ..]) in &by_kind {
        assert!(*ok > 0, "{kind} over {proto} never succeeded\n{report}");
    }
    for (i, (b, a)) in rss_before.iter().zip(&rss_after).enumerate() {
        // The target is 10 % (docs/security.md has the measured figure); the bound is wide.
        assert!(*a <= b * 3 / 2, "node {i} grew from {b} KiB to {a} KiB\n{report}");
    }
    drop(nodes);
    drop(backend);
    drop(redis);
    drop(pg);
}
