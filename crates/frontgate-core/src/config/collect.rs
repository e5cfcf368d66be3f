//! Turning TOML text into a [`Config`] while finding every bad value, not just the first.
//!
//! serde stops at the first error. So when the whole document does not deserialize, each
//! top-level key, each `[[routes]]` entry and each key inside them is deserialized alone (with
//! the original spans, so errors keep their file positions), and every error found is reported.
//! What did deserialize is assembled into a partial config, so that the checks that span keys
//! (route conflicts, say) still run on it.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeString, DeTable, DeValue, Deserializer, Error};

use super::Config;

pub(super) enum Outcome {
    Ok(Config),
    /// The text is not TOML: one error, and nothing else can be checked.
    Syntax(Error),
    /// Bad values: every one found (in file order), a config made of the parts that had none,
    /// and the top-level keys that were (wholly or partly) left out of it.
    Values {
        errors: Vec<Error>,
        partial: Option<Config>,
        broken: BTreeSet<String>,
    },
}

type Entry<'i> = (Spanned<DeString<'i>>, Spanned<DeValue<'i>>);

fn from_entries<'i>(
    span: Range<usize>,
    entries: impl IntoIterator<Item = Entry<'i>>,
) -> Result<Config, Error> {
    let mut table = DeTable::new();
    for (k, v) in entries {
        table.insert(k, v);
    }
    Config::deserialize(Deserializer::from(Spanned::new(span, table)))
}

pub(super) fn deserialize(text: &str) -> Outcome {
    let first = match DeTable::parse(text) {
        Err(e) => return Outcome::Syntax(e),
        Ok(root) => match Config::deserialize(Deserializer::from(root)) {
            Ok(c) => return Outcome::Ok(c),
            Err(e) => e,
        },
    };
    // Parsed once already, so this cannot fail; stay total anyway.
    let Ok(root) = DeTable::parse(text) else { return Outcome::Syntax(first) };
    let span = root.span();
    let mut errors = vec![first];
    let mut broken = BTreeSet::new();
    let mut keep: Vec<Entry<'_>> = Vec::new();
    for (key, value) in root.get_ref().iter() {
        let alone = |v| from_entries(span.clone(), [(key.clone(), v)]).err();
        let Some(e) = alone(value.clone()) else {
            keep.push((key.clone(), value.clone()));
            continue;
        };
        errors.push(e);
        broken.insert(key.get_ref().to_string());
        match value.get_ref() {
            DeValue::Table(t) => each_key(value.span(), t, &alone, &mut errors),
            DeValue::Array(items) if key.get_ref() == "routes" => {
                let in_routes = |item| {
                    let mut a = DeArray::new();
                    a.push(item);
                    alone(Spanned::new(value.span(), DeValue::Array(a)))
                };
                let mut good = DeArray::new();
                for item in items.iter() {
                    match in_routes(item.clone()) {
                        None => good.push(item.clone()),
                        Some(e) => {
                            errors.push(e);
                            if let DeValue::Table(t) = item.get_ref() {
                                each_key(item.span(), t, &in_routes, &mut errors);
                            }
                        }
                    }
                }
                keep.push((key.clone(), Spanned::new(value.span(), DeValue::Array(good))));
            }
            _ => {}
        }
    }
    // File order; the same error is found at several levels, so keep one of each.
    let place = |e: &Error| e.span().map_or((1, 0, 0), |s| (0, s.start, s.end));
    errors.sort_by(|a, b| place(a).cmp(&place(b)).then_with(|| a.message().cmp(b.message())));
    errors.dedup_by(|a, b| a.span() == b.span() && a.message() == b.message());
    let partial = from_entries(span, keep).ok();
    Outcome::Values { errors, partial, broken }
}

/// Tries each key of `table` alone (through `attempt`, which puts it back where it was). Missing
/// required keys are not errors here: the attempt leaves out the table's other keys.
fn each_key<'i>(
    span: Range<usize>,
    table: &DeTable<'i>,
    attempt: &dyn Fn(Spanned<DeValue<'i>>) -> Option<Error>,
    errors: &mut Vec<Error>,
) {
    for (k, v) in table.iter() {
        let mut one = DeTable::new();
        one.insert(k.clone(), v.clone());
        if let Some(e) = attempt(Spanned::new(span.clone(), DeValue::Table(one)))
            && !e.message().starts_with("missing field")
        {
            errors.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::ConfigError;

    fn errors(text: &str) -> Vec<ConfigError> {
        crate::plan::Plan::parse(text, "t.toml", Path::new("/base"))
            .expect_err("config should be refused")
            .0
    }

    fn at(errors: &[ConfigError], line: usize, needle: &str) -> bool {
        errors.iter().any(|e| e.line == Some(line) && e.message.contains(needle))
    }

    #[test]
    fn every_bad_value_is_reported_not_just_the_first() {
        let text = r#"[upstream]
url = "${FRONTGATE_TEST_UNSET_COLLECT_XYZ}"
connect_timeout = "soon"

[server]
lisen = "127.0.0.1:1"

[cors]
allow_origins = ["null"]

[[routes]]
match = "POST /a"
[[routes]]
match = "POST /a"
[[routes]]
match = "get /b"
timeout = "later"

[bogus]
x = 1
"#;
        let e = errors(text);
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        let shown = shown.join("\n");
        assert!(at(&e, 2, "FRONTGATE_TEST_UNSET_COLLECT_XYZ"), "{shown}");
        assert!(at(&e, 3, "not a duration"), "{shown}");
        assert!(at(&e, 6, "unknown key `lisen`"), "{shown}");
        assert!(at(&e, 9, "null"), "{shown}");
        assert!(at(&e, 14, "duplicates route `POST /a`"), "{shown}");
        assert!(at(&e, 16, "not an HTTP method"), "{shown}");
        assert!(at(&e, 17, "not a duration"), "{shown}");
        assert!(at(&e, 19, "unknown key `bogus`"), "{shown}");
        assert_eq!(e.len(), 8, "each error once:\n{shown}");
        // Value errors come in file order, then the rules that span keys.
        let lines: Vec<usize> = e.iter().map(|e| e.line.unwrap()).collect();
        assert_eq!(lines, [2, 3, 6, 9, 16, 17, 19, 14], "{shown}");
        // A section with errors is not reported missing too.
        assert!(!shown.contains("no [upstream]") && !shown.contains("nothing to serve"), "{shown}");
    }

    #[test]
    fn one_error_is_reported_once() {
        let e = errors("[upstream]\nurl = \"http://127.0.0.1:3000\"\ntimeout = \"never\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(3));
        // A missing required key is reported when nothing else is wrong with its table.
        let e = errors("[upstream]\ntimeout = \"5s\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("missing field `url`"), "{e:?}");
        // ...and not invented when another key of the table is what is wrong.
        let e = errors("[upstream]\nurl = \"http://a:1\"\n[[routes]]\ntimeout = \"x\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("not a duration") && e[0].line == Some(4), "{e:?}");
    }

    #[test]
    fn syntax_errors_stop_at_the_first() {
        let e = errors(
            "[server]\nlisten = \"127.0.0.1:1\"\n[upstream\nurl = \"http://a:1\"\nx = = 1\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(3), "{e:?}");
    }
}
