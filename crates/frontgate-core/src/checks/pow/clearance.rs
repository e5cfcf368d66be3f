//! Clearances: the short-lived, signed proof that a client solved a challenge for a route.
//!
//! A clearance is `<expiry>.<route id>.<binding>.<mac>`: the route id is a hash of the route's
//! `match` text (scope), the binding a keyed hash of the client IP and User-Agent, and the mac
//! an HMAC-SHA-256 over the rest. It is reusable until it expires, so parallel tabs share it
//! instead of each solving again; it is worthless on another route or from another client.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::protocol::{derive_secret, hex};

/// Why a clearance was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClearanceError {
    #[error("the clearance is malformed or its signature does not verify")]
    Invalid,
    #[error("the clearance has expired")]
    Expired,
    #[error("the clearance is for another route")]
    WrongRoute,
    #[error("the clearance was issued to another client")]
    WrongClient,
}

pub struct Clearances {
    key: Vec<u8>,
    binding_key: Vec<u8>,
    lifetime: u64,
}

/// A short stable id for a route: names its cookie and scopes its clearance.
pub fn route_id(route: &str) -> String {
    hex(&Sha256::digest(route.as_bytes())[..8])
}

/// The cookie that carries the clearance for `route`: one per route, so that clearances for
/// different routes (in different tabs) do not overwrite each other.
pub fn cookie_name(route: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{COOKIE_PREFIX}{}", route_id(route))
    } else {
        format!("{COOKIE_PREFIX}{}", route_id(route))
    }
}

/// What every clearance cookie's name starts with (after `__Host-`); the gateway removes them
/// from requests before forwarding.
pub use crate::session::cookie::CLEARANCE_PREFIX as COOKIE_PREFIX;

impl Clearances {
    pub fn new(secret: &str, lifetime: std::time::Duration) -> Clearances {
        Clearances {
            key: derive_secret(secret, "frontgate pow clearance v1").into_bytes(),
            binding_key: derive_secret(secret, "frontgate pow binding v1").into_bytes(),
            lifetime: lifetime.as_secs().max(1),
        }
    }

    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    /// What ties a clearance to a client: its IP and User-Agent (keyed, so it reveals neither).
    pub fn binding(&self, ip: &std::net::IpAddr, user_agent: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.binding_key).expect("any key length");
        mac.update(ip.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(user_agent);
        hex(&mac.finalize().into_bytes()[..8])
    }

    fn mac(&self, body: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(body.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    /// A clearance for `route` and `binding`, valid from `now` (seconds since the epoch).
    pub fn issue(&self, route: &str, binding: &str, now: u64) -> (String, u64) {
        let expires = now + self.lifetime;
        let body = format!("{expires}.{}.{binding}", route_id(route));
        let mac = self.mac(&body);
        (format!("{body}.{mac}"), expires)
    }

    pub fn verify(
        &self,
        token: &str,
        route: &str,
        binding: &str,
        now: u64,
    ) -> Result<(), ClearanceError> {
        if token.len() > 128 {
            return Err(ClearanceError::Invalid);
        }
        let (body, mac) = token.rsplit_once('.').ok_or(ClearanceError::Invalid)?;
        let expected = self.mac(body);
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return Err(ClearanceError::Invalid);
        }
        let mut parts = body.split('.');
        let (Some(expires), Some(rid), Some(bound), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ClearanceError::Invalid);
        };
        let expires: u64 = expires.parse().map_err(|_| ClearanceError::Invalid)?;
        if expires <= now {
            return Err(ClearanceError::Expired);
        }
        if rid != route_id(route) {
            return Err(ClearanceError::WrongRoute);
        }
        if bound != binding {
            return Err(ClearanceError::WrongClient);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearances_are_scoped_bound_expiring_and_unforgeable() {
        let c = Clearances::new("s".repeat(32).as_str(), std::time::Duration::from_secs(600));
        let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let b = c.binding(&ip, b"UA/1");
        let (token, exp) = c.issue("POST /api/signup", &b, 1000);
        assert_eq!(exp, 1600);
        c.verify(&token, "POST /api/signup", &b, 1599).unwrap();
        assert_eq!(c.verify(&token, "POST /api/signup", &b, 1600), Err(ClearanceError::Expired));
        assert_eq!(c.verify(&token, "POST /api/other", &b, 1000), Err(ClearanceError::WrongRoute));
        let other = c.binding(&"192.0.2.2".parse().unwrap(), b"UA/1");
        assert_eq!(
            c.verify(&token, "POST /api/signup", &other, 1000),
            Err(ClearanceError::WrongClient)
        );
        assert_ne!(c.binding(&ip, b"UA/2"), b);
        // Extending the expiry breaks the mac.
        let forged = token.replacen("1600", "9999", 1);
        assert_eq!(c.verify(&forged, "POST /api/signup", &b, 1000), Err(ClearanceError::Invalid));
        // Another secret's clearance.
        let other_key =
            Clearances::new("t".repeat(32).as_str(), std::time::Duration::from_secs(600));
        let (t2, _) = other_key.issue("POST /api/signup", &b, 1000);
        assert_eq!(c.verify(&t2, "POST /api/signup", &b, 1000), Err(ClearanceError::Invalid));
        for junk in ["", ".", "a.b.c.d", "1.2.3.4.5", &"x".repeat(500)] {
            assert_eq!(
                c.verify(junk, "POST /api/signup", &b, 1000),
                Err(ClearanceError::Invalid),
                "{junk}"
            );
        }
    }
}
