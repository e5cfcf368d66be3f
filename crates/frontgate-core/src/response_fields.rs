//! The fields the gateway sets on every response: the security headers (HSTS, nosniff,
//! Referrer-Policy, X-Frame-Options, Permissions-Policy, COOP, CSP), a route's own
//! `headers`, and `X-Request-Id`.
//!
//! They are worked out once per route (and per scheme, for HSTS) when the pipeline is
//! assembled, as a list with one rule per field name: set it whatever the response says, set
//! it only when the response has none, or remove it. Applied two ways, which a property test
//! holds equal:
//! - [`FieldPolicy::apply`] edits a response's header map (HTTP/2, hyper's HTTP/1, the
//!   embedded layer);
//! - the gateway's HTTP/1.1 writer (`server::h1`) asks [`FieldPolicy::keeps`] about each of
//!   the response's own fields as it writes them and then writes the policy's lines with
//!   [`FieldPolicy::write_lines`], pre-encoded: no header-map inserts on that path, which were
//!   ≈ 7 % of the instructions of a proxied request (docs/performance.md).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::headers::X_REQUEST_ID;
use crate::route::RouteEntry;

#[derive(Clone, Debug)]
enum Rule {
    /// Set to this value; any value of the response's own is dropped.
    Always(HeaderValue),
    /// Set to this value when the response has no field of this name.
    Default(HeaderValue),
    /// Never sent.
    Remove,
    /// Set to the request's id (a value per request); any value of the response's own is dropped.
    RequestId,
}

#[derive(Clone, Debug)]
struct Entry {
    name: HeaderName,
    rule: Rule,
    /// `name: value\r\n`, for `Default`.
    line: Vec<u8>,
}

/// The response fields of one route (or of no route) on one scheme.
#[derive(Clone, Debug)]
pub struct FieldPolicy {
    /// At most one entry per name: a later rule for a name replaces an earlier one.
    entries: Vec<Entry>,
    /// The lines of every `Always` entry, concatenated.
    always: Vec<u8>,
    /// `always`, then the lines of every `Default` entry: what is written, in one copy, for
    /// a response that has none of the defaulted fields (the usual case).
    always_and_defaults: Vec<u8>,
    /// A bit per `Default` entry, by index.
    default_mask: u64,
    /// A bit for the length of each entry's name (lengths from 63 up share bit 63): most of
    /// a response's own fields have a length no entry has, and need no comparing.
    name_lengths: u64,
    /// Whether an entry sets `X-Request-Id`.
    request_id: bool,
}

/// The security headers' global values.
pub struct Defaults<'a> {
    pub hsts: Option<&'a HeaderValue>,
    pub csp: &'a HeaderValue,
}

static PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
static COOP: HeaderName = HeaderName::from_static("cross-origin-opener-policy");

impl FieldPolicy {
    /// The policy for `route` (or for a request that matched none), `https` or not.
    pub fn new(defaults: &Defaults<'_>, route: Option<&RouteEntry>, https: bool) -> FieldPolicy {
        let mut rules: Vec<(HeaderName, Rule)> = Vec::new();
        let mut set = |name: &HeaderName, rule: Rule| {
            rules.retain(|(n, _)| n != name);
            rules.push((name.clone(), rule));
        };
        if let (Some(hsts), true) = (defaults.hsts, https) {
            set(&header::STRICT_TRANSPORT_SECURITY, Rule::Always(hsts.clone()));
        }
        set(&header::X_CONTENT_TYPE_OPTIONS, Rule::Always(HeaderValue::from_static("nosniff")));
        set(
            &header::REFERRER_POLICY,
            Rule::Default(HeaderValue::from_static("strict-origin-when-cross-origin")),
        );
        set(&header::X_FRAME_OPTIONS, Rule::Default(HeaderValue::from_static("DENY")));
        set(
            &PERMISSIONS_POLICY,
            Rule::Default(HeaderValue::from_static(
                "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
            )),
        );
        set(&COOP, Rule::Default(HeaderValue::from_static("same-origin")));
        match route.and_then(|r| r.csp.as_ref()) {
            Some(Some(csp)) => set(&header::CONTENT_SECURITY_POLICY, Rule::Always(csp.clone())),
            Some(None) => set(&header::CONTENT_SECURITY_POLICY, Rule::Remove),
            None => set(&header::CONTENT_SECURITY_POLICY, Rule::Default(defaults.csp.clone())),
        }
        for (name, value) in route.map_or(&[][..], |r| &r.headers) {
            set(name, value.clone().map_or(Rule::Remove, Rule::Always));
        }
        set(&X_REQUEST_ID, Rule::RequestId);
        let line = |name: &HeaderName, value: &HeaderValue| {
            [name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"].concat()
        };
        let (mut always, mut defaults, mut default_mask, mut request_id) =
            (Vec::new(), Vec::new(), 0u64, false);
        // `present` has a bit per entry; defaults come before a route's own headers.
        debug_assert!(
            rules.iter().rposition(|(_, r)| matches!(r, Rule::Default(_))).is_none_or(|i| i < 64)
        );
        let entries: Vec<Entry> = rules
            .into_iter()
            .enumerate()
            .map(|(i, (name, rule))| {
                let line = match &rule {
                    Rule::Always(v) => {
                        always.extend_from_slice(&line(&name, v));
                        Vec::new()
                    }
                    Rule::Default(v) => {
                        default_mask |= 1 << i;
                        let l = line(&name, v);
                        defaults.extend_from_slice(&l);
                        l
                    }
                    Rule::RequestId => {
                        request_id = true;
                        Vec::new()
                    }
                    Rule::Remove => Vec::new(),
                };
                Entry { name, rule, line }
            })
            .collect();
        let always_and_defaults = [&always[..], &defaults[..]].concat();
        let name_lengths = entries.iter().fold(0, |bits, e| bits | length_bit(&e.name));
        FieldPolicy { entries, always, always_and_defaults, default_mask, name_lengths, request_id }
    }

    /// Whether a response field named `name` is sent as the response has it (`false` when the
    /// policy sets or removes that name); marks in `present` the defaults the response has.
    pub fn keeps(&self, name: &HeaderName, present: &mut u64) -> bool {
        if self.name_lengths & length_bit(name) == 0 {
            return true;
        }
        for (i, e) in self.entries.iter().enumerate() {
            if e.name == name {
                return match e.rule {
                    Rule::Default(_) => {
                        *present |= 1 << i;
                        true
                    }
                    _ => false,
                };
            }
        }
        true
    }

    /// Writes the policy's own field lines, given the defaults `present` in the response
    /// (from [`FieldPolicy::keeps`] over each of its fields).
    pub fn write_lines(&self, present: u64, request_id: &HeaderValue, out: &mut Vec<u8>) {
        if present & self.default_mask == 0 {
            out.extend_from_slice(&self.always_and_defaults);
        } else {
            out.extend_from_slice(&self.always);
            for (i, e) in self.entries.iter().enumerate() {
                if matches!(e.rule, Rule::Default(_)) && present & (1 << i) == 0 {
                    out.extend_from_slice(&e.line);
                }
            }
        }
        if self.request_id {
            out.extend_from_slice(b"x-request-id: ");
            out.extend_from_slice(request_id.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Applies the policy to a response's header map.
    pub fn apply(&self, h: &mut HeaderMap, request_id: &HeaderValue) {
        let mut present = 0;
        for name in h.keys() {
            self.keeps(name, &mut present);
        }
        h.reserve(self.entries.len());
        for (i, e) in self.entries.iter().enumerate() {
            match &e.rule {
                Rule::Always(v) => {
                    h.insert(&e.name, v.clone());
                }
                Rule::Default(v) => {
                    if present & (1 << i) == 0 {
                        h.insert(&e.name, v.clone());
                    }
                }
                Rule::Remove => {
                    h.remove(&e.name);
                }
                Rule::RequestId => {
                    h.insert(&e.name, request_id.clone());
                }
            }
        }
    }
}

fn length_bit(name: &HeaderName) -> u64 {
    1 << name.as_str().len().min(63)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn route(
        csp: Option<Option<&'static str>>,
        headers: &[(&'static str, Option<&'static str>)],
    ) -> RouteEntry {
        RouteEntry {
            name: "GET /x".into(),
            target: crate::config::RouteTarget::Upstream,
            max_body_bytes: 1024,
            timeout: None,
            cors: false,
            csp: csp.map(|c| c.map(HeaderValue::from_static)),
            headers: headers
                .iter()
                .map(|(n, v)| (HeaderName::from_static(n), v.map(HeaderValue::from_static)))
                .collect(),
            config_index: None,
            operation: None,
            method_override: false,
        }
    }

    fn fields(lines: &[u8]) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in std::str::from_utf8(lines).unwrap().split_terminator("\r\n") {
            let (n, v) = line.split_once(": ").unwrap();
            m.entry(n.to_owned()).or_default().push(v.to_owned());
        }
        m
    }

    fn map_fields(h: &HeaderMap) -> BTreeMap<String, Vec<String>> {
        let mut out = Vec::new();
        for (n, v) in h {
            out.extend_from_slice(&[n.as_str().as_bytes(), b": ", v.as_bytes(), b"\r\n"].concat());
        }
        fields(&out)
    }

    /// What the HTTP/1.1 writer sends for `h` under `policy`.
    fn written(
        policy: &FieldPolicy,
        h: &HeaderMap,
        rid: &HeaderValue,
    ) -> BTreeMap<String, Vec<String>> {
        let mut out = Vec::new();
        let mut present = 0;
        for (n, v) in h {
            if policy.keeps(n, &mut present) {
                out.extend_from_slice(
                    &[n.as_str().as_bytes(), b": ", v.as_bytes(), b"\r\n"].concat(),
                );
            }
        }
        policy.write_lines(present, rid, &mut out);
        fields(&out)
    }

    const NAMES: &[&str] = &[
        "x-frame-options",
        "content-security-policy",
        "referrer-policy",
        "x-content-type-options",
        "strict-transport-security",
        "permissions-policy",
        "cross-origin-opener-policy",
        "x-request-id",
        "cache-control",
        "x-app",
        "set-cookie",
    ];

    fn routes() -> Vec<Option<RouteEntry>> {
        vec![
            None,
            Some(route(None, &[])),
            Some(route(
                Some(Some("default-src 'self'")),
                &[("x-frame-options", Some("SAMEORIGIN")), ("cache-control", None)],
            )),
            Some(route(
                Some(None),
                &[
                    ("referrer-policy", None),
                    ("x-app", Some("route")),
                    ("x-request-id", Some("fixed")),
                ],
            )),
        ]
    }

    #[test]
    fn names_of_a_length_no_entry_has_are_kept_without_comparing_and_the_rest_are_compared() {
        let long_a = format!("x-{}", "a".repeat(70));
        let long_b = format!("x-{}", "b".repeat(80));
        let csp = HeaderValue::from_static("default-src 'none'");
        let mut long_route = route(None, &[]);
        long_route.headers.push((HeaderName::from_bytes(long_a.as_bytes()).unwrap(), None));
        let mut candidates: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
        // Same lengths as entries, other names; other lengths; past the last length bit.
        candidates.extend(
            ["content-type", "x-frame-optionz", "referrer-polic", "date", "x-demo-upstream-hits"]
                .map(String::from),
        );
        candidates.extend([long_a.clone(), long_b]);
        for route in routes().into_iter().chain([Some(long_route)]) {
            let policy =
                FieldPolicy::new(&Defaults { hsts: None, csp: &csp }, route.as_ref(), true);
            for name in &candidates {
                let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
                // What a search of every entry says.
                let (mut expected_present, mut expected) = (0u64, true);
                if let Some(i) = policy.entries.iter().position(|e| e.name == name) {
                    expected = matches!(policy.entries[i].rule, Rule::Default(_));
                    if expected {
                        expected_present |= 1 << i;
                    }
                }
                let mut present = 0;
                assert_eq!(policy.keeps(&name, &mut present), expected, "{name}");
                assert_eq!(present, expected_present, "{name}");
            }
        }
    }

    proptest! {
        /// The writer's lines and the header-map edit give the same fields, whatever the
        /// response already has.
        #[test]
        fn the_writer_and_the_map_edit_agree(
            picks in proptest::collection::vec((0..NAMES.len(), 0..3u8), 0..10),
            which in 0..4usize,
            https: bool,
        ) {
            let hsts = HeaderValue::from_static("max-age=63072000; includeSubDomains");
            let csp = HeaderValue::from_static("default-src 'none'");
            let defaults = Defaults { hsts: Some(&hsts), csp: &csp };
            let route = routes().swap_remove(which);
            let policy = FieldPolicy::new(&defaults, route.as_ref(), https);
            let mut h = HeaderMap::new();
            for (n, v) in picks {
                h.append(HeaderName::from_static(NAMES[n]), HeaderValue::from_str(&format!("app-{v}")).unwrap());
            }
            let rid = HeaderValue::from_static("abc-1");
            let by_writer = written(&policy, &h, &rid);
            let mut edited = h.clone();
            policy.apply(&mut edited, &rid);
            prop_assert_eq!(by_writer, map_fields(&edited));
        }
    }

    #[test]
    fn defaults_yield_to_the_response_and_the_rest_do_not() {
        let hsts = HeaderValue::from_static("max-age=1");
        let csp = HeaderValue::from_static("default-src 'none'");
        let defaults = Defaults { hsts: Some(&hsts), csp: &csp };
        let policy = FieldPolicy::new(&defaults, None, true);
        let mut h = HeaderMap::new();
        h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
        h.insert("x-content-type-options", HeaderValue::from_static("sniff-away"));
        h.insert("x-request-id", HeaderValue::from_static("from-the-app"));
        policy.apply(&mut h, &HeaderValue::from_static("rid"));
        assert_eq!(h["x-frame-options"], "SAMEORIGIN");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-request-id"], "rid");
        assert_eq!(h["strict-transport-security"], "max-age=1");
        assert_eq!(h["content-security-policy"], "default-src 'none'");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
        // Plain HTTP: no HSTS.
        let mut h = HeaderMap::new();
        FieldPolicy::new(&defaults, None, false).apply(&mut h, &HeaderValue::from_static("rid"));
        assert!(!h.contains_key("strict-transport-security"));
        // A route's own headers come last: they set or remove any of them.
        let r = route(
            Some(None),
            &[("x-frame-options", None), ("referrer-policy", Some("no-referrer"))],
        );
        let mut h = HeaderMap::new();
        h.insert("content-security-policy", HeaderValue::from_static("from-the-app"));
        h.insert("referrer-policy", HeaderValue::from_static("from-the-app"));
        FieldPolicy::new(&defaults, Some(&r), true).apply(&mut h, &HeaderValue::from_static("rid"));
        assert!(!h.contains_key("content-security-policy"));
        assert!(!h.contains_key("x-frame-options"));
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
}
