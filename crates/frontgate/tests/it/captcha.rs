//! Third-party CAPTCHA checks against a local fake siteverify server that follows each
//! provider's documented request (form-encoded POST: secret, response, remoteip) and response
//! (success, error-codes, hostname, action, score): success, failure codes, timeout, reuse.

use crate::common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

const SECRET: &str = "fake-provider-secret";

/// A verification request as the provider got it: content type and form fields.
type Seen = (String, Vec<(String, String)>);

/// A siteverify server. Tokens: `good-*` (single use, as the providers enforce), `lenient-*`
/// (accepted every time: our own replay set must stop the reuse), `bad`, `slow` (answers after
/// 3 s), `lowscore`, `otherhost`, `otheraction`, `http500`, `garbage`.
struct FakeProvider {
    addr: SocketAddr,
    /// (content-type, form fields) of each request.
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    async fn start(provider: &'static str) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let used = Arc::new(Mutex::new(HashSet::<String>::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (seen, used) = (seen2.clone(), used.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let (seen, used) = (seen.clone(), used.clone());
                        async move {
                            let ct = req
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let fields: Vec<(String, String)> = url_decode_form(&body);
                            seen.lock().unwrap().push((ct, fields.clone()));
                            let get = |k: &str| {
                                fields
                                    .iter()
                                    .find(|(n, _)| n == k)
                                    .map(|(_, v)| v.clone())
                                    .unwrap_or_default()
                            };
                            let (status, json) =
                                answer(provider, &get("secret"), &get("response"), &used).await;
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(json)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        FakeProvider { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}/siteverify", self.addr)
    }
}

fn url_decode_form(body: &[u8]) -> Vec<(String, String)> {
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

/// The provider's documented answer for a token.
async fn answer(
    provider: &str,
    secret: &str,
    token: &str,
    used: &Mutex<HashSet<String>>,
) -> (u16, String) {
    let failure = |code: &str| {
        (200, serde_json::json!({ "success": false, "error-codes": [code] }).to_string())
    };
    if secret != SECRET {
        return failure("invalid-input-secret");
    }
    let duplicate =
        if provider == "hcaptcha" { "already-seen-response" } else { "timeout-or-duplicate" };
    let success = |hostname: &str, action: &str, score: f64| {
        let mut v = serde_json::json!({ "success": true, "challenge_ts": "2026-11-27T22:00:00Z", "hostname": hostname, "error-codes": [] });
        match provider {
            "recaptcha" => {
                v["score"] = score.into();
                v["action"] = action.into();
            }
            "turnstile" => {
                v["action"] = action.into();
                v["cdata"] = "".into();
            }
            _ => v["credit"] = false.into(),
        }
        (200, v.to_string())
    };
    match token {
        t if t.starts_with("good-") => {
            if !used.lock().unwrap().insert(t.to_owned()) {
                return failure(duplicate);
            }
            success("app.test", "signup", 0.9)
        }
        t if t.starts_with("lenient-") => success("app.test", "signup", 0.9),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            success("app.test", "signup", 0.9)
        }
        "lowscore" => success("app.test", "signup", 0.1),
        "otherhost" => success("evil.test", "signup", 0.9),
        "otheraction" => success("app.test", "login", 0.9),
        "http500" => (500, "{}".to_owned()),
        "garbage" => (200, "<html>".to_owned()),
        _ => failure("invalid-input-response"),
    }
}

fn gate_for(provider: &str, fake: &FakeProvider, up: &Upstream, extra: &str) -> Gate {
    let action = if provider == "hcaptcha" { "" } else { "action = \"signup\"\n" };
    start(
        "tls = \"off\"\npublic_url = \"http://app.test\"",
        &format!(
            "{}\n[captcha.{provider}]\nsecret = \"{SECRET}\"\nverify_url = \"{}\"\ntimeout = \"500ms\"\n{action}{extra}\n[[routes]]\nmatch = \"POST /api/signup\"\nchallenge = \"{provider}\"\n",
            up.config(),
            fake.url()
        ),
    )
}

async fn post(gate: &Gate, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut r = req("POST", "/api/signup");
    if let Some(t) = token {
        r = r.header("x-frontgate-captcha", t);
    }
    let (s, _, b) =
        plain_send(gate.addr, r.body(Full::new(Bytes::from_static(b"{}"))).unwrap()).await;
    (s.as_u16(), serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
}

async fn provider_cases(provider: &'static str) {
    let fake = FakeProvider::start(provider).await;
    let up = Upstream::start().await;
    let gate = gate_for(provider, &fake, &up, "");
    // No token.
    let (s, p) = post(&gate, None).await;
    assert_eq!(
        (s, p["code"].as_str(), p["captcha"].as_str()),
        (403, Some("challenge_required"), Some(provider)),
        "{p}"
    );
    // A good token passes once; the provider reports the reuse.
    let (s, p) = post(&gate, Some("good-1")).await;
    assert_eq!(s, 200, "{p}");
    let (s, p) = post(&gate, Some("good-1")).await;
    assert_eq!((s, p["code"].as_str()), (403, Some("challenge_failed")), "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains(if provider == "hcaptcha" {
            "already-seen-response"
        } else {
            "timeout-or-duplicate"
        }),
        "{p}"
    );
    // A provider that would accept the token again: our replay set refuses it.
    assert_eq!(post(&gate, Some("lenient-1")).await.0, 200);
    let (s, p) = post(&gate, Some("lenient-1")).await;
    assert_eq!((s, p["code"].as_str()), (403, Some("challenge_failed")));
    assert!(p["detail"].as_str().unwrap().contains("already used"), "{p}");
    // Refusals: bad token, another site, (reCAPTCHA/Turnstile) another action, (reCAPTCHA) a low score.
    let mut refused = vec!["bad", "otherhost"];
    if provider != "hcaptcha" {
        refused.push("otheraction");
    }
    if provider == "recaptcha" {
        refused.push("lowscore");
    }
    for t in refused {
        let (s, p) = post(&gate, Some(t)).await;
        assert_eq!((s, p["code"].as_str()), (403, Some("challenge_failed")), "{t}: {p}");
    }
    // Verifier failures fail closed: timeout, HTTP 500, not JSON.
    for t in ["slow", "http500", "garbage"] {
        let (s, p) = post(&gate, Some(t)).await;
        assert_eq!((s, p["code"].as_str()), (503, Some("challenge_failed")), "{t}: {p}");
    }
    // Oversized token: refused before any call.
    let calls = fake.seen.lock().unwrap().len();
    let (s, _) = post(&gate, Some(&"x".repeat(5000))).await;
    assert_eq!(s, 400);
    assert_eq!(fake.seen.lock().unwrap().len(), calls);
    // The documented request shape.
    let seen = fake.seen.lock().unwrap();
    let (ct, fields) = &seen[0];
    assert_eq!(ct, "application/x-www-form-urlencoded");
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["secret", "response", "remoteip"]);
    assert_eq!(fields[2].1, "127.0.0.1");
    // Only the accepted tokens reached the upstream.
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn turnstile() {
    provider_cases("turnstile").await;
}

#[tokio::test]
async fn hcaptcha() {
    provider_cases("hcaptcha").await;
}

#[tokio::test]
async fn recaptcha() {
    provider_cases("recaptcha").await;
}

#[tokio::test]
async fn a_wrong_secret_and_fail_open_on_request() {
    let fake = FakeProvider::start("turnstile").await;
    let up = Upstream::start().await;
    // fail open: the timeout lets the request through (and says so in metrics/logs).
    let gate = gate_for("turnstile", &fake, &up, "on_error = \"open\"\n");
    assert_eq!(post(&gate, Some("slow")).await.0, 200);
    drop(gate);
    let gate = start(
        "tls = \"off\"\npublic_url = \"http://app.test\"",
        &format!(
            "{}\n[captcha.turnstile]\nsecret = \"wrong\"\nverify_url = \"{}\"\n[[routes]]\nmatch = \"POST /api/signup\"\nchallenge = \"turnstile\"\n",
            up.config(),
            fake.url()
        ),
    );
    let (s, p) = post(&gate, Some("good-2")).await;
    assert_eq!((s, p["code"].as_str()), (403, Some("challenge_failed")));
    assert!(p["detail"].as_str().unwrap().contains("invalid-input-secret"), "{p}");
}
