//! Parse, then plan: the one step that turns a parsed [`Config`] into what the gateway runs.
//!
//! [`Config`] parsing is pure (the schema, spans and rules between keys). The plan then loads
//! what the config points at and checks what needs it: the OpenAPI document is loaded and
//! compiled, the route table is built (once per load), and the rules between routes and
//! operations run. `frontgate check`, `serve`, a reload and the embeddable layer all go
//! through [`Plan`], so what one accepts the others accept.

use std::path::Path;
use std::sync::Arc;

use crate::config::{
    AuthSetting, Config, ConfigErrors, Parsed, Reporter, RouteConfig, RouteTarget, Use,
};
use crate::openapi::{Operation, Spec};
use crate::route::table::{merged_route, pattern_covers};
use crate::route::{RouteEntry, RouteTable};

/// A config with everything it points at loaded and checked.
pub struct Plan {
    /// The parsed config.
    pub config: Config,
    /// The compiled `[openapi]` document.
    pub spec: Option<Arc<Spec>>,
    /// Every route: `[[routes]]` entries, OpenAPI operations, the implicit front-end route.
    pub table: Arc<RouteTable>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("routes", &self.table.entries().len()).finish()
    }
}

impl Plan {
    /// Reads, parses and plans a config file; relative paths resolve against its directory.
    pub fn load(path: &Path) -> Result<Plan, ConfigErrors> {
        let text = crate::config::read_file(path)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Plan::parse(&text, &path.display().to_string(), &base)
    }

    /// Parses and plans config text; `file` names it in errors, `base` resolves relative paths.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Plan, ConfigErrors> {
        Plan::from_parts(Config::parse_parts(text, file, base, Use::Gateway)?)
    }

    /// [`Plan::parse`] for the embeddable layer ([`Config::parse_embedded`]).
    pub fn parse_embedded(text: &str, file: &str, base: &Path) -> Result<Plan, ConfigErrors> {
        Plan::from_parts(Config::parse_parts(text, file, base, Use::Embedded)?)
    }

    fn from_parts(parsed: Parsed<'_>) -> Result<Plan, ConfigErrors> {
        let Parsed { config, mut rep, broken } = parsed;
        let plan = plan(config, &mut rep, &broken);
        match plan {
            Some(p) if rep.is_empty() => Ok(p),
            _ => Err(ConfigErrors(rep.into_errors())),
        }
    }

    /// Valid, but probably not what was meant: the config's own warnings, then those about
    /// routes and operations.
    pub fn warnings(&self) -> Vec<String> {
        let config = &self.config;
        let mut warnings = config.warnings();
        // A `{param}` route also matches the paths of static operations beside it
        // (`/api/items/{id}` and `/api/items/export`); each operation is a route of its own and
        // wins, so the entry's policy does not reach it.
        if let Some(spec) = self.spec.as_deref() {
            for route in config.routes.iter().filter(|r| {
                !r.matcher.get_ref().prefix && r.to == RouteTarget::Upstream && r.lends_policy()
            }) {
                let m = route.matcher.get_ref();
                for op in spec
                    .operations
                    .iter()
                    .filter(|o| m.methods.is_empty() || m.methods.contains(&o.method))
                {
                    if pattern_covers(&m.path, &op.pattern) && merged_route(config, op).is_none() {
                        warnings.push(format!(
                        "route `{}` also matches the path of OpenAPI operation {}, which is a route of its own and does not take this entry's policy; add an entry with that operation's path if it should",
                        m.text, op.name
                    ));
                    }
                }
            }
        }
        warnings
    }

    /// The OpenAPI operation a route entry is, if any.
    pub fn operation(&self, entry: &RouteEntry) -> Option<&Operation> {
        entry.operation.and_then(|i| self.spec.as_ref()?.operations.get(i))
    }

    /// The authentication a route asks for: its `[[routes]]` entry's `auth` and `scopes` when set,
    /// else (for an OpenAPI operation) what the document's `security` says. A config route can
    /// thus replace or tighten the document's requirement, but `auth = "none"` cannot remove it.
    pub fn route_policy(
        &self,
        entry: &RouteEntry,
        route: Option<&RouteConfig>,
    ) -> (AuthSetting, Vec<String>) {
        let op = self.operation(entry);
        let (mut auth, mut scopes) = match route {
            Some(r) => (r.auth.clone(), r.scopes.clone()),
            None => (AuthSetting::default(), Vec::new()),
        };
        if let Some(op) = op {
            if auth.is_none() {
                auth = AuthSetting(op.auth.clone());
            }
            if scopes.is_empty() && !auth.is_none() {
                scopes = op.scopes.clone();
            }
        }
        (auth, scopes)
    }
}

/// Loads the OpenAPI document, runs the rules that need it or the route table, and builds the
/// table. `None` when the document or the table could not be built (the errors say why).
/// What the config asks of the SQL store when this build of frontgate-core has none (its cargo
/// feature `sql` is off): an error naming the sections that need it, so a config that would run
/// without them is refused instead (`frontgate check` and the layer alike).
fn unbuilt_store(config: &Config) -> Option<String> {
    if cfg!(feature = "sql") || !config.needs_store() {
        return None;
    }
    let mut needs = Vec::new();
    if config.store.is_some() {
        needs.push("[store]");
    }
    if config.api_keys.is_some() {
        needs.push("[api_keys]");
    }
    if config.oidc.is_some() && config.shared.redis.is_none() {
        needs.push("[oidc] sessions without [shared] redis");
    }
    Some(format!(
        "{} need the SQL store, which this build leaves out: build frontgate-core with its `sql` feature",
        needs.join(", ")
    ))
}

fn plan(
    config: Config,
    rep: &mut Reporter<'_>,
    broken: &std::collections::BTreeSet<String>,
) -> Option<Plan> {
    if let Some(missing) = unbuilt_store(&config) {
        rep.at(None, missing);
    }
    let spec = load_openapi(&config, rep).map(Arc::new);
    if config.openapi.is_some() && spec.is_none() {
        return None;
    }
    let spec_ref = spec.as_deref();
    {
        let config = &config;
        let spec = spec_ref;
        if let Some(spec) = spec {
            // A prefix route never lends its policy to the operations under it: each operation
            // is a route of its own and wins over the prefix. Policy written there for them
            // would apply to nothing they serve, unless an entry on the operation's own path
            // gives it its policy explicitly.
            for route in &config.routes {
                let m = route.matcher.get_ref();
                if !m.prefix || route.to != RouteTarget::Upstream || !route.lends_policy() {
                    continue;
                }
                let covered: Vec<&str> = spec
                    .operations
                    .iter()
                    .filter(|o| m.methods.is_empty() || m.methods.contains(&o.method))
                    .filter(|o| {
                        m.path.is_empty()
                            || o.pattern == m.path
                            || o.pattern.starts_with(&format!("{}/", m.path))
                    })
                    .filter(|o| merged_route(config, o).is_none())
                    .map(|o| o.name.as_str())
                    .collect();
                if let Some(first) = covered.first() {
                    rep.at(Some(route.matcher.span()), format!(
                        "route `{}` sets policy for paths OpenAPI operations serve ({first}{}), but operations are routes of their own and take precedence, so it would not apply to them; put the policy on a route with each operation's path (it merges into the operation), or narrow this prefix to paths the document does not declare",
                        m.text,
                        if covered.len() > 1 { format!(" and {} more", covered.len() - 1) } else { String::new() }
                    ));
                }
            }
            for op in &spec.operations {
                let route = merged_route(config, op).and_then(|i| config.routes.get(i));
                if route.is_some_and(|r| !r.auth.is_none()) {
                    continue; // the route's own auth, checked above
                }
                for method in &op.auth {
                    let section = config.auth_section(*method);
                    if !section.1 && !broken.contains(section.0) {
                        rep.at(None, format!(
                            "[openapi] operation `{}` ({}): its security requires {} authentication, which needs the [{}] section",
                            op.name, op.pointer, method.as_str(), section.0
                        ));
                    }
                }
            }
        }
        for route in &config.routes {
            let span = Some(route.matcher.span());
            let text = &route.matcher.get_ref().text;
            // On an OpenAPI operation, the document's security is the auth the route's scopes add to.
            if !route.scopes.is_empty()
                && route.auth.is_none()
                && !operations_merged_into(config, spec, route).any(|op| !op.auth.is_empty())
            {
                rep.at(span.clone(), format!("route `{text}`: scopes need an auth method that carries scopes; set auth (or, on an OpenAPI operation, a security requirement in the document)"));
            }
        }
    }
    for message in self_service_scopes(&config, spec_ref) {
        rep.at(None, message);
    }
    // Route conflicts are found by building the table.
    match RouteTable::build(&config, spec_ref) {
        Ok(table) => Some(Plan { config, spec, table: Arc::new(table) }),
        Err(errors) => {
            for (route_index, message) in errors {
                let span = route_index.and_then(|i| config.routes.get(i)).map(|r| r.matcher.span());
                rep.at(span, message);
            }
            None
        }
    }
}

/// `[api_keys.self_service] scopes`: each must be a scope some route requires of an API key,
/// its `[[routes]] scopes` or its OpenAPI operation's (decided as [`Plan::route_policy`] does),
/// on a route whose auth accepts `"api_key"`; another would open nothing.
fn self_service_scopes(config: &Config, spec: Option<&Spec>) -> Vec<String> {
    use crate::config::AuthMethod;
    let Some(s) = config.api_keys.as_ref().and_then(|k| k.self_service.as_ref()) else {
        return Vec::new();
    };
    let mut required = std::collections::BTreeSet::new();
    for r in config.routes.iter().filter(|r| r.auth.accepts(AuthMethod::ApiKey)) {
        required.extend(r.scopes.iter().map(String::as_str));
    }
    for op in spec.iter().flat_map(|s| s.operations.iter()) {
        let route = merged_route(config, op).and_then(|i| config.routes.get(i));
        let accepts = match route.filter(|r| !r.auth.is_none()) {
            Some(r) => r.auth.accepts(AuthMethod::ApiKey),
            None => op.auth.contains(&AuthMethod::ApiKey),
        };
        let route_scopes = route.map(|r| r.scopes.as_slice()).unwrap_or_default();
        if accepts {
            let own = if route_scopes.is_empty() { &op.scopes[..] } else { route_scopes };
            required.extend(own.iter().map(String::as_str));
        }
    }
    s.scopes
        .iter()
        .filter(|scope| !required.contains(scope.as_str()))
        .map(|scope| format!("[api_keys.self_service] scopes: `{scope}` is not required by any route that takes API keys (a route with auth including \"api_key\" and this scope in its scopes, or an OpenAPI operation's security), so a key with it would open nothing"))
        .collect()
}

/// Loads and compiles the `[openapi]` document; its errors refuse the config, each with its
/// JSON pointer into the document.
fn load_openapi(config: &Config, rep: &mut Reporter<'_>) -> Option<Spec> {
    let o = config.openapi.as_ref()?;
    match crate::openapi::load(o) {
        Ok(spec) => Some(spec),
        Err(errors) => {
            for e in errors.iter().take(50) {
                rep.at(
                    None,
                    format!(
                        "[openapi] spec {}: {} (at {})",
                        o.spec.display(),
                        e.message,
                        e.pointer
                    ),
                );
            }
            None
        }
    }
}

/// The OpenAPI operations `route` is merged into (lends its policy to).
fn operations_merged_into<'a>(
    config: &'a Config,
    spec: Option<&'a Spec>,
    route: &'a RouteConfig,
) -> impl Iterator<Item = &'a Operation> + 'a {
    spec.into_iter().flat_map(|s| s.operations.iter()).filter(move |op| {
        merged_route(config, op)
            .and_then(|i| config.routes.get(i))
            .is_some_and(|r| std::ptr::eq(r, route))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the `sql` feature, a config that needs the SQL store is refused with the
    /// sections named (`cargo nextest run -p frontgate-core --no-default-features`); with it,
    /// the same config plans.
    #[test]
    fn a_config_that_needs_the_sql_store_plans_only_with_the_sql_feature() {
        let text = "[server]\npublic_url = \"https://app.example.com\"\n\
                    [api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\n\
                    [[routes]]\nmatch = \"GET /api/items\"\nauth = \"api_key\"\n";
        let planned = Plan::parse_embedded(text, "t.toml", Path::new("."));
        if cfg!(feature = "sql") {
            assert!(planned.is_ok(), "{:?}", planned.err());
        } else {
            let err = planned.expect_err("refused without the sql feature");
            assert!(err.to_string().contains("[api_keys] need the SQL store"), "{err}");
        }
        let fine = "[server]\npublic_url = \"https://app.example.com\"\n\
                    [[routes]]\nmatch = \"GET /api/items\"\n";
        assert!(Plan::parse_embedded(fine, "t.toml", Path::new(".")).is_ok());
    }
}
