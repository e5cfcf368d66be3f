//! The configuration: one TOML file, one section per concern, each section owned by the module
//! that uses it. Unknown keys are errors; values validate themselves while parsing, so every
//! error points at file:line:column; rules that span keys are checked in `Config::validate`.

pub mod admin;
pub mod api_keys;
pub mod captcha;
mod collect;
pub mod cors;
pub mod frontend;
pub mod jwt;
pub mod log;
pub mod oidc;
pub mod openapi;
pub mod pow;
pub mod rate_limits;
pub mod routes;
pub mod server;
pub mod shared;
pub mod store;
pub mod upstream;
pub mod values;

// Every key of every section, [api_keys] and [store] among them: needs the `sql` feature.
#[cfg(all(test, feature = "sql"))]
mod shape_tests;

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use admin::AdminConfig;
pub use api_keys::{ApiKeysConfig, SelfServiceConfig};
pub use cors::{CorsConfig, CorsOrigin};
pub use frontend::FrontendConfig;
pub use jwt::JwtConfig;
pub use log::{LogConfig, LogFormat};
pub use oidc::OidcConfig;
pub use rate_limits::{LimitKey, Rate, RateLimitConfig};
pub use routes::{AuthMethod, AuthSetting, RouteConfig, RouteMatch, RouteTarget};
pub use server::{ServerConfig, TlsSetting};
pub use shared::{OutageMode, SharedConfig};
pub use store::{StoreConfig, StoreUrl};
pub use upstream::UpstreamConfig;
pub use values::{Dur, EnvString, Origin, Size};

/// The whole configuration, as loaded and validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Local state: the self-signed certificate in `data_dir/tls/` and the SQLite store. Relative
    /// to the config file's directory; created when needed. Default `./.frontgate`.
    #[serde(default = "d_data_dir")]
    pub data_dir: PathBuf,
    /// `[server]`: the public listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[upstream]`: the backend routes forward to. The gateway needs it or `[frontend]`; for the
    /// embedded layer the inner service is the upstream.
    pub upstream: Option<UpstreamConfig>,
    /// `[frontend]`: the single-page app served from the same origin.
    pub frontend: Option<FrontendConfig>,
    /// `[admin]`: the admin listener for metrics and health checks.
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[cors]`: which other origins may call routes from a browser; absent, only same-origin
    /// requests and requests without `Origin`.
    pub cors: Option<CorsConfig>,
    /// `[jwt]`: the trusted token issuers for `auth = "jwt"` routes.
    pub jwt: Option<JwtConfig>,
    /// `[openapi]`: the OpenAPI document as allow-list and validator.
    pub openapi: Option<openapi::OpenApiConfig>,
    /// `[log]`: log filter, format and access log.
    #[serde(default)]
    pub log: LogConfig,
    /// `[store]`: absent means the default SQLite file, opened only if a feature needs it.
    pub store: Option<StoreConfig>,
    /// `[shared]`: state shared between nodes in Redis.
    #[serde(default)]
    pub shared: SharedConfig,
    /// `[api_keys]`: revocable API keys for `auth = "api_key"` routes.
    pub api_keys: Option<ApiKeysConfig>,
    /// `[rate_limits.NAME]`: named limits that routes apply.
    #[serde(default)]
    pub rate_limits: std::collections::BTreeMap<String, RateLimitConfig>,
    /// `[[routes]]`: what exists (with the OpenAPI operations and the implicit front-end route);
    /// any other request is refused.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `[pow]`: the built-in proof of work for `challenge = "pow"` routes.
    pub pow: Option<pow::PowConfig>,
    /// `[captcha.<provider>]`: third-party CAPTCHAs for routes that name one in `challenge`.
    pub captcha: Option<captcha::CaptchaConfig>,
    /// `[oidc]`: OpenID Connect login for `auth = "session"` routes.
    pub oidc: Option<OidcConfig>,
}

fn d_data_dir() -> PathBuf {
    PathBuf::from("./.frontgate")
}

/// The keys of the gateway's listener and forwarding that `text` sets: the embedded layer has
/// neither, so each is an error there rather than a setting that silently does nothing.
fn keys_the_layer_cannot_honour(text: &str) -> Vec<String> {
    let Ok(table) = text.parse::<toml::Table>() else { return Vec::new() };
    let mut keys: Vec<String> = ["upstream", "admin"]
        .into_iter()
        .filter(|s| table.contains_key(*s))
        .map(|s| format!("[{s}]"))
        .collect();
    let nested = [
        (
            "server",
            &[
                "listen",
                "tls",
                "redirect_http",
                "workers",
                "max_connections",
                "header_read_timeout",
                "idle_timeout",
                "shutdown_grace",
                "tls_session_resumption",
                "h2_max_concurrent_streams",
                "h2_max_pending_reset_streams",
            ][..],
        ),
        // The embedding service sets up its own logging; the access log is the layer's.
        ("log", &["level", "format"][..]),
        (
            "frontend",
            &[
                "dir",
                "dev_server",
                "index",
                "spa_fallback",
                "spa_fallback_exclude",
                "immutable_prefixes",
            ][..],
        ),
    ];
    for (section, names) in nested {
        let Some(t) = table.get(section).and_then(toml::Value::as_table) else { continue };
        keys.extend(
            names.iter().filter(|k| t.contains_key(**k)).map(|k| format!("[{section}] {k}")),
        );
    }
    keys
}

/// What a config is loaded for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    Gateway,
    Embedded,
}

/// One problem found in a config file, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file's name, as given.
    pub file: String,
    /// 1-based line and column, when the error has a place in the file.
    pub line: Option<usize>,
    /// 1-based column, with `line`.
    pub column: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: {}", self.file, l, c, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every error found, in file order.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Turns a byte offset into a 1-based (line, column), counting columns in characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Collects errors with their place in the config text.
pub(crate) struct Reporter<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

/// A config that has been read and checked on its own, with the errors found so far.
pub(crate) struct Parsed<'a> {
    pub config: Config,
    pub rep: Reporter<'a>,
    /// The top-level sections that had errors and are missing from `config`.
    pub broken: BTreeSet<String>,
}

impl Parsed<'_> {
    /// The config, if no rule found an error.
    pub fn finish(self) -> Result<Config, ConfigErrors> {
        if self.rep.errors.is_empty() {
            Ok(self.config)
        } else {
            Err(ConfigErrors(self.rep.errors))
        }
    }
}

impl Reporter<'_> {
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors so far.
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    pub fn at(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }
}

/// A config file's text, or the error that says why it cannot be read.
pub fn read_file(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: None,
            column: None,
            message: format!("cannot read the config file: {e}"),
        }])
    })
}

impl Config {
    /// Reads, parses and validates a config file. Relative paths in it are resolved against the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = read_file(path)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &path.display().to_string(), &base)
    }

    /// Parses and validates config text; `file` names it in errors, `base` resolves relative paths.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigErrors> {
        Config::parse_as(text, file, base, Use::Gateway)
    }

    /// Parses config for [`crate::layer`]: routes guard an embedding service, so no
    /// `[upstream]` or `[frontend]` is needed and `to = "upstream"` means "the inner service".
    pub fn parse_embedded(text: &str, file: &str, base: &Path) -> Result<Config, ConfigErrors> {
        Config::parse_as(text, file, base, Use::Embedded)
    }

    fn parse_as(text: &str, file: &str, base: &Path, usage: Use) -> Result<Config, ConfigErrors> {
        Config::parse_parts(text, file, base, usage)?.finish()
    }

    /// Parses and runs every rule that needs only the config itself, keeping the errors so far:
    /// the plan (`crate::plan`) goes on with the rules that need the OpenAPI document and the
    /// route table, and reports into the same list. `Err` only when nothing could be read.
    pub(crate) fn parse_parts<'a>(
        text: &'a str,
        file: &'a str,
        base: &Path,
        usage: Use,
    ) -> Result<Parsed<'a>, ConfigErrors> {
        let mut rep = Reporter { file, text, errors: Vec::new() };
        let report = |rep: &mut Reporter<'_>, e: &toml::de::Error| {
            rep.at(e.span(), friendly_parse_message(e.message().trim_end()));
        };
        // Every bad value is reported, not just the first; the checks that span keys then run
        // on what did deserialize, skipping those that involve a section with errors.
        let (mut config, broken) = match collect::deserialize(text) {
            collect::Outcome::Ok(c) => (c, BTreeSet::new()),
            collect::Outcome::Syntax(e) => {
                report(&mut rep, &e);
                return Err(ConfigErrors(rep.errors));
            }
            collect::Outcome::Values { errors, partial, broken } => {
                for e in &errors {
                    report(&mut rep, e);
                }
                match partial {
                    Some(c) => (c, broken),
                    None => return Err(ConfigErrors(rep.errors)),
                }
            }
        };
        config.resolve_paths(base);
        config.validate(&mut rep, usage, &broken);
        if usage == Use::Embedded {
            for key in keys_the_layer_cannot_honour(text) {
                rep.at(None, format!("{key} has no effect in the embedded layer, which neither listens nor forwards (the service that embeds it does); remove it"));
            }
        }
        Ok(Parsed { config, rep, broken })
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.data_dir);
        if let TlsSetting::Files { cert, key } = &mut self.server.tls {
            join(cert);
            join(key);
        }
        if let Some(dir) = self.frontend.as_mut().and_then(|f| f.dir.as_mut()) {
            join(dir);
        }
        for issuer in self.jwt.iter_mut().flat_map(|j| j.issuers.iter_mut()) {
            if let Some(f) = &mut issuer.jwks_file {
                join(f);
            }
        }
        if let Some(o) = &mut self.openapi {
            join(&mut o.spec);
        }
    }

    /// Rules that span keys. `broken` names the top-level sections that had errors and are
    /// missing from `self`: rules about their absence would only repeat those errors.
    fn validate(&self, rep: &mut Reporter<'_>, usage: Use, broken: &BTreeSet<String>) {
        let gateway = usage == Use::Gateway;
        let no_upstream = self.upstream.is_none() && !broken.contains("upstream");
        let no_frontend = self.frontend.is_none() && !broken.contains("frontend");
        let no_cors = self.cors.is_none() && !broken.contains("cors");
        if gateway && no_upstream && no_frontend {
            rep.at(None, "nothing to serve: add an [upstream] section with url = \"http://127.0.0.1:3000\", or a [frontend] section with dir = \"./dist\"");
        }
        if let Some(t) = self.admin.token.as_ref().filter(|t| !t.0.is_empty())
            && t.0.chars().count() < admin::MIN_TOKEN_CHARS
        {
            rep.at(None, format!("[admin] token is shorter than {} characters, short enough to guess: make one with `openssl rand -base64 32`", admin::MIN_TOKEN_CHARS));
        }
        for h in &self.admin.allowed_hosts {
            if !admin::is_host_name(h) {
                rep.at(None, format!("[admin] allowed_hosts: `{h}` is not a host name; write lowercase names like \"admin.internal\", without scheme, port or wildcard"));
            }
        }
        let s = &self.server;
        let positive = [
            ("[server] header_read_timeout", Some(s.header_read_timeout)),
            ("[server] idle_timeout", Some(s.idle_timeout)),
            ("[upstream] connect_timeout", self.upstream.as_ref().map(|u| u.connect_timeout)),
            ("[upstream] timeout", self.upstream.as_ref().map(|u| u.timeout)),
            ("[upstream] total_timeout", self.upstream.as_ref().and_then(|u| u.total_timeout)),
        ];
        for (name, d) in positive {
            if d.is_some_and(|d| d.0.is_zero()) {
                rep.at(None, format!("{name} must be longer than 0"));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err()
            || !log_level_words_are_levels(&self.log.level)
        {
            rep.at(None, format!("[log] level `{}` is not a log filter; write e.g. \"info\" or \"frontgate=debug,info\"", self.log.level));
        }
        if let Some(dir) = self.frontend.as_ref().and_then(|f| f.dir.as_ref())
            && gateway
            && !dir.is_dir()
        {
            rep.at(None, format!("[frontend] dir {} is not a directory: build the front-end first, or fix the path", dir.display()));
        }
        if s.max_header_bytes.0 < 1024 {
            rep.at(None, "[server] max_header_bytes must be at least 1024");
        }
        if s.max_header_count == 0 {
            rep.at(None, "[server] max_header_count must be at least 1");
        }
        if s.max_connections == 0 {
            rep.at(None, "[server] max_connections must be at least 1");
        }
        if s.workers > 1024 {
            rep.at(None, "[server] workers must be at most 1024 (0 means one per core)");
        }
        if let Some(pu) = &s.public_url
            && !s.tls_enabled()
            && pu.get_ref().is_https()
            && s.trusted_proxies.is_empty()
        {
            rep.at(Some(pu.span()), "public_url is https:// but tls = \"off\" and no trusted_proxies are set: list the load balancer's addresses in [server] trusted_proxies");
        }
        if !s.tls_enabled() && s.redirect_http.is_some() {
            rep.at(None, "[server] redirect_http needs TLS: remove it, or set tls");
        }
        if let Some(cors) = &self.cors {
            let origins = cors.allow_origins.get_ref();
            let any = origins.contains(&CorsOrigin::Any);
            if any && cors.allow_credentials {
                rep.at(Some(cors.allow_origins.span()), "allow_origins = \"*\" cannot be combined with allow_credentials = true: list the exact origins");
            }
            if origins.is_empty() {
                rep.at(Some(cors.allow_origins.span()), "allow_origins is empty: list the origins that may call the API, or remove [cors]");
            }
            for m in &cors.allow_methods {
                if http::Method::from_bytes(m.as_bytes()).is_err() || m.to_ascii_uppercase() != *m {
                    rep.at(
                        None,
                        format!("[cors] allow_methods: `{m}` is not an upper-case HTTP method"),
                    );
                }
            }
            for h in cors.allow_headers.iter().chain(&cors.expose_headers) {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    rep.at(None, format!("[cors]: `{h}` is not a valid header name"));
                }
            }
        }
        for message in self.jwt.iter().flat_map(JwtConfig::problems) {
            rep.at(None, message);
        }
        for route in &self.routes {
            let span = Some(route.matcher.span());
            let m = route.matcher.get_ref();
            match route.to {
                RouteTarget::Upstream if gateway && no_upstream => {
                    rep.at(span.clone(), format!("route `{}` forwards to the upstream, but there is no [upstream] section", m.text));
                }
                RouteTarget::Frontend if no_frontend => {
                    rep.at(
                        span.clone(),
                        format!(
                            "route `{}` serves the frontend, but there is no [frontend] section",
                            m.text
                        ),
                    );
                }
                _ => {}
            }
            if route.cors == Some(true) && no_cors {
                rep.at(
                    span.clone(),
                    format!("route `{}` sets cors = true but there is no [cors] section", m.text),
                );
            }
            for (name, value) in &route.headers {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    rep.at(
                        span.clone(),
                        format!("route `{}`: `{name}` is not a valid header name", m.text),
                    );
                } else if http::HeaderValue::from_str(value).is_err() {
                    rep.at(
                        span.clone(),
                        format!(
                            "route `{}`: the value of header `{name}` is not a valid header value",
                            m.text
                        ),
                    );
                }
            }
            if route.timeout.is_some_and(|t| t.0.is_zero()) {
                rep.at(span.clone(), format!("route `{}`: timeout must be longer than 0", m.text));
            }
            if let Some(csp) = &route.csp
                && http::HeaderValue::from_str(csp).is_err()
            {
                rep.at(
                    span.clone(),
                    format!("route `{}`: csp is not a valid header value", m.text),
                );
            }
            self.validate_route_policy(route, rep, broken);
        }
        if let Some(f) = &self.frontend {
            if http::HeaderValue::from_str(&f.csp()).is_err() {
                rep.at(None, "[frontend] csp is not a valid header value");
            }
            match (&f.dir, &f.dev_server) {
                (Some(_), Some(_)) => rep.at(None, "[frontend] has both dir and dev_server: use dev_server = \"http://127.0.0.1:5173\" while developing and dir = \"./dist\" for the built files, not both"),
                (None, None) => rep.at(None, "[frontend] needs dir = \"./dist\" (the built files) or dev_server = \"http://127.0.0.1:5173\" (a running dev server such as Vite)"),
                _ => {}
            }
            if f.dev_server.is_some() {
                // The dev server answers these itself (Vite serves index.html and its own fallback).
                for (key, set) in [
                    ("index", f.index.is_some()),
                    ("spa_fallback", f.spa_fallback.is_some()),
                    ("immutable_prefixes", f.immutable_prefixes.is_some()),
                ] {
                    if set {
                        rep.at(None, format!("[frontend] {key} applies to files in dir and has no effect with dev_server: remove it"));
                    }
                }
                if f.dev_server.as_ref().is_some_and(|d| !d.base_path.is_empty()) {
                    rep.at(None, "[frontend] dev_server must be an origin without a path, like \"http://127.0.0.1:5173\"; set Vite's base instead");
                }
            }
            if f.index().contains('/') || f.index().contains("..") {
                rep.at(None, "[frontend] index must be a file name in dir, like \"index.html\"");
            }
            for prefix in f.spa_fallback_exclude.iter().flatten() {
                if !prefix.starts_with('/') {
                    rep.at(None, format!("[frontend] spa_fallback_exclude: `{prefix}` must be a path prefix starting with /, like \"/api/\""));
                }
            }
        }
        if let Some(oidc) = &self.oidc {
            for message in oidc.problems() {
                rep.at(None, message);
            }
            // The session cookie is `__Host-` and Secure: browsers keep it only over https
            // (and on loopback, for local development).
            let public = self.public_origin();
            let host = public.host_port().rsplit_once(':').map_or(public.host_port(), |(h, _)| h);
            let loopback = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !public.is_https() && !loopback {
                rep.at(None, "[oidc] needs an https:// public origin (the session cookie is Secure): set [server] public_url or enable tls");
            }
        }
        for message in self.admin.problems(self.oidc.is_some() || broken.contains("oidc")) {
            rep.at(None, message);
        }
        let mut section_errors = self.store_config().validate(&self.data_dir);
        section_errors.extend(self.shared.validate());
        if let Some(k) = &self.api_keys {
            section_errors.extend(k.validate());
        }
        section_errors.extend(api_keys::self_service_problems(self, broken.contains("oidc")));
        for (name, limit) in &self.rate_limits {
            section_errors.extend(limit.validate(name));
        }
        for e in section_errors {
            rep.at(None, e);
        }
        for problem in self
            .pow
            .iter()
            .flat_map(|p| p.problems())
            .chain(self.captcha.iter().flat_map(|c| c.problems()))
        {
            rep.at(None, problem);
        }
        if http::HeaderValue::from_str(&s.hsts).is_err() {
            rep.at(None, "[server] hsts is not a valid header value");
        }
    }

    /// A route's policy keys must name what the config provides: a route can never ask for a check
    /// that would silently not run.
    fn validate_route_policy(
        &self,
        route: &RouteConfig,
        rep: &mut Reporter<'_>,
        broken: &BTreeSet<String>,
    ) {
        let span = Some(route.matcher.span());
        let text = &route.matcher.get_ref().text;
        for method in &route.auth.0 {
            let section = self.auth_section(*method);
            if !section.1 && !broken.contains(section.0) {
                rep.at(
                    span.clone(),
                    format!(
                        "route `{text}`: auth = \"{}\" needs the [{}] section",
                        method.as_str(),
                        section.0
                    ),
                );
            }
        }
        if !route.claims.is_empty() {
            if !route.auth.accepts(AuthMethod::Jwt) && !route.auth.accepts(AuthMethod::Session) {
                rep.at(span.clone(), format!("route `{text}`: claims are checked on tokens and sessions; set auth to include \"jwt\" or \"session\""));
            }
            if route.auth.accepts(AuthMethod::ApiKey) {
                rep.at(span.clone(), format!("route `{text}`: claims cannot be checked on API keys, which carry none; remove \"api_key\" from auth or the claims"));
            }
            for (name, value) in &route.claims {
                if !matches!(
                    value,
                    toml::Value::String(_) | toml::Value::Boolean(_) | toml::Value::Integer(_)
                ) {
                    rep.at(span.clone(), format!("route `{text}`: claim `{name}` must be required as a string, a boolean or an integer"));
                }
                if route.auth.accepts(AuthMethod::Session)
                    && let Some(oidc) = &self.oidc
                    && !oidc.session_claims.iter().any(|c| c == name)
                {
                    rep.at(span.clone(), format!("route `{text}`: claim `{name}` is checked on sessions, which keep only [oidc] session_claims; add \"{name}\" there"));
                }
            }
        }
        if route.method_override && route.to == RouteTarget::Frontend {
            rep.at(span.clone(), format!("route `{text}`: method_override passes headers to the upstream; this route serves the front-end, so remove it"));
        }
        if route.csrf == Some(true) && !route.auth.accepts(AuthMethod::Session) {
            rep.at(span.clone(), format!("route `{text}`: csrf = true protects cookie sessions; it needs auth to include \"session\""));
        }
        if let Some(ch) = &route.challenge {
            match self.challenge_section(ch) {
                Some((name, false)) if !broken.contains(name.split('.').next().unwrap_or(name)) => {
                    rep.at(span.clone(), format!("route `{text}`: challenge = \"{ch}\" needs the [{name}] section"));
                }
                Some(_) => {}
                None => rep.at(span.clone(), format!("route `{text}`: challenge `{ch}` is not one of \"pow\", \"turnstile\", \"hcaptcha\", \"recaptcha\"")),
            }
        }
        for name in &route.rate_limit {
            if !self.has_rate_limit(name) && !broken.contains("rate_limits") {
                rep.at(span.clone(), format!("route `{text}`: rate_limit `{name}` is not defined; add a [rate_limits.{name}] section"));
            }
            if let Some(limit) = self.rate_limits.get(name)
                && !limit.key.before_auth()
                && route.auth.is_none()
            {
                rep.at(span.clone(), format!("route `{text}`: rate_limit `{name}` counts per authenticated caller, but the route has no auth; set auth, or use key = \"ip\""));
            }
        }
    }

    /// The section an auth method is configured in, and whether the config has it.
    pub(crate) fn auth_section(&self, method: AuthMethod) -> (&'static str, bool) {
        match method {
            AuthMethod::Session => ("oidc", self.oidc.is_some()),
            AuthMethod::Jwt => ("jwt", self.jwt.is_some()),
            AuthMethod::ApiKey => ("api_keys", self.api_keys.is_some()),
        }
    }

    /// The section a challenge kind is configured in, and whether the config has it.
    fn challenge_section(&self, kind: &str) -> Option<(&'static str, bool)> {
        match kind {
            "pow" => Some(("pow", self.pow.is_some())),
            "turnstile" => Some((
                "captcha.turnstile",
                self.captcha.as_ref().is_some_and(|c| c.turnstile.is_some()),
            )),
            "hcaptcha" => Some((
                "captcha.hcaptcha",
                self.captcha.as_ref().is_some_and(|c| c.hcaptcha.is_some()),
            )),
            "recaptcha" => Some((
                "captcha.recaptcha",
                self.captcha.as_ref().is_some_and(|c| c.recaptcha.is_some()),
            )),
            _ => None,
        }
    }

    fn has_rate_limit(&self, name: &str) -> bool {
        self.rate_limits.contains_key(name)
    }

    /// The origin browsers use: `[server] public_url`, or one derived from the listen address.
    pub fn public_origin(&self) -> Origin {
        if let Some(pu) = &self.server.public_url {
            return pu.get_ref().clone();
        }
        let scheme = if self.server.tls_enabled() { "https" } else { "http" };
        format!("{scheme}://{}", self.server.listen.0)
            .parse()
            .unwrap_or_else(|_| "https://localhost".parse().expect("static origin"))
    }

    /// Warnings: valid, but probably not what was meant.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.routes.is_empty() && self.upstream.is_some() && self.openapi.is_none() {
            w.push("no [[routes]]: nothing is forwarded to the upstream (deny by default). Add e.g. [[routes]] match = \"/api/**\"".into());
        }
        if self.server.public_url.is_none() && !self.server.listen.0.ip().is_loopback() {
            w.push("[server] public_url is not set: same-origin checks trust the Host header, which DNS rebinding can forge. Set public_url to the origin browsers use".into());
        }
        if self.server.listen.0.ip().is_unspecified()
            && !self.admin.listen.0.ip().is_loopback()
            && self.admin.enabled
        {
            w.push("the admin listener is not on loopback: /metrics and /ready are then reachable by anyone who can reach it; keep it on loopback or behind a firewall".into());
        }
        // A client's first request to a challenged route is refused with challenge_required
        // after its client-keyed limits have counted it; the retry with the clearance counts
        // again. A burst of 1 would refuse that retry.
        for route in self.routes.iter().filter(|r| r.challenge.is_some()) {
            for name in &route.rate_limit {
                if let Some(limit) = self.rate_limits.get(name)
                    && limit.key.before_auth()
                    && limit.burst() < 2
                {
                    w.push(format!(
                        "route `{}`: rate_limit `{name}` allows a burst of 1, but the first request of each clearance period is counted twice (the challenge_required answer and the retry with the clearance); set burst to at least 2",
                        route.matcher.get_ref().text
                    ));
                }
            }
        }
        w
    }
}

/// A bare word in a log filter is read as a target name, so a misspelled level ("verbose")
/// would silently turn frontgate's own logs off. Bare words must be levels.
fn log_level_words_are_levels(filter: &str) -> bool {
    filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('=') && !d.contains("::") && !d.contains('['))
        .all(|d| {
            matches!(
                d.to_ascii_lowercase().as_str(),
                "trace" | "debug" | "info" | "warn" | "error" | "off"
            )
        })
}

/// Makes serde's unknown-field message say how to fix it.
fn friendly_parse_message(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        return format!(
            "unknown key {rest}. Check the spelling against the config reference (docs/config.md)"
        );
    }
    msg.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole loader, as `frontgate check` runs it: these tests hold its messages, some of
    /// which come from the plan (route conflicts, OpenAPI operations).
    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        crate::plan::Plan::parse(text, "test.toml", Path::new("/base")).map(|p| p.config)
    }

    #[test]
    fn minimal_upstream_config_gets_secure_defaults() {
        let c = parse("[upstream]\nurl = \"http://127.0.0.1:3000\"\n").unwrap();
        assert_eq!(c.server.tls, TlsSetting::SelfSigned);
        assert_eq!(c.server.max_header_bytes.0, 16384);
        assert_eq!(c.data_dir, PathBuf::from("/base/./.frontgate"));
        assert_eq!(c.upstream.unwrap().url.authority, "127.0.0.1:3000");
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let e = parse("[upstream]\nurl = \"http://127.0.0.1:3000\"\n\n[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n").unwrap_err();
        let e = &e.0[0];
        assert_eq!((e.line, e.column), (Some(6), Some(1)), "{e}");
        assert!(e.message.contains("unknown key `lisen`"), "{e}");
    }

    #[test]
    fn bad_values_point_at_the_value() {
        let e = parse("[upstream]\nurl = \"http://127.0.0.1:3000\"\nconnect_timeout = \"soon\"\n")
            .unwrap_err();
        let e = &e.0[0];
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("not a duration"), "{e}");
    }

    #[test]
    fn missing_env_var_is_reported() {
        let e = parse("[upstream]\nurl = \"${FRONTGATE_TEST_SURELY_UNSET}\"\n").unwrap_err();
        assert!(e.0[0].message.contains("FRONTGATE_TEST_SURELY_UNSET"), "{}", e);
        assert_eq!(e.0[0].line, Some(2));
    }

    #[test]
    fn admin_oidc_needs_oidc_a_token_a_claim_and_allowed_values() {
        const OIDC: &str = "[oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"\nsession_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n[shared]\nredis = \"redis://127.0.0.1:6379\"\n";
        let base = "[server]\nlisten = \"127.0.0.1:8080\"\ntls = \"off\"\n[upstream]\nurl = \"http://127.0.0.1:3000\"\n";
        let admin = |token: &str, table: &str| {
            format!("[admin]\n{token}\n[admin.oidc]\norigin = \"http://127.0.0.1:9901\"\n{table}\n")
        };
        let good = admin(
            "token = \"t0ken-0123456789abcdef0123\"",
            "claim = \"groups\"\nallow = [\"admins\"]",
        );
        let c = parse(&format!("{base}{OIDC}{good}")).unwrap();
        let o = c.admin.oidc.expect("[admin.oidc]");
        assert_eq!((o.origin.as_str(), o.claim.as_str()), ("http://127.0.0.1:9901", "groups"));
        let refused = |text: String, needle: &str| {
            let e = parse(&text).expect_err(needle).to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        };
        refused(format!("{base}{good}"), "[admin.oidc] needs an [oidc] section");
        refused(
            format!("{base}{OIDC}{}", admin("", "claim = \"groups\"\nallow = [\"a\"]")),
            "[admin.oidc] needs [admin] token",
        );
        refused(
            format!(
                "{base}{OIDC}{}",
                admin("token = \"t-0123456789abcdef01234567\"", "claim = \"groups\"\nallow = []")
            ),
            "[admin.oidc] allow is empty",
        );
        refused(
            format!(
                "{base}{OIDC}{}",
                admin("token = \"t-0123456789abcdef01234567\"", "claim = \"\"\nallow = [\"a\"]")
            ),
            "[admin.oidc] claim is empty",
        );
        refused(
            format!(
                "{base}{OIDC}{}",
                admin("token = \"t-0123456789abcdef01234567\"", "claim = \"g\"\nallow = [\"\"]")
            ),
            "[admin.oidc] allow has an empty value",
        );
        refused(
            format!(
                "{base}{OIDC}{}",
                admin(
                    "token = \"t-0123456789abcdef01234567\"\nenabled = false",
                    "claim = \"g\"\nallow = [\"a\"]"
                )
            ),
            "[admin] enabled = false",
        );
        for bad in ["127.0.0.1:9901", "ftp://h", "http://h/console", "http://h/"] {
            let text = format!("{base}{OIDC}{good}").replace("http://127.0.0.1:9901", bad);
            refused(text, "origin");
        }
        refused(format!("{base}{OIDC}{good}").replace("claim =", "clam ="), "clam");
        for (claim, message) in [
            ("email", "names a person, not a role"),
            ("sub", "names a person, not a role"),
            ("realm_access.roles", "nested claims are not read"),
        ] {
            let text = format!(
                "{base}{OIDC}{}",
                admin(
                    "token = \"t-0123456789abcdef01234567\"",
                    &format!("claim = \"{claim}\"\nallow = [\"a\"]")
                )
            );
            let e = parse(&text).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(message), "{claim}: {e}");
        }
    }

    #[test]
    fn cross_key_rules() {
        let e = parse("[upstream]\nurl = \"http://a:1\"\n[cors]\nallow_origins = [\"*\"]\nallow_credentials = true\n").unwrap_err();
        assert!(e.to_string().contains("test.toml:4:"), "{e}");
        let e = parse("[frontend]\ndir = \"d\"\n[[routes]]\nmatch = \"/api/**\"\n").unwrap_err();
        assert!(e.to_string().contains("no [upstream]"), "{e}");
        assert!(parse("").is_err());
        let e = parse("[upstream]\nurl = \"https://a:1\"\n").unwrap_err();
        assert!(e.to_string().contains("https upstreams"), "{e}");
        let e = parse("[upstream]\nurl = \"http://a:1\"\n[cors]\nallow_origins = [\"null\"]\n")
            .unwrap_err();
        assert!(e.to_string().contains("null"), "{e}");
    }

    #[test]
    fn frontend_takes_dir_or_dev_server_and_refuses_file_keys_with_a_dev_server() {
        parse("[frontend]\ndev_server = \"http://127.0.0.1:5173\"\nspa_fallback_exclude = [\"/api/\"]\n").unwrap();
        let e = parse("[frontend]\ndir = \"/tmp\"\ndev_server = \"http://127.0.0.1:5173\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("[frontend] has both dir and dev_server"), "{e}");
        let e = parse("[frontend]\ncsp = \"default-src 'self'\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("[frontend] needs dir = \"./dist\" (the built files) or dev_server"),
            "{e}"
        );
        for key in ["index = \"a.html\"", "spa_fallback = false", "immutable_prefixes = []"] {
            let e = parse(&format!("[frontend]\ndev_server = \"http://127.0.0.1:5173\"\n{key}\n"))
                .unwrap_err();
            assert!(
                e.to_string().contains("has no effect with dev_server: remove it"),
                "{key}: {e}"
            );
        }
        // The relaxed CSP is only the dev server's default; an explicit one is used as written.
        let csp = |t: &str| parse(t).unwrap().frontend.unwrap().csp();
        assert!(
            csp("[frontend]\ndev_server = \"http://127.0.0.1:5173\"\n")
                .contains("style-src 'self' 'unsafe-inline'")
        );
        assert_eq!(
            csp(
                "[frontend]\ndev_server = \"http://127.0.0.1:5173\"\ncsp = \"default-src 'self'\"\n"
            ),
            "default-src 'self'"
        );
        assert_eq!(csp("[frontend]\ndir = \"/tmp\"\n"), frontend::d_csp());
        let e = parse("[frontend]\ndev_server = \"http://127.0.0.1:5173/app\"\n").unwrap_err();
        assert!(e.to_string().contains("dev_server must be an origin without a path"), "{e}");
        let e = parse("[frontend]\ndev_server = \"https://127.0.0.1:5173\"\n").unwrap_err();
        assert!(e.to_string().contains("https upstreams"), "{e}");
    }

    #[test]
    fn zero_timeouts_bad_log_levels_and_missing_frontend_dirs_are_refused() {
        let e = parse("[upstream]\nurl = \"http://a:1\"\ntimeout = \"0s\"\n[server]\nheader_read_timeout = \"0ms\"\n").unwrap_err();
        assert!(e.to_string().contains("[upstream] timeout must be longer than 0"), "{e}");
        assert!(e.to_string().contains("header_read_timeout must be longer than 0"), "{e}");
        let e =
            parse("[upstream]\nurl = \"http://a:1\"\n[log]\nlevel = \"verbose\"\n").unwrap_err();
        assert!(e.to_string().contains("[log] level"), "{e}");
        parse("[upstream]\nurl = \"http://a:1\"\n[log]\nlevel = \"frontgate=debug,warn\"\n")
            .unwrap();
        let e = parse(
            "[upstream]\nurl = \"http://a:1\"\n[[routes]]\nmatch = \"/x\"\ntimeout = \"0s\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("timeout must be longer than 0"), "{e}");
        let e =
            parse("[upstream]\nurl = \"http://a:1\"\n[log]\nlevel = \"info,=,=\"\n").unwrap_err();
        assert!(e.to_string().contains("[log] level"), "{e}");
        let e = parse("[frontend]\ndir = \"/surely/not/a/dir\"\n").unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
    }

    #[test]
    fn the_admin_token_must_be_long_and_allowed_hosts_plain_names() {
        let admin =
            |keys: &str| parse(&format!("[upstream]\nurl = \"http://a:1\"\n[admin]\n{keys}\n"));
        let e = admin("token = \"changeme\"").unwrap_err();
        assert!(e.to_string().contains("[admin] token is shorter than 24 characters"), "{e}");
        assert!(admin("token = \"0123456789abcdef01234567\"").is_ok());
        // Empty means no management API, as before.
        assert!(admin("token = \"\"").is_ok());
        for bad in [
            "Admin.Internal",
            "admin.internal:9901",
            "http://admin.internal",
            "*.internal",
            "",
            "a..b",
            "-a.b",
        ] {
            let e = admin(&format!("allowed_hosts = [\"{bad}\"]")).unwrap_err();
            assert!(e.to_string().contains("is not a host name"), "{bad}: {e}");
        }
        assert!(admin("allowed_hosts = [\"admin.internal\", \"fg-1\"]").is_ok());
    }

    #[test]
    fn route_policy_must_name_configured_checks() {
        let route = |keys: &str| {
            parse(&format!(
                "[upstream]\nurl = \"http://a:1\"\n[[routes]]\nmatch = \"/api/**\"\n{keys}\n"
            ))
            .map(|_| ())
            .unwrap_err()
            .0
        };
        let cases = [
            ("auth = \"api_key\"", "auth = \"api_key\" needs the [api_keys] section"),
            ("auth = [\"session\"]", "auth = \"session\" needs the [oidc] section"),
            ("auth = \"jwt\"", "auth = \"jwt\" needs the [jwt] section"),
            ("scopes = [\"a\"]", "scopes need an auth method"),
            ("claims = { tenant = \"a\" }", "claims are checked on tokens and sessions"),
            (
                "auth = \"api_key\"\nclaims = { tenant = \"a\" }",
                "claims cannot be checked on API keys",
            ),
            (
                "auth = \"jwt\"\nclaims = { level = 1.5 }",
                "claim `level` must be required as a string, a boolean or an integer",
            ),
            ("csrf = true", "csrf = true protects cookie sessions"),
            ("challenge = \"pow\"", "challenge = \"pow\" needs the [pow] section"),
            ("challenge = \"turnstile\"", "needs the [captcha.turnstile] section"),
            ("challenge = \"math\"", "challenge `math` is not one of"),
            ("rate_limit = [\"x\"]", "rate_limit `x` is not defined"),
        ];
        for (keys, message) in cases {
            let e = route(keys);
            assert!(
                e.iter().any(|e| e.message.contains(message) && e.line == Some(4)),
                "{keys}: {e:?}"
            );
        }
        parse(
            "[upstream]\nurl = \"http://a:1\"\n[[routes]]\nmatch = \"/api/**\"\nauth = \"none\"\n",
        )
        .unwrap();
    }

    // Plans sections that need the SQL store: without `sql` they are refused (plan::tests).

    #[cfg(feature = "sql")]
    #[test]
    fn store_shared_and_api_keys_sections_are_validated() {
        let up = "[upstream]\nurl = \"http://a:1\"\n";
        let c = parse(up).unwrap();
        assert!(c.store.is_none() && !c.needs_store() && c.shared.redis.is_none());
        assert_eq!(
            c.store_config().resolve(&c.data_dir).unwrap(),
            StoreUrl::Sqlite(PathBuf::from("/base/./.frontgate/frontgate.db"))
        );
        let c = parse(&format!(
            "{up}[store]\nurl = \"postgres://u:pw@127.0.0.1/fg\"\nmax_connections = 3\n"
        ))
        .unwrap();
        assert_eq!(
            c.store_config().resolve(&c.data_dir).unwrap(),
            StoreUrl::Postgres("postgres://u:pw@127.0.0.1/fg".into())
        );
        let bad = [
            ("[store]\nurl = \"mysql://x\"\n", "must start with sqlite:// or postgres://"),
            ("[store]\nurl = \"sqlite::memory:\"\n", "in-memory SQLite"),
            ("[store]\nmax_connections = 0\n", "max_connections must be at least 1"),
            ("[shared]\nredis = \"http://x\"\n", "[shared] redis must be a URL"),
            ("[shared]\non_outage = { sessions = \"open\" }\n", "on_outage.sessions = \"open\""),
            (
                "[shared]\non_outage = { rate_limits = \"sometimes\" }\n",
                "unknown variant `sometimes`",
            ),
            ("[shared]\non_outage = { coffee = \"open\" }\n", "unknown key `coffee`"),
            ("[api_keys]\nhash_secret = \"short\"\n", "at least 32 characters"),
            (
                "[api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\nprefix = \"Bad-\"\n",
                "prefix `Bad-`",
            ),
            (
                "[api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\ncache_ttl = \"1h\"\n",
                "cache_ttl must be between",
            ),
        ];
        for (section, message) in bad {
            let e = parse(&format!("{up}{section}")).unwrap_err();
            assert!(e.to_string().contains(message), "{section}: {e}");
        }
        let c = parse(&format!("{up}[api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\n[[routes]]\nmatch = \"/api/**\"\nauth = \"api_key\"\nscopes = [\"a\"]\n")).unwrap();
        assert!(c.needs_store());
        assert_eq!(c.api_keys.as_ref().unwrap().prefix, "fgk_");
    }

    #[test]
    fn rate_limits_are_validated() {
        let base = "[upstream]\nurl = \"http://a:1\"\n";
        let e = parse(&format!("{base}[rate_limits.caller]\nkey = \"subject\"\nrate = \"5/s\"\n[[routes]]\nmatch = \"/x\"\nrate_limit = [\"caller\"]\n")).unwrap_err();
        assert!(
            e.0.iter().any(|e| e
                .message
                .contains("counts per authenticated caller, but the route has no auth")),
            "{e}"
        );
        let e = parse(&format!("{base}[rate_limits.a]\nkey = \"ip\"\nrate = \"5/fortnight\"\n"))
            .unwrap_err();
        assert!(
            e.0.iter()
                .any(|e| e.message.contains("unknown period `fortnight`") && e.line == Some(5)),
            "{e}"
        );
        let e = parse(&format!("{base}[rate_limits.a]\nkey = \"ip\"\nrate = \"5/s\"\nburst = 0\n"))
            .unwrap_err();
        assert!(e.0.iter().any(|e| e.message.contains("burst must be at least 1")), "{e}");
        let e = parse(&format!("{base}[rate_limits.\"a b\"]\nkey = \"ip\"\nrate = \"5/s\"\n"))
            .unwrap_err();
        assert!(e.0.iter().any(|e| e.message.contains("a limit name is letters")), "{e}");
        parse(&format!("{base}[rate_limits.a]\nkey = \"header:x-tenant\"\nrate = \"5/s\"\n[[routes]]\nmatch = \"/x\"\nrate_limit = [\"a\"]\n")).unwrap();
    }

    #[test]
    fn identical_any_method_routes_are_refused() {
        let e = parse("[upstream]\nurl = \"http://a:1\"\n[[routes]]\nmatch = \"/api/**\"\n[[routes]]\nmatch = \"/api/**\"\n").unwrap_err();
        assert!(e.to_string().contains("duplicates"), "{e}");
        // An any-method route beside a method-specific one on the same path is fine.
        parse("[upstream]\nurl = \"http://a:1\"\n[[routes]]\nmatch = \"/api/x\"\n[[routes]]\nmatch = \"GET /api/x\"\n").unwrap();
    }

    #[test]
    fn duplicate_routes_are_refused_at_their_line() {
        let e = parse("[upstream]\nurl = \"http://a:1\"\n[[routes]]\nmatch = \"GET /x\"\n[[routes]]\nmatch = \"GET /x\"\n").unwrap_err();
        assert!(e.to_string().contains("test.toml:6:"), "{e}");
    }
}
