//! The console's sign-in state, kept in this process: cookie sessions (a random id the browser
//! holds in an HttpOnly, SameSite=Strict cookie; only its SHA-256 is kept here, with the
//! session's CSRF token and expiry), the per-address limit on failed sign-ins, and the OIDC
//! sign-ins started and not yet completed (with their own per-address limit). All are bounded,
//! so a flood of sign-ins cannot grow memory without limit.
//!
//! Sessions are per node: the admin listener is per node, and signing in to one node's console
//! gives no access to another's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = crate::session::cookie::CONSOLE;
/// The header the page sends its CSRF token in on every state-changing call.
pub const CSRF_HEADER: &str = "x-frontgate-csrf";
/// A session ends after this long without a call...
pub const IDLE_SECS: i64 = 30 * 60;
/// ...and after this long in any case.
pub const ABSOLUTE_SECS: i64 = 8 * 3600;
/// At most this many live sessions per node; the oldest is dropped for a new one.
pub const MAX_SESSIONS: usize = 256;
/// Failed sign-ins allowed per client address and window; the next attempt (right or wrong)
/// is refused with 429 until the window ends.
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_SECS: i64 = 300;
/// Addresses tracked by the limiter at most; when full and none has expired, every sign-in
/// is refused until one does (failing closed rather than forgetting a guesser).
pub const MAX_TRACKED: usize = 4096;
/// OIDC sign-ins each client address may start per [`WINDOW_SECS`] (each keeps a pending entry
/// and calls the identity provider).
pub const MAX_STARTS: u32 = 20;
/// OIDC sign-ins started and not completed, at most, per node; when full (none expired), new
/// starts are refused until one completes or expires (failing closed).
pub const MAX_PENDING: usize = 256;

/// One console session (keyed by the SHA-256 of its cookie value).
#[derive(Clone, Debug)]
pub struct ConsoleSession {
    pub csrf: String,
    pub created_at: i64,
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
    /// A short, non-secret label for audit events: `console:<first 8 hex of the key>` for a
    /// token sign-in, `oidc:<subject>` for an OIDC one.
    pub actor: String,
}

/// An OIDC sign-in started and not yet completed, kept under the SHA-256 of its `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    /// SHA-256 (hex) of the login cookie of the browser that started it.
    pub binder: String,
    pub nonce: String,
    pub verifier: String,
    pub expires_at: i64,
}

/// Why an OIDC sign-in may not start.
#[derive(Debug, PartialEq, Eq)]
pub enum StartRefused {
    /// This address started too many; try again after this many seconds.
    Limited(i64),
    /// Too many sign-ins are pending on this node.
    Full,
}

/// Why a callback's state is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TakeRefused {
    /// Unknown, already used or expired.
    Unknown,
    /// Started by another browser (its login cookie is missing or another).
    OtherBrowser,
}

impl ConsoleSession {
    pub fn expires_at(&self) -> i64 {
        self.idle_expires_at.min(self.absolute_expires_at)
    }
}

/// What a sign-in attempt may do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Refused; try again after this many seconds.
    Limited(i64),
}

#[derive(Default)]
pub struct ConsoleAuth {
    sessions: Mutex<HashMap<String, ConsoleSession>>,
    failures: Mutex<HashMap<IpAddr, (i64, u32)>>,
    starts: Mutex<HashMap<IpAddr, (i64, u32)>>,
    pending: Mutex<HashMap<String, PendingLogin>>,
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn key_of(cookie: &str) -> String {
    Sha256::digest(cookie.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings (by their SHA-256, so lengths do not leak either).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    bool::from(x.ct_eq(&y))
}

/// What the sign-in limit counts an address as: an IPv6 address by its /64, which one host
/// usually holds whole (so it cannot try 2^64 addresses in turn); IPv4 as it is.
fn limited_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
    }
}

/// Room in a full failure table: expired windows go, then addresses not (yet) limited. So only
/// [`MAX_TRACKED`] addresses that each guessed [`MAX_FAILURES`] times can fill it (and then new
/// addresses are refused until a window ends: failing closed), not one wrong guess from each of
/// [`MAX_TRACKED`] addresses.
fn make_room(f: &mut HashMap<IpAddr, (i64, u32)>, now: i64) {
    f.retain(|_, (start, _)| now < *start + WINDOW_SECS);
    if f.len() >= MAX_TRACKED {
        f.retain(|_, (_, n)| *n >= MAX_FAILURES);
    }
}

impl ConsoleAuth {
    pub fn new() -> ConsoleAuth {
        ConsoleAuth::default()
    }

    /// Whether `ip` may try to sign in at `now`.
    pub fn admit(&self, ip: IpAddr, now: i64) -> Admission {
        let ip = limited_as(ip);
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match f.get(&ip) {
            Some(&(start, n)) if now < start + WINDOW_SECS && n >= MAX_FAILURES => {
                Admission::Limited(start + WINDOW_SECS - now)
            }
            Some(_) => Admission::Allowed,
            None if f.len() >= MAX_TRACKED => {
                make_room(&mut f, now);
                if f.len() >= MAX_TRACKED {
                    let soonest = f.values().map(|(s, _)| s + WINDOW_SECS - now).min();
                    Admission::Limited(soonest.unwrap_or(1).max(1))
                } else {
                    Admission::Allowed
                }
            }
            None => Admission::Allowed,
        }
    }

    /// Counts a failed sign-in from `ip`.
    pub fn failed(&self, ip: IpAddr, now: i64) {
        let ip = limited_as(ip);
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() >= MAX_TRACKED && !f.contains_key(&ip) {
            make_room(&mut f, now);
            if f.len() >= MAX_TRACKED {
                return;
            }
        }
        let e = f.entry(ip).or_insert((now, 0));
        if now >= e.0 + WINDOW_SECS {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    /// Counts an OIDC sign-in started from `ip` and keeps it under its `state` until
    /// [`ConsoleAuth::take_login`]; refused past [`MAX_STARTS`] per address and window, or
    /// when [`MAX_PENDING`] sign-ins are pending.
    pub fn start_login(
        &self,
        ip: IpAddr,
        state: &str,
        login: PendingLogin,
        now: i64,
    ) -> Result<(), StartRefused> {
        let ip = limited_as(ip);
        {
            let mut f = self.starts.lock().unwrap_or_else(|e| e.into_inner());
            if f.len() >= MAX_TRACKED && !f.contains_key(&ip) {
                // As for failures: only addresses at their limit keep their place.
                f.retain(|_, (start, n)| now < *start + WINDOW_SECS && *n >= MAX_STARTS);
                if f.len() >= MAX_TRACKED {
                    let soonest = f.values().map(|(s, _)| s + WINDOW_SECS - now).min();
                    return Err(StartRefused::Limited(soonest.unwrap_or(1).max(1)));
                }
            }
            let e = f.entry(ip).or_insert((now, 0));
            if now >= e.0 + WINDOW_SECS {
                *e = (now, 0);
            }
            if e.1 >= MAX_STARTS {
                return Err(StartRefused::Limited((e.0 + WINDOW_SECS - now).max(1)));
            }
            e.1 += 1;
        }
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() >= MAX_PENDING {
            p.retain(|_, l| l.expires_at > now);
            if p.len() >= MAX_PENDING {
                return Err(StartRefused::Full);
            }
        }
        p.insert(key_of(state), login);
        Ok(())
    }

    /// Takes the sign-in a callback's `state` names, once: a second call with the same state
    /// (a replay) finds nothing, and so does one after it expired. `cookie`: the browser's
    /// login cookie, which must be the one the sign-in was started with.
    pub fn take_login(
        &self,
        state: &str,
        cookie: Option<&str>,
        now: i64,
    ) -> Result<PendingLogin, TakeRefused> {
        let taken = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&key_of(state));
        let login = taken.filter(|l| l.expires_at > now).ok_or(TakeRefused::Unknown)?;
        match cookie {
            Some(c) if !c.is_empty() && same_secret(&key_of(c), &login.binder) => Ok(login),
            _ => Err(TakeRefused::OtherBrowser),
        }
    }

    /// OIDC sign-ins pending now (expired ones included until the next start sweeps them).
    pub fn pending_len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A new session: returns the cookie value (the only copy of it) and the session.
    pub fn open(&self, now: i64) -> (String, ConsoleSession) {
        self.open_as(now, None)
    }

    /// A new session whose audit actor is `actor` (`None`: `console:<8 hex of its key>`).
    pub fn open_as(&self, now: i64, actor: Option<String>) -> (String, ConsoleSession) {
        let cookie = random_token();
        let s = self.open_with(&cookie, now, actor);
        (cookie, s)
    }

    /// A new session for a cookie value the caller drew with [`random_token`].
    pub fn open_with(&self, cookie: &str, now: i64, actor: Option<String>) -> ConsoleSession {
        let key = key_of(cookie);
        let s = ConsoleSession {
            csrf: random_token(),
            created_at: now,
            idle_expires_at: now + IDLE_SECS,
            absolute_expires_at: now + ABSOLUTE_SECS,
            actor: actor.unwrap_or_else(|| format!("console:{}", &key[..8])),
        };
        let mut m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, v| v.expires_at() > now);
        while m.len() >= MAX_SESSIONS {
            let Some(oldest) = m.iter().min_by_key(|(_, v)| v.created_at).map(|(k, _)| k.clone())
            else {
                break;
            };
            m.remove(&oldest);
        }
        m.insert(key, s.clone());
        s
    }

    /// The live session a cookie value names, its idle timer restarted; `None` when unknown or
    /// expired (an expired one is dropped).
    pub fn touch(&self, cookie: &str, now: i64) -> Option<ConsoleSession> {
        let key = key_of(cookie);
        let mut m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let s = m.get_mut(&key)?;
        if s.expires_at() <= now {
            m.remove(&key);
            return None;
        }
        s.idle_expires_at = now + IDLE_SECS;
        Some(s.clone())
    }

    /// The live session a cookie value names, its idle timer left as it is: for the page's
    /// automatic refreshes, so that a tab left open on the traffic view still signs out after
    /// [`IDLE_SECS`] without a person's action.
    pub fn peek(&self, cookie: &str, now: i64) -> Option<ConsoleSession> {
        let key = key_of(cookie);
        let mut m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let s = m.get(&key)?;
        if s.expires_at() <= now {
            m.remove(&key);
            return None;
        }
        Some(s.clone())
    }

    /// Ends a session; whether there was one.
    pub fn close(&self, cookie: &str) -> bool {
        let mut m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&key_of(cookie)).is_some()
    }

    /// Ends every console session and pending sign-in (the admin token changed).
    pub fn close_all(&self) {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn len(&self) -> usize {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether a request's CSRF header matches its session's token.
pub fn csrf_ok(session: &ConsoleSession, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| !p.is_empty() && same_secret(p, &session.csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn a_session_is_found_by_its_cookie_only_and_expires_when_idle_or_old() {
        let a = ConsoleAuth::new();
        let (cookie, s) = a.open(1000);
        assert_ne!(cookie, s.csrf);
        assert!(cookie.len() >= 43, "{cookie}");
        assert!(a.touch(&cookie, 1001).is_some());
        assert!(a.touch("not-a-session", 1001).is_none());
        assert!(a.touch(&s.csrf, 1001).is_none(), "the CSRF token is not a session id");
        // Idle: each touch restarts the idle timer.
        assert!(a.touch(&cookie, 1001 + IDLE_SECS - 1).is_some());
        assert!(a.touch(&cookie, 1001 + 2 * IDLE_SECS - 2).is_some());
        assert!(a.touch(&cookie, 1001 + 3 * IDLE_SECS).is_none(), "idle expiry");
        assert!(a.touch(&cookie, 1001 + 3 * IDLE_SECS).is_none(), "and it is gone");
        // Absolute: however active.
        let (cookie, _) = a.open(0);
        let mut t = 0;
        while t + IDLE_SECS / 2 < ABSOLUTE_SECS {
            t += IDLE_SECS / 2;
            assert!(a.touch(&cookie, t).is_some(), "at {t}");
        }
        assert!(a.touch(&cookie, ABSOLUTE_SECS).is_none(), "absolute expiry");
    }

    #[test]
    fn a_peek_does_not_keep_a_session_alive() {
        let a = ConsoleAuth::new();
        let (cookie, _) = a.open(0);
        // An open tab refreshing every 3 s for longer than the idle limit.
        let mut t = 0;
        while t < IDLE_SECS - 3 {
            t += 3;
            assert!(a.peek(&cookie, t).is_some(), "at {t}");
        }
        assert!(a.peek(&cookie, IDLE_SECS).is_none(), "idle: refreshes are not activity");
        assert!(a.touch(&cookie, IDLE_SECS).is_none(), "and it is gone");
    }

    #[test]
    fn sign_out_ends_the_session_and_ids_are_random() {
        let a = ConsoleAuth::new();
        let (c1, s1) = a.open(0);
        let (c2, s2) = a.open(0);
        assert_ne!(c1, c2);
        assert_ne!(s1.csrf, s2.csrf);
        assert_ne!(s1.actor, s2.actor);
        assert!(a.close(&c1));
        assert!(!a.close(&c1));
        assert!(a.touch(&c1, 1).is_none());
        assert!(a.touch(&c2, 1).is_some());
        a.close_all();
        assert!(a.touch(&c2, 1).is_none());
    }

    #[test]
    fn sessions_are_bounded_dropping_the_oldest() {
        let a = ConsoleAuth::new();
        let (first, _) = a.open(0);
        for i in 1..(MAX_SESSIONS as i64 + 10) {
            a.open(i);
        }
        assert_eq!(a.len(), MAX_SESSIONS);
        assert!(a.touch(&first, 100).is_none());
    }

    #[test]
    fn csrf_needs_the_sessions_own_token() {
        let a = ConsoleAuth::new();
        let (_, s) = a.open(0);
        let (_, other) = a.open(0);
        assert!(csrf_ok(&s, Some(&s.csrf)));
        assert!(!csrf_ok(&s, Some(&other.csrf)));
        assert!(!csrf_ok(&s, Some("")));
        assert!(!csrf_ok(&s, None));
        assert!(!csrf_ok(&s, Some(&s.csrf[..s.csrf.len() - 1])));
    }

    #[test]
    fn failures_are_limited_per_address_and_window() {
        let a = ConsoleAuth::new();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.admit(IP, 10), Admission::Allowed);
            a.failed(IP, 10);
        }
        assert_eq!(a.admit(IP, 10), Admission::Limited(WINDOW_SECS));
        assert_eq!(a.admit(IP, 10 + WINDOW_SECS - 1), Admission::Limited(1));
        assert_eq!(a.admit(other, 10), Admission::Allowed, "per address");
        assert_eq!(a.admit(IP, 10 + WINDOW_SECS), Admission::Allowed, "a new window");
        a.failed(IP, 10 + WINDOW_SECS);
        assert_eq!(a.admit(IP, 10 + WINDOW_SECS), Admission::Allowed, "counting from one again");
    }

    #[test]
    fn an_ipv6_guesser_is_limited_by_its_64_not_each_address() {
        let a = ConsoleAuth::new();
        for i in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
            assert_eq!(a.admit(ip, 10), Admission::Allowed);
            a.failed(ip, 10);
        }
        let next: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(a.admit(next, 10), Admission::Limited(WINDOW_SECS), "same /64");
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(a.admit(other, 10), Admission::Allowed, "another /64");
        // An IPv4-mapped address counts as its IPv4 address.
        for _ in 0..MAX_FAILURES {
            a.failed("::ffff:192.0.2.7".parse().unwrap(), 10);
        }
        assert!(matches!(a.admit("192.0.2.7".parse().unwrap(), 10), Admission::Limited(_)));
    }

    #[test]
    fn the_limiter_is_bounded_and_fails_closed_only_when_full_of_limited_guessers() {
        let a = ConsoleAuth::new();
        // One wrong guess from each of MAX_TRACKED addresses: room is made, nobody is locked out.
        for i in 0..MAX_TRACKED as u32 {
            a.failed(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 0);
        }
        let fresh: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(a.admit(fresh, 1), Admission::Allowed);
        a.failed(fresh, 1);
        assert!(a.failures.lock().unwrap().len() <= MAX_TRACKED);
        // MAX_TRACKED addresses each limited: then new addresses wait (failing closed).
        let a = ConsoleAuth::new();
        for i in 0..MAX_TRACKED as u32 {
            for _ in 0..MAX_FAILURES {
                a.failed(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 0);
            }
        }
        assert!(matches!(a.admit(fresh, 1), Admission::Limited(_)));
        a.failed(fresh, 1);
        assert_eq!(a.failures.lock().unwrap().len(), MAX_TRACKED);
        // Once the window has passed, the old entries make room.
        assert_eq!(a.admit(fresh, WINDOW_SECS), Admission::Allowed);
    }

    fn pending(binder: &str, expires_at: i64) -> PendingLogin {
        PendingLogin { binder: key_of(binder), nonce: "n".into(), verifier: "v".into(), expires_at }
    }

    #[test]
    fn a_started_login_is_taken_once_by_the_browser_that_started_it() {
        let a = ConsoleAuth::new();
        a.start_login(IP, "state-1", pending("binder-1", 100), 0).unwrap();
        assert_eq!(a.take_login("state-1", Some("binder-1"), 1).unwrap().nonce, "n");
        assert_eq!(a.take_login("state-1", Some("binder-1"), 1), Err(TakeRefused::Unknown));
        assert_eq!(a.take_login("never", Some("binder-1"), 1), Err(TakeRefused::Unknown));
        // Another browser's callback burns the state: the rightful one cannot use it after.
        a.start_login(IP, "state-2", pending("binder-2", 100), 0).unwrap();
        assert_eq!(a.take_login("state-2", Some("binder-1"), 1), Err(TakeRefused::OtherBrowser));
        assert_eq!(a.take_login("state-2", Some("binder-2"), 1), Err(TakeRefused::Unknown));
        a.start_login(IP, "state-3", pending("binder-3", 100), 0).unwrap();
        assert_eq!(a.take_login("state-3", None, 1), Err(TakeRefused::OtherBrowser));
        // Expired.
        a.start_login(IP, "state-4", pending("binder-4", 100), 0).unwrap();
        assert_eq!(a.take_login("state-4", Some("binder-4"), 100), Err(TakeRefused::Unknown));
    }

    #[test]
    fn login_starts_are_limited_per_address_and_pending_ones_are_bounded() {
        let a = ConsoleAuth::new();
        for i in 0..MAX_STARTS {
            a.start_login(IP, &format!("s{i}"), pending("b", 1000), 0).unwrap();
        }
        assert_eq!(
            a.start_login(IP, "one-more", pending("b", 1000), 10),
            Err(StartRefused::Limited(WINDOW_SECS - 10))
        );
        // A new window for this address.
        a.start_login(IP, "later", pending("b", 1000), WINDOW_SECS).unwrap();
        // Many addresses: the pending map stops at MAX_PENDING and refuses until one expires.
        let b = ConsoleAuth::new();
        for i in 0..MAX_PENDING as u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            b.start_login(ip, &format!("s{i}"), pending("b", 50), 0).unwrap();
        }
        let fresh: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(b.start_login(fresh, "x", pending("b", 100), 1), Err(StartRefused::Full));
        assert_eq!(b.pending_len(), MAX_PENDING);
        // Once the pending ones expired, they make room.
        b.start_login(fresh, "y", pending("b", 100), 50).unwrap();
        assert_eq!(b.pending_len(), 1);
        b.close_all();
        assert_eq!(b.pending_len(), 0);
    }

    #[test]
    fn a_session_can_carry_a_named_actor() {
        let a = ConsoleAuth::new();
        let (cookie, s) = a.open_as(0, Some("oidc:alice".into()));
        assert_eq!(s.actor, "oidc:alice");
        assert_eq!(a.touch(&cookie, 1).unwrap().actor, "oidc:alice");
    }
}
