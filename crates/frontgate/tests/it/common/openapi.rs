//! OpenAPI test helpers: a gateway whose temp dir holds a copy of tests/fixtures/openapi, and
//! `frontgate check` on a spec written into a temp dir.
#![allow(dead_code)]

use std::path::Path;

use super::{Gate, start_in};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi");

/// Copies a directory tree (the fixture specs) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Starts frontgate with the fixtures beside its config; `rest` holds [upstream], [openapi], ...
pub fn start_with_fixtures(server_extra: &str, rest: &str) -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(Path::new(FIXTURES), dir.path());
    start_in(dir, server_extra, rest)
}

/// Runs `frontgate check` on a config naming `spec` (written as `spec_name` in a temp dir, with
/// `extra_files` beside it). Returns (success, stderr + stdout).
pub fn check_spec(
    spec_name: &str,
    spec: &str,
    extra_files: &[(&str, &str)],
    config_extra: &str,
) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec_dir = dir.path().join("spec");
    std::fs::create_dir_all(&spec_dir).unwrap();
    std::fs::write(spec_dir.join(spec_name), spec).unwrap();
    for (name, text) in extra_files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let config = dir.path().join("frontgate.toml");
    std::fs::write(&config, format!("[upstream]\nurl = \"http://127.0.0.1:9\"\n[openapi]\nspec = \"spec/{spec_name}\"\n{config_extra}\n")).unwrap();
    let out = std::process::Command::new(super::BIN)
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .expect("run frontgate check");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    (out.status.success(), text)
}

/// Starts `frontgate demo` (its own upstream, page and [openapi] spec) on free ports.
pub fn start_demo() -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 temp dir").to_owned();
    let config_path = dir.path().join("none.toml");
    let mut gate = super::spawn(
        dir,
        config_path,
        &[
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--redirect",
            "off",
            "--data-dir",
            &data,
        ],
    );
    // The harness waited for the main listener; the admin one is logged too.
    assert!(
        gate.wait_for_log("\"scheme\":\"admin\"", std::time::Duration::from_secs(20)),
        "{}",
        gate.logs()
    );
    let line = gate
        .logs
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("\"scheme\":\"admin\""))
        .cloned()
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    gate.admin = v["addr"].as_str().and_then(|a| a.parse().ok());
    gate
}

/// The demo upstream's counters, as reported on a response that reached it: (hits, rejected).
pub fn upstream_counters(headers: &http::HeaderMap) -> (u64, u64) {
    let n = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {h} header: {headers:?}"))
    };
    (n("x-demo-upstream-hits"), n("x-demo-upstream-rejected"))
}
