//! Self-service API keys (`[api_keys.self_service]`, docs/api-keys.md#self-service-keys), end
//! to end: two users log in through headless Chromium and the real oidc-provider, then mint,
//! list, use and revoke their own keys on two nodes sharing PostgreSQL and Redis, one over
//! plain HTTP/1.1 and one over TLS with HTTP/2. And the config rules, refused alike by
//! `frontgate check` and `frontgate serve`.
use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::api_keys::{ADMIN_TOKEN, HASH_SECRET, admin_call};
use common::sessions::{World, browser, free_port};
use common::{Gate, Upstream};
use http::{Request, StatusCode};
use http_body_util::Full;

/// The keys routes ask for, and what users may put on their own.
const ROUTES: &str = r#"
[[routes]]
match = "/echo/**"
auth = "session"

[[routes]]
match = "/items/read/**"
auth = "api_key"
scopes = ["items:read"]

[[routes]]
match = "/items/write/**"
auth = "api_key"
scopes = ["items:write"]

[[routes]]
match = "/items/admin/**"
auth = "api_key"
scopes = ["items:admin"]

# A scope that also guards a session route: a key may carry it only for a session that holds it.
[[routes]]
match = "/items/both/**"
auth = ["session", "api_key"]
scopes = ["items:both"]
"#;

struct Node<'a> {
    port: u16,
    /// Self-signed TLS (HTTP/2 by ALPN) instead of plain HTTP.
    tls: bool,
    origin: &'a str,
    issuer: &'a str,
    session_key: &'a str,
    upstream: &'a Upstream,
    /// PostgreSQL and a Redis prefix; `None`: the default SQLite store, sessions in it too.
    shared: Option<(&'a str, &'a str)>,
}

fn start_node(n: &Node<'_>) -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        r#"data_dir = {data:?}

[server]
listen = "127.0.0.1:{port}"
{tls}
public_url = "{origin}"

[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"

[log]
level = "info"

{upstream}
{shared}
[api_keys]
hash_secret = "{HASH_SECRET}"

[api_keys.self_service]
scopes = ["items:read", "items:write", "items:both"]
max_keys = 3
max_ttl = "30d"

[oidc]
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "{secret}"
scopes = ["openid", "profile", "email", "offline_access"]
session_key = "{key}"
{ROUTES}"#,
        data = dir.path().join("data").display().to_string(),
        port = n.port,
        tls = if n.tls { "" } else { "tls = \"off\"" },
        origin = n.origin,
        upstream = n.upstream.config(),
        shared = n
            .shared
            .map(|(pg, prefix)| format!(
                "[store]\nurl = \"{pg}\"\n\n[shared]\nredis = \"{}\"\nprefix = \"{prefix}\"\n",
                common::stores::REDIS_URL
            ))
            .unwrap_or_default(),
        issuer = n.issuer,
        client_id = common::oidc::CLIENT_ID,
        secret = common::oidc::CLIENT_SECRET,
        key = n.session_key,
    );
    let path = dir.path().join("frontgate.toml");
    std::fs::write(&path, text).expect("write config");
    common::spawn(dir, path, &["serve", "-c"])
}

/// How a request reaches a node: HTTP/1.1 in the clear, or HTTP/2 over TLS.
#[derive(Clone, Copy)]
enum Via<'a> {
    H1(&'a Gate),
    H2(&'a Gate),
}

impl Via<'_> {
    fn name(&self) -> &'static str {
        match self {
            Via::H1(_) => "node a, HTTP/1.1",
            Via::H2(_) => "node b, HTTP/2",
        }
    }

    async fn send(&self, r: Call<'_>) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let (status, headers, body) = match self {
            Via::H1(gate) => {
                let mut req = r.build(r.path);
                req.headers_mut().insert("host", http::HeaderValue::from_static("127.0.0.1"));
                common::plain_send(gate.addr, req).await
            }
            Via::H2(gate) => {
                let req = r.build(&format!("https://localhost/{}", r.path.trim_start_matches('/')));
                let mut h2 = gate.tls().h2().await;
                let resp = tokio::time::timeout(Duration::from_secs(30), h2.send_request(req))
                    .await
                    .expect("an answer within 30 s")
                    .expect("an HTTP/2 response");
                common::collect(resp).await
            }
        };
        // Problems and the gateway's answers are JSON; the upstream's "ok" is not.
        let v = serde_json::from_slice(&body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
        });
        (status, headers, v)
    }
}

/// One request to a node.
#[derive(Clone, Copy, Default)]
struct Call<'a> {
    method: &'a str,
    path: &'a str,
    cookie: Option<&'a str>,
    origin: Option<&'a str>,
    csrf: bool,
    json: Option<&'a str>,
    api_key: Option<&'a str>,
}

impl Call<'_> {
    fn build(&self, uri: &str) -> Request<Full<Bytes>> {
        let mut b = Request::builder().method(self.method).uri(uri);
        if let Some(c) = self.cookie {
            b = b.header("cookie", format!("__Host-frontgate={c}"));
        }
        if let Some(o) = self.origin {
            b = b.header("origin", o);
        }
        if self.csrf {
            b = b.header("x-frontgate-csrf", "1");
        }
        if let Some(k) = self.api_key {
            b = b.header("x-api-key", k);
        }
        b = b.header("accept", "application/json");
        let body = match self.json {
            Some(j) => {
                b = b.header("content-type", "application/json");
                Full::new(Bytes::from(j.to_owned()))
            }
            None => Full::default(),
        };
        b.body(body).unwrap()
    }
}

fn problem_code(v: &serde_json::Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

async fn login(world: &World, user: &str, dir: &Path, context: impl Fn() -> String) -> String {
    let state = dir.join(format!("{user}-state.json")).display().to_string();
    let env = [
        ("FG", world.origin.as_str()),
        ("IDP", world.idp.issuer.as_str()),
        ("STATE", state.as_str()),
        ("FG_USER", user),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = browser("login-save", env, context).await;
    out["cookie"].as_str().expect("session cookie").to_owned()
}

fn counter(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn users_mint_list_use_and_revoke_their_own_keys_on_two_nodes() {
    let world = World::start(None).await;
    let pg = common::stores::PgDb::create();
    let prefix = common::stores::redis_prefix();
    let pg_url = pg.url();
    let node = |port, tls| Node {
        port,
        tls,
        origin: &world.origin,
        issuer: &world.idp.issuer,
        session_key: &world.key,
        upstream: &world.upstream,
        shared: Some((&pg_url, &prefix)),
    };
    let node_a = start_node(&node(world.port, false));
    let node_b = start_node(&node(free_port(), true));
    let context = || {
        format!(
            "--- node a\n{}\n--- node b\n{}\n--- idp\n{}",
            node_a.logs(),
            node_b.logs(),
            world.idp.logs()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let alice = login(&world, "alice", dir.path(), context).await;
    let bob = login(&world, "bob", dir.path(), context).await;
    let origin = world.origin.as_str();
    let (a, b) = (Via::H1(&node_a), Via::H2(&node_b));
    let as_user =
        |cookie| Call { cookie: Some(cookie), origin: Some(origin), csrf: true, ..Call::default() };
    let mint = |cookie, json| Call {
        method: "POST",
        path: "/.frontgate/keys",
        json: Some(json),
        ..as_user(cookie)
    };
    let list = |cookie| Call { method: "GET", path: "/.frontgate/keys", ..as_user(cookie) };

    // Alice mints a read key on node a (HTTP/1.1).
    let (status, headers, created) = a
        .send(mint(&alice, r#"{"name":"backup script","scopes":["items:read"],"expires_in":"7d"}"#))
        .await;
    assert_eq!(status, 201, "{created}\n{}", context());
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    let key = created["key"].as_str().expect("the key, once").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(key.starts_with("fgk_") && id.starts_with("key_"), "{created}");
    assert_eq!(created["name"], "backup script");
    assert_eq!(created["scopes"], serde_json::json!(["items:read"]));
    assert!(created["last_used_at"].is_null() && created["revoked_at"].is_null(), "{created}");
    let fields: Vec<&str> =
        created.as_object().unwrap().keys().map(String::as_str).collect::<Vec<_>>();
    assert_eq!(
        {
            let mut f = fields.clone();
            f.sort();
            f
        },
        ["created_at", "expires_at", "id", "key", "last_used_at", "name", "revoked_at", "scopes"],
        "exactly the contract's fields"
    );
    let created_at = humantime::parse_rfc3339(created["created_at"].as_str().unwrap()).unwrap();
    let expires_at = humantime::parse_rfc3339(created["expires_at"].as_str().unwrap()).unwrap();
    let lifetime = expires_at.duration_since(created_at).unwrap();
    assert_eq!(lifetime, Duration::from_secs(7 * 24 * 3600), "expires_in honoured");

    // The key works on both nodes for the scope it has, as alice; not for another scope.
    for via in [a, b] {
        let (status, _, body) = via
            .send(Call {
                method: "GET",
                path: "/items/read/1",
                api_key: Some(&key),
                ..Call::default()
            })
            .await;
        assert_eq!(status, 200, "{}: {body}", via.name());
        let seen = world.upstream.last.lock().unwrap().clone().expect("upstream saw it");
        assert_eq!(seen.2.get("x-frontgate-subject").map(|v| v[0].as_str()), Some("alice"));
        assert_eq!(seen.2.get("x-frontgate-key-id").map(|v| v[0].as_str()), Some(id.as_str()));
        let (status, _, body) = via
            .send(Call {
                method: "GET",
                path: "/items/write/1",
                api_key: Some(&key),
                ..Call::default()
            })
            .await;
        assert_eq!(
            (status, problem_code(&body)),
            (StatusCode::FORBIDDEN, "insufficient_scope"),
            "{}",
            via.name()
        );
    }

    // Bob mints one over HTTP/2 on node b, with no expires_in: max_ttl (30 d).
    let (status, _, bobs) =
        b.send(mint(&bob, r#"{"name":"bob's","scopes":["items:write","items:read"]}"#)).await;
    assert_eq!(status, 201, "{bobs}");
    let bob_id = bobs["id"].as_str().unwrap().to_owned();
    let bob_key = bobs["key"].as_str().unwrap().to_owned();
    let lifetime = humantime::parse_rfc3339(bobs["expires_at"].as_str().unwrap())
        .unwrap()
        .duration_since(humantime::parse_rfc3339(bobs["created_at"].as_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(lifetime, Duration::from_secs(30 * 24 * 3600), "default lifetime is max_ttl");

    // Each lists only their own keys, on either node, without secrets.
    for via in [a, b] {
        let (status, _, listed) = via.send(list(&alice)).await;
        assert_eq!(status, 200, "{}: {listed}", via.name());
        let keys = listed["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{}: {listed}", via.name());
        assert_eq!(keys[0]["id"], id.as_str());
        assert!(
            keys[0].get("key").is_none() && !listed.to_string().contains(&key),
            "no secret in a listing"
        );
        let (_, _, listed) = via.send(list(&bob)).await;
        let ids: Vec<&str> =
            listed["keys"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [bob_id.as_str()], "{}", via.name());
    }

    // Bob cannot revoke alice's key: 404, as for a key that does not exist; it still works.
    let item = format!("/.frontgate/keys/{id}");
    let missing = "/.frontgate/keys/key_0000000000000000";
    for (via, path) in [(a, item.as_str()), (b, item.as_str()), (a, missing), (b, missing)] {
        let (status, _, body) = via.send(Call { method: "DELETE", path, ..as_user(&bob) }).await;
        assert_eq!(
            (status, problem_code(&body)),
            (StatusCode::NOT_FOUND, "route_not_found"),
            "{}: {body}",
            via.name()
        );
    }
    let (status, _, _) = b
        .send(Call { method: "GET", path: "/items/read/1", api_key: Some(&key), ..Call::default() })
        .await;
    assert_eq!(status, 200, "alice's key survives bob's attempt");

    // Refusals, on both protocols.
    for via in [a, b] {
        let name = via.name();
        // Without a session: 401 for every call.
        for call in [
            Call { method: "GET", path: "/.frontgate/keys", ..Call::default() },
            Call {
                method: "POST",
                path: "/.frontgate/keys",
                origin: Some(origin),
                csrf: true,
                json: Some(r#"{"name":"x","scopes":[]}"#),
                ..Call::default()
            },
            Call {
                method: "DELETE",
                path: &item,
                origin: Some(origin),
                csrf: true,
                ..Call::default()
            },
            Call {
                method: "GET",
                path: "/.frontgate/keys",
                cookie: Some("A".repeat(43).leak()),
                ..Call::default()
            },
        ] {
            let (status, headers, body) = via.send(call).await;
            assert_eq!(
                (status, problem_code(&body)),
                (StatusCode::UNAUTHORIZED, "unauthenticated"),
                "{name} {} {}",
                call.method,
                call.path
            );
            assert_eq!(headers["content-type"], "application/problem+json");
        }
        // Without the CSRF header, or from another origin: 403, and nothing made or revoked.
        let mint_ok = r#"{"name":"csrf","scopes":["items:read"]}"#;
        for call in [
            Call { csrf: false, ..mint(&alice, mint_ok) },
            Call { origin: Some("http://127.0.0.1:1"), ..mint(&alice, mint_ok) },
            Call { origin: None, ..mint(&alice, mint_ok) },
            Call { method: "DELETE", path: &item, csrf: false, ..as_user(&alice) },
            Call {
                method: "DELETE",
                path: &item,
                origin: Some("http://evil.example"),
                ..as_user(&alice)
            },
        ] {
            let (status, _, body) = via.send(call).await;
            assert_eq!(
                (status, problem_code(&body)),
                (StatusCode::FORBIDDEN, "csrf_failed"),
                "{name} {} csrf={} origin={:?}",
                call.method,
                call.csrf,
                call.origin
            );
        }
        // A scope users may not grant themselves (though a route requires it): 403.
        let (status, _, body) =
            via.send(mint(&alice, r#"{"name":"x","scopes":["items:admin"]}"#)).await;
        assert_eq!(
            (status, problem_code(&body)),
            (StatusCode::FORBIDDEN, "insufficient_scope"),
            "{name}: {body}"
        );
        assert!(body["detail"].as_str().unwrap().contains("items:admin"), "{body}");
        // Bad bodies: 400 validation_failed (415 for another media type).
        for (json, what) in [
            (r#"{"name":"x","scopes":["items:read"],"owner":"bob"}"#, "unknown field"),
            (r#"{"name":"x","scopes":["items:read"],"subject":"bob"}"#, "unknown field"),
            (
                r#"{"name":"x","scopes":["items:read"],"expires_in":"31d"}"#,
                "longer than the most allowed",
            ),
            (r#"{"name":"x","scopes":["items:read"],"expires_in":"soon"}"#, "not a duration"),
            (r#"{"name":"x","scopes":["items:read"],"expires_in":"0s"}"#, "longer than 0"),
            (r#"{"name":" ","scopes":["items:read"]}"#, "name"),
            (r#"{"name":"x""#, "body is not valid"),
            (r#"{"scopes":["items:read"]}"#, "missing field"),
        ] {
            let (status, _, body) = via.send(mint(&alice, json)).await;
            assert_eq!(
                (status, problem_code(&body)),
                (StatusCode::BAD_REQUEST, "validation_failed"),
                "{name}: {json}: {body}"
            );
            assert!(body["detail"].as_str().unwrap_or("").contains(what), "{name}: {json}: {body}");
        }
        let mut form = Call { ..mint(&alice, "name=x") };
        form.json = None;
        let (status, _, body) = via.send(Call { method: "POST", ..form }).await;
        assert_eq!(
            (status, problem_code(&body)),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            "{name}: {body}"
        );
        // Other methods: 405 with Allow.
        let (status, headers, body) =
            via.send(Call { method: "PUT", path: "/.frontgate/keys", ..as_user(&alice) }).await;
        assert_eq!(
            (status, problem_code(&body)),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            "{name}"
        );
        assert_eq!(headers["allow"], "GET, POST");
    }

    // Over max_keys (3) live keys: 409 with a clear detail. Alice has 1; two more pass.
    for i in 0..2 {
        let (status, _, body) = a
            .send(mint(&alice, format!(r#"{{"name":"extra {i}","scopes":["items:read"]}}"#).leak()))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, _, body) =
        b.send(mint(&alice, r#"{"name":"one too many","scopes":["items:read"]}"#)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("3 live API keys"), "{body}");
    // Bob's count is his own.
    let (status, _, _) = a.send(mint(&bob, r#"{"name":"bob 2","scopes":["items:read"]}"#)).await;
    assert_eq!(status, 201);

    // Alice revokes her first key on node a while node b has it cached: node b refuses it
    // within a second (the revocation event through Redis), and the slot is free again.
    let use_on_b =
        Call { method: "GET", path: "/items/read/2", api_key: Some(&key), ..Call::default() };
    assert_eq!(b.send(use_on_b).await.0, 200, "cached on node b");
    let (status, headers, body) =
        a.send(Call { method: "DELETE", path: &item, ..as_user(&alice) }).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let revoked = Instant::now();
    loop {
        let (status, _, body) = b.send(use_on_b).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(problem_code(&body), "api_key_revoked");
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "node b still takes the revoked key after {:?}\n{}",
            revoked.elapsed(),
            context()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let took = revoked.elapsed();
    let (status, _, body) = a.send(use_on_b).await;
    assert_eq!((status, problem_code(&body)), (StatusCode::UNAUTHORIZED, "api_key_revoked"));
    // Revoking again is not an error; the listing shows when it was revoked.
    assert_eq!(
        b.send(Call { method: "DELETE", path: &item, ..as_user(&alice) }).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, _, listed) = b.send(list(&alice)).await;
    let first = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .expect("still listed")
        .clone();
    assert!(first["revoked_at"].is_string(), "{first}");
    let (status, _, body) =
        b.send(mint(&alice, r#"{"name":"replacement","scopes":["items:read"]}"#)).await;
    assert_eq!(status, 201, "a revoked key frees its slot: {body}");
    // Bob's keys are untouched.
    let (status, _, _) = a
        .send(Call {
            method: "POST",
            path: "/items/write/1",
            api_key: Some(&bob_key),
            ..Call::default()
        })
        .await;
    assert_eq!(status, 200);

    // Audit events as the admin API writes them, with the user as the actor.
    let (status, audit) = admin_call(
        node_a.admin.unwrap(),
        Some(ADMIN_TOKEN),
        "GET",
        &format!("/admin/v1/audit?target={id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let events: Vec<(String, String)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["actor"].as_str().unwrap().to_owned(), e["action"].as_str().unwrap().to_owned())
        })
        .collect();
    let want = |action: &str| ("session:alice".to_owned(), action.to_owned());
    assert_eq!(events, [want("api_key.revoke"), want("api_key.create")], "{audit}");
    // The admin API sees the owner's keys like any other.
    let (status, record) = admin_call(
        node_b.admin.unwrap(),
        Some(ADMIN_TOKEN),
        "GET",
        &format!("/admin/v1/keys/{bob_id}"),
        None,
    )
    .await;
    assert_eq!((status, record["subject"].as_str()), (StatusCode::OK, Some("bob")));

    // Metrics: creates and revokes per node.
    let (ma, mb) = (node_a.metrics().await, node_b.metrics().await);
    let creates = counter(&ma, "frontgate_api_key_self_service_total{action=\"create\"}")
        + counter(&mb, "frontgate_api_key_self_service_total{action=\"create\"}");
    let revokes = counter(&ma, "frontgate_api_key_self_service_total{action=\"revoke\"}")
        + counter(&mb, "frontgate_api_key_self_service_total{action=\"revoke\"}");
    assert_eq!((creates, revokes), (6.0, 2.0), "--- a\n{ma}\n--- b\n{mb}");
    eprintln!("revocation reached the other node in {took:?}");
}

/// One node on the default SQLite store (keys, owners and sessions in one file): the limit is
/// counted there too, a revoked key is refused at once, and another user's id is a 404.
#[tokio::test]
async fn one_node_on_sqlite_counts_revokes_and_hides_other_users_keys() {
    let world = World::start(None).await;
    let gate = start_node(&Node {
        port: world.port,
        tls: false,
        origin: &world.origin,
        issuer: &world.idp.issuer,
        session_key: &world.key,
        upstream: &world.upstream,
        shared: None,
    });
    let context = || format!("--- gate\n{}\n--- idp\n{}", gate.logs(), world.idp.logs());
    let dir = tempfile::tempdir().unwrap();
    let carol = login(&world, "carol", dir.path(), context).await;
    let dan = login(&world, "dan", dir.path(), context).await;
    let via = Via::H1(&gate);
    let origin = world.origin.as_str();
    let user =
        |cookie| Call { cookie: Some(cookie), origin: Some(origin), csrf: true, ..Call::default() };
    let mint = |cookie, name: &'static str| Call {
        method: "POST",
        path: "/.frontgate/keys",
        json: Some(format!(r#"{{"name":"{name}","scopes":["items:write"]}}"#).leak()),
        ..user(cookie)
    };
    // items:both guards a route carol's session may not use (her session's scopes are
    // openid, profile, email, offline_access): a key of hers cannot carry it either.
    let both = Call {
        method: "POST",
        path: "/.frontgate/keys",
        json: Some(r#"{"name":"both","scopes":["items:both"]}"#),
        ..user(&carol)
    };
    let (status, _, body) = via.send(both).await;
    assert_eq!(
        (status, problem_code(&body)),
        (StatusCode::FORBIDDEN, "insufficient_scope"),
        "{body}"
    );
    let mut keys = Vec::new();
    for name in ["one", "two", "three"] {
        let (status, _, body) = via.send(mint(&carol, name)).await;
        assert_eq!(status, 201, "{body}\n{}", context());
        keys.push((
            body["id"].as_str().unwrap().to_owned(),
            body["key"].as_str().unwrap().to_owned(),
        ));
    }
    let (status, _, body) = via.send(mint(&carol, "four")).await;
    assert_eq!((status, problem_code(&body)), (StatusCode::CONFLICT, "bad_request"), "{body}");
    let (status, _, dans) = via.send(mint(&dan, "dan's")).await;
    assert_eq!(status, 201, "{dans}");
    let (_, _, listed) =
        via.send(Call { method: "GET", path: "/.frontgate/keys", ..user(&carol) }).await;
    let listed = listed["keys"].as_array().unwrap();
    let mut names: Vec<&str> = listed.iter().map(|k| k["name"].as_str().unwrap()).collect();
    let created: Vec<&str> = listed.iter().map(|k| k["created_at"].as_str().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
    names.sort();
    assert_eq!(names, ["one", "three", "two"], "carol's keys only");
    let (id, key) = &keys[0];
    let write =
        Call { method: "POST", path: "/items/write/1", api_key: Some(key), ..Call::default() };
    assert_eq!(via.send(write).await.0, 200);
    let theirs = format!("/.frontgate/keys/{}", dans["id"].as_str().unwrap());
    let (status, _, _) = via.send(Call { method: "DELETE", path: &theirs, ..user(&carol) }).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mine = format!("/.frontgate/keys/{id}");
    let (status, _, body) = via.send(Call { method: "DELETE", path: &mine, ..user(&carol) }).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _, body) = via.send(write).await;
    assert_eq!((status, problem_code(&body)), (StatusCode::UNAUTHORIZED, "api_key_revoked"));
    let (status, _, body) = via.send(mint(&carol, "four")).await;
    assert_eq!(status, 201, "the revoked key's slot is free: {body}");
}

/// `frontgate check` and `frontgate serve` refuse the same configs with the same message.
#[tokio::test]
async fn config_errors_are_refused_by_check_and_serve_alike() {
    let upstream = Upstream::start().await;
    let oidc = format!(
        "[oidc]\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\nsession_key = \"{}\"\n",
        common::sessions::session_key()
    );
    let keys = format!("[api_keys]\nhash_secret = \"{HASH_SECRET}\"\n");
    let route =
        "[[routes]]\nmatch = \"/items/**\"\nauth = \"api_key\"\nscopes = [\"items:read\"]\n";
    let session_route =
        "[[routes]]\nmatch = \"/app/**\"\nauth = \"session\"\nscopes = [\"profile:read\"]\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{keys}[api_keys.self_service]\nscopes = [\"items:read\"]\n{route}"),
            "[api_keys.self_service] needs [oidc]",
        ),
        (
            format!(
                "{keys}[api_keys.self_service]\nscopes = [\"items:read\", \"items:delete\"]\n{oidc}{route}"
            ),
            "[api_keys.self_service] scopes: `items:delete` is not required by any route that takes API keys",
        ),
        (
            // A scope only a session route requires opens nothing with a key.
            format!(
                "{keys}[api_keys.self_service]\nscopes = [\"profile:read\"]\n{oidc}{route}{session_route}"
            ),
            "[api_keys.self_service] scopes: `profile:read` is not required by any route that takes API keys",
        ),
        (
            format!("{keys}[api_keys.self_service]\nscopes = []\n{oidc}{route}"),
            "[api_keys.self_service] scopes must list at least one scope",
        ),
        (
            format!(
                "{keys}[api_keys.self_service]\nscopes = [\"items:read\"]\nmax_key = 5\n{oidc}{route}"
            ),
            "unknown key `max_key`",
        ),
        (
            format!(
                "{keys}[api_keys.self_service]\nscopes = [\"items:read\"]\nmax_keys = 0\n{oidc}{route}"
            ),
            "[api_keys.self_service] max_keys must be between 1 and 1000",
        ),
        (
            format!(
                "{keys}[api_keys.self_service]\nscopes = [\"items:read\"]\nmax_ttl = \"0s\"\n{oidc}{route}"
            ),
            "[api_keys.self_service] max_ttl must be longer than 0",
        ),
        (
            format!("{keys}[api_keys.self_service]\nmax_keys = 5\n{oidc}{route}"),
            "missing field `scopes`",
        ),
    ];
    // The control: the same sections, right, pass `check`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frontgate.toml");
    let good = format!("{keys}[api_keys.self_service]\nscopes = [\"items:read\"]\n{oidc}{route}");
    let text = common::config_text(
        dir.path(),
        "tls = \"off\"\npublic_url = \"https://app.example.com\"\ntrusted_proxies = [\"10.0.0.1\"]",
        &format!("{}\n{good}", upstream.config()),
    );
    std::fs::write(&path, &text).unwrap();
    let out = Command::new(common::BIN).args(["check", "-c"]).arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "check refused a good config:\n{text}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (rest, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frontgate.toml");
        let text = common::config_text(
            dir.path(),
            "tls = \"off\"\npublic_url = \"https://app.example.com\"\ntrusted_proxies = [\"10.0.0.1\"]",
            &format!("{}\n{rest}", upstream.config()),
        );
        std::fs::write(&path, &text).unwrap();
        let mut messages = Vec::new();
        for cmd in ["check", "serve"] {
            let out = Command::new(common::BIN)
                .args([cmd, "-c"])
                .arg(&path)
                .env_remove("FRONTGATE_CONFIG")
                .env_remove("FRONTGATE_LOG")
                .stdin(Stdio::null())
                .output()
                .expect("run frontgate");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.status.success(), "{cmd} accepted:\n{text}\n{all}");
            assert!(all.contains("1 error(s) in"), "{cmd}: one error expected:\n{all}");
            let line = all
                .lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{cmd}: no `{needle}` in:\n{all}\nconfig:\n{text}"))
                .to_owned();
            // serve's lines may be wrapped in a JSON log line; compare the message itself.
            let start = line.find(path.display().to_string().as_str()).unwrap_or(0);
            messages.push(line[start..].trim_end_matches(['"', '}']).to_owned());
        }
        assert_eq!(messages[0], messages[1], "check and serve word it differently");
    }
}
