//! `frontgate demo`: everything embedded, for a first look. It starts the demo upstream on
//! loopback, writes the demo page into the data dir, and runs the gateway in front of both with
//! every feature that needs no outside party.

pub mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::Config;

pub const PAGE_HTML: &str = include_str!("page.html");
pub const PAGE_JS: &str = include_str!("demo.js");
pub const PAGE_CSS: &str = include_str!("demo.css");
pub const FAVICON_SVG: &str = include_str!("favicon.svg");

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub listen: SocketAddr,
    pub redirect: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
}

/// Writes the demo page into `<data_dir>/demo-site`.
pub fn write_site(data_dir: &Path) -> std::io::Result<PathBuf> {
    let site = data_dir.join("demo-site");
    std::fs::create_dir_all(site.join("assets"))?;
    std::fs::write(site.join("index.html"), PAGE_HTML)?;
    std::fs::write(site.join("assets/demo.js"), PAGE_JS)?;
    std::fs::write(site.join("assets/demo.css"), PAGE_CSS)?;
    std::fs::write(site.join("assets/favicon.svg"), FAVICON_SVG)?;
    // The demo API's OpenAPI document: served to browsers and tools at /openapi.yaml, and the
    // gateway's [openapi] spec.
    std::fs::write(site.join("openapi.yaml"), upstream::OPENAPI_YAML)?;
    Ok(site)
}

/// The demo's configuration, as TOML, so it is also an example of a real config file.
pub fn config_text(opts: &DemoOptions, upstream: SocketAddr, site: &Path) -> String {
    let redirect = opts.redirect.map(|a| format!("redirect_http = \"{a}\"\n")).unwrap_or_default();
    let public = if opts.listen.port() == 0 {
        String::new()
    } else {
        format!("public_url = \"https://{}\"\n", display_host(opts.listen))
    };
    format!(
        r#"data_dir = {data_dir}

[server]
listen = "{listen}"
{public}tls = "self-signed"
{redirect}workers = 1

[upstream]
url = "http://{upstream}"
connect_timeout = "1s"
timeout = "10s"
mask_5xx = true

[frontend]
dir = {site}

[admin]
listen = "{admin}"

[cors]
allow_origins = ["http://localhost:5173"]
allow_credentials = true
allow_headers = ["content-type", "x-frontgate-csrf"]

[log]
access_log = true

# The demo API's operations are the routes; each request is validated against the document,
# and responses lose any property it does not declare.
[openapi]
spec = {spec}
response_validation = "strip"

# A [[routes]] entry on an operation's path lends it policy (here, a smaller body limit).
[[routes]]
match = "POST /api/items"
max_body_bytes = "16KiB"

# Not in the document: a plain route, to show upstream 5xx masking.
[[routes]]
match = "GET /api/crash"

[api_keys]
hash_secret = {key_secret}

# Per-key rate limit, counted after the key is verified (docs/rate-limits.md).
[rate_limits.per_key]
key = "api_key"
rate = "60/min"
burst = 20

[[routes]]
match = "GET /api/whoami"
auth = "api_key"
scopes = ["demo:read"]
rate_limit = ["per_key"]

# Bot defence: a proof of work (ALTCHA v2) before feedback is accepted. The demo page solves it
# with /.frontgate/widget.js; a client without a clearance gets 403 challenge_required with the
# challenge's URL (docs/bot-defence.md). The levels are lighter than the defaults, for a demo.
[pow]
secret = {pow_secret}
levels = [ {{ above_rps = 0, cost = 2000 }}, {{ above_rps = 5, cost = 20000 }} ]

[[routes]]
match = "POST /api/feedback"
challenge = "pow"
max_body_bytes = "4KiB"
"#,
        key_secret = toml_str(&demo_secret(&opts.data_dir, "demo-key-secret")),
        pow_secret = toml_str(&demo_secret(&opts.data_dir, "demo-pow-secret")),
        data_dir = toml_str(&opts.data_dir.display().to_string()),
        listen = opts.listen,
        admin = opts.admin,
        site = toml_str(&site.display().to_string()),
        spec = toml_str(&site.join("openapi.yaml").display().to_string()),
    )
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn display_host(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_loopback() => format!("localhost:{}", a.port()),
        a => a.to_string(),
    }
}

/// A demo secret (the API-key hash secret, the proof of work's): made once, kept in the data
/// dir so earlier demo keys and clearances stay valid across runs.
fn demo_secret(data_dir: &Path, file: &str) -> String {
    let path = data_dir.join(file);
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().len() >= 32
    {
        return s.trim().to_owned();
    }
    let secret = crate::keys::format::random_base62(43);
    let _ = std::fs::write(&path, &secret);
    secret
}

/// The key minted at the demo's start, for the banner.
static DEMO_KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Mints the demo key in the demo's store (opened and closed here; the server opens it again).
fn mint_demo_key(config: &Config) -> Result<String, String> {
    let keys = config.api_keys.as_ref().ok_or("the demo config has no [api_keys]")?;
    let services =
        std::sync::Arc::new(crate::state::Services::start(config).map_err(|e| e.to_string())?);
    let admin = crate::keys::KeyAdmin::new(keys, &services).map_err(|e| e.to_string())?;
    let req = crate::keys::NewKey {
        name: "demo".into(),
        scopes: vec!["demo:read".into()],
        expires_in: Some("1d".into()),
        ..Default::default()
    };
    let minted = services
        .block_on(async move { admin.create(req, "demo").await })
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(minted.key)
}

/// Builds the demo config: starts the upstream and writes the site first.
pub fn prepare(opts: &DemoOptions) -> Result<crate::plan::Plan, String> {
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| format!("creating {}: {e}", opts.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&opts.data_dir).map_err(|e| e.to_string())?;
    let opts = DemoOptions { data_dir, ..opts.clone() };
    let site = write_site(&opts.data_dir).map_err(|e| format!("writing the demo page: {e}"))?;
    let (upstream, _api) = upstream::spawn("127.0.0.1:0".parse().expect("static"))
        .map_err(|e| format!("starting the demo upstream: {e}"))?;
    let text = config_text(&opts, upstream, &site);
    let plan =
        crate::plan::Plan::parse(&text, "<demo>", &opts.data_dir).map_err(|e| e.to_string())?;
    let key = mint_demo_key(&plan.config).map_err(|e| format!("minting the demo API key: {e}"))?;
    let _ = DEMO_KEY.set(key);
    Ok(plan)
}

/// The demo's config as a file a user can start from: the demo page and its OpenAPI document
/// written to `data_dir` (as `demo` does), and the embedded API replaced by the address a local
/// API usually has.
pub fn printable_config(opts: &DemoOptions) -> Result<String, String> {
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| format!("creating {}: {e}", opts.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&opts.data_dir).map_err(|e| e.to_string())?;
    let opts = DemoOptions { data_dir, ..opts.clone() };
    let site = write_site(&opts.data_dir).map_err(|e| format!("writing the demo page: {e}"))?;
    let text = config_text(&opts, "127.0.0.1:3000".parse().expect("static"), &site);
    // Secrets belong in the environment, not in a file that gets copied around.
    let text: String = text
        .lines()
        .map(|line| match line.split_once(" = ") {
            Some(("hash_secret", _)) => "hash_secret = \"${FRONTGATE_HASH_SECRET}\"".to_owned(),
            Some(("secret", _)) => "secret = \"${FRONTGATE_POW_SECRET}\"".to_owned(),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(format!(
        "# frontgate demo's config (frontgate demo --print-config). The demo runs its own API; here\n\
         # [upstream] url points where yours would listen. Its page and OpenAPI document were\n\
         # written to {data}. Secrets come from the environment:\n\
         #   export FRONTGATE_HASH_SECRET=$(openssl rand -base64 32) FRONTGATE_POW_SECRET=$(openssl rand -base64 32)\n\
         # Save as frontgate.toml, then:\n\
         #   frontgate check -c frontgate.toml && frontgate serve -c frontgate.toml\n\n{text}\n",
        data = opts.data_dir.display()
    ))
}

/// The key with one character changed: what a typo looks like.
fn tamper(key: &str) -> String {
    let mut b = key.as_bytes().to_vec();
    if let Some(c) = b.get_mut(8) {
        *c = if *c == b'a' { b'b' } else { b'a' };
    }
    String::from_utf8(b).unwrap_or_default()
}

/// What the demo prints once it is listening.
pub fn banner(bound: &crate::server::Bound, config: &Config) -> String {
    let origin = if config.server.public_url.is_some() {
        config.public_origin().to_string()
    } else {
        format!("https://{}", bound.main)
    };
    let cert = crate::server::tls::self_signed_paths(&config.data_dir).0;
    let mut s = String::new();
    s.push_str("frontgate demo is running.\n\n");
    s.push_str(&format!(
        "  demo page        {origin}/   (self-signed certificate: accept it in the browser)\n"
    ));
    if let Some(r) = bound.redirect {
        s.push_str(&format!("  http redirect    http://{r}/ -> {origin}/\n"));
    }
    if let Some(a) = bound.admin {
        s.push_str(&format!("  metrics          http://{a}/metrics\n"));
    }
    s.push_str(&format!("  certificate      {}\n\n", cert.display()));
    s.push_str("Try (curl --cacert trusts the demo's own certificate):\n");
    let c = format!("curl --cacert {} ", cert.display());
    s.push_str(&format!("  {c}{origin}/api/items                      # forwarded: 200\n"));
    s.push_str(&format!("  {c}-X POST -H 'content-type: application/json' -d '{{\"name\":\"x\"}}' {origin}/api/items   # forwarded: 201 created\n"));
    s.push_str(&format!(
        "  {c}{origin}/api/admin                      # refused: 404 route_not_found (undeclared)\n"
    ));
    s.push_str(&format!(
        "  {c}-X DELETE {origin}/api/items            # refused: 405 method_not_allowed\n"
    ));
    s.push_str(&format!("  {c}'{origin}/api/items?limit=1000'         # refused: 400 validation_failed (/query/limit)\n"));
    s.push_str(&format!("  {c}-X POST -H 'content-type: application/json' -d '{{\"name\":\"x\",\"admin\":true}}' {origin}/api/items   # refused: 400 (undeclared property)\n"));
    s.push_str(&format!(
        "  {c}{origin}/openapi.yaml                   # 200: the API's OpenAPI document\n"
    ));
    s.push_str(&format!(
        "  {c}'{origin}/api/items%2F1'                # refused: 400 invalid_path (encoded slash)\n"
    ));
    s.push_str(&format!("  {c}-H 'Origin: https://evil.example' -X POST {origin}/api/items   # refused: 403 origin_denied\n"));
    s.push_str(&format!("  {c}{origin}/api/crash                      # 500 upstream_error: masked, no stack trace leaks\n"));
    s.push_str(&format!("  head -c 100000 /dev/zero | {c}-H 'content-type: application/json' --data-binary @- {origin}/api/items   # refused: 413 payload_too_large\n"));
    s.push_str(
        "\nProof of work (the demo page's \"Send feedback\" button solves it in the browser):\n",
    );
    s.push_str(&format!("  {c}-X POST -H 'content-type: application/json' -d '{{\"message\":\"hi\"}}' {origin}/api/feedback   # refused: 403 challenge_required\n"));
    s.push_str(&format!(
        "  {c}'{origin}/.frontgate/challenge?route=/api/feedback'   # 200: the challenge to solve\n"
    ));
    if let Some(key) = DEMO_KEY.get() {
        s.push_str(
            "\nAPI keys (a demo key was minted for this run; manage keys with `frontgate keys`):\n",
        );
        s.push_str(&format!("  {c}-H 'X-API-Key: {key}' {origin}/api/whoami   # forwarded: 200, with X-Frontgate-Key-Id\n"));
        s.push_str(&format!(
            "  {c}{origin}/api/whoami                      # refused: 401 unauthenticated\n"
        ));
        s.push_str(&format!("  {c}-H 'X-API-Key: {}' {origin}/api/whoami   # refused: 401 api_key_invalid (bad checksum)\n", tamper(key)));
        s.push_str(&format!(
            "  {c}'{origin}/api/whoami?api_key={key}'   # refused: 400 credentials_in_query\n"
        ));
    }
    s.push_str("\nPress Ctrl-C to stop.\n");
    s
}
