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

/// Runs schemathesis against the admin listener with `extra` arguments; the report.
async fn run(admin: std::net::SocketAddr, cookie: &str, extra: &[&str]) -> (bool, String) {
    let bin = schemathesis();
    let cookie = cookie.to_owned();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["run", &format!("http://{admin}/admin/v1/openapi.json"), "--url", &format!("http://{admin}")])
            .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
            .args(["-H", &format!("Cookie: {cookie}")])
            .args(["-c", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
            .args(["--seed", "1", "--no-color"])
            .args(&extra)
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
    (out.status.success(), report)
}

/// The whole admin API, the console's endpoints included: with `[oidc]` (the sessions API; the
/// issuer need not answer for it) and a console session cookie beside the bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let oidc = format!(
        "[oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"x\"\nclient_secret = \"y\"\nsession_key = \"{}\"\n",
        common::sessions::session_key()
    );
    let g = KeyGate::start(Backend::Sqlite, "", &oidc).await;
    let admin = g.admin();
    let (status, headers, body) = common::plain_send(
        admin,
        common::req("POST", "/admin/v1/console/session")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                serde_json::json!({ "token": ADMIN_TOKEN }).to_string(),
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    // Every operation but the console's sign-in/out and ending one session by id, with every
    // warning: as before the console, nothing may be found.
    let (ok, report) = run(
        admin,
        &cookie,
        &[
            "-n",
            "10",
            "--max-time",
            "30",
            "--exclude-path-regex",
            "^/admin/v1/(console/session|sessions/\\{id\\})$",
        ],
    )
    .await;
    assert!(ok, "schemathesis found problems:\n{report}");
    assert!(report.contains("No issues found"), "{report}");
    // Those three, whose warnings are by design: sign-in is rate limited per address (every
    // generated wrong token counts), sign-out ends the one session it was given, and no
    // browser session exists to end by id here (tests/it/console.rs ends real ones). The
    // checks are the same; only the warnings are off.
    let (ok, report) = run(
        admin,
        &cookie,
        &[
            "-n",
            "10",
            "--max-time",
            "15",
            "--include-path-regex",
            "^/admin/v1/(console/session|sessions/\\{id\\})$",
            "--warnings",
            "off",
        ],
    )
    .await;
    assert!(ok, "schemathesis found problems:\n{report}");
    assert!(report.contains("No issues found"), "{report}");
    assert!(!g.gate.logs().contains("panicked"), "{}", g.gate.logs());
}
