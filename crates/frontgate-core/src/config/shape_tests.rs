//! The config's shape against the reference example (`frontgate.example.toml` in the design
//! notes): every key of every section parses to the value it says, and the whole example loads.

use super::*;

/// The reference example, verbatim except `[admin] token`, `[api_keys] hash_secret`, `[pow]
/// secret`, `[captcha.turnstile] secret` and `[oidc] client_secret`/`session_key`, which name
/// environment variables that tests cannot set safely (they are literals here; `${VAR}`
/// expansion has its own tests).
const EXAMPLE: &str = r###"
# The shape of frontgate's configuration. Key names here are the interface users and tests rely on:
# add keys freely, rename none without updating docs and tests. Values are examples; defaults belong
# in the config reference. Only [upstream] (or [frontend]) is required; everything else is opt-in,
# and the secure default applies where a key is absent.

data_dir = "./.frontgate"                 # SQLite file, self-signed certificate, other local state

[server]
listen = "127.0.0.1:8443"
public_url = "https://app.example.com"    # the origin browsers see: OIDC redirect URI, CSRF/Origin checks, DPoP htu
tls = "self-signed"                       # or { cert = "cert.pem", key = "key.pem" }, or "off" behind a load balancer
redirect_http = "127.0.0.1:8080"          # optional: a plain-HTTP listener that only redirects to HTTPS
workers = 0                               # worker threads; 0 = one per core
trusted_proxies = []                      # CIDRs whose X-Forwarded-For / Forwarded is believed
max_connections = 10000
max_header_bytes = 16384
max_body_bytes = 1048576                  # default per route; routes may lower or raise it
header_read_timeout = "10s"
shutdown_grace = "30s"
hsts = "max-age=31536000; includeSubDomains"

[upstream]
url = "http://127.0.0.1:3000"
connect_timeout = "2s"
timeout = "30s"
mask_5xx = true                           # replace upstream 5xx bodies with a problem document

[frontend]
dir = "./dist"                            # served from the same origin as the API
spa_fallback = true
csp = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"

[store]
url = "sqlite://frontgate.db"             # relative to data_dir; or "postgres://user@127.0.0.1/frontgate"

[shared]
redis = "redis://127.0.0.1:6379"          # optional: sessions, counters, replay sets, revocation events across nodes
on_outage = { rate_limits = "local", sessions = "closed" }

[admin]
listen = "127.0.0.1:9901"
token = "example-admin-token-0123456789"

[cors]
allow_origins = ["https://app.example.com"]
allow_credentials = true
allow_headers = ["content-type", "x-frontgate-csrf"]

[oidc]
issuer = "https://idp.example.com"       # http:// is accepted only for loopback issuers (local tests)
client_id = "my-spa"
client_secret = "example-client-secret"
scopes = ["openid", "profile", "email", "offline_access"]
session_idle = "30m"
session_absolute = "12h"
session_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 random bytes, base64: encrypts tokens at rest
forward_access_token = true
session_claims = ["sub", "name", "email"] # what /.frontgate/session returns to the SPA

[[jwt.issuers]]
issuer = "https://idp.example.com"
audiences = ["api"]
jwks_url = "https://idp.example.com/jwks" # default: from the issuer's discovery document
# jwks_file = "jwks.json"                 # a static key set instead of a URL
algorithms = ["ES256", "RS256"]
leeway = "30s"
dpop = "optional"                         # "off" | "optional" | "required"

[api_keys]
prefix = "fgk_"
hash_secret = "example-hash-secret-of-at-least-32-chars"
cache_ttl = "5s"

[pow]
secret = "example-pow-secret-of-at-least-32-chars"
algorithm = "PBKDF2/SHA-256"
expires = "5m"
clearance = "10m"
levels = [ { above_rps = 0, cost = 5000 }, { above_rps = 50, cost = 20000 }, { above_rps = 200, cost = 100000 } ]

[captcha.turnstile]
secret = "example-turnstile-secret"
verify_url = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
# [captcha.hcaptcha] and [captcha.recaptcha] (with min_score, action) take the same shape

[openapi]
spec = "openapi.yaml"                     # its operations become routes; undeclared ones do not exist
unknown_query = "reject"
response_validation = "off"               # "off" | "report" | "block" | "strip"

[rate_limits.per_ip]
key = "ip"                                # "ip" | "subject" | "api_key" | "session" | "route" | "header:NAME"
rate = "100/s"
burst = 200

[rate_limits.signup]
key = "ip"
rate = "5/min"
burst = 5

# Routes are matched after path normalization, most specific first.
# match = "METHOD[,METHOD] /path/{param}"  or  "/prefix/**" (any method)
[[routes]]
match = "POST /api/signup"
auth = "none"
challenge = "pow"                         # or "turnstile" | "hcaptcha" | "recaptcha"
rate_limit = ["per_ip", "signup"]

[[routes]]
match = "GET /api/items"                  # an OpenAPI operation's path: the entry lends it its policy
auth = ["session", "jwt", "api_key"]
scopes = ["items:read"]

[[routes]]
match = "/api/**"                         # what the document does not declare (an operation under a
auth = ["session", "jwt", "api_key"]      # prefix needs an entry of its own, as above); any one suffices
scopes = ["items:read"]
csrf = true                               # for cookie-authenticated unsafe methods
rate_limit = ["per_ip"]
"###;

/// Top-level sections, each checked key by key below; in `[[routes]]`, only `match` (route keys
/// are checked in the whole-example test).
const IMPLEMENTED: [&str; 15] = [
    "[server]",
    "[upstream]",
    "[frontend]",
    "[admin]",
    "[cors]",
    "[store]",
    "[shared]",
    "[api_keys]",
    "[rate_limits.per_ip]",
    "[rate_limits.signup]",
    "[pow]",
    "[captcha.turnstile]",
    "[oidc]",
    "[[jwt.issuers]]",
    "[openapi]",
];

/// The example with only the implemented sections (and top-level keys), and only `match` in
/// routes.
fn implemented_part() -> String {
    let mut out = String::new();
    let mut section = "";
    for line in EXAMPLE.lines() {
        if line.starts_with('[') {
            section = line;
        }
        let keep = section.is_empty()
            || IMPLEMENTED.contains(&section)
            || (section == "[[routes]]"
                && (line == section || line.starts_with("match") || !line.contains('=')));
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A base directory with the example's `./dist`, so `[frontend] dir` exists.
fn base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("dist")).expect("dist");
    // The example's [openapi] spec.
    std::fs::write(dir.path().join("openapi.yaml"), "openapi: 3.1.0\ninfo: { title: t, version: '1' }\npaths:\n  /api/items:\n    get:\n      responses: { '200': { description: ok } }\n").expect("spec");
    dir
}

#[test]
fn every_key_of_the_implemented_sections_parses() {
    let text = implemented_part();
    assert!(
        text.contains("data_dir = ")
            && text.contains("hsts = ")
            && text.contains("match = \"/api/**\""),
        "{text}"
    );
    assert!(
        text.contains("[store]")
            && text.contains("[oidc]")
            && text.contains("[[jwt.issuers]]")
            && !text.contains("auth = "),
        "{text}"
    );
    let dir = base();
    let plan = crate::plan::Plan::parse(&text, "example.toml", dir.path())
        .unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    let c = &plan.config;
    assert_eq!(c.data_dir, dir.path().join("./.frontgate"));
    let s = &c.server;
    assert_eq!(s.listen.0, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(s.public_url.as_ref().unwrap().get_ref().as_str(), "https://app.example.com");
    assert_eq!(s.tls, TlsSetting::SelfSigned);
    assert_eq!(s.redirect_http.unwrap().0, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        (s.workers, s.max_connections, s.max_header_bytes.0, s.max_body_bytes.0),
        (0, 10000, 16384, 1048576)
    );
    assert!(s.trusted_proxies.is_empty());
    assert_eq!((s.header_read_timeout.0.as_secs(), s.shutdown_grace.0.as_secs()), (10, 30));
    assert_eq!(s.hsts, "max-age=31536000; includeSubDomains");
    let u = c.upstream.as_ref().unwrap();
    assert_eq!(u.url.authority, "127.0.0.1:3000");
    assert_eq!((u.connect_timeout.0.as_secs(), u.timeout.0.as_secs(), u.mask_5xx), (2, 30, true));
    let f = c.frontend.as_ref().unwrap();
    assert_eq!(f.dir.as_deref(), Some(dir.path().join("./dist").as_path()));
    assert!(f.spa_fallback());
    assert!(f.csp().starts_with("default-src 'self'"));
    assert_eq!(c.admin.listen.0, "127.0.0.1:9901".parse().unwrap());
    assert_eq!(c.admin.token.as_ref().unwrap().0, "example-admin-token-0123456789");
    let cors = c.cors.as_ref().unwrap();
    assert!(cors.allow_credentials);
    assert_eq!(
        cors.allow_origins.get_ref(),
        &[CorsOrigin::Exact("https://app.example.com".parse().unwrap())]
    );
    assert_eq!(cors.allow_headers, ["content-type", "x-frontgate-csrf"]);
    let store = c.store.as_ref().unwrap();
    assert_eq!(store.url.0, "sqlite://frontgate.db");
    assert_eq!(
        store.resolve(&c.data_dir).unwrap(),
        StoreUrl::Sqlite(dir.path().join("./.frontgate").join("frontgate.db"))
    );
    assert_eq!(c.shared.redis.as_ref().unwrap().0, "redis://127.0.0.1:6379");
    assert_eq!(c.shared.on_outage.rate_limits, OutageMode::Local);
    assert_eq!(c.shared.on_outage.sessions, OutageMode::Closed);
    let per_ip = &c.rate_limits["per_ip"];
    assert_eq!(
        (&per_ip.key, per_ip.rate.count, per_ip.rate.period.as_secs(), per_ip.burst()),
        (&LimitKey::Ip, 100, 1, 200)
    );
    let signup = &c.rate_limits["signup"];
    assert_eq!((signup.rate.count, signup.rate.period.as_secs(), signup.burst()), (5, 60, 5));
    let keys = c.api_keys.as_ref().unwrap();
    assert_eq!(
        (keys.prefix.as_str(), keys.hash_secret.0.as_str()),
        ("fgk_", "example-hash-secret-of-at-least-32-chars")
    );
    assert_eq!(keys.cache_ttl.0, std::time::Duration::from_secs(5));
    let oidc = c.oidc.as_ref().unwrap();
    assert_eq!(oidc.issuer.get_ref().0, "https://idp.example.com");
    assert_eq!(oidc.client_id, "my-spa");
    assert_eq!(oidc.client_secret.as_ref().unwrap().0, "example-client-secret");
    assert_eq!(oidc.scopes, ["openid", "profile", "email", "offline_access"]);
    assert_eq!(
        (oidc.session_idle.0.as_secs(), oidc.session_absolute.0.as_secs()),
        (30 * 60, 12 * 3600)
    );
    assert_eq!(&oidc.session_key.0, b"0123456789abcdef0123456789abcdef");
    assert!(oidc.forward_access_token);
    assert_eq!(oidc.session_claims, ["sub", "name", "email"]);
    let jwt = c.jwt.as_ref().unwrap();
    let issuer = &jwt.issuers[0];
    assert_eq!(issuer.issuer, "https://idp.example.com");
    assert_eq!(issuer.audiences, ["api"]);
    assert_eq!(issuer.jwks_url.as_ref().unwrap().0, "https://idp.example.com/jwks");
    assert!(issuer.jwks_file.is_none());
    let algs: Vec<_> = issuer.algorithms.iter().map(|a| a.0).collect();
    assert_eq!(algs, [jsonwebtoken::Algorithm::ES256, jsonwebtoken::Algorithm::RS256]);
    assert_eq!(issuer.leeway.0.as_secs(), 30);
    assert_eq!(issuer.dpop, jwt::DpopMode::Optional);
    let routes: Vec<&str> = c.routes.iter().map(|r| r.matcher.get_ref().text.as_str()).collect();
    assert_eq!(routes, ["POST /api/signup", "GET /api/items", "/api/**"]);
    let pow = c.pow.as_ref().unwrap();
    assert_eq!(pow.secret.0, "example-pow-secret-of-at-least-32-chars");
    assert_eq!(pow.algorithm, super::pow::PowAlgorithm::Pbkdf2Sha256);
    assert_eq!((pow.expires.0.as_secs(), pow.clearance.0.as_secs()), (300, 600));
    let levels: Vec<(f64, u32)> = pow.levels.iter().map(|l| (l.above_rps, l.cost)).collect();
    assert_eq!(levels, [(0.0, 5000), (50.0, 20000), (200.0, 100000)]);
    let t = c.captcha.as_ref().unwrap().turnstile.as_ref().unwrap();
    assert_eq!(t.secret.0, "example-turnstile-secret");
    assert_eq!(
        t.verify_url.as_ref().unwrap().0,
        "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    );
    assert!(c.captcha.as_ref().unwrap().hcaptcha.is_none());
    let o = c.openapi.as_ref().unwrap();
    assert_eq!(o.spec, dir.path().join("openapi.yaml"));
    assert_eq!(o.unknown_query, crate::config::openapi::UnknownQuery::Reject);
    assert_eq!(o.response_validation, crate::config::openapi::ResponseValidation::Off);
    assert_eq!(plan.spec.as_ref().unwrap().operations.len(), 1);
}

#[test]
fn the_whole_example_parses_with_every_route_key() {
    let dir = base();
    let c = Config::parse(EXAMPLE, "example.toml", dir.path())
        .unwrap_or_else(|e| panic!("the reference example must load:\n{e}"));
    let signup = &c.routes[0];
    assert!(signup.auth.is_none());
    assert_eq!(signup.challenge.as_deref(), Some("pow"));
    assert_eq!(signup.rate_limit, ["per_ip", "signup"]);
    let api = &c.routes[2];
    assert_eq!(api.auth.0, [AuthMethod::Session, AuthMethod::Jwt, AuthMethod::ApiKey]);
    assert_eq!(api.scopes, ["items:read"]);
    assert_eq!(api.csrf, Some(true));
    assert_eq!(api.rate_limit, ["per_ip"]);
}
