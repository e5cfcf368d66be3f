//! Authentication by browser session (`auth = "session"`): the `__Host-frontgate` cookie names
//! a server-side session; its access token is refreshed when close to expiry and sent upstream
//! as `Authorization: Bearer` (with `forward_access_token`). Without a session, a browser
//! navigation is redirected to the login; an API call (fetch/XHR) gets the 401 problem, never a
//! redirect it cannot follow.

use std::sync::Arc;

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};

use super::Oidc;
use crate::body::Body;
use crate::checks::auth::{AuthFuture, Authenticator};
use crate::config::AuthMethod;
use crate::exchange::{Exchange, Identity, Verdict};
use crate::problem::{Code, Problem};
use crate::session::cookie;

pub struct SessionAuth {
    oidc: Arc<Oidc>,
}

impl SessionAuth {
    pub fn new(oidc: Arc<Oidc>) -> SessionAuth {
        SessionAuth { oidc }
    }
}

/// Whether a request is a top-level browser navigation (which can follow a login redirect),
/// as opposed to fetch/XHR.
pub fn is_navigation(head: &Parts) -> bool {
    if head.method != Method::GET && head.method != Method::HEAD {
        return false;
    }
    match head.headers.get("sec-fetch-mode").and_then(|v| v.to_str().ok()) {
        Some(mode) => mode.eq_ignore_ascii_case("navigate"),
        // Older browsers: navigations ask for HTML first.
        None => head.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| {
            a.split(',').next().is_some_and(|first| first.trim().starts_with("text/html"))
        }),
    }
}

impl Authenticator for SessionAuth {
    fn method(&self) -> AuthMethod {
        AuthMethod::Session
    }

    fn presented(&self, head: &Parts) -> bool {
        cookie::get(&head.headers, cookie::SESSION).is_some()
    }

    fn authenticate<'a>(&'a self, ex: &'a Exchange<'_>) -> AuthFuture<'a> {
        Box::pin(async move {
            let ended = || {
                Problem::new(Code::Unauthenticated)
                    .with_detail("The session has ended; log in again at /.frontgate/login.")
            };
            let unavailable = |e: crate::session::SessionError| {
                tracing::warn!(error = %e, "session store failed");
                Problem::new(Code::StoreUnavailable)
            };
            let session = self
                .oidc
                .current(&ex.head.headers)
                .await
                .map_err(unavailable)?
                .ok_or_else(ended)?;
            let session = self.oidc.fresh(session).await.map_err(unavailable)?.ok_or_else(ended)?;
            let mut upstream_headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
            if self.oidc.forward_access_token
                && let Ok(v) =
                    HeaderValue::from_str(&format!("Bearer {}", session.data.access_token))
            {
                upstream_headers.push((header::AUTHORIZATION, v));
            }
            Ok(Identity {
                method: AuthMethod::Session,
                subject: session.data.subject,
                key_id: None,
                scopes: session.data.scopes,
                claims: Some(std::sync::Arc::new(session.data.claims)),
                rate_limit: None,
                upstream_headers,
            })
        })
    }

    fn absent(&self, ex: &Exchange<'_>) -> Option<Verdict> {
        if !is_navigation(ex.head) {
            return None;
        }
        let target = ex.head.uri.path_and_query().map_or("/", |p| p.as_str());
        let encoded =
            percent_encoding::utf8_percent_encode(target, percent_encoding::NON_ALPHANUMERIC);
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::FOUND;
        let location = format!("/.frontgate/login?return_to={encoded}");
        r.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&location)
                .unwrap_or(HeaderValue::from_static("/.frontgate/login")),
        );
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Some(Verdict::Respond(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri("/app");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn navigations_and_api_calls_are_told_apart() {
        assert!(is_navigation(&head(
            "GET",
            &[("sec-fetch-mode", "navigate"), ("accept", "text/html")]
        )));
        assert!(is_navigation(&head(
            "GET",
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]
        )));
        assert!(!is_navigation(&head(
            "GET",
            &[("sec-fetch-mode", "cors"), ("accept", "text/html")]
        )));
        assert!(!is_navigation(&head("GET", &[("accept", "application/json")])));
        assert!(!is_navigation(&head("GET", &[])));
        assert!(!is_navigation(&head(
            "POST",
            &[("sec-fetch-mode", "navigate"), ("accept", "text/html")]
        )));
    }
}
