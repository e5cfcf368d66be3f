//! Self-service keys (`[api_keys.self_service]`, docs/api-keys.md#self-service-keys): a
//! signed-in browser user mints, lists and revokes API keys for their own scripts, with no
//! code in the backend.
//!
//! - `GET /.frontgate/keys`: the caller's keys (no secrets).
//! - `POST /.frontgate/keys` `{"name", "scopes", "expires_in"}`: a new key, shown once.
//! - `DELETE /.frontgate/keys/{id}`: revokes one of the caller's keys.
//!
//! Every call needs a live session (else 401 `unauthenticated`, as on session routes); POST
//! and DELETE also pass the session routes' CSRF defence. Both are the sessions feature's,
//! reached through [`SignedIn`], which `oidc` implements: key code does not depend on it. The
//! owner is always the session's subject, never anything the request says. Creation and
//! revocation go through [`KeyAdmin`], like the admin API's: the same validation, audit
//! events (actor `session:<subject>`) and revocation events to every node.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use super::manage::{KeyAdmin, ManageError, NewKey};
use super::record::{KeyRecord, rfc3339};
use crate::body::{Body, ClientBody};
use crate::config::Config;
use crate::exchange::{Client, Endpoint, EndpointFuture};
use crate::problem::{Code, Problem};
use crate::state::Services;

/// What the endpoints need of browser sessions (implemented by `oidc::Oidc`).
pub trait SignedIn: Send + Sync + 'static {
    /// The subject of the live session the request's cookie names, as session routes
    /// establish it (refreshing its access token if due). `Err` is the refusal: 401
    /// `unauthenticated` without a live session, 503 when the session store fails.
    fn subject<'a>(
        &'a self,
        headers: &'a http::HeaderMap,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Caller, Problem>> + Send + 'a>>;
    /// Why a request that changes state with the session is refused as cross-site (the
    /// session routes' CSRF rule), if it is.
    fn csrf_refusal(&self, headers: &http::HeaderMap) -> Option<&'static str>;
}

/// The signed-in user a request comes from.
pub struct Caller {
    /// The session's subject: the owner of the keys it mints.
    pub subject: String,
    /// The scopes the session holds.
    pub scopes: Vec<String>,
}

/// Self-service creates and revocations, by `action` (`create`, `revoke`).
pub const SELF_SERVICE: &str = "frontgate_api_key_self_service_total";

const COLLECTION: &str = "/.frontgate/keys";
const ITEM_PREFIX: &str = "/.frontgate/keys/";
/// The largest request body (a name, a few scopes, a duration).
const MAX_BODY: usize = 16 * 1024;
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

struct SelfService {
    admin: KeyAdmin,
    sessions: Arc<dyn SignedIn>,
    services: Arc<Services>,
    scopes: Vec<String>,
    /// Of `scopes`, those some route accepting sessions requires: a user may put one on a key
    /// only if their session holds it, or a key would open what their session may not.
    session_gated: Vec<String>,
    max_keys: u32,
    max_ttl: Duration,
}

/// The endpoints, when `[api_keys.self_service]` is configured (config validation made sure
/// `[oidc]`, whose sessions these are, is too).
///
/// `session_scopes` are the scopes routes that accept sessions require.
pub fn endpoints(
    config: &Config,
    sessions: Option<Arc<dyn SignedIn>>,
    services: &Arc<Services>,
    session_scopes: &[String],
) -> Result<Vec<Arc<dyn Endpoint>>, String> {
    let Some(keys) = &config.api_keys else { return Ok(Vec::new()) };
    let Some(s) = &keys.self_service else { return Ok(Vec::new()) };
    let Some(sessions) = sessions else {
        return Err("[api_keys.self_service] needs [oidc]".into());
    };
    let admin = KeyAdmin::new(keys, services)
        .map_err(|e| format!("[api_keys.self_service] needs the store: {e}"))?;
    let shared = Arc::new(SelfService {
        admin,
        sessions,
        services: services.clone(),
        scopes: s.scopes.clone(),
        session_gated: s.scopes.iter().filter(|x| session_scopes.contains(x)).cloned().collect(),
        max_keys: s.max_keys,
        max_ttl: s.max_ttl.0,
    });
    Ok(vec![
        Arc::new(KeysEndpoint { item: false, shared: shared.clone() }),
        Arc::new(KeysEndpoint { item: true, shared }),
    ])
}

/// `/.frontgate/keys` (`item = false`) or `/.frontgate/keys/{id}` (`item = true`).
struct KeysEndpoint {
    item: bool,
    shared: Arc<SelfService>,
}

impl Endpoint for KeysEndpoint {
    fn path(&self) -> &'static str {
        if self.item { ITEM_PREFIX } else { COLLECTION }
    }

    fn matches(&self, path: &str) -> bool {
        if self.item { path.starts_with(ITEM_PREFIX) } else { path == COLLECTION }
    }

    fn handle<'a>(
        &'a self,
        head: &'a mut http::request::Parts,
        body: ClientBody,
        _client: &'a Client,
        _request_id: &'a str,
    ) -> EndpointFuture<'a> {
        Box::pin(async move {
            let mut r = if self.item {
                self.shared.item(head).await
            } else {
                self.shared.collection(head, body).await
            }?;
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        })
    }
}

/// A key as the caller sees it: never its digest, owner or the full key (except at creation).
#[derive(Serialize)]
struct Listed {
    id: String,
    name: String,
    scopes: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

impl From<&KeyRecord> for Listed {
    fn from(r: &KeyRecord) -> Listed {
        Listed {
            id: r.id.clone(),
            name: r.name.clone(),
            scopes: r.scopes.clone(),
            created_at: rfc3339(r.created_at),
            expires_at: r.expires_at.map(rfc3339),
            last_used_at: r.last_used_at.map(rfc3339),
            revoked_at: r.revoked_at.map(rfc3339),
        }
    }
}

#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    listed: Listed,
    key: String,
}

/// `POST /.frontgate/keys`. The owner is the session's subject: there is no field for it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    name: String,
    scopes: Vec<String>,
    /// A duration from now, e.g. `"30d"`; default (and at most) `max_ttl`.
    #[serde(default)]
    expires_in: Option<String>,
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(Code::ValidationFailed).with_detail(detail)
}

fn method_not_allowed(allow: &'static str) -> Problem {
    Problem::new(Code::MethodNotAllowed).with_allow(HeaderValue::from_static(allow))
}

fn managed(e: ManageError) -> Problem {
    match e {
        ManageError::Invalid(m) => invalid(m),
        ManageError::NotFound(_) => {
            Problem::new(Code::RouteNotFound).with_detail("You have no API key with this id.")
        }
        ManageError::Conflict(m) => {
            Problem::new(Code::BadRequest).with_status(StatusCode::CONFLICT).with_detail(m)
        }
        ManageError::Store(e) => {
            tracing::error!(error = %e, "self-service API-key store operation failed");
            Problem::new(Code::StoreUnavailable)
        }
    }
}

/// Printable ASCII without surrounding spaces: what may travel as X-Frontgate-Subject.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| (0x20..0x7f).contains(&b)) && s.trim() == s
}

impl SelfService {
    /// The session's subject: 401 without a live session.
    async fn subject(&self, head: &http::request::Parts) -> Result<Caller, Problem> {
        self.sessions.subject(&head.headers).await
    }

    /// The session routes' CSRF defence, for POST and DELETE.
    fn csrf(&self, head: &http::request::Parts) -> Result<(), Problem> {
        match self.sessions.csrf_refusal(&head.headers) {
            None => Ok(()),
            Some(why) => {
                metrics::counter!("frontgate_csrf_refused_total").increment(1);
                Err(Problem::new(Code::CsrfFailed).with_detail(why))
            }
        }
    }

    /// Runs a key operation on the state runtime, where the store's connections live.
    async fn on_state<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, ManageError>> + Send + 'static,
    ) -> Result<T, Problem> {
        match self.services.run(f).await {
            Ok(r) => r.map_err(managed),
            Err(_) => Err(Problem::new(Code::StoreUnavailable)),
        }
    }

    async fn collection(
        &self,
        head: &http::request::Parts,
        body: ClientBody,
    ) -> Result<Response<Body>, Problem> {
        let post = match head.method {
            Method::GET => false,
            Method::POST => true,
            _ => return Err(method_not_allowed("GET, POST")),
        };
        let Caller { subject, scopes: held } = self.subject(head).await?;
        if !post {
            let admin = self.admin.clone();
            let keys = self.on_state(async move { admin.list_owned(&subject).await }).await?;
            let keys: Vec<Listed> = keys.iter().map(Listed::from).collect();
            let body = serde_json::json!({ "keys": keys });
            return Ok(json(StatusCode::OK, body.to_string()));
        }
        self.csrf(head)?;
        let req = read_json(head, body).await?;
        let new = self.new_key(req, &subject, &held)?;
        let admin = self.admin.clone();
        let (max, actor) = (self.max_keys, format!("session:{subject}"));
        let minted = self
            .on_state(async move { admin.create_owned(new, &subject, max, &actor).await })
            .await?;
        metrics::counter!(SELF_SERVICE, "action" => "create").increment(1);
        let created = Created { listed: Listed::from(&minted.record), key: minted.key };
        Ok(json(StatusCode::CREATED, serde_json::to_string(&created).unwrap_or_default()))
    }

    /// What a user may ask for: only the configured scopes (and of those that guard session
    /// routes, only the ones their session holds), at most `max_ttl`.
    fn new_key(&self, req: MintRequest, subject: &str, held: &[String]) -> Result<NewKey, Problem> {
        let mut scopes: Vec<String> = Vec::with_capacity(req.scopes.len());
        for s in req.scopes {
            grantable(&s, &self.scopes, &self.session_gated, held)?;
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        let lifetime = match req.expires_in.as_deref() {
            None => self.max_ttl,
            Some(text) => {
                let d = humantime::parse_duration(text.trim()).map_err(|_| {
                    invalid(format!(
                        "expires_in `{text}` is not a duration; write e.g. \"30d\" or \"12h\"."
                    ))
                })?;
                if d.is_zero() {
                    return Err(invalid("expires_in must be longer than 0."));
                }
                if d > self.max_ttl {
                    return Err(invalid(format!(
                        "expires_in `{text}` is longer than the most allowed, {}.",
                        humantime::format_duration(self.max_ttl)
                    )));
                }
                d
            }
        };
        Ok(NewKey {
            name: req.name,
            // Upstream, a request with the key is the user's, as with their session. A subject
            // that cannot travel in a header leaves the key's id as its subject.
            subject: header_safe(subject).then(|| subject.to_owned()),
            scopes,
            expires_in: Some(format!("{}ms", lifetime.as_millis())),
            ..NewKey::default()
        })
    }

    /// `DELETE /.frontgate/keys/{id}`.
    async fn item(&self, head: &http::request::Parts) -> Result<Response<Body>, Problem> {
        let path = crate::route::normalize_path(head.uri.path())
            .map_err(|e| Problem::new(Code::InvalidPath).with_detail(e.describe()))?;
        let id = path.strip_prefix(ITEM_PREFIX).unwrap_or("").to_owned();
        if id.is_empty() || id.contains('/') || id.len() > 64 {
            return Err(Problem::new(Code::RouteNotFound));
        }
        if head.method != Method::DELETE {
            return Err(method_not_allowed("DELETE"));
        }
        let subject = self.subject(head).await?.subject;
        self.csrf(head)?;
        let admin = self.admin.clone();
        let actor = format!("session:{subject}");
        self.on_state(async move { admin.revoke_owned(&id, &subject, &actor).await }).await?;
        metrics::counter!(SELF_SERVICE, "action" => "revoke").increment(1);
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        Ok(r)
    }
}

/// The request's JSON body: `application/json` (else 415), at most [`MAX_BODY`] bytes (413),
/// within [`BODY_TIMEOUT`] (408), and the fields [`MintRequest`] has, no other (400).
async fn read_json(head: &http::request::Parts, body: ClientBody) -> Result<MintRequest, Problem> {
    let json =
        head.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(Problem::new(Code::UnsupportedMediaType)
            .with_detail("Send a JSON body with Content-Type: application/json."));
    }
    let read = http_body_util::Limited::new(body, MAX_BODY).collect();
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Err(_) => return Err(Problem::new(Code::RequestTimeout)),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(Problem::new(Code::PayloadTooLarge));
        }
        Ok(Err(_)) => {
            return Err(
                Problem::new(Code::BadRequest).with_detail("The request body could not be read.")
            );
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    serde_json::from_slice(&bytes).map_err(|e| invalid(format!("The body is not valid here: {e}")))
}

/// Whether a user may put scope `s` on a key: it must be one the config lets users grant, and
/// if a route accepting sessions requires it, their session must hold it.
fn grantable(
    s: &str,
    configured: &[String],
    session_gated: &[String],
    held: &[String],
) -> Result<(), Problem> {
    if !configured.iter().any(|c| c == s) {
        return Err(Problem::new(Code::InsufficientScope).with_detail(format!(
            "`{s}` is not a scope you may put on your own keys; these are: {}.",
            configured.join(", ")
        )));
    }
    if session_gated.iter().any(|g| g == s) && !held.iter().any(|h| h == s) {
        return Err(Problem::new(Code::InsufficientScope).with_detail(format!(
            "`{s}` guards routes your session must hold it for, and your session does not: a key cannot carry more than you may do."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_cannot_carry_a_session_gated_scope_the_session_lacks() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (configured, gated) = (v(&["items:read", "items:write"]), v(&["items:write"]));
        // Not gated by any session route: grantable whatever the session holds.
        assert!(grantable("items:read", &configured, &gated, &[]).is_ok());
        // Gated: only with the session holding it.
        assert!(grantable("items:write", &configured, &gated, &v(&["items:write"])).is_ok());
        let refused = grantable("items:write", &configured, &gated, &v(&["openid"])).unwrap_err();
        assert_eq!(refused.code, Code::InsufficientScope);
        // Never outside the configured list.
        assert!(grantable("admin", &configured, &gated, &v(&["admin"])).is_err());
    }

    #[test]
    fn subjects_that_cannot_travel_in_a_header_are_not_key_subjects() {
        assert!(header_safe("alice") && header_safe("auth0|1234"));
        assert!(!header_safe("") && !header_safe(" a") && !header_safe("é") && !header_safe("a\n"));
    }

    #[test]
    fn the_body_takes_name_scopes_and_expires_in_only() {
        let ok: MintRequest =
            serde_json::from_str(r#"{"name":"ci","scopes":["items:read"],"expires_in":"30d"}"#)
                .unwrap();
        assert_eq!((ok.name.as_str(), ok.expires_in.as_deref()), ("ci", Some("30d")));
        for bad in [
            r#"{"name":"ci","scopes":[],"subject":"bob"}"#,
            r#"{"name":"ci","scopes":[],"owner":"bob"}"#,
            r#"{"name":"ci"}"#,
            r#"{"scopes":[]}"#,
        ] {
            assert!(serde_json::from_str::<MintRequest>(bad).is_err(), "{bad}");
        }
    }
}
