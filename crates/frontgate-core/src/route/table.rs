//! The route table: `[[routes]]` compiled into one matchit router per method.
//!
//! A router per method (rather than one router with method lists) gives the expected fallback:
//! with `GET /api/items` and `/api/**` declared, a POST to /api/items matches `/api/**`. A path
//! that matches for other methods only is a 405 with `Allow`; a path no route matches is a 404.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use crate::config::{Config, RouteTarget};
use crate::openapi::Spec;

/// What a matched route says about requests, compiled from its config.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    /// The route's `match` text: the `route` label in metrics and logs.
    pub name: Arc<str>,
    pub target: RouteTarget,
    pub max_body_bytes: u64,
    pub timeout: Option<Duration>,
    pub cors: bool,
    /// Content-Security-Policy override; `Some(None)` removes it.
    pub csp: Option<Option<HeaderValue>>,
    /// Response headers to set (`None` removes).
    pub headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// The `[[routes]]` entry this came from (its policy: auth, scopes, ...); `None` for the
    /// implicit front-end route and for OpenAPI operations no `[[routes]]` entry names.
    pub config_index: Option<usize>,
    /// The OpenAPI operation this route is (index into the compiled spec's operations).
    pub operation: Option<usize>,
    /// Whether method-override headers reach the backend (`method_override`).
    pub method_override: bool,
}

pub enum Lookup<'a> {
    Found(usize, &'a RouteEntry),
    MethodNotAllowed(HeaderValue),
    NotFound,
}

pub struct RouteTable {
    routers: Vec<(Method, MethodRouter)>,
    entries: Vec<RouteEntry>,
}

/// Methods an any-method route accepts. TRACE and CONNECT are never routed implicitly.
const ANY_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

struct Pending {
    index: usize,
    methods: Vec<Method>,
    any: bool,
    path: String,
    prefix: bool,
    implicit: bool,
}

/// Route errors: (index into `[[routes]]` if the error belongs to one, message).
pub type RouteErrors = Vec<(Option<usize>, String)>;

impl RouteTable {
    /// The table for `config`'s routes and `spec`'s operations. Built once per load, by the
    /// plan (`crate::plan`).
    pub fn build(config: &Config, spec: Option<&Spec>) -> Result<RouteTable, RouteErrors> {
        let mut errors = Vec::new();
        let mut entries = Vec::new();
        let mut pending = Vec::new();
        let default_body = config.server.max_body_bytes.0;
        for (index, route) in config.routes.iter().enumerate() {
            let m = route.matcher.get_ref();
            if m.path == "/.frontgate" || m.path.starts_with("/.frontgate/") {
                errors.push((
                    Some(index),
                    format!(
                        "route `{}`: paths under /.frontgate/ are reserved for the gateway",
                        m.text
                    ),
                ));
            }
            let mut methods = m.methods.clone();
            if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
                methods.push(Method::HEAD);
            }
            entries.push(RouteEntry {
                operation: None,
                method_override: route.method_override,
                config_index: Some(index),
                name: Arc::from(m.text.as_str()),
                target: route.to,
                max_body_bytes: route.max_body_bytes.map_or(default_body, |s| s.0),
                timeout: route.timeout(),
                cors: route.cors.unwrap_or(config.cors.is_some()),
                csp: route.csp.as_ref().map(|v| {
                    (!v.is_empty()).then(|| {
                        HeaderValue::from_str(v)
                            .unwrap_or(HeaderValue::from_static("default-src 'none'"))
                    })
                }),
                headers: route
                    .headers
                    .iter()
                    .filter_map(|(k, v)| {
                        let name = HeaderName::from_bytes(k.as_bytes()).ok()?;
                        let value =
                            if v.is_empty() { None } else { Some(HeaderValue::from_str(v).ok()?) };
                        Some((name, value))
                    })
                    .collect(),
            });
            pending.push(Pending {
                index,
                any: methods.is_empty(),
                methods,
                path: m.path.clone(),
                prefix: m.prefix,
                implicit: false,
            });
        }
        // OpenAPI operations are routes too; a `[[routes]]` entry on the same path lends them its
        // policy and routes nothing itself (see docs/openapi.md).
        if let Some(spec) = spec {
            let mut merged = vec![false; config.routes.len()];
            for (op_index, op) in spec.operations.iter().enumerate() {
                let route = merged_route(config, op);
                let base = route.map_or(&entries[0..0], |i| std::slice::from_ref(&entries[i]));
                for (i, r) in config.routes.iter().enumerate() {
                    merged[i] |= on_operation_path(r, op);
                }
                let index = entries.len();
                let mut entry = match base.first() {
                    Some(e) => e.clone(),
                    None => RouteEntry {
                        operation: None,
                        method_override: false,
                        config_index: None,
                        name: Arc::from(""),
                        target: RouteTarget::Upstream,
                        max_body_bytes: default_body,
                        timeout: None,
                        cors: config.cors.is_some(),
                        csp: None,
                        headers: Vec::new(),
                    },
                };
                entry.name = Arc::from(op.name.as_str());
                entry.operation = Some(op_index);
                entry.config_index = route;
                entry.target = RouteTarget::Upstream;
                entries.push(entry);
                let mut methods = vec![op.method.clone()];
                if op.method == Method::GET
                    && !spec
                        .operations
                        .iter()
                        .any(|o| o.method == Method::HEAD && o.pattern == op.pattern)
                {
                    methods.push(Method::HEAD);
                }
                pending.push(Pending {
                    index,
                    any: false,
                    methods,
                    path: op.pattern.clone(),
                    prefix: false,
                    implicit: false,
                });
            }
            for (i, was_merged) in merged.into_iter().enumerate() {
                if !was_merged {
                    continue;
                }
                let route = &config.routes[i];
                let m = route.matcher.get_ref();
                for method in &m.methods {
                    let declared = spec
                        .operations
                        .iter()
                        .any(|o| o.method == *method && same_template(&o.pattern, &m.path));
                    if !declared {
                        errors.push((Some(i), format!(
                            "route `{}`: the OpenAPI spec does not declare {method} {}; declare it in the spec or remove it from the route",
                            m.text, m.path
                        )));
                    }
                }
                // The route lends its policy to the operations; it routes nothing itself.
                if let Some(p) = pending.iter_mut().find(|p| p.index == i) {
                    p.methods.clear();
                    p.any = false;
                }
            }
        }
        // The front-end is the implicit catch-all for GET/HEAD when no route serves it explicitly.
        if config.frontend.is_some() && !config.routes.iter().any(|r| r.to == RouteTarget::Frontend)
        {
            let index = entries.len();
            entries.push(RouteEntry {
                operation: None,
                method_override: false,
                config_index: None,
                name: Arc::from("frontend"),
                target: RouteTarget::Frontend,
                max_body_bytes: 0,
                timeout: None,
                cors: false,
                csp: None,
                headers: Vec::new(),
            });
            pending.push(Pending {
                index,
                methods: vec![Method::GET, Method::HEAD],
                any: false,
                path: String::new(),
                prefix: true,
                implicit: true,
            });
        }

        let mut all_methods: Vec<Method> = ANY_METHODS.to_vec();
        for p in &pending {
            for m in &p.methods {
                if !all_methods.contains(m) {
                    all_methods.push(m.clone());
                }
            }
        }
        let mut routers: Vec<(Method, MethodRouter)> =
            all_methods.iter().map(|m| (m.clone(), MethodRouter::default())).collect();
        // Most specific first: exact paths before prefixes, named methods before any-method,
        // the implicit front-end route last. A later route yields a pattern an earlier, more
        // specific one already holds; two routes of the same rank on one pattern are a mistake.
        let rank = |p: &Pending| (p.implicit, p.prefix, p.any);
        let mut order: Vec<&Pending> = pending.iter().collect();
        order.sort_by_key(|p| rank(p));
        let mut owner: std::collections::HashMap<(Method, String), usize> =
            std::collections::HashMap::new();
        for p in order {
            let methods: Vec<Method> = if p.any { ANY_METHODS.to_vec() } else { p.methods.clone() };
            for method in methods {
                let Some((_, router)) = routers.iter_mut().find(|(m, _)| *m == method) else {
                    continue;
                };
                for pattern in patterns(&p.path, p.prefix) {
                    let key = (method.clone(), pattern.clone());
                    if let Some(&other) = owner.get(&key) {
                        let other_rank = pending.iter().find(|q| q.index == other).map(rank);
                        if other_rank.is_some_and(|r| r < rank(p)) {
                            continue;
                        }
                        let other_name = entries[other].name.clone();
                        // GET implies HEAD: one duplicate is one error, not one per method.
                        if errors.iter().any(|(i, _)| *i == Some(p.index)) {
                            continue;
                        }
                        errors.push((Some(p.index), format!(
                            "route `{}` duplicates route `{other_name}` for {method}: remove one of them",
                            entries[p.index].name
                        )));
                        continue;
                    }
                    match router.insert(pattern.clone(), p.index) {
                        Ok(()) => {
                            owner.insert(key, p.index);
                        }
                        Err(e) => {
                            if p.implicit || errors.iter().any(|(i, _)| *i == Some(p.index)) {
                                continue;
                            }
                            errors.push((
                                Some(p.index),
                                format!(
                                    "route `{}` conflicts with another route: {e}",
                                    entries[p.index].name
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if errors.is_empty() { Ok(RouteTable { routers, entries }) } else { Err(errors) }
    }

    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    /// Finds the route for a normalized path.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        if let Some((_, router)) = self.routers.iter().find(|(m, _)| m == method)
            && let Some(index) = router.at(path)
        {
            return Lookup::Found(index, &self.entries[index]);
        }
        let mut allow = BTreeSet::new();
        for (m, router) in &self.routers {
            if m != method && router.at(path).is_some() {
                allow.insert(m.as_str());
            }
        }
        if allow.is_empty() {
            return Lookup::NotFound;
        }
        let joined = allow.into_iter().collect::<Vec<_>>().join(", ");
        Lookup::MethodNotAllowed(
            HeaderValue::from_str(&joined).unwrap_or(HeaderValue::from_static("GET")),
        )
    }
}

/// The `[[routes]]` entry whose policy applies to an OpenAPI operation: an exact (not `/**`)
/// route on the same path template (parameter names aside) whose methods include the
/// operation's, or that names no methods.
pub fn merged_route(config: &Config, op: &crate::openapi::Operation) -> Option<usize> {
    config.routes.iter().position(|r| {
        let m = r.matcher.get_ref();
        on_operation_path(r, op) && (m.methods.is_empty() || m.methods.contains(&op.method))
    })
}

/// Whether `route` is an upstream entry on `op`'s exact path (whatever its methods): such an
/// entry routes nothing itself, and every method it names must be one the document declares.
pub fn on_operation_path(
    route: &crate::config::RouteConfig,
    op: &crate::openapi::Operation,
) -> bool {
    let m = route.matcher.get_ref();
    !m.prefix && route.to == RouteTarget::Upstream && same_template(&op.pattern, &m.path)
}

/// Whether `route`'s template matches some of `pattern`'s paths without being the same
/// template: each of its parameters stands where `pattern` has a literal segment, and its
/// literal segments are `pattern`'s.
pub fn pattern_covers(route: &str, pattern: &str) -> bool {
    let is_param = |s: &str| s.starts_with('{') && s.ends_with('}');
    let (r, p): (Vec<&str>, Vec<&str>) = (route.split('/').collect(), pattern.split('/').collect());
    r.len() == p.len()
        && !same_template(route, pattern)
        && r.iter().zip(&p).all(|(x, y)| is_param(x) || (!is_param(y) && x == y))
}

/// Whether two path templates are the same, whatever their parameters are called.
fn same_template(a: &str, b: &str) -> bool {
    let a: Vec<&str> = a.split('/').collect();
    let b: Vec<&str> = b.split('/').collect();
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            let px = x.starts_with('{') && x.ends_with('}');
            let py = y.starts_with('{') && y.ends_with('}');
            (px && py) || (!px && !py && x == y)
        })
}

/// The routes of one method. matchit refuses a catch-all beside a parameter at the same depth
/// (`GET /files/{name}/meta` with `/files/**`); such a catch-all goes into a fallback router,
/// consulted only when the primary one has no match, so the narrower route still wins.
#[derive(Default)]
struct MethodRouter {
    primary: matchit::Router<usize>,
    fallback: matchit::Router<usize>,
}

impl MethodRouter {
    fn insert(&mut self, pattern: String, index: usize) -> Result<(), matchit::InsertError> {
        match self.primary.insert(pattern.clone(), index) {
            Err(e) if pattern.ends_with("{*rest}") => {
                self.fallback.insert(pattern, index).map_err(|_| e)
            }
            other => other,
        }
    }

    fn at(&self, path: &str) -> Option<usize> {
        self.primary.at(path).or_else(|_| self.fallback.at(path)).ok().map(|m| *m.value)
    }
}

/// matchit patterns for a route path: a prefix route matches itself, `P/` and everything below.
fn patterns(path: &str, prefix: bool) -> Vec<String> {
    if !prefix {
        return vec![if path.is_empty() { "/".into() } else { path.to_owned() }];
    }
    if path.is_empty() {
        return vec!["/".into(), "/{*rest}".into()];
    }
    vec![path.to_owned(), format!("{path}/"), format!("{path}/{{*rest}}")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn table(routes: &str) -> RouteTable {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:1\"\n{routes}");
        let config =
            Config::parse(&text, "t.toml", Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
        RouteTable::build(&config, None).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn found(t: &RouteTable, m: Method, p: &str) -> Option<String> {
        match t.lookup(&m, p) {
            Lookup::Found(_, e) => Some(e.name.to_string()),
            _ => None,
        }
    }

    #[test]
    fn specific_method_routes_fall_back_to_prefix_routes() {
        let t = table("[[routes]]\nmatch = \"GET /api/items\"\n[[routes]]\nmatch = \"/api/**\"\n");
        assert_eq!(found(&t, Method::GET, "/api/items").as_deref(), Some("GET /api/items"));
        assert_eq!(found(&t, Method::HEAD, "/api/items").as_deref(), Some("GET /api/items"));
        assert_eq!(found(&t, Method::POST, "/api/items").as_deref(), Some("/api/**"));
        assert_eq!(found(&t, Method::POST, "/api").as_deref(), Some("/api/**"));
        assert_eq!(found(&t, Method::POST, "/api/").as_deref(), Some("/api/**"));
        assert_eq!(found(&t, Method::DELETE, "/api/a/b/c").as_deref(), Some("/api/**"));
        assert!(found(&t, Method::GET, "/apix").is_none());
        assert!(found(&t, Method::TRACE, "/api/items").is_none());
    }

    #[test]
    fn exact_routes_win_over_a_prefix_route_on_its_own_path() {
        let t = table(
            "[[routes]]\nmatch = \"/api/**\"\n[[routes]]\nmatch = \"POST /api\"\nmax_body_bytes = 10\n",
        );
        assert_eq!(found(&t, Method::POST, "/api").as_deref(), Some("POST /api"));
        assert_eq!(found(&t, Method::GET, "/api").as_deref(), Some("/api/**"));
        assert_eq!(found(&t, Method::POST, "/api/x").as_deref(), Some("/api/**"));
    }

    #[test]
    fn a_prefix_route_beside_a_parameter_at_the_same_depth() {
        let t = table(
            "[[routes]]\nmatch = \"GET /files/{name}/meta\"\n[[routes]]\nmatch = \"/files/**\"\n[[routes]]\nmatch = \"GET /api/{id}\"\n[[routes]]\nmatch = \"/api/**\"\n",
        );
        assert_eq!(
            found(&t, Method::GET, "/files/a/meta").as_deref(),
            Some("GET /files/{name}/meta")
        );
        assert_eq!(found(&t, Method::GET, "/files/a").as_deref(), Some("/files/**"));
        assert_eq!(found(&t, Method::GET, "/files/a/b/c").as_deref(), Some("/files/**"));
        assert_eq!(found(&t, Method::GET, "/api/7").as_deref(), Some("GET /api/{id}"));
        assert_eq!(found(&t, Method::POST, "/api/7").as_deref(), Some("/api/**"));
        assert_eq!(found(&t, Method::GET, "/api/7/x").as_deref(), Some("/api/**"));
        assert_eq!(found(&t, Method::GET, "/api").as_deref(), Some("/api/**"));
    }

    #[test]
    fn wrong_method_is_405_with_allow_and_unknown_is_404() {
        let t = table("[[routes]]\nmatch = \"GET,POST /api/items/{id}\"\n");
        match t.lookup(&Method::DELETE, "/api/items/7") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, "GET, HEAD, POST"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(t.lookup(&Method::GET, "/api/items"), Lookup::NotFound));
        assert!(matches!(t.lookup(&Method::GET, "/api/items/7/x"), Lookup::NotFound));
    }
}
