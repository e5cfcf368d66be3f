//! The checks a request passes between routing and forwarding, one module each.
//!
//! A check sees the request head and the matched route, and says whether the request goes on,
//! is refused with a problem, or is answered by the gateway itself (a CORS preflight, a
//! challenge page). Checks that need no I/O answer synchronously, so they cost no allocation;
//! checks that consult a store return a boxed future. The order is fixed in
//! [`crate::pipeline`], the one place the pipeline is assembled.

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

use crate::exchange::Check;

/// The bot check a route's `challenge` names: the proof of work, or a CAPTCHA provider's.
pub fn bot_check(
    challenge: Option<&str>,
    pow: Option<&std::sync::Arc<pow::Pow>>,
    captchas: &[(crate::config::captcha::CaptchaKind, std::sync::Arc<dyn Check>)],
) -> Option<std::sync::Arc<dyn Check>> {
    match challenge? {
        "pow" => pow.map(|p| {
            std::sync::Arc::new(pow::PowCheck::new(p.clone())) as std::sync::Arc<dyn Check>
        }),
        other => {
            let kind = crate::config::captcha::CaptchaKind::parse(other)?;
            captchas.iter().find(|(k, _)| *k == kind).map(|(_, c)| c.clone())
        }
    }
}
