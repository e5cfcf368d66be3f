//! Removes frontgate's own cookies (sessions, proof-of-work clearances) from every request
//! before it is forwarded, so the upstream never sees a session id or a clearance.

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

/// The feature: the strip on every route, when the gateway sets cookies of its own.
pub struct GatewayCookies;

/// Built when `[oidc]` (sessions) or `[pow]` (clearances) can set a cookie.
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    let ours = inputs.config.oidc.is_some() || inputs.config.pow.is_some();
    Ok(ours.then(|| Arc::new(GatewayCookies) as Arc<dyn Feature>))
}

impl Feature for GatewayCookies {
    fn route_checks(&self, _: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>) {
        checks.push(Arc::new(StripGatewayCookies));
    }
}
