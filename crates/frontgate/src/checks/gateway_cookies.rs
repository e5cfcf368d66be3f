//! Removes frontgate's own cookies (sessions, proof-of-work clearances) from every request
//! before it is forwarded, so the upstream never sees a session id or a clearance.

use crate::exchange::{Check, Exchange, Outcome, Verdict};
use crate::session::cookie;

/// Removes frontgate's own cookies (sessions, proof-of-work clearances) before forwarding.
pub struct StripGatewayCookies;

impl Check for StripGatewayCookies {
    fn name(&self) -> &'static str {
        "strip_gateway_cookies"
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        cookie::strip_ours(&mut ex.head.headers);
        Outcome::Ready(Verdict::Continue)
    }
}
