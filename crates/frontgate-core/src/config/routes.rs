//! `[[routes]]`: what exists. Anything not matched by a route is a 404.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::values::{Dur, Size};

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `match`: `"[METHOD[,METHOD...]] PATH"`, the methods and path pattern it matches. Required.
    #[serde(rename = "match")]
    pub matcher: toml::Spanned<RouteMatch>,
    /// Where matching requests go.
    #[serde(default)]
    pub to: RouteTarget,
    /// Request body limit (413 `payload_too_large`); default `[server] max_body_bytes`.
    pub max_body_bytes: Option<Size>,
    /// Overrides `[upstream] timeout` for this route.
    pub timeout: Option<Dur>,
    /// Whether `[cors]` applies to this route (default: yes, when `[cors]` is present).
    pub cors: Option<bool>,
    /// Overrides the Content-Security-Policy for this route's responses ("" removes it).
    pub csp: Option<String>,
    /// Response headers to set on this route ("" removes a header).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How callers authenticate: `"none"` (the default), or a list of methods of which any one
    /// suffices: `"session"`, `"jwt"`, `"api_key"`.
    #[serde(default)]
    pub auth: AuthSetting,
    /// Scopes the caller's credential must all carry (needs `auth`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claims the caller's token (or session) must carry, each with this value (a string,
    /// boolean or integer); a claim that is a list must contain it. Needs `auth` with "jwt"
    /// or "session" (API keys carry no claims).
    #[serde(default)]
    pub claims: BTreeMap<String, toml::Value>,
    /// CSRF defence for cookie-authenticated unsafe methods (default: on when `auth` has "session").
    pub csrf: Option<bool>,
    /// A bot check: `"pow"`, `"turnstile"`, `"hcaptcha"` or `"recaptcha"`.
    pub challenge: Option<String>,
    /// Names of `[rate_limits.NAME]` sections that apply to this route, in order.
    #[serde(default)]
    pub rate_limit: Vec<String>,
    /// Whether `X-HTTP-Method-Override`, `X-Method-Override` and `X-HTTP-Method` reach the
    /// backend (default: removed, so a framework cannot turn an allowed POST into a method the
    /// route does not allow).
    #[serde(default)]
    pub method_override: bool,
}

/// One way a caller can prove who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `session`: the session cookie of an `[oidc]` login.
    Session,
    /// `jwt`: a bearer (or DPoP) token from a `[[jwt.issuers]]` issuer.
    Jwt,
    /// `api_key`: an `[api_keys]` key.
    ApiKey,
}

impl AuthMethod {
    /// The method's name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Session => "session",
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
        }
    }
}

/// `auth = "none"`, `auth = "api_key"` or `auth = ["session", "jwt"]`: the accepted methods,
/// empty for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSetting(pub Vec<AuthMethod>);

impl AuthSetting {
    /// `auth = "none"`: the route is public.
    pub fn is_none(&self) -> bool {
        self.0.is_empty()
    }
    /// Whether `m` is one of the accepted methods.
    pub fn accepts(&self, m: AuthMethod) -> bool {
        self.0.contains(&m)
    }
}

impl<'de> Deserialize<'de> for AuthSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let names = match Raw::deserialize(d).map_err(|_| de::Error::custom("auth is \"none\", a method, or a list of methods: \"session\", \"jwt\", \"api_key\""))? {
            Raw::One(s) if s == "none" => return Ok(AuthSetting::default()),
            Raw::One(s) => vec![s],
            Raw::Many(v) => v,
        };
        if names.is_empty() {
            return Err(de::Error::custom(
                "auth = [] accepts nothing; write auth = \"none\" for a public route",
            ));
        }
        let mut methods = Vec::new();
        for n in names {
            let m = match n.as_str() {
                "session" => AuthMethod::Session,
                "jwt" => AuthMethod::Jwt,
                "api_key" => AuthMethod::ApiKey,
                "none" => {
                    return Err(de::Error::custom(
                        "\"none\" cannot be combined with other methods",
                    ));
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown auth method `{other}`; use \"session\", \"jwt\" or \"api_key\""
                    )));
                }
            };
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        Ok(AuthSetting(methods))
    }
}

/// `to`: where matching requests go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTarget {
    /// `upstream`: forwarded to `[upstream]` (in the embedded layer, the inner service); the
    /// default.
    #[default]
    Upstream,
    /// `frontend`: served by `[frontend]` (its files, or its dev server).
    Frontend,
}

/// `"GET,POST /path/{param}"`, `"/prefix/**"` (any method), `"/exact"` (any method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// Upper-case methods; empty means any method.
    pub methods: Vec<http::Method>,
    /// The path template without a trailing `/**`.
    pub path: String,
    /// Ends in `/**`: matches the path itself and everything below it.
    pub prefix: bool,
    /// The `match` text as written (trimmed): the route's name in logs and metrics.
    pub text: String,
}

impl RouteMatch {
    /// Parses a `match` value; the error says which rule it breaks and how to write it.
    pub fn parse(raw: &str) -> Result<RouteMatch, String> {
        let raw_trim = raw.trim();
        let (methods_part, path) = match raw_trim.split_once(char::is_whitespace) {
            Some((m, p)) => (Some(m), p.trim()),
            None => (None, raw_trim),
        };
        // `GET, HEAD /x`: the space after the comma split the list from the rest.
        if methods_part.is_some_and(|m| m.ends_with(',')) {
            let list: String = raw_trim
                .split('/')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            return Err(format!(
                "the method list `{list}` has a space; write methods without spaces, like \"{} /path\"",
                list.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        let mut methods = Vec::new();
        if let Some(m) = methods_part {
            for name in m.split(',') {
                let name = name.trim();
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(format!(
                        "`{name}` is not an HTTP method; write upper-case methods like GET,POST"
                    ));
                }
                let method = http::Method::from_bytes(name.as_bytes())
                    .map_err(|_| format!("bad method `{name}`"))?;
                if !methods.contains(&method) {
                    methods.push(method);
                }
            }
        }
        if path.contains("//") {
            return Err(format!("route path `{path}` has an empty segment (//)"));
        }
        if !path.starts_with('/') {
            return Err(format!(
                "route path `{path}` must start with /; write e.g. \"GET /api/items/{{id}}\""
            ));
        }
        let (path, prefix) = if path == "/**" {
            (String::new(), true)
        } else if let Some(p) = path.strip_suffix("/**") {
            (p.to_owned(), true)
        } else {
            (path.to_owned(), false)
        };
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        for (i, seg) in segments.iter().enumerate() {
            let seg = *seg;
            if seg.is_empty() && i + 1 != segments.len() {
                return Err(format!("route path `{path}` has an empty segment (//)"));
            }
            if seg == "." || seg == ".." || seg.contains('*') {
                return Err(format!(
                    "route path segment `{seg}` is not allowed; use /** only at the end"
                ));
            }
            // Express and many routers write `:id`; here it would be a literal segment, and a
            // route that silently matches nothing drops its policy.
            if let Some(name) = seg.strip_prefix(':') {
                return Err(format!(
                    "route path segment `{seg}`: parameters are written {{{name}}} here (not :{name}), e.g. \"GET /api/items/{{id}}\""
                ));
            }
            if seg.contains('{') || seg.contains('}') {
                let name = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
                match name {
                    Some(n)
                        if !n.is_empty()
                            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {}
                    _ => {
                        return Err(format!(
                            "route path segment `{seg}`: a parameter is a whole segment like {{id}}"
                        ));
                    }
                }
            }
            if seg.bytes().any(|b| b == b'%' || b == b'\\' || b == b';' || b < 0x20 || b == 0x7f) {
                return Err(format!(
                    "route path segment `{seg}` has a character frontgate refuses in paths"
                ));
            }
        }
        Ok(RouteMatch { methods, path, prefix, text: raw_trim.to_owned() })
    }
}

impl<'de> Deserialize<'de> for RouteMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        RouteMatch::parse(&raw).map_err(de::Error::custom)
    }
}

impl RouteConfig {
    /// `timeout`, the route's override of `[upstream] timeout`.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.map(|d| d.0)
    }

    /// Whether the entry sets anything beyond what exists and where it goes: a policy that must
    /// apply to the requests it matches.
    pub fn lends_policy(&self) -> bool {
        !self.auth.is_none()
            || !self.scopes.is_empty()
            || !self.claims.is_empty()
            || self.csrf.is_some()
            || self.challenge.is_some()
            || !self.rate_limit.is_empty()
            || self.max_body_bytes.is_some()
            || self.timeout.is_some()
            || self.cors.is_some()
            || self.csp.is_some()
            || !self.headers.is_empty()
            || self.method_override
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let m = RouteMatch::parse("GET,POST /api/items/{id}").unwrap();
        assert_eq!(m.methods, vec![http::Method::GET, http::Method::POST]);
        assert_eq!(m.path, "/api/items/{id}");
        assert!(!m.prefix);
        let m = RouteMatch::parse("/api/**").unwrap();
        assert!(m.methods.is_empty() && m.prefix && m.path == "/api");
        let m = RouteMatch::parse("/**").unwrap();
        assert!(m.prefix && m.path.is_empty());
    }

    #[test]
    fn auth_setting_forms() {
        #[derive(Deserialize)]
        struct T {
            auth: AuthSetting,
        }
        let p = |s: &str| toml::from_str::<T>(s).map(|t| t.auth);
        assert!(p("auth = \"none\"").unwrap().is_none());
        assert_eq!(p("auth = \"api_key\"").unwrap().0, vec![AuthMethod::ApiKey]);
        assert_eq!(
            p("auth = [\"session\", \"jwt\", \"jwt\"]").unwrap().0,
            vec![AuthMethod::Session, AuthMethod::Jwt]
        );
        for bad in ["auth = []", "auth = [\"none\", \"jwt\"]", "auth = \"basic\"", "auth = 3"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_bad_forms() {
        let message = |raw: &str| RouteMatch::parse(raw).unwrap_err();
        assert_eq!(
            message("GET, HEAD /x"),
            "the method list `GET, HEAD` has a space; write methods without spaces, like \"GET,HEAD /path\""
        );
        assert_eq!(
            message("DELETE /api/items/:id"),
            "route path segment `:id`: parameters are written {id} here (not :id), e.g. \"GET /api/items/{id}\""
        );
        for bad in ["/a/:b/c", "GET,POST, PUT /x", "/:x/**"] {
            assert!(RouteMatch::parse(bad).is_err(), "{bad}");
        }
        for bad in [
            "get /x",
            "GET x",
            "/a//b",
            "/a//b/",
            "//",
            "GET /a//**",
            "/a/../b",
            "/a/**/b",
            "/a/{x}y",
            "/a/{}",
            "/a/%2e",
            "GET, /x",
        ] {
            assert!(RouteMatch::parse(bad).is_err(), "{bad}");
        }
    }
}
