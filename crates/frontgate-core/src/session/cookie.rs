//! frontgate's own cookies: reading them from a request, writing them, and removing them from
//! the Cookie header before it is forwarded (the upstream never sees a session id or a proof
//! of work clearance).
//!
//! `__Host-` cookies are Secure, Path=/ and have no Domain: the browser keeps them to this exact
//! origin over https, so a sibling subdomain cannot set or overwrite them.

use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};

/// The name prefix of proof-of-work clearance cookies (`checks::pow::clearance`), which are
/// the gateway's too and never forwarded.
pub const CLEARANCE_PREFIX: &str = "fg-clear-";

/// The session cookie: an opaque random id.
pub const SESSION: &str = "__Host-frontgate";
/// The admin console's session cookie (set by the admin listener on the same host name, and so
/// sent by browsers to the gateway's port too: cookies are not kept apart by port).
pub const CONSOLE: &str = "frontgate_console";
/// Binds an admin console OIDC sign-in to the browser that started it (set by the admin
/// listener, so it reaches the gateway's port too, like [`CONSOLE`]).
pub const CONSOLE_LOGIN: &str = "frontgate_console_login";
/// The name prefix of the login cookies (`oidc::login_cookie`): each holds one started login,
/// sealed, named by a hash prefix of its `state`; it binds the login to the browser that started
/// it (login CSRF defence). Starts with [`SESSION`], so [`strip_ours`] removes it too.
pub const LOGIN_PREFIX: &str = "__Host-frontgate-login-";

/// The value of cookie `name`; with duplicates (a cookie-tossing attempt), none.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for v in headers.get_all(COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for pair in s.split(';') {
            let Some((k, val)) = pair.trim().split_once('=') else { continue };
            if k == name {
                if found.is_some() {
                    return None;
                }
                found = Some(val.trim());
            }
        }
    }
    found
}

/// `Set-Cookie` for a cookie that lives as long as the browser session, or `max_age` seconds.
pub fn set(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}"))
        .unwrap_or(HeaderValue::from_static(
            "__Host-frontgate=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
        ))
}

/// `Set-Cookie` that removes a cookie.
pub fn clear(name: &str) -> HeaderValue {
    set(name, "", Some(0))
}

/// Whether the request carries any of frontgate's cookies (a quick scan; [`strip_ours`] parses).
pub fn carries_ours(headers: &HeaderMap) -> bool {
    let has = |v: &[u8], name: &str| v.windows(name.len()).any(|w| w == name.as_bytes());
    headers.get_all(COOKIE).iter().any(|v| {
        let v = v.as_bytes();
        has(v, SESSION) || has(v, CLEARANCE_PREFIX) || has(v, CONSOLE)
    })
}

/// Whether a cookie name is one of frontgate's: the session and login cookies, a clearance, or
/// the admin console's session and sign-in cookies.
fn is_ours(name: &str) -> bool {
    // `SESSION` is a prefix of `LOGIN_PREFIX`: login cookies are covered by the first test.
    name.starts_with(SESSION)
        || name == CONSOLE
        || name == CONSOLE_LOGIN
        || name.strip_prefix("__Host-").unwrap_or(name).starts_with(CLEARANCE_PREFIX)
}

/// Removes frontgate's cookies from the Cookie header(s), keeping the app's own.
pub fn strip_ours(headers: &mut HeaderMap) {
    if !carries_ours(headers) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(k, _)| k).trim();
            !is_ours(name)
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn reads_one_cookie_and_refuses_duplicates() {
        assert_eq!(get(&headers(&["a=1; __Host-frontgate=xyz; b=2"]), SESSION), Some("xyz"));
        assert_eq!(get(&headers(&["a=1", "__Host-frontgate=xyz"]), SESSION), Some("xyz"));
        assert_eq!(get(&headers(&["__Host-frontgate=a; __Host-frontgate=b"]), SESSION), None);
        let login = format!("{LOGIN_PREFIX}0123456789abcdef");
        assert_eq!(get(&headers(&[&format!("{login}=a")]), SESSION), None);
        assert_eq!(get(&headers(&[&format!("{login}=a")]), &login), Some("a"));
    }

    #[test]
    fn strips_only_our_cookies() {
        let mut h = headers(&["a=1; __Host-frontgate=xyz", "__Host-frontgate-login=q; b=2"]);
        strip_ours(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1; b=2"]);
        // The login cookies, one per started login.
        let mut h = headers(&[
            "__Host-frontgate-login-0123456789abcdef=1.x; a=1",
            "__Host-frontgate-login-fedcba9876543210=2.y",
        ]);
        assert!(carries_ours(&h));
        strip_ours(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1"]);
        let mut h = headers(&["__Host-frontgate=xyz"]);
        strip_ours(&mut h);
        assert!(h.get(COOKIE).is_none());
        let mut h = headers(&["app=1"]);
        strip_ours(&mut h);
        assert_eq!(h.get(COOKIE).unwrap(), "app=1");
        // Proof-of-work clearances too, plain or __Host-; a name merely containing ours stays.
        let mut h = headers(&["fg-clear-0a1b=t; app=1; __Host-fg-clear-99=u", "my-fg-clear-x=2"]);
        strip_ours(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["app=1; my-fg-clear-x=2"]);

        // The admin console's session, which browsers send to the gateway's port as well.
        let mut h = headers(&["frontgate_console=s3cr3t; app=1", "my_frontgate_console=3"]);
        strip_ours(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["app=1; my_frontgate_console=3"]);
        // And its OIDC sign-in binder.
        let mut h = headers(&["frontgate_console_login=b1nd; app=1"]);
        strip_ours(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["app=1"]);
    }

    #[test]
    fn set_cookie_has_every_attribute() {
        let v = set(SESSION, "abc", None);
        assert_eq!(v, "__Host-frontgate=abc; Path=/; Secure; HttpOnly; SameSite=Lax");
        assert!(clear(CONSOLE).to_str().unwrap().ends_with("Max-Age=0"));
    }
}
