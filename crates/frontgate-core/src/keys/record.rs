//! A key's record: everything stored about it except the key itself, and the rules a presented
//! key is judged by (revoked, expired, client address, origin).

use std::net::IpAddr;

use serde::Serialize;

/// One API key as stored. `digest` (the HMAC of the key) never leaves the process.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub id: String,
    #[serde(skip)]
    pub digest: [u8; 32],
    /// The prefix and last four characters, to recognise a key in a list.
    pub hint: String,
    pub name: String,
    /// Sent upstream as X-Frontgate-Subject: who the key belongs to.
    pub subject: String,
    pub scopes: Vec<String>,
    /// Browser origins the key may be used from; empty: any (or none).
    pub origins: Vec<String>,
    /// Client networks the key may be used from; empty: any.
    #[serde(serialize_with = "ser_cidrs")]
    pub cidrs: Vec<ipnet::IpNet>,
    #[serde(serialize_with = "ser_time")]
    pub expires_at: Option<i64>,
    /// A per-key rate-limit override (`"10/s"`), for the rate limiter to apply.
    pub rate_limit: Option<String>,
    /// Requests left before the key stops working; absent: unlimited.
    pub uses_remaining: Option<i64>,
    pub metadata: serde_json::Value,
    #[serde(serialize_with = "ser_time_req")]
    pub created_at: i64,
    #[serde(serialize_with = "ser_time")]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "ser_time")]
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<String>,
    /// The key that replaced this one by rotation.
    pub replaced_by: Option<String>,
}

/// Why a known key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    Revoked,
    Expired,
    ClientAddress,
    Origin,
}

impl KeyRecord {
    /// Judges a use of this key at `now_ms` from `ip` with the request's `Origin` header.
    pub fn admits(&self, now_ms: i64, ip: IpAddr, origin: Option<&str>) -> Result<(), Denial> {
        if self.revoked_at.is_some() {
            return Err(Denial::Revoked);
        }
        if self.expires_at.is_some_and(|e| now_ms >= e) {
            return Err(Denial::Expired);
        }
        if !self.cidrs.is_empty() {
            // An IPv4 client seen on a dual-stack socket is ::ffff:a.b.c.d.
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                v4 => v4,
            };
            if !self.cidrs.iter().any(|n| n.contains(&ip)) {
                return Err(Denial::ClientAddress);
            }
        }
        if !self.origins.is_empty() {
            // A key bound to origins needs a browser origin it lists; a request without one is
            // refused too, so the binding cannot be skipped by leaving the header out.
            let presented = origin.and_then(|o| o.parse::<crate::config::Origin>().ok());
            if !presented.is_some_and(|p| self.origins.iter().any(|o| o == p.as_str())) {
                return Err(Denial::Origin);
            }
        }
        Ok(())
    }
}

pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn ser_time<S: serde::Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(ms) => s.serialize_str(&rfc3339(*ms)),
        None => s.serialize_none(),
    }
}

fn ser_time_req<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*v))
}

fn ser_cidrs<S: serde::Serializer>(v: &[ipnet::IpNet], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for n in v {
        seq.serialize_element(&n.to_string())?;
    }
    seq.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> KeyRecord {
        KeyRecord {
            id: "key_x".into(),
            digest: [0; 32],
            hint: "fgk_...abcd".into(),
            name: "n".into(),
            subject: "s".into(),
            scopes: vec![],
            origins: vec![],
            cidrs: vec![],
            expires_at: None,
            rate_limit: None,
            uses_remaining: None,
            metadata: serde_json::json!({}),
            created_at: 0,
            last_used_at: None,
            revoked_at: None,
            revoked_reason: None,
            rotated_from: None,
            replaced_by: None,
        }
    }

    #[test]
    fn rules() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let mut r = rec();
        assert_eq!(r.admits(5, ip, None), Ok(()));
        r.expires_at = Some(5);
        assert_eq!(r.admits(4, ip, None), Ok(()));
        assert_eq!(r.admits(5, ip, None), Err(Denial::Expired));
        r.expires_at = None;
        r.cidrs = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(r.admits(0, ip, None), Ok(()));
        assert_eq!(r.admits(0, "::ffff:10.9.9.9".parse().unwrap(), None), Ok(()));
        assert_eq!(r.admits(0, "192.168.1.1".parse().unwrap(), None), Err(Denial::ClientAddress));
        r.origins = vec!["https://app.example.com".into()];
        assert_eq!(r.admits(0, ip, Some("https://APP.example.com:443")), Ok(()));
        assert_eq!(r.admits(0, ip, Some("https://evil.example")), Err(Denial::Origin));
        assert_eq!(r.admits(0, ip, Some("null")), Err(Denial::Origin));
        assert_eq!(r.admits(0, ip, None), Err(Denial::Origin));
        r.revoked_at = Some(1);
        assert_eq!(r.admits(0, ip, Some("https://app.example.com")), Err(Denial::Revoked));
    }
}
