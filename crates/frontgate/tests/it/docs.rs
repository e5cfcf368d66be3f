//! The docs hold to the code: where a document lists codes, keys or guarantees, a test here
//! reads the list and compares it with what the code has, so the two cannot drift apart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use frontgate::problem::Code;

fn doc(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rows of the first Markdown table after the heading `heading`: each row's cells.
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let start =
        text.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no heading {heading}"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_owned()).collect())
        .collect()
}

#[test]
fn problems_md_lists_every_code_with_its_status_and_no_other() {
    let text = doc("problems.md");
    let documented: BTreeMap<String, String> = table_after(&text, "## Codes")
        .into_iter()
        .map(|cells| (cells[0].trim_matches('`').to_owned(), cells[1].clone()))
        .collect();
    let mut problems = Vec::new();
    for code in Code::ALL {
        match documented.get(code.as_str()) {
            None => problems.push(format!("`{}` is not in docs/problems.md", code.as_str())),
            // upstream_error carries the backend's status.
            Some(status)
                if *code != Code::UpstreamError
                    && *status != code.status().as_u16().to_string() =>
            {
                problems.push(format!(
                    "`{}`: the docs say {status}, the code answers {}",
                    code.as_str(),
                    code.status().as_u16()
                ))
            }
            Some(_) => {}
        }
    }
    for name in documented.keys() {
        if !Code::ALL.iter().any(|c| c.as_str() == name) {
            problems.push(format!("docs/problems.md lists `{name}`, which the code never answers"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And no code is called reserved while the code emits it.
    assert!(
        !text.contains("Reserved for the authentication checks"),
        "docs/problems.md calls a code reserved"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Markdown files a user reads: the README and docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

#[test]
fn docs_link_only_to_files_in_the_repository_that_exist() {
    let mut problems = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            // Design notes kept outside the repository (spelt in parts so this file cites none).
            let outside = [concat!("DESIGN", ".md"), concat!("../", "shared")];
            if outside.iter().any(|o| line.contains(o)) {
                problems.push(format!(
                    "{}:{}: cites a file outside the repository",
                    file.display(),
                    i + 1
                ));
            }
            for link in line.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
                if link.starts_with("http") || link.starts_with('#') || link.starts_with("mailto:")
                {
                    continue;
                }
                let target = link.split('#').next().unwrap_or(link);
                if !target.is_empty() && !file.parent().unwrap().join(target).exists() {
                    problems.push(format!(
                        "{}:{}: link to {link}, which does not exist",
                        file.display(),
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The keys the config parser accepts in a section: it lists them when it meets an unknown one.
fn accepted_keys(section_header: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{section_header}\nzz_unknown_key = 1\n");
    let err = frontgate::plan::Plan::parse(&text, "probe.toml", dir.path())
        .expect_err("an unknown key is an error")
        .to_string();
    let line = err
        .lines()
        .find(|l| l.contains("zz_unknown_key"))
        .unwrap_or_else(|| panic!("{section_header}: {err}"));
    let list =
        line.split("expected one of ").nth(1).unwrap_or_else(|| panic!("{section_header}: {line}"));
    let list = list.split(". ").next().unwrap_or(list);
    list.split(", ").map(|k| k.trim().trim_matches('`').to_owned()).collect()
}

/// The first cells of every `| Key | ...` table under `heading` (up to the next `## `).
fn documented_keys(text: &str, heading: &str) -> Vec<String> {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("docs/config.md has no heading {heading}"));
    let body = &text[start + heading.len() + 2..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut keys = Vec::new();
    let mut in_key_table = false;
    for line in body.lines() {
        if !line.starts_with('|') {
            in_key_table = false;
            continue;
        }
        let first = line.trim_matches('|').split(" | ").next().unwrap_or("").trim().to_owned();
        if first == "Key" {
            in_key_table = true;
        } else if in_key_table && !first.starts_with("---") {
            keys.push(first.trim_matches('`').to_owned());
        }
    }
    keys
}

#[test]
fn config_md_documents_every_key_the_parser_accepts_and_no_other() {
    let text = doc("config.md");
    // (heading in docs/config.md, section headers whose keys it documents, keys that are
    // sub-sections documented under their own heading).
    let sections: [(&str, &[&str], &[&str]); 20] = [
        (
            "## Top level",
            &[""],
            &[
                "server",
                "upstream",
                "frontend",
                "admin",
                "cors",
                "jwt",
                "openapi",
                "log",
                "store",
                "shared",
                "api_keys",
                "rate_limits",
                "routes",
                "pow",
                "captcha",
                "oidc",
            ],
        ),
        ("## `[server]`", &["[server]"], &[]),
        ("## `[upstream]`", &["[upstream]"], &[]),
        ("## `[frontend]`", &["[frontend]"], &[]),
        ("## `[admin]`", &["[admin]"], &["oidc"]),
        ("## `[admin.oidc]`", &["[admin.oidc]"], &[]),
        ("## `[cors]`", &["[cors]"], &[]),
        ("## `[store]`", &["[store]"], &[]),
        ("## `[shared]`", &["[shared]"], &[]),
        ("## `[api_keys]`", &["[api_keys]"], &["self_service"]),
        ("## `[api_keys.self_service]`", &["[api_keys.self_service]"], &[]),
        ("## `[openapi]`", &["[openapi]"], &[]),
        (
            "## `[jwt]` and `[[jwt.issuers]]`",
            &["[jwt]", "[[jwt.issuers]]", "[[jwt.issuers]]\n[jwt.issuers.introspection]"],
            &["issuers"],
        ),
        ("## `[oidc]`", &["[oidc]"], &[]),
        ("## `[log]`", &["[log]"], &[]),
        ("## `[rate_limits.NAME]`", &["[rate_limits.x]"], &[]),
        ("## `[pow]`", &["[pow]"], &[]),
        ("## `[captcha.<provider>]`", &["[captcha.turnstile]"], &[]),
        ("## `[[routes]]`", &["[[routes]]"], &[]),
        // The three providers share one table.
        ("## `[captcha.<provider>]`", &["[captcha.hcaptcha]", "[captcha.recaptcha]"], &[]),
    ];
    let mut problems = Vec::new();
    for (heading, headers, sub_sections) in sections {
        let documented = documented_keys(&text, heading);
        let mut accepted: Vec<String> = headers
            .iter()
            .flat_map(|h| accepted_keys(h))
            .filter(|k| !sub_sections.contains(&k.as_str()))
            .collect();
        accepted.sort();
        accepted.dedup();
        for key in &accepted {
            if !documented.contains(key) {
                problems.push(format!("{heading}: `{key}` is accepted but not documented"));
            }
        }
        if headers.len() == 1 || heading.contains("jwt") {
            for key in &documented {
                if !accepted.contains(key) && !sub_sections.contains(&key.as_str()) {
                    problems.push(format!(
                        "{heading}: `{key}` is documented but the parser refuses it"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every field docs/config.md says expands `${NAME}` does: with the variable unset, the parser
/// names it. (A field that took `${NAME}` literally would fail some other way, or not at all.)
#[test]
fn config_md_lists_fields_that_expand_environment_variables() {
    let text = doc("config.md");
    let start = text.find("- **Environment variables**").expect("the environment-variables rule");
    let fields: Vec<String> = text[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("  - `"))
        .flat_map(|l| {
            l.split(", ")
                .map(|f| f.trim().trim_start_matches("- ").trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(fields.len() >= 15, "{fields:?}");
    let var = "FRONTGATE_DOCS_TEST_SURELY_UNSET";
    let mut problems = Vec::new();
    for field in &fields {
        let (section, key) = field.rsplit_once(' ').unwrap();
        let section = section.replace("<provider>", "turnstile");
        let (section, key) = match key.split_once('.') {
            Some((table, inner)) => (format!("{section}\n[jwt.issuers.{table}]"), inner),
            None => (section, key),
        };
        let toml = format!("{section}\n{key} = \"${{{var}}}\"\n");
        let dir = tempfile::tempdir().unwrap();
        let err = frontgate::plan::Plan::parse(&toml, "probe.toml", dir.path())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        if !err.contains(&format!("environment variable `{var}` is not set")) {
            problems.push(format!("{field}: no expansion ({})", err.lines().next().unwrap_or("")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
