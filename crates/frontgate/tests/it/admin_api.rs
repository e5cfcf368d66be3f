//! schemathesis (PyPI, pinned in scripts/schemathesis-requirements.txt, installed by scripts/test.sh)
//! against the admin API's own OpenAPI description: every generated request (valid and
//! invalid) gets no 5xx, a documented status, the documented content type and a body matching
//! the schema. Time-boxed: a handful of examples per operation.

use crate::common;

use common::api_keys::{ADMIN_TOKEN, KeyGate};
use common::stores::Backend;

fn schemathesis() -> std::path::PathBuf {
    let venv = std::env::var_os("FRONTGATE_SCHEMATHESIS_VENV")
        .unwrap_or_else(|| "/var/tmp/frontgate-schemathesis".into());
    let bin = std::path::Path::new(&venv).join("bin/schemathesis");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/test.sh, which installs schemathesis",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let bin = schemathesis();
    let g = KeyGate::start(Backend::Sqlite, "", "").await;
    let admin = g.admin();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["run", &format!("http://{admin}/admin/v1/openapi.json"), "--url", &format!("http://{admin}")])
            .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
            .args(["-c", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
            .args(["-n", "10", "--max-time", "30", "--seed", "1", "--no-color"])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{report}");
    assert!(report.contains("No issues found"), "{report}");
    assert!(!g.gate.logs().contains("panicked"), "{}", g.gate.logs());
}
