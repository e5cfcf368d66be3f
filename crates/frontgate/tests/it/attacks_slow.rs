//! Slow attacks with Debian's `slowhttptest` against the TLS listener of a real frontgate
//! process: slowloris (slow headers), slow body (R-U-Dead-Yet), slow read, and the range
//! attack. While each runs, a normal client (HTTP/1.1 keep-alive and HTTP/2) measures its own
//! latency; the test holds that it sees no error, that frontgate closes the attacker's
//! connections within its configured timeouts (plus a wide margin), and that memory stays
//! bounded. Latency figures are printed (`ATTACK-FIGURE`), not asserted: they go in
//! docs/security.md "Standing adversarial suites" (`bench/attacks.sh`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::attack::*;
use crate::common::*;
use serde_json::json;

const RSS_GROWTH_CAP_KIB: u64 = 64 * 1024;
/// Attacker connections per run.
const CONNECTIONS: u32 = 200;

/// One line of slowhttptest's CSV (`-g -o`): its view of its own connections each second.
#[derive(Debug, Clone, Copy)]
struct Tick {
    second: u32,
    closed: u32,
    pending: u32,
    connected: u32,
}

fn read_ticks(csv: &Path) -> Vec<Tick> {
    let text = std::fs::read_to_string(csv).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            Some(Tick {
                second: f.first()?.parse().ok()?,
                closed: f.get(1)?.parse().ok()?,
                pending: f.get(2)?.parse().ok()?,
                connected: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn dist() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("index.html"), b"<!doctype html><title>app</title>\n").unwrap();
    // A file large enough that a slow reader cannot take it in one window.
    std::fs::write(d.path().join("large.bin"), vec![b'x'; 4 << 20]).unwrap();
    d
}

async fn gateway(up: &Upstream, dist: &Path) -> Gate {
    start(
        "header_read_timeout = \"2s\"\nidle_timeout = \"4s\"\n",
        &format!(
            "{}timeout = \"3s\"\n\n[[routes]]\nmatch = \"/echo/**\"\n\n[frontend]\ndir = {:?}\n",
            up.config(),
            dist.display().to_string()
        ),
    )
}

/// The gateway's side of its client connections on `port`, from the kernel's view
/// (`/proc/net/tcp` and `tcp6`): sockets not listening and not in TIME-WAIT, and the bytes
/// waiting in their send queues. A socket the gateway closed with data the client does not
/// take stays here (FIN-WAIT-1, its send buffer held) until the kernel gives up on it, so
/// this, not the gateway's own count, says whether a connection is really gone.
fn gateway_sockets(port: u16) -> (u32, u64) {
    let (mut count, mut queued) = (0, 0);
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(queues)) = (f.get(1), f.get(3), f.get(4)) else {
                continue;
            };
            let local_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            // 0A listening, 06 TIME-WAIT, 07 closed.
            if local_port != Some(port) || matches!(*state, "0A" | "06" | "07") {
                continue;
            }
            count += 1;
            queued +=
                queues.split(':').next().and_then(|q| u64::from_str_radix(q, 16).ok()).unwrap_or(0);
        }
    }
    (count, queued)
}

/// What a slowhttptest run left: its per-second view, how it ended, and the gateway's side
/// sampled every 250 ms: (seconds since start, sockets, bytes queued to send).
struct Attack {
    ticks: Vec<Tick>,
    ended: String,
    samples: Vec<(f64, u32, u64)>,
}

/// Runs slowhttptest with `mode_args` for `seconds` against `url`.
async fn slowhttptest(url: &str, port: u16, mode_args: &[&str], seconds: u64) -> Attack {
    let out = tempfile::tempdir().unwrap();
    let prefix = out.path().join("run");
    let (c, l) = (CONNECTIONS.to_string(), seconds.to_string());
    let mut args: Vec<&str> = vec!["-c", &c, "-r", "100", "-l", &l, "-p", "3", "-u", url];
    args.extend_from_slice(mode_args);
    let prefix_s = prefix.display().to_string();
    args.extend_from_slice(&["-g", "-o", &prefix_s]);
    let stdout_path = out.path().join("stdout");
    let mut child = Command::new("slowhttptest")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("slowhttptest (Debian package slowhttptest, installed by scripts/test.sh)");
    let started = std::time::Instant::now();
    let mut samples = Vec::new();
    // Its own length plus a margin; killed past it.
    let deadline = started + Duration::from_secs(seconds + 30);
    loop {
        let (n, q) = gateway_sockets(port);
        samples.push((started.elapsed().as_secs_f64(), n, q));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let text = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let ended = text
        .lines()
        .find_map(|l| l.split_once("Exit status:"))
        .map(|(_, s)| {
            s.replace(|c: char| c.is_control(), "").replace("[1;36m", "").trim().to_owned()
        })
        .unwrap_or_default();
    Attack { ticks: read_ticks(&prefix.with_extension("csv")), ended, samples }
}

/// 200 attacker connections opened at 100 a second (so all within about 3 s, more on a loaded
/// machine); each must be gone from the gateway's side (in the kernel, not just in the
/// gateway's count) `bound` seconds after it opened, `bound` being the configured timeouts
/// that end it. Checked from `2 × (3 + bound) + 3` s (a wide margin: the 200 connections of a
/// slow read take seconds to fill their send buffers on a loaded two-core machine), while the
/// attack runs 6 s longer.
async fn slow_attack(case: &str, path: &str, mode_args: &[&str], bound: u64) {
    let up = Upstream::start().await;
    let d = dist();
    let gate = gateway(&up, d.path()).await;
    let client = gate.tls();
    let check_from = (2 * (3 + bound) + 3) as f64;
    let seconds = (2 * (3 + bound) + 3 + 6) * scale();
    let idle = probe_for(&client, "/echo/p", Duration::from_secs(3)).await;
    let before = gate.usage();
    let probe = Prober::start(&client, "/echo/p");
    let url = format!("https://127.0.0.1:{}{path}", gate.addr.port());
    let attack = slowhttptest(&url, gate.addr.port(), mode_args, seconds).await;
    let report = probe.stop().await;
    let after = gate.usage();
    let peak = attack.samples.iter().map(|s| s.1).max().unwrap_or(0);
    let late: Vec<_> = attack.samples.iter().filter(|s| s.0 >= check_from).collect();
    let late_max = late.iter().map(|s| s.1).max();
    let peak_queued = attack.samples.iter().map(|s| s.2).max().unwrap_or(0);
    figure(
        "slow",
        case,
        json!({
            "seconds": seconds,
            "attacker_connections": CONNECTIONS,
            "gateway_sockets_peak": peak,
            "gateway_sockets_after_bound": late_max,
            "bound_secs": bound,
            "send_queue_peak_kib": peak_queued / 1024,
            "slowhttptest_exit": attack.ended,
            "cpu_secs": round2(after.cpu_secs - before.cpu_secs),
            "rss_before_kib": before.rss_kib,
            "rss_after_kib": after.rss_kib,
            "normal_client_idle": idle.summary(),
            "normal_client_under_attack": report.summary(),
            // slowhttptest's own view each second: closed, pending, connected. (It does not see
            // a reset while its window is shut: after a slow read it still counts as connected
            // what the gateway reset long before.)
            "attacker_view": attack.ticks.iter().map(|t| [t.second, t.closed, t.pending, t.connected]).collect::<Vec<_>>(),
            "sockets": attack.samples.iter().step_by(4).map(|s| [round2(s.0), f64::from(s.1)]).collect::<Vec<_>>(),
        }),
    );
    idle.assert_unaffected(&format!("{case} (idle)"));
    report.assert_unaffected(case);
    assert!(
        attack.ticks.iter().any(|t| t.connected > 0),
        "{case}: the attack never got connected: {:?}",
        attack.ticks
    );
    match late_max {
        // The attacker's connections are gone; what is left is the normal client's two (and
        // one it may be reopening).
        Some(n) => assert!(
            n <= 3,
            "{case}: {n} connections still held {check_from} s into the attack: {:?}",
            attack.samples
        ),
        // slowhttptest stopped early: only because the gateway closed every connection.
        None => assert!(
            attack.ended.contains("No open connections left"),
            "{case}: slowhttptest ended early: {}",
            attack.ended
        ),
    }
    let growth = after.rss_kib.saturating_sub(before.rss_kib);
    assert!(growth < RSS_GROWTH_CAP_KIB, "{case}: RSS grew by {growth} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_by_header_read_timeout() {
    // A header line every second, never the blank line: header_read_timeout (2 s) ends it.
    slow_attack("slowloris", "/", &["-H", "-i", "1", "-x", "10"], 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_are_ended_by_the_upstream_timeout() {
    // POST with Content-Length 8192, ten bytes a second: the route's timeout (3 s, the
    // upstream's) answers 504, then the lingering close reads what the client still sends for
    // at most 5 s (server::linger): 8 s.
    slow_attack("slow_body", "/echo/upload", &["-B", "-i", "1", "-x", "10", "-s", "8192"], 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_ended() {
    // A 4 MiB file read five bytes a second through a tiny TCP window: once the socket's
    // send buffer is full, idle_timeout (4 s) without a write it accepts resets the
    // connection (server::stall::SendTimeout).
    slow_attack(
        "slow_read",
        "/large.bin",
        &["-X", "-w", "1", "-y", "512", "-n", "1", "-z", "5", "-k", "1"],
        4,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests_are_answered_whole_once() {
    // `Range: bytes=0-,5-0,5-1,...`: the gateway serves no ranges, so each is one plain 200.
    slow_attack("range", "/index.html", &["-R", "-a", "5", "-b", "2000"], 2).await;
}
