//! The checks a request passes between routing and forwarding, one module each.
//!
//! A check sees the request head and the matched route, and says whether the request goes on,
//! is refused with a problem, or is answered by the gateway itself (a CORS preflight, a
//! challenge page). Checks that need no I/O answer synchronously, so they cost no allocation;
//! checks that consult a store return a boxed future. Each feature says where its checks run
//! ([`crate::exchange::Stage`]); the pipeline assembles them in that order.

#[cfg(feature = "sql")]
pub mod api_key;
pub mod auth;
pub mod captcha;
pub mod cors;
pub mod dpop;
pub mod gateway_cookies;
pub mod introspect;
pub mod jwks;
pub mod jwt;
pub mod openapi;
pub mod pow;
pub mod rate_limit;

use std::sync::Arc;

use crate::config::{AuthSetting, Config, RouteConfig};
use crate::exchange::{Check, Endpoint, ResponseHook};
use crate::openapi::Spec;
use crate::route::{RouteEntry, RouteTable};
use crate::state::Services;
use auth::Authenticator;

/// A feature of the request path (CORS, API keys, JWT, sessions, proof of work, ...), built
/// once per plan from its config section. Each contributes what it has: ways to authenticate,
/// endpoints under `/.frontgate/`, and checks on routes, each check tagged with its
/// [`crate::exchange::Stage`]. The pipeline builds the features in one list
/// (`pipeline::FEATURES`) and sorts every route's checks by stage: adding a feature is its
/// module and one line there.
pub trait Feature: Send + Sync {
    /// Ways a caller can authenticate that this feature provides.
    fn authenticators(&self) -> Vec<Arc<dyn Authenticator>> {
        Vec::new()
    }
    /// Its endpoints under `/.frontgate/`.
    fn endpoints(&self) -> Vec<Arc<dyn Endpoint>> {
        Vec::new()
    }
    /// Its checks on one route.
    fn route_checks(&self, route: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>);
    /// Its work on the backend's responses on one route, if any.
    fn response_hook(&self, _route: &RouteContext<'_>) -> Option<Arc<dyn ResponseHook>> {
        None
    }
}

/// What a feature is built from: the plan's parts and the process's state.
pub struct FeatureInputs<'a> {
    pub config: &'a Config,
    pub table: &'a Arc<RouteTable>,
    pub spec: Option<&'a Arc<Spec>>,
    pub services: &'a Arc<Services>,
    /// Every authenticator the features built so far provide (for the one that checks them).
    pub authenticators: &'a [Arc<dyn Authenticator>],
    /// Each route's authentication and scopes (by route index in `table`).
    pub route_policies: &'a [(AuthSetting, Vec<String>)],
}

impl FeatureInputs<'_> {
    /// The scopes some route that accepts sessions requires.
    pub fn session_scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (auth, scopes) in self.route_policies {
            if auth.accepts(crate::config::AuthMethod::Session) {
                out.extend(scopes.iter().filter(|s| !out.contains(s)).cloned().collect::<Vec<_>>());
            }
        }
        out
    }
}

/// A feature's constructor: `None` when its config section is absent.
pub type BuildFeature = fn(&FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError>;

/// Why a feature could not be built from a plan that parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// A feature needs the SQL store, and the process started without one.
    #[error("{0} needs the store, which was not opened at start: restart frontgate")]
    StoreNotOpen(&'static str),
    /// `[jwt]`: an issuer's settings (key files) cannot be used.
    #[error(transparent)]
    Jwt(#[from] jwt::JwtBuildError),
    /// A feature above this layer (`[oidc]`) could not be built; its own typed error inside.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// What a feature sees of one route when it adds checks to it.
pub struct RouteContext<'a> {
    pub config: &'a Config,
    pub entry: &'a RouteEntry,
    /// The route's `[[routes]]` entry; an OpenAPI operation may have none.
    pub policy: Option<&'a RouteConfig>,
    /// The route's authentication: its entry's `auth`, else its operation's `security`.
    pub auth: &'a AuthSetting,
    pub scopes: &'a [String],
}
