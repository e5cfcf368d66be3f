//! Tools of the adversarial suites (`attacks_*.rs`): the frontgate process's CPU time and
//! resident memory from `/proc`, a well-behaved client that measures its own latency while an
//! attack runs, a raw HTTP/2 frame writer for sequences no HTTP/2 library will send, and the
//! figure lines `bench/attacks.sh` collects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::{Gate, TlsClient, collect, req};

/// How much longer than in the test command the suites run: `FRONTGATE_ATTACK_SCALE`
/// (`bench/attacks.sh` sets it; default 1).
pub fn scale() -> u64 {
    std::env::var("FRONTGATE_ATTACK_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1)
}

/// A process's CPU time (user + system) and resident set, from `/proc/PID/stat` and `status`.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu_secs: f64,
    pub rss_kib: u64,
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub fn usage(pid: u32) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (f[11].parse().unwrap(), f[12].parse().unwrap());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    Usage { cpu_secs: (utime + stime) / clock_ticks(), rss_kib }
}

impl Gate {
    pub fn usage(&self) -> Usage {
        usage(self.child.id())
    }
}

/// Prints one measured figure as a line `bench/attacks.sh` collects (`--no-capture`).
pub fn figure(suite: &str, case: &str, fields: serde_json::Value) {
    let line = serde_json::json!({ "suite": suite, "case": case, "figures": fields });
    eprintln!("ATTACK-FIGURE {line}");
}

/// Latency percentile (`p` in 0..=100) in milliseconds.
pub fn percentile_ms(samples: &[Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v: Vec<Duration> = samples.to_vec();
    v.sort();
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// What the well-behaved client saw.
#[derive(Debug, Default, Clone)]
pub struct ProbeReport {
    pub h1: Vec<Duration>,
    pub h2: Vec<Duration>,
    pub errors: Vec<String>,
}

impl ProbeReport {
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "h1_requests": self.h1.len(),
            "h1_p50_ms": round2(percentile_ms(&self.h1, 50.0)),
            "h1_p99_ms": round2(percentile_ms(&self.h1, 99.0)),
            "h2_requests": self.h2.len(),
            "h2_p50_ms": round2(percentile_ms(&self.h2, 50.0)),
            "h2_p99_ms": round2(percentile_ms(&self.h2, 99.0)),
            "errors": self.errors.len(),
        })
    }

    /// No error, and the client did get through (some requests on each protocol).
    pub fn assert_unaffected(&self, what: &str) {
        assert!(self.errors.is_empty(), "{what}: the normal client saw errors: {:?}", self.errors);
        assert!(
            self.h1.len() >= 3 && self.h2.len() >= 3,
            "{what}: the normal client got too few answers (h1 {}, h2 {})",
            self.h1.len(),
            self.h2.len()
        );
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A normal client: one HTTP/1.1 keep-alive connection and one HTTP/2 connection, each sending
/// `GET path` in turn with a short pause, recording latency and every error, until stopped.
/// A connection the gateway closes is reopened (an HTTP/1.1 keep-alive connection may be
/// closed between requests; that is not an error), but a request that fails or does not
/// get a 200 within 10 s is one.
pub struct Prober {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<ProbeReport>>,
    task: tokio::task::JoinHandle<()>,
}

impl Prober {
    pub fn start(client: &TlsClient, path: &str) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(ProbeReport::default()));
        let (client, path, s, r) = (client.clone(), path.to_owned(), stop.clone(), report.clone());
        let task = tokio::spawn(async move {
            let mut h1 = None;
            let mut h2 = None;
            while !s.load(Ordering::Relaxed) {
                // HTTP/1.1, keep-alive.
                if h1
                    .as_ref()
                    .is_none_or(|c: &hyper::client::conn::http1::SendRequest<_>| c.is_closed())
                {
                    h1 = Some(client.h1().await);
                }
                let c = h1.as_mut().unwrap();
                let t = Instant::now();
                let res = tokio::time::timeout(Duration::from_secs(10), async {
                    c.ready().await.map_err(|e| e.to_string())?;
                    let resp = c
                        .send_request(req("GET", &path).body(Full::<Bytes>::default()).unwrap())
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(collect(resp).await.0)
                })
                .await;
                match res {
                    Ok(Ok(st)) if st == 200 => r.lock().unwrap().h1.push(t.elapsed()),
                    Ok(Ok(st)) => r.lock().unwrap().errors.push(format!("h1 status {st}")),
                    // A keep-alive connection closed as the request went out: retried once
                    // on a fresh one, as every HTTP/1.1 client does for an idempotent GET.
                    Ok(Err(e)) if e.contains("closed") || e.contains("canceled") => {
                        h1 = None;
                        continue;
                    }
                    Ok(Err(e)) => r.lock().unwrap().errors.push(format!("h1: {e}")),
                    Err(_) => r.lock().unwrap().errors.push("h1: no answer within 10 s".into()),
                }
                // HTTP/2.
                if h2
                    .as_ref()
                    .is_none_or(|c: &hyper::client::conn::http2::SendRequest<_>| c.is_closed())
                {
                    h2 = Some(client.h2().await);
                }
                let c = h2.as_mut().unwrap();
                let t = Instant::now();
                let res = tokio::time::timeout(Duration::from_secs(10), async {
                    c.ready().await.map_err(|e| e.to_string())?;
                    let resp = c
                        .send_request(req("GET", &path).body(Full::<Bytes>::default()).unwrap())
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(collect(resp).await.0)
                })
                .await;
                match res {
                    Ok(Ok(st)) if st == 200 => r.lock().unwrap().h2.push(t.elapsed()),
                    Ok(Ok(st)) => r.lock().unwrap().errors.push(format!("h2 status {st}")),
                    Ok(Err(e)) => {
                        h2 = None;
                        r.lock().unwrap().errors.push(format!("h2: {e}"))
                    }
                    Err(_) => r.lock().unwrap().errors.push("h2: no answer within 10 s".into()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Prober { stop, report, task }
    }

    pub async fn stop(self) -> ProbeReport {
        self.stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        self.report.lock().unwrap().clone()
    }
}

/// Runs the normal client alone for `d`: the idle baseline.
pub async fn probe_for(client: &TlsClient, path: &str, d: Duration) -> ProbeReport {
    let p = Prober::start(client, path);
    tokio::time::sleep(d).await;
    p.stop().await
}

// ---- raw HTTP/2 ----

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;
pub const END_STREAM: u8 = 1;
pub const ACK: u8 = 1;
pub const END_HEADERS: u8 = 4;

pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    assert!(n < 1 << 24);
    let mut f = Vec::with_capacity(9 + n);
    f.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8, ty, flags]);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

/// An HPACK integer with an `n`-bit prefix, the first byte's other bits from `flags`.
fn hpack_int(out: &mut Vec<u8>, flags: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128 + 128) as u8);
        v /= 128;
    }
    out.push(v as u8);
}

/// A literal field without indexing, its name given literally (no Huffman coding).
pub fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    hpack_int(out, 0, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// A literal field without indexing whose name is the static table's entry `index`.
fn hpack_indexed_name(out: &mut Vec<u8>, index: usize, value: &str) {
    hpack_int(out, 0, 4, index);
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// A request's header block: `:method`, `:scheme https`, `:path`, `:authority localhost`.
pub fn request_block(method: &str, path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    hpack_indexed_name(&mut b, 2, method);
    b.push(0x87); // :scheme https
    hpack_indexed_name(&mut b, 4, path);
    hpack_indexed_name(&mut b, 1, "localhost");
    b
}

/// What the gateway sent a raw connection.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub frames: u64,
    pub goaway: Option<u32>,
    pub rst_streams: u64,
    pub headers: u64,
    pub data_bytes: u64,
    pub settings_acks: u64,
    /// PING acknowledgements received (answers to the attacker's pings).
    pub pings: u64,
    /// PINGs the gateway sent (keep-alive), each acknowledged while reading.
    pub pings_from_gateway: u64,
    pub closed: Option<Instant>,
}

/// An HTTP/2 connection over TLS written frame by frame. A task reads what the gateway sends
/// and records it in [`Seen`]; while `read` is set it acknowledges the gateway's SETTINGS and
/// PINGs, as a live client (or a careful attacker) does, so keep-alive pings never end the
/// connection for it. Without `read`, it stops reading after the first SETTINGS.
pub struct RawH2 {
    w: Arc<tokio::sync::Mutex<WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>>>,
    pub seen: Arc<Mutex<Seen>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for RawH2 {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RawH2 {
    /// Connects, sends the preface and `initial` SETTINGS.
    pub async fn connect(client: &TlsClient, initial: &[(u16, u32)], read: bool) -> RawH2 {
        let tls = client.connect(&[b"h2"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (r, mut w) = tokio::io::split(tls);
        w.write_all(PREFACE).await.unwrap();
        w.write_all(&settings(initial)).await.unwrap();
        let w = Arc::new(tokio::sync::Mutex::new(w));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let reader = tokio::spawn(read_frames(r, w.clone(), seen.clone(), read));
        // The gateway's first SETTINGS is acknowledged before anything else is written.
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().frames == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        RawH2 { w, seen, reader }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.w.lock().await.write_all(bytes).await
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until the gateway closed the connection; true if it did.
    pub async fn closed_within(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if self.seen.lock().unwrap().closed.is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.seen.lock().unwrap().closed.is_some()
    }
}

async fn read_frames(
    mut r: ReadHalf<tokio_rustls::client::TlsStream<TcpStream>>,
    w: Arc<tokio::sync::Mutex<WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>>>,
    seen: Arc<Mutex<Seen>>,
    read: bool,
) {
    let mut acked_first = false;
    loop {
        if !read && acked_first {
            // An attacker that stops reading: the gateway's writes back up.
            std::future::pending::<()>().await;
        }
        let mut head = [0u8; 9];
        if r.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let (ty, flags) = (head[3], head[4]);
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).await.is_err() {
            break;
        }
        let mut reply = None;
        {
            let mut s = seen.lock().unwrap();
            s.frames += 1;
            match ty {
                SETTINGS if flags & ACK == 0 && (read || !acked_first) => {
                    acked_first = true;
                    reply = Some(frame(SETTINGS, ACK, 0, &[]));
                }
                SETTINGS if flags & ACK != 0 => s.settings_acks += 1,
                PING if flags & ACK == 0 && read => {
                    s.pings_from_gateway += 1;
                    reply = Some(frame(PING, ACK, 0, &payload));
                }
                PING => s.pings += 1,
                GOAWAY if payload.len() >= 8 => {
                    s.goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()))
                }
                RST_STREAM => s.rst_streams += 1,
                HEADERS => s.headers += 1,
                DATA => s.data_bytes += len as u64,
                _ => {}
            }
        }
        if let Some(f) = reply {
            let _ = w.lock().await.write_all(&f).await;
        }
    }
    seen.lock().unwrap().closed = Some(Instant::now());
}
