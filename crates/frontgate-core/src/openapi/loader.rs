//! Reading an OpenAPI document: YAML or JSON, with the files its `$ref`s name bundled into one
//! document. Only files beside the spec (in its directory or below) may be referenced; a
//! remote reference (`http://...`) is an error, never a fetch. Every bundled file is placed
//! under `/x-frontgate-files/<n>` and references to it are rewritten to local ones, so the
//! rest of the loader (and the schema compiler) only ever sees `#/...` references.
//!
//! Work is bounded: total bytes read, number of files, nesting depth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::SpecError;

/// The key under which referenced files are bundled into the root document.
pub const FILES_KEY: &str = "x-frontgate-files";
/// Deeper documents are refused (the YAML parser has its own budget too).
pub const MAX_DEPTH: usize = 200;
const MAX_FILES: usize = 64;

/// Loads the document at `path` with every local file reference bundled in.
pub fn load(path: &Path, max_bytes: u64) -> Result<Value, SpecError> {
    let dir = path
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).map_err(|e| {
        SpecError::new("", format!("cannot open the spec's directory {}: {e}", dir.display()))
    })?;
    let root_path = std::fs::canonicalize(path)
        .map_err(|e| SpecError::new("", format!("cannot read {}: {e}", path.display())))?;
    let mut budget = max_bytes;
    let mut root = read_document(&root_path, &mut budget)?;
    let mut bundler = Bundler { dir, files: HashMap::new(), queue: Vec::new(), budget };
    bundler.rewrite(&mut root, &root_path, None, "", 0)?;
    let mut bundled = Map::new();
    let mut i = 0;
    while i < bundler.queue.len() {
        let (file, index) = bundler.queue[i].clone();
        let mut doc = read_document(&file, &mut bundler.budget)?;
        let base = format!("/{FILES_KEY}/{index}");
        bundler.rewrite(&mut doc, &file, Some(index), &base, 0)?;
        bundled.insert(index.to_string(), doc);
        i += 1;
    }
    if !bundled.is_empty()
        && let Value::Object(m) = &mut root
    {
        m.insert(FILES_KEY.into(), Value::Object(bundled));
    }
    Ok(root)
}

/// Parses one file, by extension: `.json` as JSON, anything else as YAML (a superset).
fn read_document(path: &Path, budget: &mut u64) -> Result<Value, SpecError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| SpecError::new("", format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > *budget {
        return Err(SpecError::new(
            "",
            format!(
                "{} is too large: the spec and the files it references may total at most max_spec_bytes",
                path.display()
            ),
        ));
    }
    *budget -= meta.len();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::new("", format!("cannot read {}: {e}", path.display())))?;
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let value: Value = if is_json {
        serde_json::from_str(&text)
            .map_err(|e| SpecError::new("", format!("{}: not valid JSON: {e}", path.display())))?
    } else {
        serde_saphyr::from_str(&text).map_err(|e| {
            SpecError::new(
                "",
                format!("{}: not valid YAML: {}", path.display(), first_line(&e.to_string())),
            )
        })?
    };
    Ok(value)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

struct Bundler {
    dir: PathBuf,
    /// Canonical path → index under FILES_KEY.
    files: HashMap<PathBuf, usize>,
    queue: Vec<(PathBuf, usize)>,
    budget: u64,
}

impl Bundler {
    /// Rewrites every `$ref` in `value` (found in `file`, which is bundled as `index`, or is the
    /// root when `None`) into a reference local to the bundled document.
    fn rewrite(
        &mut self,
        value: &mut Value,
        file: &Path,
        index: Option<usize>,
        pointer: &str,
        depth: usize,
    ) -> Result<(), SpecError> {
        if depth > MAX_DEPTH {
            return Err(SpecError::new(pointer, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let target = self.target(r, file, index, pointer)?;
                    map.insert("$ref".into(), Value::String(target));
                }
                for (k, v) in map.iter_mut() {
                    if k == "$ref" {
                        continue;
                    }
                    self.rewrite(v, file, index, &format!("{pointer}/{}", escape(k)), depth + 1)?;
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.rewrite(v, file, index, &format!("{pointer}/{i}"), depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn target(
        &mut self,
        reference: &str,
        file: &Path,
        index: Option<usize>,
        pointer: &str,
    ) -> Result<String, SpecError> {
        let at = format!("{pointer}/$ref");
        let (file_part, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        if !fragment.is_empty() && !fragment.starts_with('/') {
            return Err(SpecError::new(
                &at,
                format!("`{reference}`: only JSON-pointer fragments (#/...) are supported"),
            ));
        }
        if file_part.is_empty() {
            return Ok(match index {
                None => format!("#{fragment}"),
                Some(n) => format!("#/{FILES_KEY}/{n}{fragment}"),
            });
        }
        if file_part.contains("://") || file_part.starts_with("//") || file_part.contains(':') {
            return Err(SpecError::new(
                &at,
                format!(
                    "`{reference}`: remote references are never fetched; copy the document beside the spec"
                ),
            ));
        }
        let base = file.parent().unwrap_or(&self.dir);
        let candidate = base.join(percent_decode(file_part));
        let canonical = std::fs::canonicalize(&candidate).map_err(|e| {
            SpecError::new(&at, format!("`{reference}`: cannot read {}: {e}", candidate.display()))
        })?;
        if !canonical.starts_with(&self.dir) {
            return Err(SpecError::new(
                &at,
                format!("`{reference}`: files outside the spec's directory may not be referenced"),
            ));
        }
        let n = match self.files.get(&canonical) {
            Some(&n) => n,
            None => {
                if self.files.len() >= MAX_FILES {
                    return Err(SpecError::new(
                        &at,
                        format!("more than {MAX_FILES} referenced files"),
                    ));
                }
                let n = self.files.len();
                self.files.insert(canonical.clone(), n);
                self.queue.push((canonical, n));
                n
            }
        };
        Ok(format!("#/{FILES_KEY}/{n}{fragment}"))
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub fn escape(key: &str) -> String {
    if key.contains(['~', '/']) {
        key.replace('~', "~0").replace('/', "~1")
    } else {
        key.to_owned()
    }
}
