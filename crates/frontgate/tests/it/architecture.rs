//! The layering of the two crates' modules (docs/architecture.md, "Layers"), held to the code.
//!
//! frontgate-core (config, plan, checks, admission, the layer) sits below frontgate (the
//! gateway: listeners, forwarding, admin, CLI); cargo keeps the core from naming the gateway.
//! Within each crate, every top-level module of `src/` sits in one layer, and its code may name
//! (`crate::x`) only modules in layers below its own: the module graph has no cycle, and a
//! feature cannot quietly start depending on admission or the server. A new module must be
//! placed here. Unit tests (`#[cfg(test)]` modules and `*tests.rs` files) may reach up: a
//! config test may load a whole plan.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const CORE: &str = "frontgate-core";
const GATEWAY: &str = "frontgate";

/// Bottom to top: frontgate-core's layers, then frontgate's. Modules in one layer do not import
/// each other. The gateway's code names core modules through its re-exports (`crate::config`),
/// which are all below its own.
const LAYERS: &[(&str, &str, &[&str])] = &[
    (CORE, "wire format", &["wire", "body", "multipart"]),
    (CORE, "problems", &["problem"]),
    (CORE, "config (pure parse)", &["config"]),
    (CORE, "config's peers", &["observe", "store", "openapi"]),
    (CORE, "routes", &["route"]),
    (CORE, "plan", &["plan"]),
    (CORE, "request-path vocabulary", &["exchange"]),
    (CORE, "request heads", &["headers"]),
    (CORE, "process state", &["state"]),
    (CORE, "stores' users", &["keys", "session"]),
    (CORE, "checks", &["checks"]),
    (CORE, "sessions feature", &["oidc"]),
    (CORE, "response fields", &["response_fields"]),
    (CORE, "admission", &["admission"]),
    (CORE, "embedding", &["layer"]),
    (GATEWAY, "exporter and CLI", &["observe", "keys_cli"]),
    (GATEWAY, "targets", &["proxy", "frontend"]),
    (GATEWAY, "pipeline", &["pipeline"]),
    (GATEWAY, "admin", &["admin"]),
    (GATEWAY, "server", &["server"]),
    (GATEWAY, "demo", &["demo"]),
];

fn src(krate: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(krate).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The product code of a file: comments dropped, and nothing from its unit-test module on.
fn product_code(path: &Path) -> Vec<(usize, String)> {
    if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with("tests.rs")) {
        return Vec::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_t = line.trim_start();
        if line_t == "#[cfg(test)]" || line_t.starts_with("#[cfg(all(test,") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push((n + 1, code.to_owned()));
    }
    out
}

/// `(file:line, crate, from, to)` for every `crate::to` named in `from`'s product code.
fn imports() -> Vec<(String, &'static str, String, String)> {
    let mut out = Vec::new();
    for krate in [CORE, GATEWAY] {
        let mut files = Vec::new();
        rust_files(&src(krate), &mut files);
        for file in files {
            let rel = file.strip_prefix(src(krate)).unwrap().to_string_lossy().into_owned();
            let from = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
            if from == "lib" || from == "main" {
                continue;
            }
            for (n, code) in product_code(&file) {
                let mut rest = code.as_str();
                while let Some(i) = rest.find("crate::") {
                    rest = &rest[i + "crate::".len()..];
                    let to: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let at = format!("crates/{krate}/src/{rel}:{n}");
                    if rest.starts_with('{') {
                        // `use crate::{a, b}` would hide its modules from this scan.
                        out.push((at, krate, from.clone(), "{".into()));
                    } else if !to.is_empty() && to != from {
                        out.push((at, krate, from.clone(), to));
                    }
                }
            }
        }
    }
    out
}

/// The layer of `module` as code in `krate` names it: the crate's own module, else (in the
/// gateway) the core module its re-export stands for.
fn layer_of(krate: &str, module: &str) -> Option<usize> {
    let find = |k: &str| LAYERS.iter().position(|(c, _, ms)| *c == k && ms.contains(&module));
    find(krate).or_else(|| if krate == GATEWAY { find(CORE) } else { None })
}

#[test]
fn every_module_is_placed_in_exactly_one_layer() {
    for krate in [CORE, GATEWAY] {
        let lib = std::fs::read_to_string(src(krate).join("lib.rs")).unwrap();
        let declared: BTreeSet<&str> = lib
            .lines()
            .filter_map(|l| {
                l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod "))
            })
            .map(|l| l.trim_end_matches(';'))
            .collect();
        let placed: Vec<&str> = LAYERS
            .iter()
            .filter(|(c, _, _)| *c == krate)
            .flat_map(|(_, _, ms)| ms.iter().copied())
            .collect();
        let placed_set: BTreeSet<&str> = placed.iter().copied().collect();
        assert_eq!(placed.len(), placed_set.len(), "{krate}: a module is in two layers");
        assert_eq!(declared, placed_set, "{krate}: lib.rs's modules and the layers differ");
    }
}

#[test]
fn imports_only_point_down() {
    let mut wrong = Vec::new();
    for (at, krate, from, to) in imports() {
        if to == "{" {
            wrong.push(format!(
                "{at}: write `use crate::module::...` once per module, not `crate::{{...}}`"
            ));
            continue;
        }
        let (Some(f), Some(t)) = (layer_of(krate, &from), layer_of(krate, &to)) else {
            continue; // `crate::` followed by a macro or an item of lib.rs
        };
        if t >= f {
            wrong.push(format!(
                "{at}: `{from}` ({}) names `{to}` ({}), which is not below it",
                LAYERS[f].1, LAYERS[t].1
            ));
        }
    }
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_the_imports_it_judges() {
    // The scan must find the edges the layering allows, or the test above could not fail.
    let edges: BTreeSet<(String, String)> =
        imports().into_iter().map(|(_, _, from, to)| (from, to)).collect();
    let pairs = [("admission", "checks"), ("checks", "exchange"), ("route", "config")];
    for (from, to) in pairs.into_iter().chain([("pipeline", "admission"), ("server", "pipeline")]) {
        assert!(edges.contains(&(from.into(), to.into())), "no {from} -> {to} edge found");
    }
}

/// The rows of the first table under `## {section}` in docs/architecture.md, as cells.
fn doc_table(section: &str) -> Vec<Vec<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/architecture.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc.find(&format!("\n## {section}\n")).unwrap_or_else(|| panic!("no {section}"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect())
        .collect()
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_documented_layers_are_the_enforced_ones() {
    let documented: Vec<(String, String, Vec<String>)> = doc_table("Layers")
        .iter()
        .map(|row| (row[0].clone(), row[1].clone(), backticked(&row[2])))
        .collect();
    let enforced: Vec<(String, String, Vec<String>)> = LAYERS
        .iter()
        .map(|(krate, name, ms)| {
            (krate.to_string(), name.to_string(), ms.iter().map(|m| m.to_string()).collect())
        })
        .collect();
    assert_eq!(documented, enforced, "docs/architecture.md's layers differ from LAYERS");
}

#[test]
fn the_documented_stages_are_the_pipelines_order() {
    let documented: Vec<String> =
        doc_table("Features and stages").iter().flat_map(|row| backticked(&row[0])).collect();
    let code: Vec<String> =
        frontgate::exchange::Stage::ALL.iter().map(|s| format!("Stage::{s:?}")).collect();
    assert_eq!(documented, code, "docs/architecture.md's stage table differs from Stage::ALL");
}

/// The normal (non-dev) dependencies of frontgate-core with `features`, by crate name.
fn core_dependencies(features: &[&str]) -> BTreeSet<String> {
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "tree",
        "-p",
        "frontgate-core",
        "--edges",
        "normal",
        "--prefix",
        "none",
        "--offline",
        "--locked",
        "--no-default-features",
    ]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd.output().expect("cargo tree");
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_embedder_compiles_no_sql_store_cli_or_web_framework_it_did_not_ask_for() {
    // docs/architecture.md, "Cargo features of frontgate-core".
    let bare = core_dependencies(&[]);
    for heavy in ["sqlx", "libsqlite3-sys", "clap", "axum"] {
        assert!(!bare.contains(heavy), "frontgate-core without features depends on {heavy}");
    }
    // The features bring exactly what they say, so the check above could fail.
    assert!(core_dependencies(&["sql"]).contains("sqlx"), "the sql feature brings no sqlx");
    assert!(core_dependencies(&["axum"]).contains("axum"), "the axum feature brings no axum");
}
