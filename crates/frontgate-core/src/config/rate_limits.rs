//! `[rate_limits.NAME]`: named limits that routes apply with `rate_limit = ["NAME", ...]`
//! (docs/rate-limits.md). Each limit is a GCRA: `rate` requests per period on average, with
//! up to `burst` at once, counted per `key`.

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// `[rate_limits.NAME]`: one named limit, a GCRA counted per `key`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// What is counted: `"ip"` (the client address; IPv6 by /64), `"subject"`, `"api_key"`,
    /// `"session"`, `"route"` (everyone together) or `"header:NAME"`.
    pub key: LimitKey,
    /// `"100/s"`, `"5/min"`, `"1000/h"`, `"10000/day"`.
    pub rate: Rate,
    /// Requests allowed at once before the rate applies; default: the rate's count.
    pub burst: Option<u32>,
}

impl RateLimitConfig {
    /// `burst`, default the rate's count, at least 1.
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.rate.count).max(1)
    }

    pub(super) fn validate(&self, name: &str) -> Vec<String> {
        let mut errors = Vec::new();
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            errors.push(format!("[rate_limits.{name}]: a limit name is letters, digits, _ and -"));
        }
        if self.burst == Some(0) {
            errors.push(format!("[rate_limits.{name}] burst must be at least 1"));
        }
        errors
    }
}

/// What a limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    /// `ip`: the client address (IPv6 by /64).
    Ip,
    /// `subject`: the authenticated subject.
    Subject,
    /// `api_key`: the API key's id (skipped for callers authenticated otherwise).
    ApiKey,
    /// `session`: the session's subject (skipped for callers authenticated otherwise).
    Session,
    /// `route`: all callers of the route together.
    Route,
    /// `header:NAME`: each value of this request header; requests without it share one bucket.
    Header(http::HeaderName),
}

impl LimitKey {
    /// Keys known before authentication; the others are counted after it.
    pub fn before_auth(&self) -> bool {
        matches!(self, LimitKey::Ip | LimitKey::Route | LimitKey::Header(_))
    }
}

impl<'de> Deserialize<'de> for LimitKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(match raw.as_str() {
            "ip" => LimitKey::Ip,
            "subject" => LimitKey::Subject,
            "api_key" => LimitKey::ApiKey,
            "session" => LimitKey::Session,
            "route" => LimitKey::Route,
            other => match other.strip_prefix("header:") {
                Some(name) => LimitKey::Header(
                    http::HeaderName::from_bytes(name.trim().as_bytes())
                        .map_err(|_| de::Error::custom(format!("`{name}` is not a header name")))?,
                ),
                None => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{other}`; use \"ip\", \"subject\", \"api_key\", \"session\", \"route\" or \"header:NAME\""
                    )));
                }
            },
        })
    }
}

/// `count` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period, at least 1.
    pub count: u32,
    /// One second, minute, hour or day.
    pub period: Duration,
}

impl Rate {
    /// The GCRA emission interval: the time one request "costs".
    pub fn interval(&self) -> Duration {
        self.period / self.count.max(1)
    }

    /// Parses `N/s`, `N/min`, `N/h` or `N/day`; refuses 0 and more than one request per
    /// microsecond.
    pub fn parse(raw: &str) -> Result<Rate, String> {
        let help = "write a rate like \"100/s\", \"5/min\", \"1000/h\" or \"10000/day\"";
        let (n, unit) =
            raw.trim().split_once('/').ok_or_else(|| format!("`{raw}` is not a rate; {help}"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a whole number of requests; {help}"))?;
        if count == 0 {
            return Err(format!(
                "a rate of 0 refuses everything; remove the route instead ({help})"
            ));
        }
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            other => return Err(format!("unknown period `{other}`; {help}")),
        };
        if period / count < Duration::from_micros(1) {
            return Err(format!("`{raw}` is more than one request per microsecond; {help}"));
        }
        Ok(Rate { count, period })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Rate::parse(&raw).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            Rate::parse("100/s").unwrap(),
            Rate { count: 100, period: Duration::from_secs(1) }
        );
        assert_eq!(Rate::parse(" 5 / min ").unwrap().interval(), Duration::from_secs(12));
        assert_eq!(Rate::parse("24/day").unwrap().interval(), Duration::from_secs(3600));
        for bad in ["", "5", "0/s", "-1/s", "5/fortnight", "x/s", "2000000/s", "5/"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_parse() {
        #[derive(Deserialize)]
        struct T {
            key: LimitKey,
        }
        let p = |s: &str| toml::from_str::<T>(&format!("key = \"{s}\"")).map(|t| t.key);
        assert_eq!(p("ip").unwrap(), LimitKey::Ip);
        assert_eq!(
            p("header:X-Tenant").unwrap(),
            LimitKey::Header(http::HeaderName::from_static("x-tenant"))
        );
        assert!(p("header:bad header").is_err());
        assert!(p("cookie").is_err());
        assert!(!p("api_key").unwrap().before_auth() && p("route").unwrap().before_auth());
    }
}
