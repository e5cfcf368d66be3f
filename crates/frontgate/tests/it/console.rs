//! The admin console (docs/console.md) end to end: frontgate with API keys, OIDC sessions
//! (against the real oidc-provider fixture) and an admin token, driven by headless Chromium
//! through tests/browser/console.mjs (sign-in, keys used and refused through the gateway with
//! curl, the traffic view, ending a session, CSRF, keyboard, phone layout, sign-out, the
//! sign-in rate limit, axe-core on every view); then, from here, the audit log's actors and
//! the sign-in metrics, and the bearer-token API beside the console.
//!
//! Screenshots go to the test's temp dir, or to `$CONSOLE_SHOTS` when set (docs/images/console/
//! holds the committed ones).
use crate::common;

use std::process::Command;

use common::api_keys::{ADMIN_TOKEN, HASH_SECRET, admin_call};
use common::sessions::{browser, browser_dir, ensure_browser_installed, free_port, session_key};

/// A node's config: `origin` is the public origin (the same on every node), `extra` e.g. a
/// `[store]` section, `key` the session key (the same on every node).
fn config(
    dir: &std::path::Path,
    port: u16,
    origin: &str,
    issuer: &str,
    upstream: &common::Upstream,
    key: &str,
    extra: &str,
) -> String {
    format!(
        r#"data_dir = {data:?}

[server]
listen = "127.0.0.1:{port}"
tls = "off"
public_url = "{origin}"

[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"

[log]
level = "info"

{upstream}
{extra}
[api_keys]
hash_secret = "{HASH_SECRET}"

[oidc]
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "{secret}"
scopes = ["openid", "profile", "email", "offline_access"]
session_key = "{key}"

[[routes]]
match = "/echo/**"
auth = "session"

[[routes]]
match = "/keyed/**"
auth = "api_key"
scopes = ["items:read"]

[pow]
secret = "console-test-pow-secret-0123456789abcdef"
levels = [ {{ above_rps = 0, cost = 50, counter = 20 }}, {{ above_rps = 1000, cost = 100, counter = 40 }} ]

[[routes]]
match = "POST /signup"
challenge = "pow"
"#,
        data = dir.join("data").display().to_string(),
        upstream = upstream.config(),
        client_id = common::oidc::CLIENT_ID,
        secret = common::oidc::CLIENT_SECRET,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_manages_keys_and_sessions_and_shows_refusals_in_chromium() {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let idp = common::sessions::start_idp(&origin, None);
    let upstream = common::Upstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("frontgate.toml");
    let key = session_key();
    std::fs::write(&path, config(dir.path(), port, &origin, &idp.issuer, &upstream, &key, ""))
        .expect("config");
    let gate = common::spawn(dir, path, &["serve", "-c"]);
    let admin = gate.admin.expect("admin listener");
    let logs = || format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs());

    // A browser session of the app (the existing sessions driver), and its subject as the
    // backend saw it.
    let tmp = tempfile::tempdir().expect("temp dir");
    let state = tmp.path().join("state.json").display().to_string();
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let out = browser(
        "login-save",
        env(&[("FG", &origin), ("IDP", &idp.issuer), ("STATE", &state)]),
        logs,
    )
    .await;
    let session = format!("__Host-frontgate={}", out["cookie"].as_str().expect("cookie"));
    let seen = upstream.last.lock().unwrap().clone().expect("the backend saw the login");
    let subject = seen.2["x-frontgate-subject"][0].clone();

    let shots = std::env::var_os("CONSOLE_SHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("screenshots"));
    ensure_browser_installed();
    let mut cmd = Command::new("node");
    cmd.arg("console.mjs")
        .current_dir(browser_dir())
        .env("ADMIN", format!("http://{admin}"))
        .env("TOKEN", ADMIN_TOKEN)
        .env("FG", &origin)
        .env("KEYED", "/keyed/items")
        .env("SESSION", &session)
        .env("SESSION_PATH", "/echo/me")
        .env("SUBJECT", &subject)
        .env("CONFIG_PATH", &gate.config_path)
        .env("SHOTS", &shots);
    let run = tokio::task::spawn_blocking(move || cmd.output().expect("run node console.mjs"))
        .await
        .expect("browser task");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "console.mjs failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n{}",
        logs()
    );
    eprintln!("{stderr}\n{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("summary");
    assert!(summary["trafficSeconds"].as_f64().is_some_and(|s| s < 15.0), "{summary}");

    // What the console did is in the audit log, each event with the console session as actor.
    // (Asked from another address: the scenario ended by getting 127.0.0.1 rate limited, and
    // wrong tokens lock bearer calls from that address too.)
    let elsewhere = Some(std::net::IpAddr::from([127, 0, 0, 2]));
    let (status, audit) = common::api_keys::admin_call_from(
        elsewhere,
        admin,
        Some(ADMIN_TOKEN),
        "GET",
        "/admin/v1/audit?limit=100",
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let events = audit["events"].as_array().expect("events");
    let by_action = |action: &str| {
        events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action}: {audit}"))
    };
    for action in [
        "api_key.create",
        "api_key.revoke",
        "api_key.rotate",
        "session.end_subject",
        "config.reload",
    ] {
        let actor = by_action(action)["actor"].as_str().unwrap_or("");
        assert!(actor.starts_with("console:") && actor.len() == 16, "{action} by {actor}");
    }
    assert_eq!(by_action("session.end_subject")["target"], subject.as_str());
    assert!(
        by_action("api_key.revoke")["detail"].to_string().contains("console test: leaked"),
        "{audit}"
    );

    // The bearer-token API works beside the console, from an address that guessed nothing;
    // from the limited one even the right token waits.
    let call = |from: [u8; 4], token: &'static str| {
        common::api_keys::admin_call_from(
            Some(std::net::IpAddr::from(from)),
            admin,
            Some(token),
            "GET",
            "/admin/v1/keys",
            None,
        )
    };
    let (status, keys) = call([127, 0, 0, 2], ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(call([127, 0, 0, 2], "wrong").await.0, 401);
    assert_eq!(call([127, 0, 0, 1], ADMIN_TOKEN).await.0, 429);

    // Sign-ins are counted: two successes, then the failures and the limited attempts.
    let metrics = gate.metrics().await;
    let count = |result: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("frontgate_console_signins_total{")
                    && l.contains(&format!("result=\"{result}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(count("success"), 2.0, "{metrics}");
    assert_eq!(count("failure"), 5.0, "{metrics}");
    assert!(count("limited") >= 3.0, "{metrics}");
}

/// The console's sign-in over plain HTTP, without a browser: the cookie's flags, a session's
/// CSRF token, and the page's headers on every asset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_assets_carry_a_strict_csp_and_sign_in_sets_a_strict_cookie() {
    let upstream = common::Upstream::start().await;
    let g = common::api_keys::start_with_token(&common::api_keys::keyed_config(&upstream, "", ""));
    let admin = g.admin.expect("admin");
    for (path, ct) in [
        ("/console/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
        ("/console/icon.svg", "image/svg+xml"),
    ] {
        let (status, headers, _) = common::plain_get(admin, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(ct), "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
    }

    let sign_in = |token: &str, origin: Option<&str>| {
        let mut r = common::req("POST", "/admin/v1/console/session")
            .header("content-type", "application/json");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.body(http_body_util::Full::new(bytes::Bytes::from(
            serde_json::json!({ "token": token }).to_string(),
        )))
        .unwrap()
    };
    // Another site's page cannot sign a browser in (login CSRF).
    let (status, _, _) =
        common::plain_send(admin, sign_in(ADMIN_TOKEN, Some("http://evil.example"))).await;
    assert_eq!(status, 403);
    let (status, headers, body) = common::plain_send(admin, sign_in(ADMIN_TOKEN, None)).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let set = headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("frontgate_console="), "{set}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    let doc = common::json(&body);
    let csrf = doc["csrf"].as_str().expect("csrf").to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    assert!(!set.contains(&csrf), "the CSRF token is not the cookie");

    let call = |method: &str, path: &str, csrf: Option<&str>| {
        let mut r = common::req(method, path).header("cookie", &cookie);
        if let Some(c) = csrf {
            r = r.header("x-frontgate-csrf", c);
        }
        if method == "POST" {
            r = r.header("content-type", "application/json");
            return r
                .body(http_body_util::Full::new(bytes::Bytes::from(r#"{"name":"k"}"#)))
                .unwrap();
        }
        r.body(http_body_util::Full::default()).unwrap()
    };
    // Reading needs only the cookie; changing needs the CSRF token too.
    assert_eq!(common::plain_send(admin, call("GET", "/admin/v1/keys", None)).await.0, 200);
    assert_eq!(common::plain_send(admin, call("POST", "/admin/v1/keys", None)).await.0, 403);
    assert_eq!(common::plain_send(admin, call("POST", "/admin/v1/keys", Some(&csrf))).await.0, 201);
    // Sign-out ends the session server-side: the same cookie is refused afterwards.
    assert_eq!(
        common::plain_send(admin, call("DELETE", "/admin/v1/console/session", Some(&csrf))).await.0,
        204
    );
    assert_eq!(common::plain_send(admin, call("GET", "/admin/v1/keys", None)).await.0, 401);
}

/// Several nodes on PostgreSQL: a session ended through one node's admin API (as the console
/// does) is refused on its next request at the other node, which reads sessions from the
/// shared store; the other node's admin API sees it gone, and the audit event is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_through_one_node_is_refused_at_the_other_on_postgres() {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let idp = common::sessions::start_idp(&origin, None);
    let upstream = common::Upstream::start().await;
    let key = session_key();
    let pg = common::stores::PgDb::create();
    let store = format!("[store]\nurl = \"{}\"\n", pg.url());
    let node = |port: u16| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("frontgate.toml");
        let text = config(dir.path(), port, &origin, &idp.issuer, &upstream, &key, &store);
        std::fs::write(&path, text).expect("config");
        common::spawn(dir, path, &["serve", "-c"])
    };
    let (a, b) = (node(port), node(free_port()));
    let logs = || format!("--- a\n{}\n--- b\n{}\n--- idp\n{}", a.logs(), b.logs(), idp.logs());
    let tmp = tempfile::tempdir().expect("temp dir");
    let state = tmp.path().join("state.json").display().to_string();
    let env: Vec<(String, String)> =
        [("FG", origin.as_str()), ("IDP", &idp.issuer), ("STATE", &state)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let out = browser("login-save", env, logs).await;
    let session = format!("__Host-frontgate={}", out["cookie"].as_str().expect("cookie"));
    let on_b = |session: String| async move {
        let r = common::req("GET", "/echo/me")
            .header("accept", "application/json")
            .header("cookie", session)
            .body(http_body_util::Full::default())
            .unwrap();
        common::plain_send(b.addr, r).await.0
    };
    assert_eq!(on_b(session.clone()).await, 200, "{}", logs());
    let subject =
        upstream.last.lock().unwrap().clone().expect("seen").2["x-frontgate-subject"][0].clone();
    let sessions = format!("/admin/v1/sessions?subject={subject}");
    let (status, listed) =
        admin_call(b.admin.expect("admin b"), Some(ADMIN_TOKEN), "GET", &sessions, None).await;
    assert_eq!(status, 200, "{listed}");
    let list = listed["sessions"].as_array().expect("sessions");
    assert_eq!(list.len(), 1, "{listed}");
    let id = list[0]["id"].as_str().expect("id").to_owned();
    assert!(!session.contains(&id), "the id is not the cookie");

    let a_admin = a.admin.expect("admin a");
    let end = format!("/admin/v1/sessions/{id}");
    let (status, ended) = admin_call(a_admin, Some(ADMIN_TOKEN), "DELETE", &end, None).await;
    assert_eq!((status.as_u16(), ended["ended"].as_u64()), (200, Some(1)), "{ended}");
    assert_eq!(on_b(session).await, 401, "refused at the other node\n{}", logs());
    let (_, listed) =
        admin_call(b.admin.expect("admin b"), Some(ADMIN_TOKEN), "GET", &sessions, None).await;
    assert_eq!(listed["sessions"], serde_json::json!([]), "{listed}");
    let (status, again) = admin_call(a_admin, Some(ADMIN_TOKEN), "DELETE", &end, None).await;
    assert_eq!(status, 404, "{again}");
    let (_, audit) = admin_call(
        b.admin.expect("admin b"),
        Some(ADMIN_TOKEN),
        "GET",
        &format!("/admin/v1/audit?target={id}"),
        None,
    )
    .await;
    assert_eq!(audit["events"][0]["action"], "session.end", "{audit}");
    assert_eq!(audit["events"][0]["actor"], "admin-api", "{audit}");
}

/// The traffic view's store state, as this node sees it: the SQL store and Redis, each
/// reachable with its round trip; and a refusal counted in the current bucket and listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_and_traffic_as_this_node_sees_them() {
    let redis = format!(
        "[shared]\nredis = \"{}\"\nprefix = \"{}\"\n",
        common::stores::REDIS_URL,
        common::stores::redis_prefix()
    );
    let g = common::api_keys::KeyGate::start(common::stores::Backend::Sqlite, "", &redis).await;
    let (status, v) = g.admin_call("GET", "/admin/v1/stores", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stores"]["sql"]["backend"], "sqlite", "{v}");
    assert_eq!(v["stores"]["sql"]["reachable"], true, "{v}");
    assert_eq!(v["stores"]["redis"]["backend"], "redis", "{v}");
    assert_eq!(v["stores"]["redis"]["reachable"], true, "{v}");

    let (status, _, _) = g.get("/echo/x", &[("x-api-key", "fgk_not-a-key")]).await;
    assert_eq!(status, 401);
    let (status, t) = g.admin_call("GET", "/admin/v1/traffic?buckets=6&limit=5", None).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["buckets"].as_array().map(Vec::len), Some(6), "{t}");
    let refused: u64 = t["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["refused"]["api_key_invalid"].as_u64())
        .sum();
    assert_eq!(refused, 1, "{t}");
    assert_eq!(t["recent_refusals"][0]["code"], "api_key_invalid", "{t}");
    assert_eq!(t["recent_refusals"][0]["route"], "/echo/**", "{t}");
    assert_eq!(t["top_clients"][0]["client"], "127.0.0.1", "{t}");
    let (status, _) = g.admin_call("GET", "/admin/v1/traffic?buckets=0", None).await;
    assert_eq!(status, 400);
    let (status, _) = admin_call(g.admin(), None, "GET", "/admin/v1/traffic", None).await;
    assert_eq!(status, 401);
}

/// The traffic view's "refused most" by key and by subject: a revoked key counts for its id
/// and owner, a valid key without the route's scope for its owner, and a made-up key for no
/// one (an attacker cannot fill the tables with names of their choosing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_by_key_and_subject_only_for_certain_callers() {
    let g = common::api_keys::KeyGate::start(common::stores::Backend::Sqlite, "", "").await;
    let (revoked, revoked_id) = g
        .create_key(
            serde_json::json!({"name": "r", "subject": "team-leaky", "scopes": ["items:read"]}),
        )
        .await;
    let (status, v) =
        g.admin_call("DELETE", &format!("/admin/v1/keys/{revoked_id}?reason=leaked"), None).await;
    assert_eq!(status, 200, "{v}");
    let (narrow, narrow_id) = g
        .create_key(
            serde_json::json!({"name": "n", "subject": "team-narrow", "scopes": ["items:read"]}),
        )
        .await;
    for _ in 0..3 {
        assert_eq!(g.get("/echo/a", &[("x-api-key", &revoked)]).await.0, 401);
    }
    // `GET /status/{code}` needs the `admin` scope, which this key lacks.
    assert_eq!(g.get("/status/200", &[("x-api-key", &narrow)]).await.0, 403);
    // Well-formed, right checksum or not, but no such key: nobody to name.
    let made_up = format!("{}x", &revoked[..revoked.len() - 1]);
    assert_eq!(g.get("/echo/a", &[("x-api-key", &made_up)]).await.0, 401);

    let (status, t) = g.admin_call("GET", "/admin/v1/traffic?buckets=1&limit=10", None).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        t["top_keys"],
        serde_json::json!([
            {"key_id": revoked_id, "refusals": 3},
            {"key_id": narrow_id, "refusals": 1},
        ]),
        "{t}"
    );
    assert_eq!(
        t["top_subjects"],
        serde_json::json!([
            {"subject": "team-leaky", "refusals": 3},
            {"subject": "team-narrow", "refusals": 1},
        ]),
        "{t}"
    );
    let recent = &t["recent_refusals"];
    assert_eq!(recent[0]["code"], "api_key_invalid", "{t}");
    assert_eq!(recent[0]["key_id"], serde_json::Value::Null, "{t}");
    assert_eq!(recent[0]["subject"], serde_json::Value::Null, "{t}");
    assert_eq!(recent[1]["code"], "insufficient_scope", "{t}");
    assert_eq!(recent[1]["subject"], "team-narrow", "{t}");
    assert_eq!(recent[2]["code"], "api_key_revoked", "{t}");
    assert_eq!(recent[2]["key_id"], revoked_id.as_str(), "{t}");
}

/// DNS rebinding: a page whose name was rebound to the admin listener's address calls it with
/// its own name in `Host`. The API and the console refuse that name (421); addresses,
/// `localhost` and `[admin] allowed_hosts` are answered; `/metrics` answers any name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_answers_only_its_own_names() {
    let upstream = common::Upstream::start().await;
    let config = upstream.config();
    let g = common::api_keys::start_with_token(&config);
    let listed =
        common::api_keys::start_with_admin("allowed_hosts = [\"admin.internal\"]", &config);
    let call = |host: &str, path: &str| {
        http::Request::builder()
            .method("GET")
            .uri(path)
            .header("host", host)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let admin = g.admin.expect("admin listener");
    for host in ["evil.example", "evil.example:9901", "127.0.0.1.nip.io", "admin.internal"] {
        let (status, _, body) = common::plain_send(admin, call(host, "/admin/v1/traffic")).await;
        assert_eq!(status, 421, "{host}: {}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("host_not_allowed"));
        let (status, _, _) = common::plain_send(admin, call(host, "/console/")).await;
        assert_eq!(status, 421, "{host}");
    }
    for host in ["localhost", "127.0.0.1:9901", "[::1]:9901", "console.localhost"] {
        let (status, _, body) = common::plain_send(admin, call(host, "/admin/v1/traffic")).await;
        assert_eq!(status, 200, "{host}: {}", String::from_utf8_lossy(&body));
    }
    for path in ["/metrics", "/health", "/ready"] {
        let (status, _, _) = common::plain_send(admin, call("prometheus.svc", path)).await;
        assert_eq!(status, 200, "{path}");
    }
    // Two Host fields, one of them fine: refused rather than read one way.
    let two = common::req("GET", "/admin/v1/traffic")
        .header("host", "evil.example")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(common::plain_send(admin, two).await.0, 421);
    let listed_admin = listed.admin.expect("admin listener");
    let (status, _, _) =
        common::plain_send(listed_admin, call("admin.internal:9901", "/admin/v1/traffic")).await;
    assert_eq!(status, 200);
    let (status, _, _) =
        common::plain_send(listed_admin, call("evil.example", "/admin/v1/traffic")).await;
    assert_eq!(status, 421);
}

/// Guessing the admin token through the API's bearer header counts against the sign-in limit:
/// after five wrong tokens the address's bearer calls, the right token's too, get 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_guesses_are_limited_like_sign_ins() {
    let g = common::api_keys::KeyGate::start(common::stores::Backend::Sqlite, "", "").await;
    let admin = g.admin();
    assert_eq!(admin_call(admin, Some(ADMIN_TOKEN), "GET", "/admin/v1/keys", None).await.0, 200);
    // A scraper's own credentials on /metrics, or another scheme, are not guesses at the token.
    for _ in 0..10 {
        assert_eq!(admin_call(admin, Some("scraper-token"), "GET", "/metrics", None).await.0, 200);
        let basic = common::req("GET", "/admin/v1/keys")
            .header("authorization", "Basic YWRtaW46YWRtaW4=")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(common::plain_send(admin, basic).await.0, 401);
    }
    assert_eq!(admin_call(admin, Some(ADMIN_TOKEN), "GET", "/admin/v1/keys", None).await.0, 200);
    for i in 0..5 {
        let (status, _) =
            admin_call(admin, Some(&format!("guess-{i}")), "GET", "/admin/v1/keys", None).await;
        assert_eq!(status, 401, "guess {i}");
    }
    let (status, v) = admin_call(admin, Some(ADMIN_TOKEN), "GET", "/admin/v1/keys", None).await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["code"], "rate_limited", "{v}");
    // The console's sign-in shares the limit.
    let (status, _, _) = common::plain_send(
        admin,
        common::req("POST", "/admin/v1/console/session")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                serde_json::json!({ "token": ADMIN_TOKEN }).to_string(),
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 429);
    let metrics = g.gate.metrics().await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("frontgate_admin_bearer_refused_total{result=\"wrong_token\"} 5")
        ),
        "{metrics}"
    );
}

/// A node whose console signs in through OIDC too: the admin listener on `admin_port`,
/// `[admin.oidc]` with `origin = admin_origin`, claim `groups`, allowing `frontgate-admins`.
fn oidc_console_gate(
    port: u16,
    admin_port: u16,
    admin_origin: &str,
    issuer: &str,
    upstream: &common::Upstream,
) -> common::Gate {
    let origin = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("frontgate.toml");
    let text = config(dir.path(), port, &origin, issuer, upstream, &session_key(), "").replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\""),
    );
    let text = format!(
        "{text}\n[admin.oidc]\norigin = \"{admin_origin}\"\nclaim = \"groups\"\nallow = [\"frontgate-admins\"]\n"
    );
    std::fs::write(&path, text).expect("config");
    let gate = common::spawn(dir, path, &["serve", "-c"]);
    assert_eq!(gate.admin.expect("admin listener").port(), admin_port);
    gate
}

/// Sign-in through OIDC (`[admin.oidc]`), driven by Chromium (tests/browser/console_oidc.mjs)
/// against the real oidc-provider, whose accounts carry a `groups` claim: a member of the
/// allowed group signs in and uses the API with the cookie and CSRF token like a token
/// sign-in; the callback replayed is refused; a user outside the group is refused with no
/// session. Then, over plain HTTP: a made-up state, a state from another browser (no login
/// cookie), the limit on failures per address, the audit events naming the person, and the
/// sign-in metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_admits_the_allowed_group_only_once_per_state() {
    let port = free_port();
    let admin_port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    // The console under `localhost`, the IdP under `127.0.0.1`: two sites, so the IdP's redirect
    // back is a cross-site navigation, as in production (the binder cookie must survive it, and
    // the session cookie must be set by it).
    let admin_origin = format!("http://localhost:{admin_port}");
    let idp = common::oidc::Provider::start_with(common::oidc::ProviderOptions {
        redirect_uris: vec![
            format!("{origin}/.frontgate/callback"),
            format!("{admin_origin}/console/oidc/callback"),
        ],
        account_groups: Some(
            r#"{"alice": ["staff", "frontgate-admins"], "bob": ["staff"], "carol": "frontgate-admins"}"#
                .into(),
        ),
        ..Default::default()
    });
    let upstream = common::Upstream::start().await;
    let gate = oidc_console_gate(port, admin_port, &admin_origin, &idp.issuer, &upstream);
    let admin = gate.admin.expect("admin listener");
    let logs = || format!("--- frontgate\n{}\n--- idp\n{}", gate.logs(), idp.logs());

    // The page learns whether OIDC sign-in is there, unauthenticated.
    let (status, _, body) = common::plain_get(admin, "/console/oidc/config").await;
    assert_eq!(status, 200);
    let conf = common::json(&body);
    assert_eq!(conf["enabled"], true, "{conf}");
    assert_eq!(conf["provider"], idp.issuer.trim_start_matches("http://"), "{conf}");

    ensure_browser_installed();
    let mut cmd = Command::new("node");
    cmd.arg("console_oidc.mjs")
        .current_dir(browser_dir())
        .env("ADMIN", &admin_origin)
        .env("IDP", &idp.issuer)
        .env("ALLOWED", "alice")
        .env("REFUSED", "bob");
    let run = tokio::task::spawn_blocking(move || cmd.output().expect("run node console_oidc.mjs"))
        .await
        .expect("browser task");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "console_oidc.mjs failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n{}",
        logs()
    );
    let out: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("summary");
    assert_eq!(out["actor"], "oidc:alice", "{out}");
    let cookie = out["cookie"].as_str().expect("cookie").to_owned();
    let csrf = out["csrf"].as_str().expect("csrf").to_owned();

    // The OIDC session is a console session like any: reading needs the cookie, changing the
    // CSRF token too.
    let call = |method: &str, path: &str, csrf: Option<&str>| {
        let mut r = common::req(method, path).header("cookie", &cookie);
        if let Some(c) = csrf {
            r = r.header("x-frontgate-csrf", c);
        }
        if method == "POST" {
            r = r.header("content-type", "application/json");
            return r
                .body(http_body_util::Full::new(bytes::Bytes::from(r#"{"name":"by-oidc"}"#)))
                .unwrap();
        }
        r.body(http_body_util::Full::default()).unwrap()
    };
    let (status, _, body) = common::plain_send(admin, call("GET", "/admin/v1/keys", None)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(common::plain_send(admin, call("POST", "/admin/v1/keys", None)).await.0, 403);
    let (status, _, body) =
        common::plain_send(admin, call("POST", "/admin/v1/keys", Some(&csrf))).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));

    // A callback whose state was never issued.
    let get = |path: String, cookie: Option<String>| {
        let mut r = http::Request::builder()
            .method("GET")
            .uri(path)
            .header("host", admin_origin.trim_start_matches("http://"));
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.body(http_body_util::Full::default()).unwrap()
    };
    let (status, _, body) = common::plain_send(
        admin,
        get("/console/oidc/callback?state=made-up&code=whatever".into(), None),
    )
    .await;
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("unknown, expired or already used"));

    // A real state, brought back by a browser that did not start the sign-in (no login
    // cookie): refused, and the state is spent for the rightful browser too.
    let (status, headers, _) =
        common::plain_send(admin, get("/console/oidc/login".into(), None)).await;
    assert_eq!(status, 303, "{}", logs());
    let location = headers["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/auth?", idp.issuer)), "{location}");
    for needle in ["code_challenge_method=S256", "nonce=", "state=", "response_type=code"] {
        assert!(location.contains(needle), "{needle} in {location}");
    }
    let set = headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("frontgate_console_login=") && set.contains("HttpOnly"), "{set}");
    let binder = set.split(';').next().unwrap().to_owned();
    let state = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .expect("state")
        .to_owned();
    let callback = format!("/console/oidc/callback?state={state}&code=whatever");
    let (status, _, body) = common::plain_send(admin, get(callback.clone(), None)).await;
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("did not start this sign-in"));
    let (status, _, body) = common::plain_send(admin, get(callback, Some(binder))).await;
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("already used"));
    // Of the refusals so far only bob's counts against the address (the IdP refused or the
    // claim did not allow): a made-up, replayed or foreign state is what any web page can send
    // through a visitor's browser, and must not lock that address out.
    let (status, _, _) = common::plain_send(admin, get("/console/oidc/login".into(), None)).await;
    assert_eq!(status, 303, "{}", logs());
    // Wrong admin tokens do count, and lock OIDC sign-in from the address too.
    for i in 0..4 {
        let wrong = http::Request::builder()
            .method("POST")
            .uri("/admin/v1/console/session")
            .header("host", admin_origin.trim_start_matches("http://"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(format!(
                r#"{{"token":"wrong-{i}"}}"#
            ))))
            .unwrap();
        assert_eq!(common::plain_send(admin, wrong).await.0, 401, "wrong token {i}");
    }
    let (status, headers, _) =
        common::plain_send(admin, get("/console/oidc/login".into(), None)).await;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));

    // The audit log names the person, for the sign-in and what the session did. (Read from
    // another address: this one is limited, bearer calls included.)
    let (status, audit) = common::api_keys::admin_call_from(
        Some(std::net::IpAddr::from([127, 0, 0, 2])),
        admin,
        Some(ADMIN_TOKEN),
        "GET",
        "/admin/v1/audit?limit=100",
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let events = audit["events"].as_array().expect("events");
    let find = |action: &str, actor: &str| {
        events.iter().filter(|e| e["action"] == action && e["actor"] == actor).collect::<Vec<_>>()
    };
    let signed_in = find("console.sign_in", "oidc:alice");
    assert_eq!(signed_in.len(), 1, "{audit}");
    assert_eq!(signed_in[0]["detail"]["method"], "oidc", "{audit}");
    assert_eq!(find("api_key.create", "oidc:alice").len(), 1, "{audit}");
    let bob = find("console.sign_in_refused", "oidc:bob");
    assert_eq!(bob.len(), 1, "{audit}");
    assert_eq!(bob[0]["detail"]["reason"], "not_allowed", "{audit}");
    let reasons: Vec<&str> = find("console.sign_in_refused", "anonymous")
        .iter()
        .filter(|e| e["detail"]["method"] == "oidc")
        .filter_map(|e| e["detail"]["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["bad_state", "other_browser", "bad_state", "bad_state"], "{audit}");

    let metrics = gate.metrics().await;
    let count = |method: &str, result: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("frontgate_console_signins_total{")
                    && l.contains(&format!("method=\"{method}\""))
                    && l.contains(&format!("result=\"{result}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(count("oidc", "success"), 1.0, "{metrics}");
    assert_eq!(count("oidc", "failure"), 5.0, "{metrics}");
    assert_eq!(count("oidc", "limited"), 1.0, "{metrics}");
    assert_eq!(count("oidc", "started"), 4.0, "{metrics}");
}

/// `frontgate check` and `serve` refuse the same `[admin.oidc]` mistakes, each message naming
/// the key: no `[oidc]` to sign in through, no admin token, an empty allow list or claim, an
/// origin that is not an absolute http(s) origin, a disabled admin listener.
#[test]
fn check_and_serve_refuse_admin_oidc_without_what_it_needs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let oidc = format!(
        "[oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"\nsession_key = \"{}\"\n",
        session_key()
    );
    let base = |admin: &str, with_oidc: bool, table: &str| {
        format!(
            "data_dir = {data:?}\n[server]\nlisten = \"127.0.0.1:0\"\ntls = \"off\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{admin}\n{o}\n[admin.oidc]\n{table}\n",
            data = dir.path().join("data").display().to_string(),
            o = if with_oidc { oidc.as_str() } else { "" },
        )
    };
    let good_table = "origin = \"http://127.0.0.1:9901\"\nclaim = \"groups\"\nallow = [\"admins\"]";
    let token = "token = \"an-admin-token-0123456789abcdef\"";
    let cases = [
        (base(token, false, good_table), "[admin.oidc] needs an [oidc] section"),
        (base("", true, good_table), "[admin.oidc] needs [admin] token"),
        (
            base(token, true, &good_table.replace("[\"admins\"]", "[]")),
            "[admin.oidc] allow is empty",
        ),
        (
            base(token, true, &good_table.replace("\"groups\"", "\"\"")),
            "[admin.oidc] claim is empty",
        ),
        (
            base(&format!("{token}\nenabled = false"), true, good_table),
            "[admin.oidc] is set but [admin] enabled = false",
        ),
        (
            base(token, true, &good_table.replace("http://127.0.0.1:9901", "127.0.0.1:9901")),
            "origin",
        ),
        (
            base(token, true, &good_table.replace("http://127.0.0.1:9901", "http://h/console")),
            "origin",
        ),
    ];
    let run = |args: &[&str], path: &std::path::Path| {
        Command::new(common::BIN)
            .args(args)
            .arg(path)
            .env_remove("FRONTGATE_CONFIG")
            .env_remove("FRONTGATE_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run frontgate")
    };
    let good = dir.path().join("good.toml");
    std::fs::write(&good, base(token, true, good_table)).expect("write");
    let out = run(&["check", "-c"], &good);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&path, text).expect("write");
        for args in [&["check", "-c"][..], &["serve", "-c"][..]] {
            let out = run(args, &path);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {needle}: {stderr}");
            assert!(stderr.contains(needle), "{args:?}: expected {needle}: {stderr}");
        }
    }
}

/// No console session the audit log does not show: when the audit event of a sign-in cannot
/// be written (PostgreSQL refuses inserts into `audit_events`, by a trigger), the sign-in is
/// refused with 503 and sets no cookie; a wrong token stays refused (401) and the bearer API
/// keeps reading. Once the log is writable again, sign-in works, and both sign-ins that
/// happened are in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_whose_audit_event_cannot_be_written_opens_no_session() {
    let upstream = common::Upstream::start().await;
    let pg = common::stores::PgDb::create();
    let store = format!("[store]\nurl = \"{}\"\n", pg.url());
    let g =
        common::api_keys::start_with_token(&common::api_keys::keyed_config(&upstream, &store, ""));
    let admin = g.admin.expect("admin");
    let sign_in = |token: &str| {
        common::req("POST", "/admin/v1/console/session")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                serde_json::json!({ "token": token }).to_string(),
            )))
            .unwrap()
    };
    let (status, headers, body) = common::plain_send(admin, sign_in(ADMIN_TOKEN)).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains_key("set-cookie"));

    pg.sql(
        "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'the audit log is read-only'; END $$ LANGUAGE plpgsql",
    );
    pg.sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()");
    let (status, headers, body) = common::plain_send(admin, sign_in(ADMIN_TOKEN)).await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(common::json(&body)["code"], "store_unavailable");
    assert!(!headers.contains_key("set-cookie"), "no session without its audit event");
    let (status, _, _) = common::plain_send(admin, sign_in("not-the-token")).await;
    assert_eq!(status, 401, "a refusal stays a refusal when its event cannot be written");
    let (status, keys) = admin_call(admin, Some(ADMIN_TOKEN), "GET", "/admin/v1/keys", None).await;
    assert_eq!(status, 200, "{keys}");

    pg.sql("DROP TRIGGER refuse_audit ON audit_events");
    let (status, _, body) = common::plain_send(admin, sign_in(ADMIN_TOKEN)).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let (_, audit) =
        admin_call(admin, Some(ADMIN_TOKEN), "GET", "/admin/v1/audit?limit=100", None).await;
    let signed_in: Vec<&serde_json::Value> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == "console.sign_in")
        .collect();
    assert_eq!(signed_in.len(), 2, "{audit}");
    for e in signed_in {
        assert_eq!(e["detail"]["method"], "token", "{audit}");
        assert!(e["actor"].as_str().unwrap_or("").starts_with("console:"), "{audit}");
    }
    let metrics = g.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("frontgate_console_signins_total{")
            && l.contains("method=\"token\"")
            && l.contains("result=\"unavailable\"")
            && l.ends_with(" 1")),
        "{metrics}"
    );
}

/// A flood of OIDC sign-in starts cannot grow the node's memory without limit: from one address
/// only 20 start per window (then 429); from 400 addresses (127.0.0.0/8 sources) at most 256 are
/// pending at once, and every later start (2164 of them) is refused with 503 (failing closed).
/// The node's resident memory is printed along the way, for the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_oidc_sign_in_starts_is_bounded_and_fails_closed() {
    let (port, admin_port) = (free_port(), free_port());
    let admin_origin = format!("http://127.0.0.1:{admin_port}");
    let idp = common::oidc::Provider::start_with(common::oidc::ProviderOptions {
        redirect_uris: vec![format!("{admin_origin}/console/oidc/callback")],
        ..Default::default()
    });
    let upstream = common::Upstream::start().await;
    let gate = oidc_console_gate(port, admin_port, &admin_origin, &idp.issuer, &upstream);
    let admin = gate.admin.expect("admin listener");
    let rss = || {
        std::fs::read_to_string(format!("/proc/{}/status", gate.child.id()))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l[6..].trim().to_owned())
            })
            .unwrap_or_default()
    };
    let start_from = |src: std::net::IpAddr| {
        let host = admin_origin.trim_start_matches("http://").to_owned();
        async move {
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.bind(std::net::SocketAddr::new(src, 0)).expect("bind a loopback source");
            let tcp = sock.connect(admin).await.expect("connect");
            let (mut s, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .expect("handshake");
            tokio::spawn(conn);
            let r = http::Request::builder()
                .uri("/console/oidc/login")
                .header("host", host)
                .body(http_body_util::Full::<bytes::Bytes>::default())
                .unwrap();
            s.send_request(r).await.expect("answer").status().as_u16()
        }
    };
    let before = rss();
    let mut one = std::collections::BTreeMap::<u16, u32>::new();
    for _ in 0..100 {
        *one.entry(start_from("127.0.0.1".parse().unwrap()).await).or_default() += 1;
    }
    assert_eq!(one, [(303, 20), (429, 80)].into_iter().collect(), "{}", gate.logs());
    let mut many = std::collections::BTreeMap::<u16, u32>::new();
    for i in 0..400u32 {
        let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_1000 + i));
        *many.entry(start_from(src).await).or_default() += 1;
    }
    // 20 are pending from 127.0.0.1 already: 236 more fit.
    assert_eq!(many, [(303, 236), (503, 164)].into_iter().collect(), "{}", gate.logs());
    let full = rss();
    // Full: 2000 more addresses are all refused.
    for i in 0..2000u32 {
        let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_2000 + i));
        assert_eq!(start_from(src).await, 503);
    }
    eprintln!(
        "frontgate VmRSS before the flood: {before}; after 500 starts (full): {full}; after 2000 more: {}",
        rss()
    );
}
