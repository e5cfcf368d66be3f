//! Header hygiene at the trust boundary: what the backend may believe, and what the world sees.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::config::ServerConfig;
use crate::exchange::Client;
use crate::problem::{Code, Problem};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Where an API key travels (`[api_keys]`); removed where no key was checked.
pub const X_API_KEY: &str = "x-api-key";
pub static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");
static X_ASPNET_VERSION: HeaderName = HeaderName::from_static("x-aspnet-version");
static X_ASPNETMVC_VERSION: HeaderName = HeaderName::from_static("x-aspnetmvc-version");

/// Whether a request header must go before forwarding, whoever sent it: hop-by-hop headers,
/// our identity headers, X-Real-IP (which the gateway never sets), and `Expect` (the gateway
/// answers `100-continue` itself and sends the body whatever the backend would have said).
fn always_stripped(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "proxy-connection" | "proxy-authorization" | "te" | "trailer"
            | "transfer-encoding" | "upgrade" | "x-real-ip" | "expect"
            // Path overrides some frameworks honour (Symfony, Zend, IIS URL Rewrite): a path
            // the route table never admitted.
            | "x-original-url" | "x-rewrite-url"
    ) || name.starts_with("x-frontgate-")
}

/// Forwarding headers believed only from a trusted proxy: the ones the gateway sets, and
/// the other spellings of a client address, scheme or prefix that backend libraries read
/// (npm `request-ip` takes `X-Client-IP` first, Rack honours `X-Forwarded-Ssl`).
/// One `matches!` (a switch on length, then bytes) rather than a scan of [`CLIENT_CLAIMS`]:
/// this runs for every field of every forwarded request.
fn forwarding_header(name: &str) -> bool {
    matches!(
        name,
        "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "x-forwarded-port"
            | "x-client-ip"
            | "true-client-ip"
            | "x-cluster-client-ip"
            | "cf-connecting-ip"
            | "fastly-client-ip"
            | "x-forwarded"
            | "forwarded-for"
            | "x-forwarded-ssl"
            | "x-forwarded-scheme"
            | "front-end-https"
            | "x-url-scheme"
            | "x-forwarded-prefix"
            | "x-forwarded-server"
            | "x-original-forwarded-for"
            | "x-host"
            | "x-original-host"
    )
}

/// Claims about the client's address, scheme or path prefix that the gateway never sets: kept
/// only from a trusted proxy.
const CLIENT_CLAIMS: [&str; 16] = [
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-forwarded",
    "forwarded-for",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "front-end-https",
    "x-url-scheme",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-original-forwarded-for",
    "x-host",
    "x-original-host",
];

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including any the Connection header names.
/// Upgrade headers are kept when `keep_upgrade` (a WebSocket handshake being passed through).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Every Connection field counts (RFC 9110 §7.6.1: a list split over several lines is one
    // list); reading only the first would forward what a later line nominates.
    let named: Vec<HeaderName> =
        connection_nominees(headers).filter(|n| !(keep_upgrade && n == header::UPGRADE)).collect();
    for n in named {
        headers.remove(n);
    }
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::PROXY_AUTHORIZATION);
    headers.remove(header::TE);
    headers.remove(header::TRAILER);
    headers.remove(header::TRANSFER_ENCODING);
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// Works out the client's address: the peer, or, when the peer is a trusted proxy, the nearest
/// untrusted address in X-Forwarded-For (right to left).
pub fn client_ip(server: &ServerConfig, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if server.trusted_proxies.is_empty() || !server.is_trusted_proxy(peer) {
        return peer;
    }
    let mut candidate = peer;
    let hops: Vec<IpAddr> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| parse_ip(s.trim()))
        .collect();
    for ip in hops.into_iter().rev() {
        candidate = ip;
        if !server.is_trusted_proxy(ip) {
            break;
        }
    }
    candidate
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// All lines of a list header as one comma-joined value. A chain split over several lines means
/// the same as one line (RFC 9110 §5.3); reading only the first would drop the hops a trusted
/// proxy appended on a line of its own and keep the client's claim instead.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let parts: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Whether a header is one a client must never be able to set on the way to the backend, in
/// any spelling a backend could read as ours (`x_frontgate_subject` is `X-Frontgate-Subject`
/// to CGI-style servers).
fn is_identity_header(name: &HeaderName) -> bool {
    is_identity_name(name.as_str())
}

fn is_identity_name(name: &str) -> bool {
    const PREFIX: &[u8] = b"x-frontgate-";
    name.len() >= PREFIX.len()
        && name.as_bytes()[..PREFIX.len()]
            .iter()
            .zip(PREFIX)
            .all(|(&a, &b)| a == b || (a == b'_' && b == b'-'))
}

/// The names every `Connection` field of `headers` nominates, in order.
fn connection_nominees(headers: &HeaderMap) -> impl Iterator<Item = HeaderName> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
}

/// Fields frameworks read to replace the request's method (Express's method-override, Rails,
/// Laravel, ASP.NET, Spring's HiddenHttpMethodFilter variants).
const METHOD_OVERRIDE: [&str; 3] = ["x-http-method-override", "x-method-override", "x-http-method"];

/// What [`screen_request_head`] found that the route decides on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Screened {
    /// The request carries a method-override field.
    pub method_override: bool,
}

/// The first look at a request head, before routing: refuses what two HTTP implementations
/// could read differently, and drops what a backend could read as a field the gateway did not
/// check. One pass over the fields; the common request (one Host, no odd names) changes
/// nothing.
///
/// - Two `Host` fields, or a `Host` that disagrees with the target's authority (HTTP/2
///   `:authority`, an absolute-form HTTP/1.1 target): 400 `ambiguous_request`. Which one a
///   backend believes differs between servers.
/// - Two `Content-Type` fields: 400 `ambiguous_request` (the gateway would validate the body
///   as one type and the backend parse it as the other).
/// - Field names with `_`: removed unless `[server] underscores_in_headers`; identity fields
///   (`x_frontgate_*`, any mix of `-` and `_`) always. Each removal is counted.
pub fn screen_request_head(
    head: &mut http::request::Parts,
    allow_underscores: bool,
) -> Result<Screened, Problem> {
    let mut hosts = 0u32;
    let mut content_types = 0u32;
    let mut cookies = 0u32;
    let mut underscores = false;
    let mut screened = Screened::default();
    for (name, _) in head.headers.iter() {
        if *name == header::HOST {
            hosts += 1;
        } else if *name == header::CONTENT_TYPE {
            content_types += 1;
        } else if *name == header::COOKIE {
            cookies += 1;
        } else {
            let n = name.as_str();
            underscores |= n.as_bytes().contains(&b'_');
            screened.method_override |= n.starts_with("x-") && METHOD_OVERRIDE.contains(&n);
        }
    }
    if hosts > 1 {
        return Err(Problem::new(Code::AmbiguousRequest)
            .with_detail("The request has more than one Host field."));
    }
    if content_types > 1 {
        return Err(Problem::new(Code::AmbiguousRequest)
            .with_detail("The request has more than one Content-Type field."));
    }
    if hosts == 1
        && let Some(authority) = head.uri.authority()
        && let Some(host) = head.headers.get(header::HOST)
        && !host.as_bytes().eq_ignore_ascii_case(authority.as_str().as_bytes())
    {
        return Err(Problem::new(Code::AmbiguousRequest).with_detail("The Host field and the request's authority (:authority, or an absolute target) disagree."));
    }
    if cookies > 1 {
        // HTTP/2 clients send each cookie as a field of its own (RFC 9113 §8.2.3); HTTP/1.1
        // servers read one Cookie line and may keep only the first or join with ", ". The
        // gateway reads them all, so the backend gets them as the one line they mean.
        let joined: Vec<u8> = head
            .headers
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect::<Vec<_>>()
            .join(&b"; "[..]);
        if let Ok(v) = HeaderValue::from_bytes(&joined) {
            head.headers.insert(header::COOKIE, v);
        }
    }
    if underscores {
        let doomed: Vec<HeaderName> = head
            .headers
            .keys()
            .filter(|k| {
                k.as_str().contains('_')
                    && (!allow_underscores
                        || is_identity_header(k)
                        || folds_to_a_field_the_gateway_reads(k.as_str()))
            })
            .cloned()
            .collect();
        for name in doomed {
            let dropped = head.headers.get_all(&name).iter().count() as u64;
            head.headers.remove(&name);
            metrics::counter!(crate::observe::FIELDS_DROPPED, "reason" => "underscore")
                .increment(dropped);
        }
    }
    Ok(screened)
}

/// Whether a name with `_` becomes, once a CGI-style backend folds `_` into `-`, a field the
/// gateway checks, sets or removes: dropped even with `underscores_in_headers` on, or it would
/// reach the backend as the field the gateway decided on (`X_API_KEY` beside a checked key).
fn folds_to_a_field_the_gateway_reads(name: &str) -> bool {
    let folded = name.replace('_', "-");
    let folded = folded.as_str();
    always_stripped(folded)
        || forwarding_header(folded)
        || METHOD_OVERRIDE.contains(&folded)
        || matches!(
            folded,
            "x-request-id"
                | "authorization"
                | "x-api-key"
                | "dpop"
                | "cookie"
                | "host"
                | "content-length"
                | "content-type"
                | "origin"
                | "sec-fetch-site"
                | "sec-fetch-mode"
        )
}

/// Removes method-override fields (`X-HTTP-Method-Override`, `X-Method-Override`, `X-HTTP-Method`): a route that does not opt in
/// (`method_override = true`) never lets a backend framework turn its allowed method into
/// another one the route table never allowed.
pub fn remove_method_override(headers: &mut HeaderMap) {
    for name in METHOD_OVERRIDE {
        headers.remove(name);
    }
}

/// Removes every `X-Frontgate-*` header a client sent (the embedded layer's case; the server
/// does this in [`prepare_request_headers`]).
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> =
        headers.keys().filter(|n| is_identity_header(n)).cloned().collect();
    for n in names {
        headers.remove(&n);
    }
}

/// Prepares request headers for the backend: removes everything a client could spoof (our
/// identity headers always; forwarding headers unless the peer is a trusted proxy), then sets
/// the forwarding headers from what the gateway saw. The `Host` sent is always the backend's,
/// which the caller adds.
///
/// In the common case (an untrusted peer whose request carries none of these fields) nothing
/// is removed, and the forwarding fields are pushed to `added`, to be written after the
/// client's own without editing its header map; otherwise they are set in `headers`.
pub fn prepare_request_headers(
    headers: &mut HeaderMap,
    server: &ServerConfig,
    client: &Client,
    request_id: &HeaderValue,
    host: Option<&HeaderValue>,
    keep_upgrade: bool,
    added: &mut Vec<(HeaderName, HeaderValue)>,
) {
    let trusted = !server.trusted_proxies.is_empty() && server.is_trusted_proxy(client.peer.ip());
    // Fast path: one pass over the names, and per-connection forwarding values already made.
    if let (false, false, Some(cache)) = (trusted, keep_upgrade, client.forwarding.as_ref())
        && cache.https == client.https
        && !headers.keys().any(|k| {
            always_stripped(k.as_str()) || forwarding_header(k.as_str()) || k == X_REQUEST_ID
        })
    {
        added.push((X_FORWARDED_FOR.clone(), cache.xff.clone()));
        added.push((
            X_FORWARDED_PROTO.clone(),
            HeaderValue::from_static(if client.https { "https" } else { "http" }),
        ));
        if let Some(h) = host {
            added.push((X_FORWARDED_HOST.clone(), h.clone()));
        }
        if let Some(f) = cache.forwarded(host) {
            added.push((FORWARDED.clone(), f));
        }
        added.push((X_REQUEST_ID.clone(), request_id.clone()));
        return;
    }
    remove_hop_by_hop(headers, keep_upgrade);
    // The gateway's own server answered any `100-continue` when the body was first read.
    headers.remove(header::EXPECT);
    if headers.keys().any(is_identity_header) {
        let names: Vec<HeaderName> =
            headers.keys().filter(|n| is_identity_header(n)).cloned().collect();
        for n in names {
            headers.remove(n);
        }
    }
    let proto = if client.https { "https" } else { "http" };
    let prior_xff = if trusted { joined(headers, &X_FORWARDED_FOR) } else { None };
    if !trusted {
        headers.remove(&FORWARDED);
        headers.remove(&X_FORWARDED_PROTO);
        headers.remove(&X_FORWARDED_HOST);
        headers.remove(&X_FORWARDED_PORT);
        for name in CLIENT_CLAIMS {
            headers.remove(name);
        }
    }
    headers.remove("x-original-url");
    headers.remove("x-rewrite-url");
    headers.remove(&X_REAL_IP);
    let peer = client.peer.ip().to_string();
    let xff = match prior_xff.as_deref() {
        Some(prior) if !prior.is_empty() => format!("{prior}, {peer}"),
        _ => peer.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(&X_FORWARDED_FOR, v);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(
            &X_FORWARDED_PROTO,
            HeaderValue::from_static(if client.https { "https" } else { "http" }),
        );
    }
    if let Some(h) = host
        && !headers.contains_key(&X_FORWARDED_HOST)
    {
        headers.insert(&X_FORWARDED_HOST, h.clone());
    }
    let for_node = match client.peer.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("\"[{ip}]\""),
    };
    let forwarded = crate::exchange::forwarded_element(&for_node, proto, host);
    let forwarded = match joined(headers, &FORWARDED) {
        Some(prior) if trusted => format!("{prior}, {forwarded}"),
        _ => forwarded,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert(&FORWARDED, v);
    }
    headers.insert(&X_REQUEST_ID, request_id.clone());
}

/// What fingerprints the backend.
fn fingerprint(name: &str) -> bool {
    matches!(name, "server" | "x-powered-by" | "x-aspnet-version" | "x-aspnetmvc-version")
}

/// Whether a backend's response field is kept from the client: what fingerprints the backend,
/// our identity headers, and hop-by-hop fields. The gateway's HTTP/1.1 client (`proxy::h1`)
/// leaves these out as it parses; [`clean_response_headers`] does the same for a response that
/// came another way.
pub fn hidden_response_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    always_stripped(name) || fingerprint(name)
}

/// Removes what fingerprints the backend, and hop-by-hop headers.
pub fn clean_response_headers(headers: &mut HeaderMap, keep_upgrade: bool) {
    if keep_upgrade {
        remove_hop_by_hop(headers, true);
        for name in [
            header::SERVER,
            X_POWERED_BY.clone(),
            X_ASPNET_VERSION.clone(),
            X_ASPNETMVC_VERSION.clone(),
        ] {
            headers.remove(name);
        }
        return;
    }
    // One pass finds what is there; only those names are removed (most responses have 0–2).
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| always_stripped(k.as_str()) || fingerprint(k.as_str()))
        .cloned()
        .collect();
    if doomed.is_empty() {
        return;
    }
    doomed.extend(connection_nominees(headers));
    for name in doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::ForwardingCache;
    use std::path::Path;

    fn server(trusted: &str) -> ServerConfig {
        let text = format!(
            "[upstream]\nurl = \"http://127.0.0.1:1\"\n[server]\ntls = \"off\"\ntrusted_proxies = [{trusted}]\n"
        );
        crate::config::Config::parse(&text, "t", Path::new("/")).unwrap().server
    }

    #[test]
    fn every_client_claim_is_a_forwarding_header() {
        for name in CLIENT_CLAIMS {
            assert!(forwarding_header(name), "{name}");
        }
    }

    #[test]
    fn untrusted_peers_cannot_spoof_forwarding_or_identity() {
        let s = server("");
        let client = Client {
            forwarding: None,
            peer: "198.51.100.7:5000".parse().unwrap(),
            ip: "198.51.100.7".parse().unwrap(),
            https: true,
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        h.insert("forwarded", HeaderValue::from_static("for=1.2.3.4"));
        h.insert("x-frontgate-subject", HeaderValue::from_static("admin"));
        h.insert("X-Frontgate-Key-Id", HeaderValue::from_static("k"));
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        prepare_request_headers(
            &mut h,
            &s,
            &client,
            &HeaderValue::from_static("rid"),
            Some(&HeaderValue::from_static("app.test")),
            false,
            &mut Vec::new(),
        );
        assert_eq!(h["x-forwarded-for"], "198.51.100.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["forwarded"], "for=198.51.100.7;proto=https;host=\"app.test\"");
        assert!(h.get("x-frontgate-subject").is_none() && h.get("x-frontgate-key-id").is_none());
        assert!(h.get("x-secret").is_none() && h.get("connection").is_none());
        assert_eq!(h["x-request-id"], "rid");
        assert_eq!(client_ip(&s, client.peer.ip(), &h), client.peer.ip());
    }

    #[test]
    fn a_clean_request_gets_forwarding_fields_beside_its_own() {
        let s = server("");
        let peer: std::net::SocketAddr = "198.51.100.7:5000".parse().unwrap();
        let cache = std::sync::Arc::new(ForwardingCache::new(peer.ip(), false));
        let client = Client { forwarding: Some(cache), peer, ip: peer.ip(), https: false };
        let host = HeaderValue::from_static("app.test");
        let mut h = HeaderMap::new();
        h.insert("host", host.clone());
        h.insert("accept", HeaderValue::from_static("*/*"));
        let mut added = Vec::new();
        prepare_request_headers(
            &mut h,
            &s,
            &client,
            &HeaderValue::from_static("rid"),
            Some(&host),
            false,
            &mut added,
        );
        assert_eq!(h.len(), 2, "the client's map is left as it was: {h:?}");
        let added: Vec<(&str, &str)> =
            added.iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(
            added,
            [
                ("x-forwarded-for", "198.51.100.7"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "app.test"),
                ("forwarded", "for=198.51.100.7;proto=http;host=\"app.test\""),
                ("x-request-id", "rid"),
            ]
        );
        // A field the gateway sets, sent by the client: replaced in the map, never sent twice.
        for spoofed in
            ["x-request-id", "x-forwarded-for", "forwarded", "x-frontgate-subject", "connection"]
        {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_static(spoofed), HeaderValue::from_static("spoof"));
            let mut added = Vec::new();
            prepare_request_headers(
                &mut h,
                &s,
                &client,
                &HeaderValue::from_static("rid"),
                Some(&host),
                false,
                &mut added,
            );
            assert!(added.is_empty(), "{spoofed}");
            assert!(h.get_all(spoofed).iter().all(|v| v != "spoof"), "{spoofed}: {h:?}");
            assert_eq!(h["x-request-id"], "rid");
        }
    }

    #[test]
    fn response_fingerprints_and_hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert("server", HeaderValue::from_static("nginx/1.2"));
        h.insert("x-powered-by", HeaderValue::from_static("Express"));
        h.insert("connection", HeaderValue::from_static("keep-alive, x-internal"));
        h.insert("x-internal", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        clean_response_headers(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("content-type"));
        let mut h = HeaderMap::new();
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("server", HeaderValue::from_static("x"));
        clean_response_headers(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert!(h.get("server").is_none());
    }

    #[test]
    fn trusted_proxies_extend_the_chain() {
        let s = server("\"10.0.0.0/8\"");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.1.1.1"));
        let ip = client_ip(&s, "10.0.0.2".parse().unwrap(), &h);
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        // An untrusted peer's claim is ignored.
        assert_eq!(
            client_ip(&s, "192.0.2.1".parse().unwrap(), &h),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        let client =
            Client { forwarding: None, peer: "10.0.0.2:1".parse().unwrap(), ip, https: false };
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        prepare_request_headers(
            &mut h,
            &s,
            &client,
            &HeaderValue::from_static("r"),
            None,
            false,
            &mut Vec::new(),
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.1.1.1, 10.0.0.2");
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    #[test]
    fn a_chain_over_several_lines_is_extended_whole() {
        let s = server("\"10.0.0.0/8\"");
        let client = Client {
            forwarding: None,
            peer: "10.0.0.2:1".parse().unwrap(),
            ip: "203.0.113.9".parse().unwrap(),
            https: true,
        };
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.append("forwarded", HeaderValue::from_static("for=6.6.6.6"));
        h.append("forwarded", HeaderValue::from_static("for=203.0.113.9"));
        prepare_request_headers(
            &mut h,
            &s,
            &client,
            &HeaderValue::from_static("r"),
            None,
            false,
            &mut Vec::new(),
        );
        assert_eq!(
            h.get_all("x-forwarded-for").iter().collect::<Vec<_>>(),
            ["6.6.6.6, 203.0.113.9, 10.0.0.2"]
        );
        assert_eq!(
            h.get_all("forwarded").iter().collect::<Vec<_>>(),
            ["for=6.6.6.6, for=203.0.113.9, for=10.0.0.2;proto=https"]
        );
    }
}
