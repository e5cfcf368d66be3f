//! `return_to`: where the browser goes after login. Only a path on the gateway's own origin is
//! accepted, so the login endpoint cannot be used as an open redirect (`//evil.com`,
//! `/\evil.com`, `https://evil.com`, their percent-encoded forms, control characters).

/// The accepted target: a path (with query) on the public origin, or `None`.
pub fn validate(raw: &str, public_origin: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > 2048 {
        return None;
    }
    // An absolute URL on our own origin is turned into its path.
    let path = match raw.strip_prefix(public_origin) {
        Some(rest) if rest.starts_with('/') => rest,
        Some(_) => return None,
        None => raw,
    };
    if !is_safe_path(path) {
        return None;
    }
    // The path again after decoding (twice): servers and browsers decode before resolving.
    let path_part = path.split(['?', '#']).next().unwrap_or("");
    let once = percent_encoding::percent_decode_str(path_part).decode_utf8().ok()?;
    let twice = percent_encoding::percent_decode_str(&once).decode_utf8().ok()?;
    for decoded in [&*once, &*twice] {
        if decoded.starts_with("//")
            || decoded.contains('\\')
            || decoded.chars().any(char::is_control)
        {
            return None;
        }
        // Our own endpoints are never a destination (no login/logout loops).
        if decoded.starts_with("/.frontgate/") || decoded == "/.frontgate" {
            return None;
        }
    }
    Some(path.to_owned())
}

fn is_safe_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control() || c.is_whitespace())
        && !p.split(['?', '#']).next().unwrap_or("").contains(':') // no scheme-like segment before the query
}

#[cfg(test)]
mod tests {
    use super::validate;

    const ORIGIN: &str = "https://app.example.com";

    #[test]
    fn same_origin_paths_are_kept() {
        assert_eq!(validate("/", ORIGIN).as_deref(), Some("/"));
        assert_eq!(validate("/app/items?id=3#x", ORIGIN).as_deref(), Some("/app/items?id=3#x"));
        assert_eq!(validate("https://app.example.com/a?b=c", ORIGIN).as_deref(), Some("/a?b=c"));
        assert_eq!(validate("/search?q=a%20b", ORIGIN).as_deref(), Some("/search?q=a%20b"));
    }

    #[test]
    fn open_redirects_are_refused() {
        let attacks = [
            "//evil.com",
            "//evil.com/path",
            "/\\evil.com",
            "\\\\evil.com",
            "/%2Fevil.com",
            "/%2fevil.com",
            "/%5Cevil.com",
            "/%5cevil.com",
            "/%252Fevil.com",
            "https://evil.com",
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "http://app.example.com/",
            "javascript:alert(1)",
            "/javascript:alert(1)",
            "evil.com",
            "/\tevil",
            "/%09/evil.com",
            "/ /evil.com",
            "/\n/evil.com",
            "/.frontgate/logout",
            "/%2Efrontgate/login",
            "",
        ];
        for a in attacks {
            assert_eq!(validate(a, ORIGIN), None, "{a:?}");
        }
        assert_eq!(validate(&format!("/{}", "a".repeat(3000)), ORIGIN), None);
    }
}
