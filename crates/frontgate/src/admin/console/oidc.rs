//! The console's sign-in through OpenID Connect (`[admin.oidc]`, docs/console.md): the
//! authorization-code flow with PKCE, state and nonce against `[oidc]`'s provider, redirecting
//! back to the admin listener (`<origin>/console/oidc/callback`). Only users whose ID token
//! holds an allowed value in the configured claim get a console session, the same kind the
//! token sign-in gives (cookie plus CSRF token), with actor `oidc:<subject>`.
//!
//! A started sign-in lives in this node's memory ([`auth::ConsoleAuth::start_login`]: bounded,
//! single-use, limited per client address) under the SHA-256 of its state, bound to the browser
//! by the `frontgate_console_login` cookie (its SHA-256 is kept, never the value). Nothing is
//! written to the shared store.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::{self, Admission, PendingLogin, StartRefused, TakeRefused};
use super::{AdminHost, Host, audit_sign_in, configured_token, harden, json, now, state};
use crate::config::OidcConfig;
use crate::config::admin::AdminOidcConfig;
use crate::oidc::provider::{OidcError, Provider, pkce_pair};
use crate::session::cookie;

/// Starts a sign-in: redirects to the identity provider.
pub const LOGIN_PATH: &str = "/console/oidc/login";
/// Where the identity provider sends the browser back.
pub const CALLBACK_PATH: &str = "/console/oidc/callback";
/// Whether OIDC sign-in is configured, for the page (unauthenticated; says nothing secret).
pub const CONFIG_PATH: &str = "/console/oidc/config";
/// The login cookie's path: sent back only to the sign-in's own endpoints.
const COOKIE_PATH: &str = "/console/oidc/";
/// The longest actor name an OIDC subject becomes (before its hash suffix).
const ACTOR_MAX: usize = 64;

pub fn routes() -> Router<Host> {
    Router::new()
        .route(LOGIN_PATH, get(login))
        .route(CALLBACK_PATH, get(callback))
        .route(CONFIG_PATH, get(config))
}

/// `[oidc]` and `[admin.oidc]` when both are set.
fn settings(shared: &dyn AdminHost) -> Option<(OidcConfig, AdminOidcConfig)> {
    let c = shared.config();
    Some((c.oidc.clone()?, c.admin.oidc.clone()?))
}

/// The admin listener's own client of the provider (its redirect URI is the console's
/// callback), kept across calls and rebuilt when `[oidc]` or `[admin.oidc]` changes.
type ProviderSlot = Mutex<Option<(String, Arc<Provider>)>>;

fn provider(
    shared: &dyn AdminHost,
    oidc: &OidcConfig,
    admin: &AdminOidcConfig,
) -> Result<Arc<Provider>, crate::oidc::BuildError> {
    use sha2::Digest;
    let secret = oidc.client_secret.as_ref().map(|s| s.0.as_str()).unwrap_or("");
    let mut h = sha2::Sha256::new();
    h.update(format!("{oidc:?}|{}|", admin.origin).as_bytes());
    h.update(secret.as_bytes());
    let tag: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let slot = shared.services().kept("admin.console.oidc", ProviderSlot::default);
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((t, p)) = slot.as_ref()
        && *t == tag
    {
        return Ok(p.clone());
    }
    // The console keeps no IdP tokens: no refresh token to ask for (offline_access would also
    // make the IdP ask for consent), and no userinfo call (`session_claims` only needs `sub`).
    let mut config = oidc.clone();
    config.scopes.retain(|s| s != "offline_access");
    config.session_claims = vec!["sub".into()];
    let p = Arc::new(Provider::new(
        Arc::new(config),
        format!("{}{CALLBACK_PATH}", admin.origin.as_str()),
    )?);
    *slot = Some((tag, p.clone()));
    Ok(p)
}

/// A small page for the browser (the callback and login are navigations, not API calls): the
/// console's stylesheet, no script, the console's headers.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>frontgate console: {t}</title>\n<link rel=\"stylesheet\" href=\"/console/app.css\">\n\
         </head>\n<body>\n<main id=\"main\">\n<h1>{t}</h1>\n<p class=\"error\" role=\"alert\" id=\"oidc-error\">{m}</p>\n\
         <p><a href=\"/console/\">Back to the console</a></p>\n</main>\n</body>\n</html>\n",
        t = esc(title),
        m = esc(message)
    );
    let mut r =
        (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    harden(r.headers_mut());
    r
}

fn counted(result: &'static str) {
    metrics::counter!("frontgate_console_signins_total", "method" => "oidc", "result" => result)
        .increment(1);
}

fn login_cookie(value: &str, max_age: i64) -> HeaderValue {
    // SameSite=Lax, not Strict: the identity provider's redirect back is a cross-site
    // navigation, which must carry it. It is worth nothing without the state it was issued with.
    HeaderValue::from_str(&format!(
        "{}={value}; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}",
        cookie::CONSOLE_LOGIN
    ))
    .unwrap_or(HeaderValue::from_static("frontgate_console_login=; Max-Age=0"))
}

/// The audit actor for an OIDC subject: `oidc:<subject>` with anything but letters, digits and
/// `-_.@+:` replaced by `_`, cut to 64 characters; when that changed anything, a `~` and 8 hex
/// of the subject's SHA-256 follow, so two subjects never share an actor.
pub fn actor_of(subject: &str) -> String {
    let clean: String = subject
        .chars()
        .take(ACTOR_MAX)
        .map(|c| if c.is_ascii_alphanumeric() || "-_.@+:".contains(c) { c } else { '_' })
        .collect();
    if clean == subject {
        format!("oidc:{clean}")
    } else {
        format!("oidc:{clean}~{}", &auth::key_of(subject)[..8])
    }
}

/// Whether a claim's value holds one of `allow`: a string equal to one, or an array with a
/// string equal to one. Anything else (absent, a number, an object) allows nothing.
pub fn claim_allows(value: Option<&serde_json::Value>, allow: &[String]) -> bool {
    let hit = |s: &str| allow.iter().any(|a| a == s);
    match value {
        Some(serde_json::Value::String(s)) => hit(s),
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str().is_some_and(hit)),
        _ => false,
    }
}

fn not_configured() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "OIDC sign-in is not configured",
        "This console signs in with the admin token only ([admin.oidc] is not set).",
    )
}

fn limited(after: i64) -> Response {
    counted("limited");
    let mut r = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts",
        "Too many sign-in attempts from this address; try again in a few minutes.",
    );
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(after.max(1)));
    r
}

fn unavailable(message: &str) -> Response {
    counted("unavailable");
    page(StatusCode::SERVICE_UNAVAILABLE, "Sign-in is unavailable", message)
}

/// `GET /console/oidc/config`: `{"enabled": true, "provider": "<issuer host>"}`.
async fn config(State(shared): State<Host>) -> Response {
    let enabled = configured_token(&*shared).is_some();
    let body = match settings(&*shared).filter(|_| enabled) {
        Some((oidc, _)) => {
            let issuer = oidc.issuer.get_ref().0.clone();
            let host = issuer.split_once("://").map_or(issuer.as_str(), |(_, h)| h);
            let host = host.split('/').next().unwrap_or(host).to_owned();
            serde_json::json!({ "enabled": true, "provider": host, "login": LOGIN_PATH })
        }
        None => serde_json::json!({ "enabled": false }),
    };
    json(StatusCode::OK, body)
}

/// `GET /console/oidc/login`: keeps a pending sign-in and redirects to the identity provider.
async fn login(
    State(shared): State<Host>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let (Some((oidc, admin)), Some(token)) = (settings(&*shared), configured_token(&*shared))
    else {
        return not_configured();
    };
    // The binder cookie and the callback are on the configured origin: a sign-in started under
    // another host name could never complete.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    if !host.eq_ignore_ascii_case(admin.origin.host_port()) {
        return page(
            StatusCode::BAD_REQUEST,
            "Open the console at its configured address",
            &format!(
                "Sign in through OIDC from {}/console/ ([admin.oidc] origin): the identity provider returns there.",
                admin.origin
            ),
        );
    }
    let console = state(&*shared, &token);
    let (ip, t) = (peer.ip(), now());
    if let Admission::Limited(after) = console.admit(ip, t) {
        return limited(after);
    }
    let provider = match provider(&*shared, &oidc, &admin) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "console OIDC client");
            return unavailable("The OIDC client could not be built; see the log.");
        }
    };
    // Always a fresh binder, never one the browser brings: a binder planted by someone who
    // can set this host's cookies (another port, plain HTTP) would let them finish their own
    // sign-in in this browser (login fixation). A second tab's start replaces the first's.
    let binder = auth::random_token();
    let (state_value, nonce) = (auth::random_token(), auth::random_token());
    let (challenge, verifier) = pkce_pair();
    let timeout = oidc.login_timeout.0.as_secs() as i64;
    let pending = PendingLogin {
        binder: auth::key_of(&binder),
        nonce: nonce.clone(),
        verifier,
        expires_at: t + timeout,
    };
    match console.start_login(ip, &state_value, pending, t) {
        Ok(()) => {}
        Err(StartRefused::Limited(after)) => return limited(after),
        Err(StartRefused::Full) => {
            tracing::warn!(client = %ip, "console OIDC sign-in refused: too many pending");
            return unavailable(
                "Too many sign-ins are in progress on this node; try again in a few minutes.",
            );
        }
    }
    let s = state_value.clone();
    let url = shared
        .services()
        .run(async move { provider.authorize_url(&s, &nonce, challenge).await })
        .await;
    let url = match url {
        Ok(Ok(url)) => url,
        other => {
            // The pending entry is of no use now.
            let _ = console.take_login(&state_value, Some(&binder), t);
            if let Ok(Err(e)) = other {
                tracing::warn!(error = %e, "console OIDC sign-in: the identity provider is unavailable");
            }
            return unavailable("The identity provider could not be reached; try again later.");
        }
    };
    counted("started");
    let mut r = page(StatusCode::SEE_OTHER, "Signing in", "Continue at the identity provider.");
    if let Ok(v) = HeaderValue::from_str(&url) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().append(header::SET_COOKIE, login_cookie(&binder, timeout));
    r
}

/// `GET /console/oidc/callback?code=...&state=...`: takes the pending sign-in (once), redeems
/// the code, verifies the ID token and checks the claim; a console session on success.
async fn callback(
    State(shared): State<Host>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<
        Query<std::collections::HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let (Some((oidc, admin)), Some(token)) = (settings(&*shared), configured_token(&*shared))
    else {
        return not_configured();
    };
    let console = state(&*shared, &token);
    let (ip, t) = (peer.ip(), now());
    if let Admission::Limited(after) = console.admit(ip, t) {
        return limited(after);
    }
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let binder = cookie::get(&headers, cookie::CONSOLE_LOGIN);
    // Every refusal: an audit event (best effort: the sign-in is refused whether or not it is
    // written) and a page saying why. Only refusals that needed the IdP to answer for a real
    // person (a code it refused, a subject or claim that does not do) count against the address
    // like a wrong token: a made-up, replayed or foreign state, or `error=`, is what any web
    // page can send through a visitor's browser, and must not lock that address out.
    let refuse = |status: StatusCode, reason: &'static str, message: String, actor: String| {
        let shared = shared.clone();
        let console = console.clone();
        async move {
            if matches!(reason, "idp_refused" | "bad_subject" | "not_allowed") {
                console.failed(ip, t);
            }
            counted("failure");
            tracing::warn!(client = %ip, reason, actor = %actor, "console OIDC sign-in refused");
            let detail =
                serde_json::json!({ "method": "oidc", "client": ip.to_string(), "reason": reason });
            let _ = audit_sign_in(&*shared, false, &actor, detail).await;
            let mut r = page(status, "Sign-in refused", &message);
            r.headers_mut().append(header::SET_COOKIE, login_cookie("", 0));
            r
        }
    };
    let anonymous = || "anonymous".to_owned();
    if let Some(error) = params.get("error") {
        if let Some(s) = params.get("state") {
            let _ = console.take_login(s, binder, t);
        }
        let error: String =
            error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
        return refuse(
            StatusCode::UNAUTHORIZED,
            "idp_error",
            format!("The identity provider answered {error}. Start again from the console."),
            anonymous(),
        )
        .await;
    }
    let (Some(state_value), Some(code)) = (params.get("state"), params.get("code")) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "The callback has no state or no code. Start again from the console.".into(),
            anonymous(),
        )
        .await;
    };
    let pending = match console.take_login(state_value, binder, t) {
        Ok(p) => p,
        Err(TakeRefused::Unknown) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "bad_state",
                "This sign-in is unknown, expired or already used. Start again from the console."
                    .into(),
                anonymous(),
            )
            .await;
        }
        Err(TakeRefused::OtherBrowser) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "other_browser",
                "This browser did not start this sign-in. Start again from the console.".into(),
                anonymous(),
            )
            .await;
        }
    };
    let provider = match provider(&*shared, &oidc, &admin) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "console OIDC client");
            return unavailable("The OIDC client could not be built; see the log.");
        }
    };
    let code = code.clone();
    let tokens = shared
        .services()
        .run(async move { provider.exchange_code(code, pending.verifier, &pending.nonce).await })
        .await;
    let tokens = match tokens {
        Ok(Ok(tokens)) => tokens,
        Ok(Err(OidcError::Discovery(e))) => {
            tracing::warn!(error = %e, "console OIDC sign-in: discovery failed");
            return unavailable("The identity provider could not be reached; try again later.");
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console OIDC sign-in: code exchange refused");
            return refuse(
                StatusCode::UNAUTHORIZED,
                "idp_refused",
                "The identity provider's answer was refused (code or ID token). Start again from the console."
                    .into(),
                anonymous(),
            )
            .await;
        }
        Err(_) => return unavailable("This node is shutting down."),
    };
    let subject = tokens.claims.get("sub").and_then(|s| s.as_str()).unwrap_or("").to_owned();
    if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "bad_subject",
            "The ID token's subject is not usable.".into(),
            anonymous(),
        )
        .await;
    }
    let actor = actor_of(&subject);
    if !claim_allows(tokens.claims.get(&admin.claim), &admin.allow) {
        return refuse(
            StatusCode::FORBIDDEN,
            "not_allowed",
            format!(
                "You are signed in at the identity provider as {actor}, but its ID token does not hold an allowed value in the claim `{}`. Ask for the console role, or sign in with the admin token.",
                admin.claim
            ),
            actor,
        )
        .await;
    }
    // The event first: no session that the audit log would not show.
    let detail = serde_json::json!({ "method": "oidc", "client": ip.to_string() });
    if audit_sign_in(&*shared, true, &actor, detail).await.is_err() {
        return unavailable(
            "The audit log cannot be written, so no session is opened; try again later.",
        );
    }
    if let Some(old) = super::cookie_value(&headers) {
        console.close(old);
    }
    let (cookie_value, session) = console.open_as(t, Some(actor));
    counted("success");
    tracing::info!(client = %ip, actor = %session.actor, "console sign-in through OIDC");
    let mut r = page(StatusCode::SEE_OTHER, "Signed in", "Continue to the console.");
    r.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/console/"));
    r.headers_mut()
        .append(header::SET_COOKIE, super::set_cookie(&cookie_value, auth::ABSOLUTE_SECS));
    r.headers_mut().append(header::SET_COOKIE, login_cookie("", 0));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_name_the_subject_and_never_carry_markup_or_collide() {
        assert_eq!(actor_of("alice"), "oidc:alice");
        assert_eq!(actor_of("alice@example.com"), "oidc:alice@example.com");
        let odd = actor_of("a<b>\n c");
        assert!(
            odd.starts_with("oidc:a_b___c~") && odd.len() == "oidc:a_b___c~".len() + 8,
            "{odd}"
        );
        assert_ne!(actor_of("a b"), actor_of("a_b"));
        let long = actor_of(&"x".repeat(500));
        assert_eq!(long.len(), 5 + ACTOR_MAX + 1 + 8);
    }

    #[test]
    fn the_claim_allows_by_exact_string_or_array_member() {
        let allow = vec!["frontgate-admins".to_owned()];
        let v = |j: serde_json::Value| claim_allows(Some(&j), &allow);
        assert!(v(serde_json::json!("frontgate-admins")));
        assert!(v(serde_json::json!(["staff", "frontgate-admins"])));
        assert!(!v(serde_json::json!("Frontgate-Admins")));
        assert!(!v(serde_json::json!(["staff"])));
        assert!(!v(serde_json::json!([["frontgate-admins"]])));
        assert!(!v(serde_json::json!({"frontgate-admins": true})));
        assert!(!v(serde_json::json!("frontgate-admins,staff")));
        assert!(!claim_allows(None, &allow));
    }

    #[test]
    fn the_login_cookie_is_lax_http_only_and_scoped_to_the_sign_in() {
        let c = login_cookie("abc", 600);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("frontgate_console_login=abc;"), "{c}");
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/console/oidc/", "Max-Age=600"] {
            assert!(c.contains(flag), "{c}");
        }
    }
}
