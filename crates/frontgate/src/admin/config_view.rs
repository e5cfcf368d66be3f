//! The running config and reloads on the admin listener (docs/console.md):
//! `GET /admin/v1/config` (the config as loaded, every secret redacted, and the last reload's
//! outcome) and `POST /admin/v1/reload` (re-read the config file, as SIGHUP does; an audit
//! event with its actor).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::Host;
use super::console::problem;
use crate::problem::{Code, Problem};
use crate::store::audit::{self, AuditEvent};

pub fn routes() -> Router<Host> {
    Router::new().route("/admin/v1/config", get(show)).route("/admin/v1/reload", post(reload))
}

fn json(v: serde_json::Value) -> Response {
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], v.to_string())
        .into_response()
}

/// The config as text with every secret redacted. Secrets are typed (`EnvString`,
/// `SessionKey`), and those types print `<redacted>` whatever their value; on top, any
/// `scheme://user:password@` left in the text (an upstream URL) loses its password.
pub fn redacted(config: &crate::config::Config) -> String {
    scrub_userinfo(&format!("{config:#?}"))
}

fn scrub_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; a '@' before that ends
        // the userinfo, whose password (after ':') is replaced.
        let end =
            tail.find(|c: char| c == '/' || c == '"' || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                let userinfo = &tail[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":<redacted>");
                    }
                    None => out.push_str(userinfo),
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

async fn show(State(shared): State<Host>, headers: HeaderMap) -> Response {
    if let Err(r) = super::console::authenticate(&*shared, &headers) {
        return r;
    }
    json(serde_json::json!({
        "config": redacted(&shared.config()),
        "last_reload": shared.last_reload(),
    }))
}

async fn reload(State(shared): State<Host>, headers: HeaderMap) -> Response {
    let actor = match super::console::authenticate(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let host = shared.clone();
    let Ok(outcome) = tokio::task::spawn_blocking(move || host.reload()).await else {
        return problem(Problem::new(Code::StoreUnavailable));
    };
    let Some(outcome) = outcome else {
        return problem(
            Problem::new(Code::BadRequest)
                .with_status(StatusCode::CONFLICT)
                .with_detail("This instance has no config file to reload."),
        );
    };
    tracing::info!(actor = %actor, ok = outcome.ok, "config reload through the admin API");
    if let Some(db) = shared.services().db().cloned() {
        let event = AuditEvent::now(
            &actor,
            "config.reload",
            "config",
            serde_json::json!({ "ok": outcome.ok, "error": outcome.error }),
        );
        let t = shared.services().store_timeout();
        let written = shared
            .services()
            .run(async move { crate::store::deadline(t, audit::record(&db, &event)).await })
            .await;
        if !matches!(written, Ok(Ok(()))) {
            return problem(Problem::new(Code::StoreUnavailable));
        }
    }
    json(serde_json::to_value(&outcome).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_scrubbed_and_nothing_else_changes() {
        assert_eq!(
            scrub_userinfo(r#"url: "postgres://app:s3cret@db:5432/x", other: "http://h/p""#),
            r#"url: "postgres://app:<redacted>@db:5432/x", other: "http://h/p""#
        );
        assert_eq!(scrub_userinfo("redis://:pw@r:6379"), "redis://:<redacted>@r:6379");
        assert_eq!(scrub_userinfo("http://user@h/"), "http://user@h/");
        assert_eq!(scrub_userinfo("no urls here"), "no urls here");
        assert_eq!(scrub_userinfo("a://"), "a://");
        assert_eq!(
            scrub_userinfo("http://h/a@b"),
            "http://h/a@b",
            "an @ in the path is not userinfo"
        );
    }

    #[test]
    fn no_secret_of_a_full_config_reaches_the_redacted_text() {
        let secrets = [
            "admin-token-SECRET-1-0123456789",
            "hash-secret-SECRET-2-0123456789abcdef",
            "pow-secret-SECRET-3-0123456789abcdef",
            "client-secret-SECRET-4",
            "pgpassword-SECRET-5",
        ];
        let raw: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw);
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"data_dir = {data:?}
[admin]
token = "{}"
[store]
url = "postgres://app:{}@127.0.0.1:5432/db"
[api_keys]
hash_secret = "{}"
[pow]
secret = "{}"
[oidc]
issuer = "https://idp.example.com"
client_id = "c"
client_secret = "{}"
session_key = "{key}"
[server]
public_url = "https://app.example.com"
[upstream]
url = "http://127.0.0.1:9000"
[[routes]]
match = "/x"
"#,
            secrets[0],
            secrets[4],
            secrets[1],
            secrets[2],
            secrets[3],
            data = dir.path().display().to_string(),
        );
        let config = crate::config::Config::parse(&text, "frontgate.toml", dir.path())
            .unwrap_or_else(|e| panic!("config: {e:?}"));
        let shown = redacted(&config);
        for s in secrets {
            assert!(!shown.contains(s), "{s} is in\n{shown}");
        }
        let key_bytes = format!("{raw:?}");
        assert!(!shown.contains(&key) && !shown.contains(&key_bytes[..20]), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("idp.example.com"), "non-secrets are shown: {shown}");
    }
}
