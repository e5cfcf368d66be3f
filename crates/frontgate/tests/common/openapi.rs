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
pub fn check_spec(spec_name: &str, spec: &str, extra_files: &[(&str, &str)], config_extra: &str) -> (bool, String) {
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
    let out = std::process::Command::new(super::BIN).args(["check", "-c"]).arg(&config).output().expect("run frontgate check");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    (out.status.success(), text)
}
