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

use super::{Check, Exchange, Identity, Outcome, Verdict, VerdictFuture};
use crate::config::{AuthMethod, AuthSetting};
use crate::problem::{Code, Problem};

/// What an authenticator answers: an identity, or the problem that refuses the request.
pub type AuthResult = Result<Identity, Problem>;
pub type AuthFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = AuthResult> + Send + 'a>>;

/// One authentication method.
pub trait Authenticator: Send + Sync + 'static {
    fn method(&self) -> AuthMethod;
    /// Whether the request carries this method's credential at all (a header, a cookie).
    fn presented(&self, head: &Parts) -> bool;
    /// Verifies the credential the request carries.
    fn authenticate<'a>(&'a self, exchange: &'a Exchange<'_>) -> AuthFuture<'a>;
    /// Removes the credential this method verified from the request, so that it never reaches
    /// the upstream (called after a successful `authenticate`).
    fn consumed(&self, _head: &mut Parts) {}
    /// The answer when no accepted credential was presented: e.g. a login redirect for a
    /// browser navigation. The first method with an answer gives it; `None` from all gives the
    /// 401 problem.
    fn absent(&self, _exchange: &Exchange<'_>) -> Option<Verdict> {
        None
    }
}

/// The authenticate + authorize check of one route.
pub struct Authenticate {
    /// The route's accepted methods, most specific first.
    methods: Vec<Arc<dyn Authenticator>>,
    scopes: Vec<String>,
}

impl Authenticate {
    /// `None` when the route has no `auth`. Every method named must be in `available`
    /// (config validation guarantees it).
    pub fn for_route(setting: &AuthSetting, scopes: &[String], available: &[Arc<dyn Authenticator>]) -> Option<Authenticate> {
        if setting.is_none() {
            return None;
        }
        const SPECIFIC_FIRST: [AuthMethod; 3] = [AuthMethod::ApiKey, AuthMethod::Session, AuthMethod::Jwt];
        let methods = SPECIFIC_FIRST
            .iter()
            .filter(|m| setting.accepts(**m))
            .filter_map(|m| available.iter().find(|a| a.method() == *m).cloned())
            .collect();
        Some(Authenticate { methods, scopes: scopes.to_vec() })
    }

    fn authorize(&self, identity: &Identity) -> Result<(), Problem> {
        if identity.has_scopes(&self.scopes) {
            Ok(())
        } else {
            Err(Problem::new(Code::InsufficientScope).with_detail(format!("This route requires the scopes: {}.", self.scopes.join(" "))))
        }
    }
}

impl Check for Authenticate {
    fn name(&self) -> &'static str {
        "authenticate"
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        let Some(auth) = self.methods.iter().find(|a| a.presented(ex.head)) else {
            if let Some(v) = self.methods.iter().find_map(|a| a.absent(ex)) {
                return Outcome::Ready(v);
            }
            return Outcome::Ready(Verdict::Deny(Problem::new(Code::Unauthenticated)));
        };
        let fut: VerdictFuture<'a> = Box::pin(async move {
            let identity = match auth.authenticate(ex).await {
                Ok(i) => i,
                // A credential that no longer names anyone (an ended session) is treated like
                // none: a browser navigation may still be sent to log in.
                Err(p) if p.code == Code::Unauthenticated => {
                    return auth.absent(ex).unwrap_or(Verdict::Deny(p));
                }
                Err(p) => return Verdict::Deny(p),
            };
            if let Err(p) = self.authorize(&identity) {
                return Verdict::Deny(p);
            }
            auth.consumed(ex.head);
            ex.identity = Some(identity);
            Verdict::Continue
        });
        Outcome::Pending(fut)
    }
}
