//! The `frontgate` command line, driven as users drive it: the real binary, real files in temp
//! dirs, real sockets on loopback. Every process started here is killed when its guard drops.

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{BIN, TlsClient, Upstream, json, plain_get, req};
use http_body_util::Full;

/// Upper bound on how long any command may take; reaching it is a failure (a hang), not a
/// measurement.
const BOUND: Duration = Duration::from_secs(60);

/// A command with none of the caller's frontgate settings leaking in.
fn frontgate() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("FRONTGATE_CONFIG").env_remove("FRONTGATE_LOG").stdin(Stdio::null());
    cmd
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs a command that should finish by itself; kills it and fails if it does not within BOUND.
fn run(cmd: &mut Command) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start frontgate");
    let mut guard = Guard(child);
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(guard.0.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = drain(guard.0.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            panic!("`{cmd:?}` did not exit within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Kills the child when dropped, so no test leaves a process behind, even when it fails.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A long-running frontgate (serve, demo) with its output captured line by line, per stream.
struct Running {
    _guard: Guard,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The main listener, from the JSON `listening` log line on stderr.
    addr: SocketAddr,
    scheme: String,
}

impl Running {
    fn start(cmd: &mut Command) -> Running {
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start frontgate");
        let (stdout_pipe, stderr_pipe) =
            (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let guard = Guard(child);
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let collect = |pipe: Box<dyn Read + Send>,
                       into: Arc<Mutex<Vec<String>>>,
                       tx: Option<mpsc::Sender<String>>| {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    into.lock().unwrap().push(line.clone());
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            });
        };
        collect(Box::new(stdout_pipe), stdout.clone(), None);
        collect(Box::new(stderr_pipe), stderr.clone(), Some(tx));
        let mut running = Running {
            _guard: guard,
            stdout,
            stderr,
            addr: "0.0.0.0:0".parse().unwrap(),
            scheme: String::new(),
        };
        let (addr, scheme) = running.wait_listening(&rx);
        running.addr = addr;
        running.scheme = scheme;
        running
    }

    /// Reads stderr until the main listener's `listening` line (bounded).
    fn wait_listening(&self, rx: &Receiver<String>) -> (SocketAddr, String) {
        let deadline = Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!("frontgate did not log `listening` on stderr:\n{}", self.output());
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            // The JSON log format puts the message and fields under `fields`, or at the top level.
            let fields = if v.get("fields").is_some() { &v["fields"] } else { &v };
            if fields["message"] != "listening" {
                continue;
            }
            let scheme = fields["scheme"].as_str().expect("scheme field").to_owned();
            if scheme == "https" || scheme == "http" {
                let addr = fields["addr"]
                    .as_str()
                    .expect("addr field")
                    .parse()
                    .expect("addr is a socket address");
                return (addr, scheme);
            }
        }
    }

    /// Waits (bounded) until a stdout line contains `needle`.
    fn wait_stdout(&self, needle: &str) -> bool {
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if self.stdout.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr.lock().unwrap().join("\n")
        )
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// The `path:line:column: message` lines of an error report.
fn error_lines<'a>(stderr: &'a str, path: &Path) -> Vec<(usize, usize, &'a str)> {
    let prefix = format!("{}:", path.display());
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.parse().ok()?;
            let column = parts.next()?.parse().ok()?;
            Some((line, column, parts.next()?.trim_start()))
        })
        .collect()
}

/// A valid config that serves plain HTTP on a free loopback port with no admin listener.
fn plain_config(dir: &Path, rest: &str) -> String {
    format!(
        "data_dir = {data:?}\n\n[server]\nlisten = \"127.0.0.1:0\"\ntls = \"off\"\n\n[admin]\nenabled = false\n\n{rest}",
        data = dir.join("data").display().to_string()
    )
}

#[test]
fn version_prints_the_version() {
    let out = run(frontgate().arg("--version"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("frontgate {}", env!("CARGO_PKG_VERSION")), "{out:?}");
}

#[test]
fn check_accepts_a_good_config_and_prints_warnings_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    // Valid, but with no routes: nothing is forwarded, which deserves a warning.
    let path = write(
        dir.path(),
        "good.toml",
        &plain_config(dir.path(), "[upstream]\nurl = \"http://127.0.0.1:3000\"\n"),
    );
    let out = run(frontgate().arg("check").arg("-c").arg(&path));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("{}: ok", path.display()), "{out:?}");
    assert!(out.stderr.contains(&format!("{}: warning:", path.display())), "{out:?}");
    assert!(out.stderr.contains("no [[routes]]"), "{out:?}");
    assert!(!out.stdout.contains("warning"), "warnings belong on stderr: {out:?}");

    // With a route, nothing to warn about.
    let rest =
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\n\n[[routes]]\nmatch = \"GET /api/**\"\n";
    let path = write(dir.path(), "quiet.toml", &plain_config(dir.path(), rest));
    let out = run(frontgate().args(["check", "--config"]).arg(&path));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("{}: ok", path.display()), "{out:?}");
    assert!(!out.stderr.contains("warning"), "{out:?}");
}

/// `frontgate check -c frontgate.toml` from the config's own directory, with a relative
/// data_dir that does not exist yet and a feature that needs the store: the check stands in an
/// empty database and creates nothing (it used to fail on the relative path's empty ancestor
/// with "No such file or directory").
#[test]
fn check_with_a_relative_config_path_and_a_data_dir_not_made_yet() {
    let dir = tempfile::tempdir().unwrap();
    let text = "data_dir = \"state/data\"\n\n[server]\nlisten = \"127.0.0.1:0\"\ntls = \"off\"\n\n\
                [admin]\nenabled = false\n\n[upstream]\nurl = \"http://127.0.0.1:3000\"\n\n\
                [api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\n\n\
                [[routes]]\nmatch = \"GET /api/**\"\nauth = \"api_key\"\n";
    write(dir.path(), "frontgate.toml", text);
    let out = run(frontgate().args(["check", "-c", "frontgate.toml"]).current_dir(dir.path()));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "frontgate.toml: ok", "{out:?}");
    assert!(!dir.path().join("state").exists(), "check created the data dir");
}

/// One file, five different mistakes: each is reported at its own line and column.
const BAD: &str = r#"[server]
listen = "127.0.0.1:0"
lisen = "127.0.0.1:1"

[upstream]
url = "${FRONTGATE_TEST_UNSET_VAR_XYZ}"
timeout = "forever"

[cors]
allow_origins = ["https://app.test", "null"]

[[routes]]
match = "POST /api/items"

[[routes]]
match = "POST /api/items"
"#;

fn assert_bad_report(out: &Output, path: &Path) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let errors = error_lines(&out.stderr, path);
    let expected: [(usize, usize, &str); 5] = [
        (3, 1, "unknown key `lisen`"),
        (6, 7, "environment variable `FRONTGATE_TEST_UNSET_VAR_XYZ` is not set"),
        (7, 11, "`forever` is not a duration"),
        (10, 17, "the `null` origin is never allowed"),
        (16, 9, "route `POST /api/items` duplicates route `POST /api/items`"),
    ];
    for (line, column, needle) in expected {
        assert!(
            errors.iter().any(|&(l, c, m)| (l, c) == (line, column) && m.contains(needle)),
            "expected {}:{line}:{column}: …{needle}…\n{out:?}",
            path.display()
        );
    }
    assert_eq!(errors.len(), expected.len(), "one line per error, nothing else: {out:?}");
}

#[test]
fn check_reports_every_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", BAD);
    let out = run(frontgate()
        .arg("check")
        .arg("-c")
        .arg(&path)
        .env_remove("FRONTGATE_TEST_UNSET_VAR_XYZ"));
    assert_bad_report(&out, &path);
    assert!(out.stderr.contains(&format!("5 error(s) in {}", path.display())), "{out:?}");
    assert!(out.stdout.is_empty(), "errors belong on stderr: {out:?}");
}

#[test]
fn check_reports_a_syntax_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n\n[server\nlisten = \"127.0.0.1:0\"\n";
    let path = write(dir.path(), "syntax.toml", text);
    let out = run(frontgate().arg("check").arg("-c").arg(&path));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let errors = error_lines(&out.stderr, &path);
    assert_eq!(errors.len(), 1, "{out:?}");
    let (line, column, message) = errors[0];
    assert_eq!(line, 4, "{out:?}");
    assert!(column >= 1 && column <= "[server".len() + 1, "{out:?}");
    assert!(!message.is_empty(), "{out:?}");
}

#[test]
fn check_refuses_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let out = run(frontgate().arg("check").arg("-c").arg(&path));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains(&format!("{}: cannot read the config file", path.display())),
        "{out:?}"
    );
}

#[test]
fn env_vars_are_substituted_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let rest = "[upstream]\nurl = \"${FRONTGATE_TEST_UPSTREAM_URL}\"\n\n[[routes]]\nmatch = \"GET /api/**\"\n";
    let path = write(dir.path(), "env.toml", &plain_config(dir.path(), rest));
    let check = |value: &str| {
        run(frontgate().arg("check").arg("-c").arg(&path).env("FRONTGATE_TEST_UPSTREAM_URL", value))
    };
    let out = check("http://127.0.0.1:3000");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The value really is read from the environment: a bad one is reported at the line using it.
    let out = check("https://127.0.0.1:3000");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let errors = error_lines(&out.stderr, &path);
    let url_line =
        plain_config(dir.path(), rest).lines().position(|l| l.starts_with("url = ")).unwrap() + 1;
    assert!(
        errors.iter().any(|&(l, _, m)| l == url_line && m.contains("https upstreams")),
        "{out:?}"
    );
    // Unset, it is an error naming the variable.
    let out = run(frontgate()
        .arg("check")
        .arg("-c")
        .arg(&path)
        .env_remove("FRONTGATE_TEST_UPSTREAM_URL"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("`FRONTGATE_TEST_UPSTREAM_URL` is not set"), "{out:?}");
}

#[tokio::test]
async fn serve_forwards_to_an_upstream_named_by_an_env_var() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rest = "[upstream]\nurl = \"http://${FRONTGATE_TEST_UPSTREAM_ADDR}\"\n\n[[routes]]\nmatch = \"GET /echo/**\"\n";
    let path = write(dir.path(), "env.toml", &plain_config(dir.path(), rest));
    let upstream_addr = upstream.addr.to_string();
    let gate = tokio::task::spawn_blocking(move || {
        Running::start(
            frontgate()
                .arg("serve")
                .arg("-c")
                .arg(&path)
                .env("FRONTGATE_TEST_UPSTREAM_ADDR", upstream_addr),
        )
    });
    let gate = gate.await.unwrap();
    assert_eq!(gate.scheme, "http");
    let (status, _, body) = plain_get(gate.addr, "/echo/hello").await;
    assert_eq!(status, 200, "{}", gate.output());
    assert_eq!(json(&body)["path"], "/echo/hello");
    assert_eq!(upstream.hits(), 1);
}

#[test]
fn serve_refuses_to_start_with_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", BAD);
    let out = run(frontgate()
        .arg("serve")
        .arg("-c")
        .arg(&path)
        .env_remove("FRONTGATE_TEST_UNSET_VAR_XYZ"));
    assert_bad_report(&out, &path);
    assert!(
        out.stderr.contains(&format!("frontgate: not starting: 5 error(s) in {}", path.display())),
        "{out:?}"
    );
    assert!(!out.stderr.contains("\"listening\""), "{out:?}");
}

#[test]
fn check_reads_frontgate_config_when_no_flag_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "from-env.toml",
        &plain_config(dir.path(), "[upstream]\nurl = \"http://127.0.0.1:3000\"\n"),
    );
    let out = run(frontgate().arg("check").env("FRONTGATE_CONFIG", &good));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("{}: ok", good.display()), "{out:?}");

    let bad = write(dir.path(), "bad-from-env.toml", BAD);
    let out = run(frontgate()
        .arg("check")
        .env("FRONTGATE_CONFIG", &bad)
        .env_remove("FRONTGATE_TEST_UNSET_VAR_XYZ"));
    assert_bad_report(&out, &bad);

    // -c wins over the environment.
    let out = run(frontgate().arg("check").arg("-c").arg(&good).env("FRONTGATE_CONFIG", &bad));
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Neither: a usage error, not a crash.
    let out = run(frontgate().arg("check").current_dir(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("--config"), "{out:?}");
}

#[tokio::test]
async fn demo_runs_everything_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo-data");
    let demo = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            Running::start(
                frontgate()
                    .args([
                        "demo",
                        "--listen",
                        "127.0.0.1:0",
                        "--admin",
                        "127.0.0.1:0",
                        "--redirect",
                        "off",
                        "--data-dir",
                    ])
                    .arg(&data),
            )
        })
        .await
        .unwrap()
    };
    assert_eq!(demo.scheme, "https", "{}", demo.output());

    // The banner goes to stdout, after the listeners are bound.
    assert!(demo.wait_stdout("Press Ctrl-C to stop."), "{}", demo.output());
    let banner = demo.stdout();
    assert!(banner.contains("frontgate demo is running"), "{banner}");
    assert!(banner.contains(&format!("https://{}/", demo.addr)), "{banner}");
    let curls: Vec<&str> = banner.lines().filter(|l| l.trim_start().starts_with("curl ")).collect();
    assert!(curls.len() >= 3, "{banner}");
    assert!(curls.iter().any(|l| l.contains("/api/items")), "{banner}");
    assert!(!banner.contains("http redirect"), "--redirect off: {banner}");

    let cert = data.join("tls/self-signed.crt");
    assert!(cert.is_file(), "{}", demo.output());
    let client = TlsClient::new(demo.addr, &cert);

    // Every command the banner prints does what its comment says, with the Debian curl, over
    // HTTP/2 (curl's default here) and HTTP/1.1.
    for line in banner.lines().filter(|l| l.contains("curl --cacert") && l.contains("https://")) {
        let (command, comment) = line.split_once(" # ").map_or((line, ""), |(c, m)| (c, m));
        let want =
            comment.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 3).unwrap_or("200");
        for version in ["--http2", "--http1.1"] {
            let probe = command.replacen(
                "curl ",
                &format!("curl -s -o /dev/null -w '%{{http_code}}' {version} "),
                1,
            );
            let out = std::process::Command::new("bash").arg("-c").arg(&probe).output().unwrap();
            let got = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                got.trim(),
                want,
                "{version}: {probe}\nexit {:?} {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "curl failed ({version}): {probe}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    let (status, headers, body) = client.get("/api/items").await;
    assert_eq!(status, 200, "{}", demo.output());
    assert!(
        headers["content-type"].to_str().unwrap().starts_with("application/json"),
        "{headers:?}"
    );
    let v = json(&body);
    assert!(v["items"].as_array().is_some_and(|items| !items.is_empty()), "{v}");

    let (status, headers, body) = client.get("/api/admin").await;
    assert_eq!(status, 404);
    assert!(
        headers["content-type"].to_str().unwrap().starts_with("application/problem+json"),
        "{headers:?}"
    );
    assert_eq!(json(&body)["code"], "route_not_found");

    let (status, headers, body) = client.get("/").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"), "{headers:?}");
    let page = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert!(page.starts_with("<!doctype html>") && page.contains("<html"), "{page}");
    assert!(
        page.contains("/.frontgate/widget.js"),
        "the page loads the proof-of-work client: {page}"
    );

    // Proof of work: feedback is refused without a clearance, and the challenge is there to solve
    // (tests/it/pow_js.rs solves it from the demo page in a browser).
    assert!(banner.contains("/api/feedback"), "{banner}");
    let feedback = req("POST", "/api/feedback")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"message":"hi"}"#)))
        .unwrap();
    let (status, _, body) = client.send(feedback).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let p = json(&body);
    assert_eq!(p["code"], "challenge_required");
    assert_eq!(p["challenge"], "/.frontgate/challenge?route=%2Fapi%2Ffeedback");
    let (status, _, body) = client.get("/.frontgate/challenge?route=%2Fapi%2Ffeedback").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let challenge = json(&body);
    assert_eq!(challenge["parameters"]["algorithm"], "PBKDF2/SHA-256", "{challenge}");
    assert_eq!(challenge["parameters"]["cost"], 2000, "{challenge}");
    let (status, _, body) = client.get("/.frontgate/widget.js").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("window.frontgate"));
    drop(demo);
}

/// `frontgate keys list | head`: the reader closes the pipe before the command writes. The
/// command ends quietly (no panic, no backtrace), on stdout and on stderr alike.
#[test]
fn commands_end_quietly_when_their_reader_has_gone() {
    let dir = tempfile::tempdir().unwrap();
    let rest = "[store]\nurl = \"sqlite://frontgate.db\"\n[api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\n[upstream]\nurl = \"http://127.0.0.1:3000\"\n[[routes]]\nmatch = \"/api/**\"\nauth = \"api_key\"\n";
    let path = write(dir.path(), "keys.toml", &plain_config(dir.path(), rest));
    let created = run(frontgate().args(["keys", "create", "--name", "ci"]).arg("-c").arg(&path));
    assert!(created.status.success(), "{created:?}");
    for args in [&["keys", "list"][..], &["check"][..]] {
        // Both ends of the output closed before the command runs.
        let mut child = frontgate()
            .args(args)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        drop(child.stderr.take());
        let deadline = Instant::now() + BOUND;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "{args:?} hung");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{args:?}: exit {:?} (101 is a panic)", status.code());
    }
}

/// A port already taken is reported with the key that asked for it.
#[test]
fn a_port_in_use_names_its_listener() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for (key, section) in [
        (
            "[server] listen",
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\ntls = \"off\"\n[admin]\nenabled = false\n"
            ),
        ),
        (
            "[admin] listen",
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ntls = \"off\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\n"
            ),
        ),
    ] {
        let text = format!(
            "data_dir = {:?}\n{section}[upstream]\nurl = \"http://127.0.0.1:3000\"\n[[routes]]\nmatch = \"/**\"\n",
            dir.path().join("data").display().to_string()
        );
        let path = write(dir.path(), "taken.toml", &text);
        let out = run(frontgate().arg("serve").arg("-c").arg(&path));
        assert!(!out.status.success(), "{out:?}");
        assert!(
            out.stderr.contains(&format!("cannot listen on 127.0.0.1:{port} ({key})")),
            "{out:?}"
        );
    }
}

/// `check` and `serve` agree: every config `serve` refuses before listening, `check` refuses
/// too, for the same reason (files named in the config are read by both).
#[test]
fn check_refuses_what_serve_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("garbage.json"), "{\"keys\": 3}").unwrap();
    let upstream = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[[routes]]\nmatch = \"/**\"\n";
    let jwt = |file: &str| {
        format!(
            "[[jwt.issuers]]\nissuer = \"https://idp.test\"\naudiences = [\"api\"]\njwks_file = \"{file}\"\nalgorithms = [\"ES256\"]\n{upstream}"
        )
    };
    let cases = [
        (
            "a missing certificate file",
            "tls = { cert = \"missing.pem\", key = \"missing.key\" }",
            upstream.to_owned(),
            "missing.pem",
        ),
        (
            "a certificate file that is not one",
            "tls = { cert = \"garbage.pem\", key = \"garbage.pem\" }",
            upstream.to_owned(),
            "garbage.pem",
        ),
        ("a missing jwks_file", "tls = \"off\"", jwt("missing.json"), "missing.json"),
        (
            "a jwks_file that is not a key set",
            "tls = \"off\"",
            jwt("garbage.json"),
            "https://idp.test",
        ),
    ];
    for (case, server, rest, cause) in cases {
        let text = format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n{server}\n[admin]\nenabled = false\n{rest}",
            dir.path().join("data").display().to_string()
        );
        let path = write(dir.path(), "bad.toml", &text);
        let check = run(frontgate().arg("check").arg("-c").arg(&path));
        let serve = run(frontgate().arg("serve").arg("-c").arg(&path));
        assert!(!serve.status.success(), "{case}: serve started\n{serve:?}");
        assert_eq!(
            check.status.code(),
            Some(2),
            "{case}: check accepted what serve refuses\n{check:?}\n{serve:?}"
        );
        assert!(
            check.stderr.contains(cause) && serve.stderr.contains(cause),
            "{case}: {check:?}\n{serve:?}"
        );
    }
}

/// `frontgate demo --print-config` prints a config a user can start from: `check` accepts it.
#[test]
fn the_demo_config_can_be_printed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(frontgate()
        .args(["demo", "--print-config", "--data-dir"])
        .arg(dir.path().join("demo")));
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains("url = \"http://127.0.0.1:3000\""), "{out:?}");
    assert!(
        out.stdout.contains("hash_secret = \"${FRONTGATE_HASH_SECRET}\"")
            && out.stdout.contains("secret = \"${FRONTGATE_POW_SECRET}\""),
        "secrets printed: {out:?}"
    );
    let path = write(dir.path(), "frontgate.toml", &out.stdout);
    let check = run(frontgate()
        .env("FRONTGATE_HASH_SECRET", "0123456789abcdef0123456789abcdef-hash")
        .env("FRONTGATE_POW_SECRET", "0123456789abcdef0123456789abcdef-pow")
        .arg("check")
        .arg("-c")
        .arg(&path));
    assert!(check.status.success(), "{check:?}");
}

/// A challenged route whose client-keyed limit allows a burst of 1 would refuse the retry with
/// the clearance: `check` says so.
#[test]
fn check_warns_about_a_burst_too_small_for_a_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let rest = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[pow]\nsecret = \"0123456789abcdef0123456789abcdef\"\n\
                [rate_limits.tight]\nkey = \"ip\"\nrate = \"1/min\"\n[[routes]]\nmatch = \"POST /api/signup\"\nchallenge = \"pow\"\nrate_limit = [\"tight\"]\n";
    let path = write(dir.path(), "pow.toml", &plain_config(dir.path(), rest));
    let out = run(frontgate().arg("check").arg("-c").arg(&path));
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.contains("rate_limit `tight` allows a burst of 1"), "{out:?}");
    let path = write(
        dir.path(),
        "pow.toml",
        &plain_config(dir.path(), &rest.replace("rate = \"1/min\"", "rate = \"1/min\"\nburst = 2")),
    );
    let out = run(frontgate().arg("check").arg("-c").arg(&path));
    assert!(out.status.success() && !out.stderr.contains("burst of 1"), "{out:?}");
}

/// `check` changes nothing: no data dir, certificate or SQLite file is made, and a PostgreSQL
/// database it reaches is not migrated (a config checked before a rollout must not change the
/// production database under the running version).
#[test]
fn check_has_no_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let keys = "[api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\n[upstream]\nurl = \"http://127.0.0.1:3000\"\n[[routes]]\nmatch = \"/api/**\"\nauth = \"api_key\"\n";
    let data = dir.path().join("data");
    let text = format!(
        "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nenabled = false\n[store]\nurl = \"sqlite://frontgate.db\"\n{keys}",
        data.display().to_string()
    );
    let path = write(dir.path(), "fg.toml", &text);
    let out = run(frontgate().arg("check").arg("-c").arg(&path));
    assert!(out.status.success(), "{out:?}");
    assert!(!data.exists(), "check made {}", data.display());

    let pg = common::stores::PgDb::create();
    let text = format!(
        "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\ntls = \"off\"\n[admin]\nenabled = false\n[store]\nurl = \"{}\"\n{keys}",
        data.display().to_string(),
        pg.url()
    );
    let path = write(dir.path(), "pg.toml", &text);
    let out = run(frontgate().arg("check").arg("-c").arg(&path));
    assert!(out.status.success(), "{out:?}");
    let tables = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-At",
            "-c",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        ])
        .arg(&pg.name)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&tables.stdout).trim(),
        "0",
        "check migrated the database: {}",
        String::from_utf8_lossy(&tables.stderr)
    );
    // An unreachable database is still refused, as serve refuses it.
    let text = text.replace(&pg.url(), "postgres://postgres@127.0.0.1:1/none");
    let path = write(dir.path(), "down.toml", &text);
    let out = run(frontgate().arg("check").arg("-c").arg(&path));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// The README's first command, `cargo run --release -- demo`, runs the gateway: at the
/// workspace root `cargo run` picks the one binary of the default members, and the workspace
/// holds another (examples/axum-embedded), so the default members must name only the gateway.
#[test]
fn cargo_run_at_the_workspace_root_runs_the_gateway() {
    let out = Command::new(env!("CARGO"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let defaults = meta["workspace_default_members"].as_array().expect("default members");
    let bins: Vec<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| defaults.contains(&p["id"]))
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(bins, ["frontgate"], "`cargo run` at the root would not run the gateway alone");
    // The workspace does hold another binary, so this could fail without default-members.
    assert!(meta.to_string().contains("\"name\":\"axum-embedded\""));
}
