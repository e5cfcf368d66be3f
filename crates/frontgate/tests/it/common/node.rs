//! Node.js processes the suites start (dev_server, react_node).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Node process (a dev server, an example's backend or IdP) in its own process group, its
/// output in a log file; dropping it kills the group and everything it started.
pub struct Node {
    child: Child,
    log: PathBuf,
}

impl Node {
    pub fn start(
        args: &[impl AsRef<std::ffi::OsStr>],
        cwd: &Path,
        env: &[(&str, String)],
        log: PathBuf,
    ) -> Node {
        let out = File::create(&log).expect("log file");
        let child = Command::new("node")
            .args(args)
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("start node");
        Node { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `port` accepts connections (or the process exits, or 60 s pass: a failure).
    pub fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = self.child.try_wait().expect("try_wait");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "node did not listen on {port}: {exited:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ =
            Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

/// `npm ci` in `dir`, once per lock file: later calls (and parallel test processes, which wait
/// on a file lock) find the marker and return. The marker holds the lock file's SHA-256, the
/// stamp scripts/test.sh writes too, so an install it made is not repeated.
pub fn npm_ci(dir: &Path) {
    let lock = std::fs::read(dir.join("package-lock.json"))
        .unwrap_or_else(|e| panic!("{}/package-lock.json: {e}", dir.display()));
    let stamp = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&lock));
    let marker = dir.join("node_modules/.frontgate-installed");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == stamp) {
        return;
    }
    // One lock per directory, named after its path.
    let name =
        format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(dir.to_string_lossy().as_bytes()));
    let guard =
        File::create(std::env::temp_dir().join(format!("frontgate-npm-{}.lock", &name[..16])))
            .expect("npm lock file");
    guard.lock().expect("lock npm install");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == stamp) {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("run npm ci (is Node.js installed? scripts/test.sh installs it)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
    std::fs::write(&marker, stamp).expect("write install marker");
}
