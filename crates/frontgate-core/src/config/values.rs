//! Value types shared by the config sections. Each parses and validates itself during
//! deserialization, so a bad value is reported with the exact file:line:column it came from.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// Expands `${VAR}` references from the environment; `$${` is a literal `${`.
pub fn expand_env(input: &str) -> Result<String, String> {
    expand_with(input, |name| std::env::var(name).ok())
}

/// [`expand_env`] with the variables taken from `lookup`.
pub fn expand_with(input: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    if !input.contains('$') {
        return Ok(input.to_owned());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or("unterminated `${`: close it with `}`, or write `$${` for a literal")?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable name (letters, digits, _)"
                ));
            }
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "environment variable `{name}` is not set: export it before starting frontgate"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A string that may reference environment variables (`${VAR}`): for secrets and URLs.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvString(pub String);

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand_env(&raw).map(EnvString).map_err(de::Error::custom)
    }
}

impl fmt::Debug for EnvString {
    // Never print a value that may be a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvString(<redacted>)")
    }
}

/// A duration written as `"10s"`, `"250ms"`, `"5m"`, `"1h 30m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        humantime::parse_duration(raw.trim()).map(Dur).map_err(|e| {
            de::Error::custom(format!(
                "`{raw}` is not a duration ({e}); write e.g. \"500ms\", \"10s\", \"5m\""
            ))
        })
    }
}

/// A byte size: an integer, or a string with a unit (`"16KiB"`, `"1MiB"`, `"10MB"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size; write e.g. 1048576 or \"1MiB\""))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "kib" | "k" => 1024,
            "mb" => 1000 * 1000,
            "mib" | "m" => 1024 * 1024,
            "gb" => 1000 * 1000 * 1000,
            "gib" | "g" => 1024 * 1024 * 1024,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` in `{s}`; use B, KiB, MiB, GiB, KB, MB or GB"
                ));
            }
        };
        n.checked_mul(mult).map(Size).ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Int(n)) => Ok(Size(n)),
            Ok(Raw::Str(s)) => s.parse().map_err(de::Error::custom),
            Err(_) => Err(de::Error::custom(
                "expected a size: a non-negative integer of bytes, or a string like \"1MiB\"",
            )),
        }
    }
}

/// A web origin: `scheme://host[:port]`, lower-cased, default port omitted, no path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// The canonical form, e.g. `https://app.example.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
    /// The part after `scheme://`: the host, and the port when it is not the default.
    pub fn host_port(&self) -> &str {
        self.0.split_once("://").map(|(_, h)| h).unwrap_or("")
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Origin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "null" {
            return Err(
                "the `null` origin is never allowed: sandboxed frames and file:// pages share it"
                    .into(),
            );
        }
        let uri: http::Uri =
            s.parse().map_err(|_| format!("`{s}` is not an origin; write scheme://host[:port]"))?;
        let scheme =
            uri.scheme_str().ok_or_else(|| format!("`{s}` has no scheme; write https://{s}"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{s}`: an origin's scheme must be http or https"));
        }
        let auth = uri.authority().ok_or_else(|| format!("`{s}` has no host"))?;
        if auth.as_str().contains('@') {
            return Err(format!("`{s}`: an origin has no user information"));
        }
        if !(uri.path() == "/" || uri.path().is_empty())
            || uri.query().is_some()
            || s.ends_with('/')
        {
            return Err(format!(
                "`{s}`: an origin has no path, query or trailing slash; write {scheme}://{auth}"
            ));
        }
        let host = auth.host().to_ascii_lowercase();
        let port = match (scheme, auth.port_u16()) {
            ("http", Some(80)) | ("https", Some(443)) | (_, None) => String::new(),
            (_, Some(p)) => format!(":{p}"),
        };
        Ok(Origin(format!("{scheme}://{host}{port}")))
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = EnvString::deserialize(d)?.0;
        raw.parse().map_err(de::Error::custom)
    }
}

/// A CIDR block (`10.0.0.0/8`, `::1/128`) or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr(pub ipnet::IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if let Ok(net) = raw.parse::<ipnet::IpNet>() {
            return Ok(Cidr(net.trunc()));
        }
        if let Ok(ip) = raw.parse::<std::net::IpAddr>() {
            return Ok(Cidr(ipnet::IpNet::from(ip)));
        }
        Err(de::Error::custom(format!(
            "`{raw}` is not a CIDR block or IP address; write e.g. \"10.0.0.0/8\""
        )))
    }
}

/// A socket address to listen on (`"127.0.0.1:8443"`, `"[::1]:8443"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr(pub std::net::SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map(ListenAddr).map_err(|_| {
            de::Error::custom(format!("`{raw}` is not a listen address; write IP:PORT such as \"127.0.0.1:8443\" or \"[::]:443\""))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion() {
        let look = |n: &str| (n == "A").then(|| "x\"y".to_string());
        assert_eq!(expand_with("p${A}q", look).unwrap(), "px\"yq");
        assert_eq!(expand_with("$${A}", look).unwrap(), "${A}");
        assert_eq!(expand_with("cost $5", look).unwrap(), "cost $5");
        assert!(expand_with("${B}", look).unwrap_err().contains("`B` is not set"));
        assert!(expand_with("${A", look).is_err());
        assert!(expand_with("${A-B}", look).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!("16KiB".parse::<Size>().unwrap().0, 16384);
        assert_eq!("1MB".parse::<Size>().unwrap().0, 1_000_000);
        assert!("12 parsecs".parse::<Size>().is_err());
        assert!("99999999999999GiB".parse::<Size>().is_err());
    }

    #[test]
    fn origins_are_canonical_and_strict() {
        assert_eq!(
            "HTTPS://App.Example.com:443".parse::<Origin>().unwrap().as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            "http://127.0.0.1:8080".parse::<Origin>().unwrap().as_str(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "null",
            "app.example.com",
            "https://a.com/",
            "https://a.com/x",
            "ftp://a.com",
            "https://u@a.com",
        ] {
            assert!(bad.parse::<Origin>().is_err(), "{bad}");
        }
    }
}
