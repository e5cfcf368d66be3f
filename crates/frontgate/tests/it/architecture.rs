//! The layering of the library's modules (docs/architecture.md, "Layers"), held to the code.
//!
//! Every top-level module of `src/` sits in one layer, and its code may name (`crate::x`)
//! only modules in layers below its own: the module graph has no cycle, and a feature cannot
//! quietly start depending on the pipeline or the server. A new module must be placed here.
//! Unit tests (`#[cfg(test)]` modules and `*tests.rs` files) may reach up: a config test may
//! load a whole plan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. Modules in one layer do not import each other.
const LAYERS: &[(&str, &[&str])] = &[
    ("wire format", &["wire", "body", "multipart"]),
    ("problems", &["problem"]),
    ("config (pure parse)", &["config"]),
    ("config's peers", &["observe", "store", "openapi"]),
    ("routes", &["route"]),
    ("plan", &["plan"]),
    ("request-path vocabulary", &["exchange"]),
    ("process state", &["state"]),
    ("stores' users", &["keys", "session"]),
    ("checks", &["checks"]),
    ("sessions feature", &["oidc"]),
    ("targets", &["proxy", "frontend"]),
    ("response fields", &["response_fields"]),
    ("pipeline", &["pipeline"]),
    ("embedding and admin", &["layer", "admin"]),
    ("server", &["server"]),
    ("demo", &["demo"]),
];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
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
        if line.trim_start() == "#[cfg(test)]" {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push((n + 1, code.to_owned()));
    }
    out
}

/// `(file:line, from, to)` for every `crate::to` named in `from`'s product code.
fn imports() -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src()).unwrap().to_string_lossy().into_owned();
        let from = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        if from == "lib" || from == "main" {
            continue;
        }
        for (n, code) in product_code(&file) {
            let mut rest = code.as_str();
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let to: String =
                    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if rest.starts_with('{') {
                    // `use crate::{a, b}` would hide its modules from this scan.
                    out.push((format!("src/{rel}:{n}"), from.clone(), "{".into()));
                } else if !to.is_empty() && to != from {
                    out.push((format!("src/{rel}:{n}"), from.clone(), to));
                }
            }
        }
    }
    out
}

fn layer_of() -> BTreeMap<&'static str, usize> {
    LAYERS.iter().enumerate().flat_map(|(i, (_, ms))| ms.iter().map(move |m| (*m, i))).collect()
}

#[test]
fn every_module_is_placed_in_exactly_one_layer() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let placed: Vec<&str> = LAYERS.iter().flat_map(|(_, ms)| ms.iter().copied()).collect();
    let placed_set: BTreeSet<&str> = placed.iter().copied().collect();
    assert_eq!(placed.len(), placed_set.len(), "a module is in two layers");
    assert_eq!(declared, placed_set, "lib.rs's modules and the layers differ");
}

#[test]
fn imports_only_point_down() {
    let layer = layer_of();
    let mut wrong = Vec::new();
    for (at, from, to) in imports() {
        if to == "{" {
            wrong.push(format!(
                "{at}: write `use crate::module::...` once per module, not `crate::{{...}}`"
            ));
            continue;
        }
        let (Some(&f), Some(&t)) = (layer.get(from.as_str()), layer.get(to.as_str())) else {
            continue; // `crate::` followed by a macro or an item of lib.rs
        };
        if t >= f {
            wrong.push(format!(
                "{at}: `{from}` ({}) names `{to}` ({}), which is not below it",
                LAYERS[f].0, LAYERS[t].0
            ));
        }
    }
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_the_imports_it_judges() {
    // The scan must find the edges the layering allows, or the test above could not fail.
    let edges: BTreeSet<(String, String)> =
        imports().into_iter().map(|(_, from, to)| (from, to)).collect();
    for (from, to) in [("pipeline", "checks"), ("checks", "exchange"), ("route", "config")] {
        assert!(edges.contains(&(from.into(), to.into())), "no {from} -> {to} edge found");
    }
}
