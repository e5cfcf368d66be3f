//! Removes frontgate's own cookies (sessions, proof-of-work clearances, the admin console's
//! session) from every request before it is forwarded, so the upstream never sees a session id
//! or a clearance.

use std::sync::Arc;

use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::exchange::{Check, Exchange, Outcome, Stage, Verdict};
use crate::session::cookie;

/// Removes frontgate's own cookies (sessions, proof-of-work clearances) before forwarding.
pub struct StripGatewayCookies;

impl Check for StripGatewayCookies {
    fn name(&self) -> &'static str {
        "strip_gateway_cookies"
    }

    fn stage(&self) -> Stage {
        Stage::Forward
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        cookie::strip_ours(&mut ex.head.headers);
        Outcome::Ready(Verdict::Continue)
    }
}

/// The feature: the strip on every route.
pub struct GatewayCookies;

/// Always built: besides `[oidc]` sessions and `[pow]` clearances, a browser that signed in to
/// the admin console on the same host name sends the console's cookie to the gateway's port
/// too, and it must never reach the backend. A request without a Cookie field costs one lookup.
pub fn feature(_: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    Ok(Some(Arc::new(GatewayCookies)))
}

impl Feature for GatewayCookies {
    fn route_checks(&self, _: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>) {
        checks.push(Arc::new(StripGatewayCookies));
    }
}
