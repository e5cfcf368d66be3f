//! The admin console (docs/console.md): a hand-written page (HTML, CSS, JS, no build step, no
//! third-party host) embedded in the binary and served by the admin listener under
//! `/console/`, under a strict CSP; and its sign-in, which exchanges the admin token once for
//! an HttpOnly, SameSite=Strict session cookie plus a CSRF token the page sends in
//! `X-Frontgate-CSRF` on every state-changing call. The console calls the same documented
//! admin API as any other client: the API's handlers accept either the bearer token or a
//! console session ([`authenticate`]), and [`csrf_guard`] refuses a cookie-authenticated
//! state-changing call without the session's CSRF token.

pub mod auth;
pub mod oidc;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{AdminHost, Host};
use crate::problem::{Code, Problem};
use crate::store::audit::{self, AuditEvent};
use auth::{Admission, ConsoleAuth, ConsoleSession};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");
const ICON: &str = include_str!("assets/icon.svg");

/// The console page's Content-Security-Policy: its own script and style files only (nothing
/// inline, no eval), calls to its own origin only, never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Sent by the page on its automatic refreshes (the traffic view's): such a call does not
/// restart the session's idle timer.
pub const BACKGROUND_HEADER: &str = "x-frontgate-background";

/// The path the console's sign-in lives at (`POST` signs in, `GET` reads the session's CSRF
/// token back after a page load, `DELETE` signs out).
pub const SESSION_PATH: &str = "/admin/v1/console/session";

pub fn routes() -> Router<Host> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { asset(INDEX, "text/html; charset=utf-8") }))
        .route("/console/app.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/console/app.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/console/icon.svg", get(|| async { asset(ICON, "image/svg+xml") }))
        .route(SESSION_PATH, get(session_info).post(sign_in).delete(sign_out))
        .merge(oidc::routes())
}

/// The console's state on this node, kept across reloads; a new admin token starts a fresh
/// one (every console session signed in with the old token ends).
pub fn state(shared: &dyn AdminHost, token: &str) -> Arc<ConsoleAuth> {
    let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(token));
    let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    current(&shared.services().kept("admin.console", ConsoleSlot::default), tag)
}

/// The console state of the admin token in force, by a tag of its digest.
type ConsoleSlot = std::sync::Mutex<Option<(String, Arc<ConsoleAuth>)>>;

/// The state for the token tagged `tag`: the one in `slot` if it is that token's, else a fresh
/// one, and the previous token's sessions are ended for good (changing the token back later
/// does not bring them back).
fn current(slot: &ConsoleSlot, tag: String) -> Arc<ConsoleAuth> {
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((t, auth)) = slot.as_ref()
        && *t == tag
    {
        return auth.clone();
    }
    if let Some((_, old)) = slot.take() {
        old.close_all();
    }
    let auth = Arc::new(ConsoleAuth::new());
    *slot = Some((tag, auth.clone()));
    auth
}

/// Headers every console response carries.
fn harden(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(headers, "content-security-policy", CSP);
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "cache-control", "no-store");
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "cross-origin-resource-policy", "same-origin");
    set(headers, "permissions-policy", "camera=(), microphone=(), geolocation=()");
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    harden(r.headers_mut());
    r
}

pub(crate) fn problem(p: Problem) -> Response {
    let status = p.status();
    let mut r = (status, [(header::CONTENT_TYPE, "application/problem+json")], p.to_json(""))
        .into_response();
    harden(r.headers_mut());
    r
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r =
        (status, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response();
    harden(r.headers_mut());
    r
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    crate::session::cookie::get(headers, auth::COOKIE).filter(|v| !v.is_empty())
}

fn set_cookie(value: &str, max_age: i64) -> HeaderValue {
    // No `Secure`: the admin listener speaks plain HTTP (keep it on loopback or behind TLS;
    // docs/console.md). HttpOnly keeps it from scripts, SameSite=Strict from other sites.
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        auth::COOKIE
    ))
    .unwrap_or(HeaderValue::from_static("frontgate_console=; Path=/; Max-Age=0"))
}

fn now() -> i64 {
    crate::session::now()
}

fn configured_token(shared: &dyn AdminHost) -> Option<String> {
    shared.config().admin.token.as_ref().filter(|t| !t.0.is_empty()).map(|t| t.0.clone())
}

/// Who is calling the admin API: the bearer token (`admin-api`) or a console session
/// (`console:<id>`), as the actor of audit events. The error is the response to send.
#[allow(clippy::result_large_err)]
pub fn authenticate(shared: &dyn AdminHost, headers: &HeaderMap) -> Result<String, Response> {
    let Some(token) = configured_token(shared) else {
        return Err(problem(
            Problem::new(Code::Unauthenticated)
                .with_detail("The management API is disabled until [admin] token is set."),
        ));
    };
    if let Some(authz) = headers.get(header::AUTHORIZATION) {
        let presented = bearer_token(authz);
        if !presented.is_empty() && auth::same_secret(presented, &token) {
            return Ok("admin-api".to_owned());
        }
    } else if let Some(cookie) = cookie_value(headers) {
        // The page's automatic refreshes say so: they are not a person's activity, and must not
        // keep an unattended tab signed in.
        let console = state(shared, &token);
        let session = if headers.contains_key(BACKGROUND_HEADER) {
            console.peek(cookie, now())
        } else {
            console.touch(cookie, now())
        };
        if let Some(s) = session {
            return Ok(s.actor);
        }
    }
    Err(problem(
        Problem::new(Code::Unauthenticated)
            .with_detail("Send Authorization: Bearer <[admin] token>, or sign in to the console."),
    ))
}

/// A sign-in (`console.sign_in`) or a refused one (`console.sign_in_refused`) as an audit event,
/// when there is an SQL store (it is logged always). `Err` when the write failed.
async fn audit_sign_in(
    shared: &dyn AdminHost,
    ok: bool,
    actor: &str,
    detail: serde_json::Value,
) -> Result<(), ()> {
    let action = if ok { "console.sign_in" } else { "console.sign_in_refused" };
    tracing::info!(actor = %actor, action, %detail, "console sign-in audit");
    let Some(db) = shared.services().db().cloned() else { return Ok(()) };
    let event = AuditEvent::now(actor, action, "console", detail);
    let t = shared.services().store_timeout();
    let written = shared
        .services()
        .run(async move { crate::store::deadline(t, audit::record(&db, &event)).await })
        .await;
    match written {
        Ok(Ok(())) => Ok(()),
        _ => {
            tracing::error!(actor = %actor, action, "console sign-in audit event not written");
            Err(())
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF defence for console sessions, in front of every admin route: a state-changing
/// request that is authenticated by the console cookie alone (no `Authorization`) must carry
/// the session's CSRF token in `X-Frontgate-CSRF`, and, when the browser says where it comes
/// from, come from the admin listener's own origin. Signing in is exempt (it has no session
/// yet; it needs the token itself).
pub async fn csrf_guard(State(shared): State<Host>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let cookie_only =
        !headers.contains_key(header::AUTHORIZATION) && cookie_value(headers).is_some();
    let sign_in = req.method() == Method::POST && req.uri().path() == SESSION_PATH;
    if is_safe(req.method()) || !cookie_only || sign_in {
        return next.run(req).await;
    }
    let Some(token) = configured_token(&*shared) else { return next.run(req).await };
    let Some(session) = cookie_value(headers).and_then(|c| state(&*shared, &token).touch(c, now()))
    else {
        // No live session: the handler refuses it as unauthenticated.
        return next.run(req).await;
    };
    let presented = headers.get(auth::CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !auth::csrf_ok(&session, presented) || !same_origin(headers) {
        metrics::counter!("frontgate_console_csrf_refused_total").increment(1);
        return problem(Problem::new(Code::CsrfFailed).with_detail(
            "A console call that changes something needs the session's X-Frontgate-CSRF header, from the console's own origin.",
        ));
    }
    next.run(req).await
}

/// Guessing the admin token with `Authorization: Bearer` on the API counts against the same
/// per-address limit as the console's sign-in: five wrong tokens in five minutes, then every
/// bearer call from that address (right token or wrong, so the answer says nothing) is refused
/// with 429 until the window ends. Without this the API would be an unlimited guessing oracle
/// beside the limited sign-in.
pub async fn bearer_guard(State(shared): State<Host>, req: Request, next: Next) -> Response {
    // Only the management API takes the token; a scraper's own credentials on /metrics, or
    // another scheme, are not guesses at it.
    let Some(authz) = req
        .headers()
        .get(header::AUTHORIZATION)
        .filter(|v| v.as_bytes().get(..7).is_some_and(|s| s.eq_ignore_ascii_case(b"bearer ")))
        .filter(|_| req.uri().path().starts_with("/admin/v1/"))
    else {
        return next.run(req).await;
    };
    let (Some(token), Some(ip)) = (
        configured_token(&*shared),
        req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
    ) else {
        return next.run(req).await;
    };
    let console = state(&*shared, &token);
    let t = now();
    if let Admission::Limited(after) = console.admit(ip, t) {
        metrics::counter!("frontgate_admin_bearer_refused_total", "result" => "limited")
            .increment(1);
        return too_many_wrong_tokens(after);
    }
    let presented = bearer_token(authz);
    if presented.is_empty() || !auth::same_secret(presented, &token) {
        console.failed(ip, t);
        metrics::counter!("frontgate_admin_bearer_refused_total", "result" => "wrong_token")
            .increment(1);
        tracing::warn!(client = %ip, "admin API call with a wrong admin token");
    }
    next.run(req).await
}

/// The token of an `Authorization: Bearer <token>` value; empty for any other.
fn bearer_token(value: &HeaderValue) -> &str {
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, t)| t.trim())
}

/// 429 for an address that guessed too many wrong tokens (sign-in and bearer calls alike).
fn too_many_wrong_tokens(retry_after: i64) -> Response {
    let mut r = problem(
        Problem::new(Code::RateLimited)
            .with_detail("Too many wrong admin tokens from this address; try again later."),
    );
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    r
}

/// `Origin`, when sent, names this listener (`http://<Host>`); browsers send it on every
/// cross-site and state-changing request.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let bare = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    bare.is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host))
}

fn session_body(s: &ConsoleSession) -> serde_json::Value {
    serde_json::json!({ "csrf": s.csrf, "actor": s.actor, "expires_at": s.expires_at() })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

async fn sign_in(
    State(shared): State<Host>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = configured_token(&*shared) else {
        return problem(
            Problem::new(Code::Unauthenticated)
                .with_detail("The console is disabled until [admin] token is set."),
        );
    };
    if !same_origin(&headers) {
        return problem(
            Problem::new(Code::CsrfFailed).with_detail("Sign in from the console's own origin."),
        );
    }
    let console = state(&*shared, &token);
    let ip = peer.ip();
    let t = now();
    if let Admission::Limited(after) = console.admit(ip, t) {
        metrics::counter!("frontgate_console_signins_total", "method" => "token", "result" => "limited")
            .increment(1);
        return too_many_wrong_tokens(after);
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return problem(
            Problem::new(Code::UnsupportedMediaType)
                .with_detail("Send {\"token\": \"...\"} with Content-Type: application/json."),
        );
    }
    let Ok(req) = serde_json::from_slice::<SignIn>(&body) else {
        return problem(
            Problem::new(Code::ValidationFailed).with_detail("Send {\"token\": \"...\"}."),
        );
    };
    if req.token.is_empty() || !auth::same_secret(&req.token, &token) {
        console.failed(ip, t);
        metrics::counter!("frontgate_console_signins_total", "method" => "token", "result" => "failure")
            .increment(1);
        tracing::warn!(client = %ip, "console sign-in with a wrong admin token");
        // Best effort: the attempt is refused whether or not the event is written.
        let detail = serde_json::json!({ "method": "token", "client": ip.to_string(), "reason": "wrong_token" });
        let _ = audit_sign_in(&*shared, false, "anonymous", detail).await;
        return problem(
            Problem::new(Code::Unauthenticated).with_detail("That is not the admin token."),
        );
    }
    // A session this browser already had ends: a fresh id at every sign-in.
    if let Some(old) = cookie_value(&headers) {
        console.close(old);
    }
    // The event is written before the session exists: none that the audit log would not show.
    // Its actor is the session's, which is known only once it is open, so the key is chosen here.
    let cookie = auth::random_token();
    let actor = format!("console:{}", &auth::key_of(&cookie)[..8]);
    let detail = serde_json::json!({ "method": "token", "client": ip.to_string() });
    if audit_sign_in(&*shared, true, &actor, detail).await.is_err() {
        metrics::counter!("frontgate_console_signins_total", "method" => "token", "result" => "unavailable")
            .increment(1);
        return problem(Problem::new(Code::StoreUnavailable).with_detail(
            "The audit log cannot be written, so no console session is opened; try again later.",
        ));
    }
    let session = console.open_with(&cookie, t, Some(actor));
    metrics::counter!("frontgate_console_signins_total", "method" => "token", "result" => "success")
        .increment(1);
    tracing::info!(client = %ip, actor = %session.actor, "console sign-in");
    let mut r = json(StatusCode::CREATED, session_body(&session));
    r.headers_mut().insert(header::SET_COOKIE, set_cookie(&cookie, auth::ABSOLUTE_SECS));
    r
}

async fn session_info(State(shared): State<Host>, headers: HeaderMap) -> Response {
    let session = configured_token(&*shared).and_then(|token| {
        cookie_value(&headers).and_then(|c| state(&*shared, &token).touch(c, now()))
    });
    match session {
        Some(s) => json(StatusCode::OK, session_body(&s)),
        None => problem(Problem::new(Code::Unauthenticated).with_detail("Not signed in.")),
    }
}

async fn sign_out(State(shared): State<Host>, headers: HeaderMap) -> Response {
    let ended = configured_token(&*shared)
        .zip(cookie_value(&headers))
        .is_some_and(|(token, c)| state(&*shared, &token).close(c));
    if !ended {
        return problem(Problem::new(Code::Unauthenticated).with_detail("Not signed in."));
    }
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    harden(r.headers_mut());
    r.headers_mut().insert(header::SET_COOKIE, set_cookie("", 0));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_admin_token_ends_the_old_tokens_console_sessions_for_good() {
        let slot = ConsoleSlot::default();
        let a = current(&slot, "aaaa".into());
        let (cookie, _) = a.open(now());
        assert!(current(&slot, "aaaa".into()).touch(&cookie, now()).is_some());
        let b = current(&slot, "bbbb".into());
        assert!(b.touch(&cookie, now()).is_none());
        // Back to the first token: its sessions stay ended.
        assert!(current(&slot, "aaaa".into()).touch(&cookie, now()).is_none());
        assert!(a.touch(&cookie, now()).is_none());
    }

    #[test]
    fn the_csp_allows_nothing_inline_and_no_framing() {
        assert!(!CSP.contains("unsafe"));
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(CSP.starts_with("default-src 'self'"));
        // The page itself holds no inline script, style or handler the CSP would block.
        for forbidden in ["<script>", "style=", "<style", "javascript:"] {
            assert!(!INDEX.contains(forbidden), "index.html contains {forbidden}");
        }
        // No event-handler attribute (` onclick=`, ...).
        for (i, _) in INDEX.match_indices(" on") {
            let name: String =
                INDEX[i + 3..].chars().take_while(|c| c.is_ascii_lowercase()).collect();
            let after = INDEX[i + 3 + name.len()..].chars().next();
            assert!(name.is_empty() || after != Some('='), "index.html has an on{name} attribute");
        }
        assert!(!SCRIPT.contains("localStorage") && !SCRIPT.contains("sessionStorage"));
        assert!(!SCRIPT.contains("eval(") && !SCRIPT.contains("innerHTML"));
    }

    #[test]
    fn same_origin_compares_origin_with_host() {
        let h = |origin: Option<&str>, host: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            same_origin(&m)
        };
        assert!(h(None, "127.0.0.1:9901"));
        assert!(h(Some("http://127.0.0.1:9901"), "127.0.0.1:9901"));
        assert!(!h(Some("http://evil.example"), "127.0.0.1:9901"));
        assert!(!h(Some("null"), "127.0.0.1:9901"));
        assert!(!h(Some("http://127.0.0.1:9902"), "127.0.0.1:9901"));
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let c = set_cookie("abc", 60);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("frontgate_console=abc;"));
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Max-Age=60")
        );
    }
}
