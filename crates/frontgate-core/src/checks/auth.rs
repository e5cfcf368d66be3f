//! Authenticate, then authorize: the route's `auth` methods (any one suffices) and its `scopes`.
//!
//! Each method (API key, session, bearer JWT) is an [`Authenticator`] in its own module; this
//! check picks the one whose credential the request carries and refuses with its problem if
//! that credential is bad. Methods are asked most specific first: an API key (recognised by its
//! prefix), then the session cookie, then a bearer token (which may be any opaque string when
//! introspection is on), so one credential is never mistaken for another kind. It never falls
//! back to another method after a credential fails, so a bad key cannot be masked by a cookie.
//! A route without `auth` gets no check at all.

use std::sync::Arc;

use http::request::Parts;

use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::{AuthMethod, AuthSetting};
use crate::exchange::{Check, Exchange, Identity, Outcome, Stage, Verdict, VerdictFuture};
use crate::problem::{Code, Problem};

/// The challenge for bearer credentials (API keys and access tokens), RFC 6750 §3.
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"frontgate\"";

/// What an authenticator answers: an identity, or the problem that refuses the request.
pub type AuthResult = Result<Identity, Problem>;
pub type AuthFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = AuthResult> + Send + 'a>>;

/// One authentication method.
pub trait Authenticator: Send + Sync + 'static {
    fn method(&self) -> AuthMethod;
    /// Whether the request carries this method's credential at all (a header, a cookie).
    fn presented(&self, head: &Parts) -> bool;
    /// Verifies the credential the request carries.
    fn authenticate<'a>(&'a self, exchange: &'a Exchange<'_>) -> AuthFuture<'a>;
    /// The same answer without waiting, when caches alone can give it (the steady state for
    /// keys and tokens); `None` sends the request through [`authenticate`](Self::authenticate).
    fn authenticate_cached(&self, _exchange: &Exchange<'_>) -> Option<AuthResult> {
        None
    }
    /// Removes the credential this method verified from the request, so that it never reaches
    /// the upstream (called after a successful `authenticate`).
    fn consumed(&self, _head: &mut Parts) {}
    /// The answer when no accepted credential was presented: e.g. a login redirect for a
    /// browser navigation. The first method with an answer gives it; `None` from all gives the
    /// 401 problem.
    fn absent(&self, _exchange: &Exchange<'_>) -> Option<Verdict> {
        None
    }
    /// The `WWW-Authenticate` challenge schemes (RFC 9110 §11.6.1) this method is presented
    /// with, each with its fixed parameters (`DPoP algs="ES256 ..."`); none for cookies.
    fn challenges(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The authenticate + authorize check of one route.
pub struct Authenticate {
    /// The route's accepted methods, most specific first.
    methods: Vec<Arc<dyn Authenticator>>,
    scopes: Vec<String>,
    /// Claims the caller must carry, with the value each must have (or, for a list, contain).
    claims: Vec<(String, serde_json::Value)>,
    /// Challenge schemes of the accepted methods, each once, for 401s and scope refusals.
    challenges: Vec<String>,
}

impl Authenticate {
    /// `None` when the route has no `auth`. Every method named must be in `available`
    /// (config validation guarantees it).
    pub fn for_route(
        setting: &AuthSetting,
        scopes: &[String],
        claims: &[(String, serde_json::Value)],
        available: &[Arc<dyn Authenticator>],
    ) -> Option<Authenticate> {
        if setting.is_none() {
            return None;
        }
        const SPECIFIC_FIRST: [AuthMethod; 3] =
            [AuthMethod::ApiKey, AuthMethod::Session, AuthMethod::Jwt];
        let methods = SPECIFIC_FIRST
            .iter()
            .filter(|m| setting.accepts(**m))
            .filter_map(|m| available.iter().find(|a| a.method() == *m).cloned())
            .collect::<Vec<_>>();
        let mut challenges: Vec<String> = Vec::new();
        for c in methods.iter().flat_map(|m| m.challenges()) {
            if !challenges.contains(&c) {
                challenges.push(c);
            }
        }
        Some(Authenticate { methods, scopes: scopes.to_vec(), claims: claims.to_vec(), challenges })
    }

    /// Refuses with `problem`, telling a client how to authenticate (RFC 6750 §3, RFC 9449
    /// §7.1): every accepted scheme on a 401, with `error="invalid_token"` when a credential
    /// was refused, and `error="insufficient_scope"` with the route's scopes on that 403.
    fn refuse(&self, ex: &mut Exchange<'_>, problem: Problem) -> Verdict {
        let error = match problem.code {
            Code::InsufficientScope => Some("insufficient_scope"),
            _ if problem.status() != http::StatusCode::UNAUTHORIZED => None,
            Code::Unauthenticated => Some(""),
            _ => Some("invalid_token"),
        };
        if let Some(error) = error {
            for scheme in &self.challenges {
                let mut value = scheme.clone();
                let mut param = |k: &str, v: &str| {
                    value.push_str(if value.contains('=') { ", " } else { " " });
                    value.push_str(&format!("{k}=\"{v}\""));
                };
                if !error.is_empty() {
                    param("error", error);
                }
                if error == "insufficient_scope" {
                    param("scope", &self.scopes.join(" "));
                }
                if let Ok(v) = http::HeaderValue::from_str(&value) {
                    ex.response_headers.push((http::header::WWW_AUTHENTICATE, v));
                }
            }
        }
        Verdict::Deny(problem)
    }

    fn authorize(&self, identity: &Identity) -> Result<(), Problem> {
        if !identity.has_scopes(&self.scopes) {
            return Err(Problem::new(Code::InsufficientScope).with_detail(format!(
                "This route requires the scopes: {}.",
                self.scopes.join(" ")
            )));
        }
        for (name, want) in &self.claims {
            let found = identity.claims.as_ref().and_then(|c| c.get(name));
            let holds = match found {
                Some(serde_json::Value::Array(items)) => items.contains(want),
                Some(value) => value == want,
                None => false,
            };
            if !holds {
                return Err(Problem::new(Code::InsufficientScope)
                    .with_detail(format!("This route requires the claim `{name}` to be {want}.")));
            }
        }
        Ok(())
    }
}

impl Check for Authenticate {
    fn name(&self) -> &'static str {
        "authenticate"
    }

    fn stage(&self) -> Stage {
        Stage::Authenticate
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        let Some(auth) = self.methods.iter().find(|a| a.presented(ex.head)) else {
            if let Some(v) = self.methods.iter().find_map(|a| a.absent(ex)) {
                return Outcome::Ready(v);
            }
            return Outcome::Ready(self.refuse(ex, Problem::new(Code::Unauthenticated)));
        };
        if let Some(result) = auth.authenticate_cached(ex) {
            return Outcome::Ready(self.conclude(auth.as_ref(), ex, result));
        }
        let fut: VerdictFuture<'a> = Box::pin(async move {
            let result = auth.authenticate(ex).await;
            self.conclude(auth.as_ref(), ex, result)
        });
        Outcome::Pending(fut)
    }
}

impl Authenticate {
    /// Authorizes an authenticated caller, or answers a refused credential.
    fn conclude(
        &self,
        auth: &dyn Authenticator,
        ex: &mut Exchange<'_>,
        result: AuthResult,
    ) -> Verdict {
        let identity = match result {
            Ok(i) => i,
            // A credential that no longer names anyone (an ended session) is treated like
            // none: a browser navigation may still be sent to log in.
            Err(p) if p.code == Code::Unauthenticated => {
                return match auth.absent(ex) {
                    Some(v) => v,
                    None => self.refuse(ex, p),
                };
            }
            Err(p) => return self.refuse(ex, p),
        };
        if let Err(p) = self.authorize(&identity) {
            return self.refuse(ex, p.with_caller(identity.caller()));
        }
        auth.consumed(ex.head);
        strip_unverified_credentials(ex.head, auth.method());
        ex.identity = Some(identity);
        Verdict::Continue
    }
}

/// Removes the credentials a request carried beside the one that authenticated it: the
/// gateway verified only that one, and a backend that reads another (a bearer token beside the
/// API key, a key beside the session) would trust what nobody checked. A JWT route keeps the
/// `Authorization` and `DPoP` fields it verified; a session's own token, when forwarded, is
/// set later from the identity.
fn strip_unverified_credentials(head: &mut Parts, verified: AuthMethod) {
    head.headers.remove(crate::headers::X_API_KEY);
    if verified != AuthMethod::Jwt {
        head.headers.remove(http::header::AUTHORIZATION);
        head.headers.remove(&DPOP);
    }
}

static DPOP: http::HeaderName = http::HeaderName::from_static("dpop");

/// The authenticate stage: on each route with `auth`, the methods it accepts (from the
/// features that provide them), its scopes and its claims.
pub struct Authentication {
    available: Vec<Arc<dyn Authenticator>>,
}

/// Built after the features that provide authenticators (`pipeline::FEATURES`).
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    Ok(Some(Arc::new(Authentication { available: inputs.authenticators.to_vec() })))
}

impl Feature for Authentication {
    fn route_checks(&self, route: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>) {
        let claims: Vec<(String, serde_json::Value)> = route
            .policy
            .map(|r| {
                r.claims
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), serde_json::to_value(v).ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(a) = Authenticate::for_route(route.auth, route.scopes, &claims, &self.available)
        {
            checks.push(Arc::new(a));
        }
    }
}
