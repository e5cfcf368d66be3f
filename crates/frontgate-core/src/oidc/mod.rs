//! OpenID Connect login for the browser app (backend-for-frontend): the endpoints under
//! `/.frontgate/` (`login`, `callback`, `session`, `logout`, `backchannel-logout`) and the
//! access-token refresh used by the session authenticator ([`session_auth`]).
//!
//! The browser never holds a token. A login start stores nothing: its nonce, PKCE verifier and
//! `return_to` are sealed into a `__Host-frontgate-login-<hash of state>` cookie
//! ([`login_cookie`]), which also binds the login to the browser that started it; the callback
//! opens the cookie for the state it is given, clears it, redeems the code with the verifier,
//! verifies the ID token, marks the state used, and creates a session with a fresh random id.

pub mod csrf;
pub mod http;
pub mod login_cookie;
pub mod provider;
pub mod return_to;
pub mod session_auth;

use std::sync::Arc;

use ::http::header::{self, HeaderValue};
use ::http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use openidconnect::PkceCodeChallenge;

use crate::body::{Body, ClientBody};
use crate::config::OidcConfig;
use crate::exchange::Client;
use crate::exchange::{Endpoint, EndpointFuture};
use crate::problem::{Code, Problem};
use crate::session::now;
use crate::session::{Session, SessionData, SessionError, Sessions, cookie, crypto};
use crate::state::Services;
use login_cookie::{Pending, Refused};
use provider::Provider;

/// Everything the OIDC endpoints and the session check share.
pub struct Oidc {
    pub provider: Arc<Provider>,
    pub sessions: Arc<Sessions>,
    services: Arc<Services>,
    /// `https://app.example.com`, no trailing slash.
    public_origin: String,
    post_logout_url: String,
    claims: Vec<String>,
    login_timeout: i64,
    absolute: i64,
    refresh_before: i64,
    pub forward_access_token: bool,
    /// `login_rate_limit`, per client address, on login and callback.
    login_limit: crate::checks::rate_limit::AddressLimit,
    /// Seals started logins into their cookies (`session_key`, shared by every node).
    login_sealer: crypto::Sealer,
}

impl Oidc {
    pub fn new(
        config: &OidcConfig,
        public_origin: &str,
        sessions: Arc<Sessions>,
        services: Arc<Services>,
    ) -> Result<Oidc, BuildError> {
        let public_origin = public_origin.trim_end_matches('/').to_owned();
        let provider = Provider::new(
            Arc::new(config.clone()),
            format!("{public_origin}/.frontgate/callback"),
        )?;
        let login_limit = crate::checks::rate_limit::AddressLimit::new(
            "oidc_login",
            config.login_rate_limit,
            &services,
        );
        Ok(Oidc {
            login_limit,
            login_sealer: crypto::Sealer::new(&config.session_key.0),
            provider: Arc::new(provider),
            sessions,
            services,
            post_logout_url: format!("{public_origin}{}", config.post_logout_path),
            public_origin,
            claims: config.session_claims.clone(),
            login_timeout: config.login_timeout.0.as_secs() as i64,
            absolute: config.session_absolute.0.as_secs() as i64,
            refresh_before: config.refresh_before.0.as_secs() as i64,
            forward_access_token: config.forward_access_token,
        })
    }

    pub fn public_origin(&self) -> &str {
        &self.public_origin
    }

    /// The five endpoints, for the pipeline to register.
    pub fn endpoints(self: &Arc<Self>) -> Vec<Arc<dyn Endpoint>> {
        [Kind::Login, Kind::Callback, Kind::Session, Kind::Logout, Kind::Backchannel]
            .into_iter()
            .map(|kind| Arc::new(OidcEndpoint { kind, oidc: self.clone() }) as Arc<dyn Endpoint>)
            .collect()
    }

    /// Runs IdP I/O on the state runtime.
    async fn on_state<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Problem> {
        self.services.run(f).await.map_err(|_| Problem::new(Code::StoreUnavailable))
    }

    /// `GET /.frontgate/login?return_to=/path`
    async fn login(&self, head: &::http::request::Parts) -> Result<Response<Body>, Problem> {
        if head.method != Method::GET && head.method != Method::HEAD {
            return Err(Problem::new(Code::MethodNotAllowed)
                .with_allow(HeaderValue::from_static("GET, HEAD")));
        }
        let raw = query_param(head.uri.query(), "return_to").unwrap_or_else(|| "/".into());
        let return_to = return_to::validate(&raw, &self.public_origin).ok_or_else(|| {
            Problem::new(Code::BadRequest)
                .with_detail("return_to must be a path on this site, like /app")
        })?;
        let state = crypto::random_token().map_err(internal)?;
        let nonce = crypto::random_token().map_err(internal)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let pending =
            Pending { nonce: nonce.clone(), verifier: verifier.secret().clone(), return_to };
        // Nothing is stored: the started login travels sealed in its own cookie.
        let n = now();
        let name = login_cookie::name(&state);
        let value =
            login_cookie::seal(&self.login_sealer, &state, &pending, n + self.login_timeout)
                .map_err(internal)?;
        let provider = self.provider.clone();
        let url = self
            .on_state(async move { provider.authorize_url(&state, &nonce, challenge).await })
            .await?
            .map_err(|e| idp_problem(&e))?;
        metrics::counter!("frontgate_oidc_login_total", "outcome" => "started").increment(1);
        let mut r = redirect(StatusCode::FOUND, &url);
        let h = r.headers_mut();
        // A browser keeps at most `login_cookie::MAX_KEPT` started logins: older ones go.
        for old in login_cookie::to_clear(&head.headers, n) {
            h.append(header::SET_COOKIE, cookie::clear(&old));
        }
        h.append(header::SET_COOKIE, cookie::set(&name, &value, Some(self.login_timeout)));
        Ok(r)
    }

    /// `GET /.frontgate/callback?code=...&state=...`. The login cookie of the state it names
    /// goes whatever the outcome (used or refused), so the same callback again finds nothing.
    async fn callback(&self, head: &::http::request::Parts) -> Result<Response<Body>, Problem> {
        let clear = query_param(head.uri.query(), "state")
            .map(|state| cookie::clear(&login_cookie::name(&state)));
        let Some(clear) = clear else { return self.complete_login(head).await };
        match self.complete_login(head).await {
            Ok(mut r) => {
                r.headers_mut().append(header::SET_COOKIE, clear);
                Ok(r)
            }
            Err(p) => Err(p.with_set_cookie(clear)),
        }
    }

    async fn complete_login(
        &self,
        head: &::http::request::Parts,
    ) -> Result<Response<Body>, Problem> {
        if head.method != Method::GET {
            return Err(
                Problem::new(Code::MethodNotAllowed).with_allow(HeaderValue::from_static("GET"))
            );
        }
        let query = head.uri.query();
        let refused = |why: &str| {
            metrics::counter!("frontgate_oidc_login_total", "outcome" => "refused").increment(1);
            Problem::new(Code::Unauthenticated).with_detail(format!(
                "The login could not be completed: {why}. Start again at /.frontgate/login."
            ))
        };
        if let Some(error) = query_param(query, "error") {
            let error: String =
                error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
            return Err(refused(&format!("the identity provider answered {error}")));
        }
        let (Some(state), Some(code)) = (query_param(query, "state"), query_param(query, "code"))
        else {
            return Err(refused("state or code is missing"));
        };
        // The started login is this browser's cookie for this state.
        let opened = login_cookie::open(&self.login_sealer, &head.headers, &state, now());
        let (pending, expires_at) = match opened {
            Ok(p) => p,
            Err(why) => {
                let why = match why {
                    Refused::Missing => {
                        "this browser did not start this login, or it was already used"
                    }
                    Refused::Invalid => "the login cookie does not belong to this login",
                    Refused::Expired => "the login took longer than login_timeout",
                };
                return Err(refused(why));
            }
        };
        let provider = self.provider.clone();
        let nonce = pending.nonce.clone();
        let state_key = crypto::store_key(&state);
        let tokens = self
            .on_state(async move { provider.exchange_code(code, pending.verifier, &nonce).await })
            .await?
            .map_err(|e| {
                tracing::warn!(error = %e, "OIDC code exchange refused");
                metrics::counter!("frontgate_oidc_login_total", "outcome" => "refused")
                    .increment(1);
                match e {
                    provider::OidcError::IdToken(_) => Problem::new(Code::InvalidToken)
                        .with_detail("The identity provider's ID token was refused."),
                    provider::OidcError::Discovery(_) => idp_problem(&e),
                    _ => Problem::new(Code::Unauthenticated)
                        .with_detail("The identity provider refused the authorization code."),
                }
            })?;
        // Single use on our side too, whatever the IdP does with a code redeemed twice: only
        // after the IdP redeemed the code, so only completed logins write here (one small row
        // each until the login's expiry), never a start or a forged callback.
        let first = self
            .sessions
            .put_once(format!("login-used:{state_key}"), b"", expires_at)
            .await
            .map_err(store_problem)?;
        if !first {
            return Err(refused("this login was already used"));
        }
        let subject = tokens.claims.get("sub").and_then(|s| s.as_str()).unwrap_or("").to_owned();
        if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
            return Err(Problem::new(Code::InvalidToken)
                .with_detail("The ID token's subject is not usable."));
        }
        let sid = tokens
            .claims
            .get("sid")
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
            .map(str::to_owned);
        let claims = tokens
            .claims
            .iter()
            .filter(|(k, _)| self.claims.iter().any(|c| c == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let data = SessionData {
            subject,
            sid,
            claims,
            scopes: tokens.scopes,
            access_token: tokens.access_token,
            access_expires_at: tokens.access_expires_at,
            refresh_token: tokens.refresh_token,
            id_token: tokens.id_token,
            created_at: now(),
        };
        // Whatever session this browser had ends: the new one gets a fresh id (no fixation).
        if let Some(old) =
            cookie::get(&head.headers, cookie::SESSION).filter(|t| crypto::is_token_shaped(t))
        {
            let _ = self.sessions.end(&crypto::store_key(old)).await;
        }
        let (token, _) = self.sessions.create(&data).await.map_err(store_problem)?;
        metrics::counter!("frontgate_oidc_login_total", "outcome" => "completed").increment(1);
        let mut r = redirect(StatusCode::SEE_OTHER, &pending.return_to);
        let h = r.headers_mut();
        h.append(header::SET_COOKIE, cookie::set(cookie::SESSION, &token, Some(self.absolute)));
        Ok(r)
    }

    /// The live session a request's cookie names, if any.
    pub async fn current(
        &self,
        headers: &::http::HeaderMap,
    ) -> Result<Option<Session>, SessionError> {
        match cookie::get(headers, cookie::SESSION) {
            Some(token) => self.sessions.load(token).await,
            None => Ok(None),
        }
    }

    /// `GET /.frontgate/session`: who is logged in, for the SPA.
    async fn session(&self, head: &::http::request::Parts) -> Result<Response<Body>, Problem> {
        if head.method != Method::GET && head.method != Method::HEAD {
            return Err(Problem::new(Code::MethodNotAllowed)
                .with_allow(HeaderValue::from_static("GET, HEAD")));
        }
        let Some(s) = self.current(&head.headers).await.map_err(store_problem)? else {
            return Err(Problem::new(Code::Unauthenticated)
                .with_detail("No session: log in at /.frontgate/login."));
        };
        let body = serde_json::json!({
            "subject": s.data.subject,
            "claims": s.data.claims,
            "scopes": s.data.scopes,
            "expires_at": s.idle_expires_at.min(s.absolute_expires_at),
            "absolute_expires_at": s.absolute_expires_at,
        });
        Ok(json(StatusCode::OK, body.to_string()))
    }

    /// `POST /.frontgate/logout`: ends the session here, then RP-initiated logout at the IdP.
    async fn logout(&self, head: &::http::request::Parts) -> Result<Response<Body>, Problem> {
        if head.method != Method::POST {
            return Err(
                Problem::new(Code::MethodNotAllowed).with_allow(HeaderValue::from_static("POST"))
            );
        }
        // Logging someone out from another site is a nuisance attack: same-origin only.
        if !csrf::same_origin_request(&head.headers, &self.public_origin) {
            return Err(
                Problem::new(Code::CsrfFailed).with_detail("Logout must be posted from this site.")
            );
        }
        let session = self.current(&head.headers).await.map_err(store_problem)?;
        let mut id_token = None;
        if let Some(s) = &session {
            self.sessions.end(&s.key).await.map_err(store_problem)?;
            id_token = s.data.id_token.clone();
        }
        let provider = self.provider.clone();
        let post = self.post_logout_url.clone();
        let url = if session.is_some() {
            self.on_state(async move { provider.end_session_url(id_token.as_deref(), &post).await })
                .await?
                .unwrap_or(self.post_logout_url.clone())
        } else {
            self.post_logout_url.clone()
        };
        let navigation = head
            .headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        let mut r = if navigation {
            redirect(StatusCode::SEE_OTHER, &url)
        } else {
            json(StatusCode::OK, serde_json::json!({ "logout_url": url }).to_string())
        };
        r.headers_mut().append(header::SET_COOKIE, cookie::clear(cookie::SESSION));
        Ok(r)
    }

    /// `POST /.frontgate/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0).
    async fn backchannel(
        &self,
        head: &::http::request::Parts,
        body: ClientBody,
    ) -> Result<Response<Body>, Problem> {
        if head.method != Method::POST {
            return Err(
                Problem::new(Code::MethodNotAllowed).with_allow(HeaderValue::from_static("POST"))
            );
        }
        let form =
            head.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|t| {
                    t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !form {
            return Err(Problem::new(Code::UnsupportedMediaType)
                .with_detail("Send the logout_token as application/x-www-form-urlencoded."));
        }
        let bytes = http_body_util::Limited::new(body, 64 * 1024)
            .collect()
            .await
            .map_err(|_| Problem::new(Code::PayloadTooLarge))?
            .to_bytes();
        let tokens: Vec<String> = form_urlencoded_pairs(&bytes)
            .filter(|(k, _)| k == "logout_token")
            .map(|(_, v)| v)
            .collect();
        let [token] = tokens.as_slice() else {
            return Err(backchannel_refused("exactly one logout_token is required"));
        };
        let provider = self.provider.clone();
        let t = token.clone();
        let claims = self
            .on_state(async move { provider.verify_logout_token(&t).await })
            .await?
            .map_err(|e| {
                tracing::warn!(error = %e, "back-channel logout token refused");
                backchannel_refused("the logout token is invalid")
            })?;
        // Each logout token works once.
        let fresh = self
            .sessions
            .put_once(
                format!("jti:{}", crypto::store_key(&claims.jti)),
                b"",
                claims.exp.max(now()) + 600,
            )
            .await
            .map_err(store_problem)?;
        if !fresh {
            return Err(backchannel_refused("this logout token was already used"));
        }
        let ended = self
            .sessions
            .end_matching(claims.sub.clone(), claims.sid.clone())
            .await
            .map_err(store_problem)?;
        tracing::info!(ended, sid = claims.sid.as_deref().unwrap_or(""), "back-channel logout");
        let mut r = Response::new(Body::empty());
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    }

    /// The session with an access token that is good for at least `refresh_before`: refreshed
    /// here if needed, with one refresh per session at a time. `None`: the session ended.
    pub async fn fresh(&self, session: Session) -> Result<Option<Session>, SessionError> {
        if !self.needs_refresh(&session) {
            return Ok(Some(session));
        }
        if session.data.refresh_token.is_none() {
            // Nothing to refresh with: the session lasts as long as its access token.
            if session.data.access_expires_at.is_some_and(|e| e <= now()) {
                self.sessions.end(&session.key).await?;
                return Ok(None);
            }
            return Ok(Some(session));
        }
        let lock = self.sessions.refresh_lock(&session.key);
        let _guard = lock.lock().await;
        // Another request may have refreshed while this one waited.
        let mut waited = 0;
        loop {
            let Some(current) = self.sessions.load_key(&session.key, false).await? else {
                return Ok(None);
            };
            if !self.needs_refresh(&current) {
                return Ok(Some(current));
            }
            if self.sessions.try_store_lock(&session.key).await? {
                return self.refresh(current).await;
            }
            // Another node is refreshing: wait for its result.
            waited += 1;
            if waited > 150 {
                return Ok(Some(current));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn needs_refresh(&self, s: &Session) -> bool {
        s.data.access_expires_at.is_some_and(|e| e - now() <= self.refresh_before)
    }

    async fn refresh(&self, mut session: Session) -> Result<Option<Session>, SessionError> {
        let provider = self.provider.clone();
        let rt = session.data.refresh_token.clone().unwrap_or_default();
        let sub = session.data.subject.clone();
        let result = self.services.run(async move { provider.refresh(rt, &sub).await }).await;
        match result {
            Ok(Ok(tokens)) => {
                session.data.access_token = tokens.access_token;
                session.data.access_expires_at = tokens.access_expires_at;
                session.data.refresh_token = tokens.refresh_token;
                if tokens.id_token.is_some() {
                    session.data.id_token = tokens.id_token;
                }
                if !tokens.scopes.is_empty() {
                    session.data.scopes = tokens.scopes;
                }
                for c in &self.claims {
                    if let Some(v) = tokens.claims.get(c) {
                        session.data.claims.insert(c.clone(), v.clone());
                    }
                }
                let kept = self.sessions.save(&session).await?;
                self.sessions.store_unlock(&session.key).await?;
                if !kept {
                    // Logged out while the IdP answered: the logout stands, the new tokens go.
                    metrics::counter!("frontgate_session_refresh_total", "outcome" => "ended")
                        .increment(1);
                    return Ok(None);
                }
                Ok(Some(session))
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "the state runtime stopped".into(),
                };
                tracing::info!(error = %why, "refresh failed; session ended");
                metrics::counter!("frontgate_session_refresh_total", "outcome" => "failed")
                    .increment(1);
                self.sessions.end(&session.key).await?;
                Ok(None)
            }
        }
    }
}

/// Self-service keys (`keys::self_service`) ask a request's session for its subject and
/// CSRF verdict here, exactly as `auth = "session"` routes and their CSRF check decide them.
#[cfg(feature = "sql")]
impl crate::keys::self_service::SignedIn for Oidc {
    fn subject<'a>(
        &'a self,
        headers: &'a ::http::HeaderMap,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<crate::keys::self_service::Caller, Problem>> + Send + 'a>,
    > {
        Box::pin(async move {
            let ended = || {
                Problem::new(Code::Unauthenticated)
                    .with_detail("No session: log in at /.frontgate/login.")
            };
            let session = self.current(headers).await.map_err(store_problem)?.ok_or_else(ended)?;
            let session = self.fresh(session).await.map_err(store_problem)?.ok_or_else(ended)?;
            let data = session.data;
            Ok(crate::keys::self_service::Caller { subject: data.subject, scopes: data.scopes })
        })
    }

    fn csrf_refusal(&self, headers: &::http::HeaderMap) -> Option<&'static str> {
        csrf::refusal(headers, &self.public_origin)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Login,
    Callback,
    Session,
    Logout,
    Backchannel,
}

struct OidcEndpoint {
    kind: Kind,
    oidc: Arc<Oidc>,
}

impl Endpoint for OidcEndpoint {
    fn path(&self) -> &'static str {
        match self.kind {
            Kind::Login => "/.frontgate/login",
            Kind::Callback => "/.frontgate/callback",
            Kind::Session => "/.frontgate/session",
            Kind::Logout => "/.frontgate/logout",
            Kind::Backchannel => "/.frontgate/backchannel-logout",
        }
    }

    fn handle<'a>(
        &'a self,
        head: &'a mut ::http::request::Parts,
        body: ClientBody,
        client: &'a Client,
        request_id: &'a str,
    ) -> EndpointFuture<'a> {
        Box::pin(async move {
            // Each login start seals a login and may call the IdP (discovery), and each callback
            // redeems a code there: bounded per address.
            if matches!(self.kind, Kind::Login | Kind::Callback)
                && let Err((problem, retry_after)) = self.oidc.login_limit.admit(client.ip)
            {
                let mut r = problem.into_response(request_id);
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                return Ok(r);
            }
            let mut r = match self.kind {
                Kind::Login => self.oidc.login(head).await,
                Kind::Callback => self.oidc.callback(head).await,
                Kind::Session => self.oidc.session(head).await,
                Kind::Logout => self.oidc.logout(head).await,
                Kind::Backchannel => self.oidc.backchannel(head, body).await,
            }?;
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        })
    }
}

fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn internal<E: std::fmt::Display>(e: E) -> Problem {
    tracing::error!(error = %e, "OIDC internal error");
    Problem::new(Code::StoreUnavailable)
}

fn store_problem(e: SessionError) -> Problem {
    tracing::warn!(error = %e, "session store failed");
    Problem::new(Code::StoreUnavailable)
}

fn idp_problem(e: &provider::OidcError) -> Problem {
    tracing::warn!(error = %e, "identity provider unavailable");
    Problem::new(Code::UpstreamUnavailable)
        .with_detail("The identity provider could not be reached; retry shortly.")
}

fn backchannel_refused(why: &str) -> Problem {
    Problem::new(Code::InvalidToken)
        .with_status(StatusCode::BAD_REQUEST)
        .with_detail(format!("Back-channel logout refused: {why}."))
}

use crate::wire::{form_urlencoded_pairs, query_param};

/// Builds the OIDC side of a gateway: sessions in Redis when `[shared] redis` is set, else in
/// the SQL store.
/// Why `[oidc]` could not be built from a config that parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The callback URL made from the public origin is not a URL.
    #[error("[oidc]: the redirect URI {uri} is not a URL: {source}")]
    RedirectUri {
        /// `<public origin>/.frontgate/callback`.
        uri: String,
        /// Why it is not one.
        #[source]
        source: openidconnect::url::ParseError,
    },
    /// Sessions need a store and none was opened (config validation asks for one, so this is
    /// a bug).
    #[error("[oidc]: sessions need a store, and none was opened")]
    NoStore,
}

pub fn build(
    config: &OidcConfig,
    public_origin: &str,
    services: &Arc<Services>,
) -> Result<Arc<Oidc>, BuildError> {
    use crate::session::store::Backend;
    let backend = match services.redis() {
        Some(r) => Backend::Redis(r.clone()),
        #[cfg(feature = "sql")]
        None if let Some(db) = services.db() => Backend::Sql(db.clone()),
        None => return Err(BuildError::NoStore),
    };
    let sessions = Arc::new(Sessions::new(
        backend,
        &config.session_key.0,
        services.clone(),
        config.session_idle.0,
        config.session_absolute.0,
    ));
    Ok(Arc::new(Oidc::new(config, public_origin, sessions, services.clone())?))
}

/// The sessions feature (`[oidc]`): session authentication, the login/logout endpoints, and
/// CSRF defence on routes that accept sessions (unless a route sets `csrf = false`).
pub struct SessionsFeature {
    oidc: Arc<Oidc>,
    csrf: Arc<dyn crate::exchange::Check>,
    /// `[api_keys.self_service]`: the signed-in users' own keys, on these sessions.
    self_service: Vec<Arc<dyn Endpoint>>,
}

/// `[oidc]`: the provider is discovered in the background from here on.
pub fn feature(
    inputs: &crate::checks::FeatureInputs<'_>,
) -> Result<Option<Arc<dyn crate::checks::Feature>>, crate::checks::FeatureError> {
    let Some(o) = &inputs.config.oidc else { return Ok(None) };
    let origin = inputs.config.public_origin();
    let oidc = build(o, origin.as_str(), inputs.services)
        .map_err(|e| crate::checks::FeatureError::Other(Box::new(e)))?;
    let csrf = Arc::new(csrf::CsrfCheck::new(oidc.public_origin()));
    #[cfg(feature = "sql")]
    let self_service = {
        let sessions: Arc<dyn crate::keys::self_service::SignedIn> = oidc.clone();
        crate::keys::self_service::endpoints(
            inputs.config,
            Some(sessions),
            inputs.services,
            &inputs.session_scopes(),
        )
        .map_err(|_| crate::checks::FeatureError::StoreNotOpen("[api_keys.self_service]"))?
    };
    // Without the SQL store there are no API keys: the plan refused `[api_keys]`.
    #[cfg(not(feature = "sql"))]
    let self_service = Vec::new();
    Ok(Some(Arc::new(SessionsFeature { oidc, csrf, self_service })))
}

impl crate::checks::Feature for SessionsFeature {
    fn authenticators(&self) -> Vec<Arc<dyn crate::checks::auth::Authenticator>> {
        vec![Arc::new(session_auth::SessionAuth::new(self.oidc.clone()))]
    }

    fn endpoints(&self) -> Vec<Arc<dyn Endpoint>> {
        let mut all = self.oidc.endpoints();
        all.extend(self.self_service.iter().cloned());
        all
    }

    fn route_checks(
        &self,
        route: &crate::checks::RouteContext<'_>,
        checks: &mut Vec<Arc<dyn crate::exchange::Check>>,
    ) {
        if route.auth.accepts(crate::config::AuthMethod::Session)
            && route.policy.is_none_or(|r| r.csrf != Some(false))
        {
            checks.push(self.csrf.clone());
        }
    }
}
