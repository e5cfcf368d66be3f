//! A started login, held by the browser instead of the store: the nonce, PKCE verifier and
//! `return_to` are sealed (AES-256-GCM with `[oidc] session_key`, which every node shares) into a
//! `__Host-` cookie named by a hash prefix of the login's `state`, so a login start writes
//! nothing server-side and a flood of starts from many addresses cannot grow the store.
//!
//! The value is `<expires_at>.<base64url(nonce || ciphertext || tag)>`. The sealing context
//! (AES-GCM's associated data) is the full SHA-256 of the `state` and `expires_at`: a cookie
//! opens only for the state it was made for, renamed or not, and its expiry cannot be moved.
//! `expires_at` is in the clear too so a login start can tell the oldest cookies (to clear)
//! without opening them. One cookie per login lets two tabs log in at once; a start clears all
//! but the newest [`MAX_KEPT`]` - 1`, so a browser holds at most [`MAX_KEPT`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use http::header::COOKIE;
use serde::{Deserialize, Serialize};

use crate::session::cookie::LOGIN_PREFIX;
use crate::session::crypto::{self, CryptoError, Sealer};

/// How many started logins a browser keeps at once (tabs logging in at the same time). With
/// `return_to` at its longest (2 048 bytes) a login cookie is about 3 KB, so three stay under
/// the default `max_header_bytes` (16 KiB) with room for the app's own cookies.
pub const MAX_KEPT: usize = 3;

/// At most this many `Set-Cookie` clears go out with one login start (a browser holding more
/// login cookies than [`MAX_KEPT`] did not get them from us; they expire by their `Max-Age`).
const MAX_CLEARED: usize = 8;

/// Hex digits of the state's hash in the cookie name.
const NAME_HASH_LEN: usize = 16;

/// What the callback needs of a started login.
#[derive(Serialize, Deserialize)]
pub struct Pending {
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "v")]
    pub verifier: String,
    #[serde(rename = "r")]
    pub return_to: String,
}

/// Why a callback's login cookie was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No cookie for this state (another browser started it, it was used, or it was cleared).
    Missing,
    /// It does not open for this state: tampered with, made for another state, or sealed with
    /// another `session_key`.
    Invalid,
    /// It opened, but `login_timeout` has passed since the login started.
    Expired,
}

/// The cookie name of the login with this `state`.
pub fn name(state: &str) -> String {
    format!("{LOGIN_PREFIX}{}", &crypto::store_key(state)[..NAME_HASH_LEN])
}

/// The AES-GCM associated data: the state's full hash and the expiry.
fn context(state: &str, expires_at: i64) -> Vec<u8> {
    format!("frontgate-login\n{}\n{expires_at}", crypto::store_key(state)).into_bytes()
}

/// The cookie value for a login started with `state`, good until `expires_at` (Unix seconds).
pub fn seal(
    sealer: &Sealer,
    state: &str,
    pending: &Pending,
    expires_at: i64,
) -> Result<String, CryptoError> {
    let plain = serde_json::to_vec(pending).map_err(|_| CryptoError::Open)?;
    let sealed = sealer.seal(&context(state, expires_at), &plain)?;
    Ok(format!("{expires_at}.{}", URL_SAFE_NO_PAD.encode(sealed)))
}

/// The started login the request's cookie for `state` holds, and its expiry, if it opens and
/// has not expired.
pub fn open(
    sealer: &Sealer,
    headers: &HeaderMap,
    state: &str,
    now: i64,
) -> Result<(Pending, i64), Refused> {
    let name = name(state);
    let value = crate::session::cookie::get(headers, &name).ok_or(Refused::Missing)?;
    let (expires_at, sealed) = value.split_once('.').ok_or(Refused::Invalid)?;
    let expires_at = parse_expiry(expires_at).ok_or(Refused::Invalid)?;
    let sealed = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| Refused::Invalid)?;
    let plain = sealer.open(&context(state, expires_at), &sealed).map_err(|_| Refused::Invalid)?;
    if expires_at < now {
        return Err(Refused::Expired);
    }
    let pending = serde_json::from_slice(&plain).map_err(|_| Refused::Invalid)?;
    Ok((pending, expires_at))
}

fn parse_expiry(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether `name` has the shape of a login cookie's name.
fn is_login_name(name: &str) -> bool {
    name.strip_prefix(LOGIN_PREFIX).is_some_and(|h| {
        h.len() == NAME_HASH_LEN
            && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The login cookies a new login start clears, so that with the new one the browser holds at
/// most [`MAX_KEPT`]: expired ones, and all but the newest `MAX_KEPT - 1` (by their expiry; of
/// those started in the same second, the later in the Cookie field, where browsers put the
/// cookies they got last).
pub fn to_clear(headers: &HeaderMap, now: i64) -> Vec<String> {
    let mut found: Vec<(i64, &str)> = Vec::new();
    for v in headers.get_all(COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for pair in s.split(';') {
            let Some((k, val)) = pair.trim().split_once('=') else { continue };
            if !is_login_name(k) || found.iter().any(|(_, n)| *n == k) {
                continue;
            }
            let expires_at =
                val.trim().split_once('.').and_then(|(e, _)| parse_expiry(e)).unwrap_or(i64::MIN);
            found.push((expires_at, k));
        }
    }
    // Newest first; a stable sort of the reversed list keeps the later of equal expiries first.
    found.reverse();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found
        .into_iter()
        .enumerate()
        .filter(|(i, (expires_at, _))| *i + 1 >= MAX_KEPT || *expires_at < now)
        .take(MAX_CLEARED)
        .map(|(_, (_, name))| name.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn pending() -> Pending {
        Pending { nonce: "n".repeat(43), verifier: "v".repeat(43), return_to: "/app?x=1".into() }
    }

    fn jar(pairs: &[(String, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        h.insert(COOKIE, HeaderValue::from_str(&line.join("; ")).unwrap());
        h
    }

    #[test]
    fn opens_only_for_its_state_untampered_and_in_time() {
        let s = Sealer::new(&[3u8; 32]);
        let (state, other) = ("S".repeat(43), "T".repeat(43));
        let value = seal(&s, &state, &pending(), 1_000).unwrap();
        let h = jar(&[(name(&state), value.clone())]);
        let (p, expires_at) = open(&s, &h, &state, 1_000).unwrap();
        assert_eq!((p.nonce, p.return_to), ("n".repeat(43), "/app?x=1".to_owned()));
        assert_eq!((p.verifier, expires_at), ("v".repeat(43), 1_000));
        assert_eq!(open(&s, &h, &state, 1_001).err(), Some(Refused::Expired));
        assert_eq!(open(&s, &h, &other, 1_000).err(), Some(Refused::Missing));
        // Renamed to the other state's name: it still does not open for that state.
        let renamed = jar(&[(name(&other), value.clone())]);
        assert_eq!(open(&s, &renamed, &other, 1_000).err(), Some(Refused::Invalid));
        // The expiry moved: the associated data no longer matches.
        let moved = value.replacen("1000.", "9000.", 1);
        assert_eq!(
            open(&s, &jar(&[(name(&state), moved)]), &state, 1_000).err(),
            Some(Refused::Invalid)
        );
        // A flipped character, another key, garbage.
        let mut bytes = value.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        for (key, v) in
            [([3u8; 32], flipped), ([4u8; 32], value.clone()), ([3u8; 32], "12.!!".into())]
        {
            let h = jar(&[(name(&state), v)]);
            assert_eq!(open(&Sealer::new(&key), &h, &state, 1_000).err(), Some(Refused::Invalid));
        }
        // Two cookies of the same name (cookie tossing): neither is read.
        let twice = jar(&[(name(&state), value.clone()), (name(&state), value)]);
        assert_eq!(open(&s, &twice, &state, 1_000).err(), Some(Refused::Missing));
    }

    #[test]
    fn a_start_keeps_the_newest_and_clears_the_expired() {
        let s = Sealer::new(&[3u8; 32]);
        let cookies: Vec<(String, String)> = (0..5)
            .map(|i| {
                let state = format!("state-{i}");
                (name(&state), seal(&s, &state, &pending(), 100 + i).unwrap())
            })
            .collect();
        let cleared = to_clear(&jar(&cookies), 0);
        // The newest MAX_KEPT - 1 stay (expiries 104, 103), the rest go.
        assert_eq!(cleared.len(), 5 - (MAX_KEPT - 1));
        for (n, _) in &cookies[..5 - (MAX_KEPT - 1)] {
            assert!(cleared.contains(n), "{n}");
        }
        // Expired ones go whatever their number; other names are not touched.
        let mut two = cookies[3..].to_vec();
        two.push(("__Host-frontgate-login-xyz".into(), "1.a".into()));
        two.push(("app".into(), "1.a".into()));
        assert_eq!(to_clear(&jar(&two), 104), [cookies[3].0.clone()]);
        assert!(to_clear(&jar(&two), 0).is_empty());
        // Started in the same second: the earlier in the Cookie field go first.
        let same: Vec<(String, String)> = (0..4)
            .map(|i| {
                let state = format!("same-{i}");
                (name(&state), seal(&s, &state, &pending(), 100).unwrap())
            })
            .collect();
        assert_eq!(to_clear(&jar(&same), 0), [same[1].0.clone(), same[0].0.clone()]);
    }

    #[test]
    fn the_longest_cookie_fits_a_browser() {
        let s = Sealer::new(&[3u8; 32]);
        let long = Pending { return_to: format!("/{}", "a".repeat(2047)), ..pending() };
        let state = "S".repeat(43);
        let value = seal(&s, &state, &long, i64::from(i32::MAX)).unwrap();
        // Browsers keep cookies up to 4 096 bytes of name and value.
        assert!(name(&state).len() + value.len() < 3_200, "{}", value.len());
    }
}
