//! Revocable API keys against the real binary, on SQLite and on PostgreSQL (every test runs
//! on both): the attacker's cases (malformed, mistyped, unknown, expired, revoked, wrong scope,
//! wrong origin, wrong network, key in the URL), rotation grace, budgets, the admin API and
//! CLI, a store outage, and revocation across two nodes sharing PostgreSQL and Redis.

use crate::common;

use std::time::{Duration, Instant};

use common::api_keys::{ADMIN_TOKEN, KeyGate, admin_call};
use common::stores::{self, BACKENDS, Backend, PgDb};
use http::StatusCode;
use serde_json::json;

const LOOKUPS: &str = "frontgate_api_key_store_lookups_total";

fn code(v: &serde_json::Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

/// Polls `f` until it returns true, for at most `limit` (bounded waits, never a timed assertion).
async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn valid_keys_pass_and_the_upstream_gets_identity_never_the_key() {
    for backend in BACKENDS {
        let g = KeyGate::start(backend, "", "").await;
        let (key, id) = g
            .create_key(
                json!({"name": "ci", "subject": "team-ci", "scopes": ["items:read", "extra"]}),
            )
            .await;
        for header in [("x-api-key", key.clone()), ("authorization", format!("Bearer {key}"))] {
            let (status, _, v) =
                g.get("/echo/a", &[(header.0, &header.1), ("x-frontgate-key-id", "forged")]).await;
            assert_eq!(status, 200, "{backend:?}: {v}");
            let h = &v["headers"];
            assert_eq!(h["x-frontgate-key-id"], json!([id]), "{backend:?}");
            assert_eq!(h["x-frontgate-subject"], json!(["team-ci"]));
            assert_eq!(h["x-frontgate-scopes"], json!(["items:read extra"]));
            assert!(
                h.get("x-api-key").is_none() && h.get("authorization").is_none(),
                "the key reached the upstream: {h}"
            );
        }
        // Credentials beside the key that authenticated were not verified: none reaches the
        // upstream, where a framework could believe them.
        let forged = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
        let (status, _, v) = g
            .get("/echo/a", &[("x-api-key", &key), ("authorization", forged), ("dpop", "forged")])
            .await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        let h = &v["headers"];
        assert!(
            h.get("authorization").is_none() && h.get("dpop").is_none(),
            "an unverified credential reached the upstream: {h}"
        );
        // No credential at all: the 401 says how to authenticate (RFC 6750 §3).
        let (status, h, v) = g.get("/echo/a", &[]).await;
        assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
        assert_eq!(
            h.get_all("www-authenticate").iter().collect::<Vec<_>>(),
            ["Bearer realm=\"frontgate\""]
        );
        let (status, h, _) = g
            .get(
                "/echo/a",
                &[(
                    "authorization",
                    &format!("Bearer {}", frontgate::keys::format::generate("fgk_")),
                )],
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(h["www-authenticate"], "Bearer realm=\"frontgate\", error=\"invalid_token\"");
        // A name that cannot travel in a header (and no subject): the subject is the key's id.
        let (named, named_id) =
            g.create_key(json!({"name": "Café ☕ dashboard", "scopes": ["items:read"]})).await;
        let (status, _, v) = g.get("/echo/a", &[("x-api-key", &named)]).await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_eq!(v["headers"]["x-frontgate-subject"], json!([named_id]));
        // Two different keys are ambiguous.
        let (other, _) = g.create_key(json!({"name": "other", "scopes": ["items:read"]})).await;
        let (status, _, v) = g
            .get("/echo/a", &[("x-api-key", &key), ("authorization", &format!("Bearer {other}"))])
            .await;
        assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "api_key_invalid"), "{v}");
        // Wrong scope for the route.
        let (status, h, v) = g.get("/status/200", &[("x-api-key", &key)]).await;
        assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"), "{v}");
        assert_eq!(
            h["www-authenticate"],
            "Bearer realm=\"frontgate\", error=\"insufficient_scope\", scope=\"admin\""
        );
        assert!(!g.gate.logs().contains(&key), "a key reached the logs");
    }
}

#[tokio::test]
async fn malformed_and_mistyped_keys_are_refused_before_any_lookup() {
    for backend in BACKENDS {
        let g = KeyGate::start(backend, "cache_ttl = \"5m\"", "").await;
        let (key, _) = g.create_key(json!({"name": "k", "scopes": ["items:read"]})).await;
        let before = g.counter(LOOKUPS, "").await;
        let mut typo = key.clone().into_bytes();
        typo[10] = if typo[10] == b'x' { b'y' } else { b'x' };
        let typo = String::from_utf8(typo).unwrap();
        let cases = [
            "fgk_short".to_owned(),
            format!("{}!", &key[..key.len() - 1]),
            format!("xyz_{}", &key[4..]),
            format!("{key}0"),
            typo,
            "fgk_".to_owned() + &"A".repeat(36),
            "\u{7f}".to_owned(),
        ];
        for bad in &cases {
            let Ok(v) = http::HeaderValue::from_str(bad) else { continue };
            let (status, _, body) = g.get("/echo/a", &[("x-api-key", v.to_str().unwrap())]).await;
            assert_eq!(
                (status, code(&body)),
                (StatusCode::UNAUTHORIZED, "api_key_invalid"),
                "{backend:?} {bad}: {body}"
            );
        }
        assert_eq!(
            g.counter(LOOKUPS, "").await,
            before,
            "{backend:?}: a malformed key reached the store"
        );
        assert!(
            g.counter("frontgate_api_key_verifications_total", "result=\"bad_checksum\"").await
                >= 1.0
        );
        // A well-formed key that does not exist costs one lookup; the second try is answered
        // from the bounded negative cache.
        let unknown = frontgate::keys::format::generate("fgk_");
        for _ in 0..3 {
            let (status, _, body) = g.get("/echo/a", &[("x-api-key", &unknown)]).await;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "api_key_invalid"));
        }
        assert_eq!(g.counter(LOOKUPS, "").await, before + 1.0, "{backend:?}");
        // And a real key is looked up once, then served from the cache.
        for _ in 0..3 {
            assert_eq!(g.get("/echo/a", &[("x-api-key", &key)]).await.0, 200);
        }
        assert_eq!(g.counter(LOOKUPS, "").await, before + 2.0, "{backend:?}");
    }
}

#[tokio::test]
async fn expired_revoked_and_budgeted_keys_are_refused() {
    for backend in BACKENDS {
        let g = KeyGate::start(backend, "", "").await;
        let (expired, _) =
            g.create_key(json!({"name": "e", "scopes": ["items:read"], "expires_in": "1ms"})).await;
        let (status, _, v) = g.get("/echo/a", &[("x-api-key", &expired)]).await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::UNAUTHORIZED, "api_key_expired"),
            "{backend:?}: {v}"
        );

        // Revocation takes effect at once on this node, although the key is cached here.
        let (key, id) = g.create_key(json!({"name": "r", "scopes": ["items:read"]})).await;
        assert_eq!(g.get("/echo/a", &[("x-api-key", &key)]).await.0, 200);
        let (status, rec) =
            g.admin_call("DELETE", &format!("/admin/v1/keys/{id}?reason=leaked"), None).await;
        assert_eq!(status, 200, "{rec}");
        assert_eq!(rec["revoked_reason"], "leaked");
        assert!(rec["revoked_at"].is_string());
        let (status, _, v) = g.get("/echo/a", &[("x-api-key", &key)]).await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::UNAUTHORIZED, "api_key_revoked"),
            "{backend:?}: {v}"
        );
        // Revoking again changes nothing.
        let (status, v2) = g.admin_call("DELETE", &format!("/admin/v1/keys/{id}"), None).await;
        assert_eq!(
            (status, &v2["revoked_at"], &v2["revoked_reason"]),
            (StatusCode::OK, &rec["revoked_at"], &json!("leaked"))
        );

        let (budget, _) =
            g.create_key(json!({"name": "b", "scopes": ["items:read"], "uses": 2})).await;
        assert_eq!(g.get("/echo/a", &[("x-api-key", &budget)]).await.0, 200);
        assert_eq!(g.get("/echo/a", &[("x-api-key", &budget)]).await.0, 200);
        let (status, _, v) = g.get("/echo/a", &[("x-api-key", &budget)]).await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::UNAUTHORIZED, "api_key_expired"),
            "{backend:?}: {v}"
        );
    }
}

#[tokio::test]
async fn origins_networks_and_keys_in_urls() {
    for backend in BACKENDS {
        let g = KeyGate::start(backend, "", "").await;
        let (bound, _) = g.create_key(json!({"name": "spa", "scopes": ["items:read"], "origins": ["https://app.example.com"]})).await;
        let (status, _, v) =
            g.get("/echo/a", &[("x-api-key", &bound), ("origin", "https://app.example.com")]).await;
        assert_eq!(status, 200, "{v}");
        // An origin the CORS policy allows, but this key does not.
        let (status, _, v) = g
            .get("/echo/a", &[("x-api-key", &bound), ("origin", "https://other.example.com")])
            .await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::FORBIDDEN, "origin_denied"),
            "{backend:?}: {v}"
        );
        let (status, _, v) = g.get("/echo/a", &[("x-api-key", &bound)]).await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::FORBIDDEN, "origin_denied"),
            "a bound key without an Origin: {v}"
        );

        let (far, _) = g
            .create_key(
                json!({"name": "office", "scopes": ["items:read"], "cidrs": ["10.0.0.0/8"]}),
            )
            .await;
        let (status, _, v) = g.get("/echo/a", &[("x-api-key", &far)]).await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::FORBIDDEN, "client_denied"),
            "{backend:?}: {v}"
        );
        let (near, _) = g
            .create_key(
                json!({"name": "local", "scopes": ["items:read"], "cidrs": ["127.0.0.0/8", "::1"]}),
            )
            .await;
        assert_eq!(g.get("/echo/a", &[("x-api-key", &near)]).await.0, 200);

        let hits = g.upstream.hits();
        for q in [
            format!("/echo/a?api_key={near}"),
            format!("/echo/a?x={near}"),
            format!("/echo/a?APIKEY={}", &near[..8]),
        ] {
            let (status, _, v) = g.get(&q, &[("x-api-key", &near)]).await;
            assert_eq!(
                (status, code(&v)),
                (StatusCode::BAD_REQUEST, "credentials_in_query"),
                "{q}: {v}"
            );
        }
        // On a route that takes no keys, a key in the URL is the same leak, the same answer;
        // a parameter merely named `key` is that route's own.
        for q in [
            format!("/open?token={near}"),
            format!("/open?x=1&k={}", near.replace('_', "%5F")),
            format!("/open?x=1;k={near}"),
            format!("/open?x=%20{near}"),
        ] {
            let (status, _, v) = g.get(&q, &[]).await;
            assert_eq!(
                (status, code(&v)),
                (StatusCode::BAD_REQUEST, "credentials_in_query"),
                "{q}: {v}"
            );
        }
        assert_eq!(g.upstream.hits(), hits, "a key in the URL reached the upstream");
        assert!(!g.gate.logs().contains(&near[4..]), "a key in the URL reached the logs");
        assert_eq!(g.get("/open?key=sort&api=1", &[]).await.0, 200);
    }
}

#[tokio::test]
async fn a_keys_own_rate_limit_replaces_the_routes_per_key_limit() {
    // The route allows each key 3 an hour; one key brings its own 2/h, another its own 50/h.
    let limited = "[rate_limits.per_key]\nkey = \"api_key\"\nrate = \"3/h\"\n\n\
                   [[routes]]\nmatch = \"GET /limited\"\nauth = \"api_key\"\nscopes = [\"items:read\"]\nrate_limit = [\"per_key\"]\n";
    for backend in BACKENDS {
        let g = KeyGate::start(backend, "", limited).await;
        let (slow, slow_id) = g
            .create_key(json!({"name": "slow", "scopes": ["items:read"], "rate_limit": "2/h"}))
            .await;
        let (plain, _) = g.create_key(json!({"name": "plain", "scopes": ["items:read"]})).await;
        let hits = g.upstream.hits();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(g.get("/limited", &[("x-api-key", &slow)]).await.0.as_u16());
        }
        assert_eq!(statuses, [200, 200, 429], "{backend:?}");
        assert_eq!(
            g.upstream.hits(),
            hits + 2,
            "{backend:?}: a limited request reached the upstream"
        );
        // The key's bucket is its own on every route it authenticates, also where the route has
        // no limit (`/echo/**`): the key is spent there too.
        let (status, h, v) = g.get("/echo/a", &[("x-api-key", &slow)]).await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            "{backend:?}: {v}"
        );
        assert!(v["detail"].as_str().unwrap().contains("API key's own rate limit"), "{v}");
        let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=1800).contains(&retry), "Retry-After {retry}");
        assert_eq!(h["ratelimit-policy"], "\"api_key_rate_limit\";q=2;w=3600");
        // A key without its own limit gets the route's, untouched by the other key's use.
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(g.get("/limited", &[("x-api-key", &plain)]).await.0.as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 429], "{backend:?}");
        // A key's own limit replaces the route's per-key limit, also when it is higher.
        let (fast, _) = g
            .create_key(json!({"name": "fast", "scopes": ["items:read"], "rate_limit": "50/h"}))
            .await;
        for i in 0..5 {
            assert_eq!(
                g.get("/limited", &[("x-api-key", &fast)]).await.0,
                200,
                "{backend:?}: request {i}"
            );
        }
        assert!(
            g.counter("frontgate_rate_limited_total", "limit=\"api_key_rate_limit\"").await >= 2.0
        );
        assert!(!g.gate.logs().contains(&slow), "{slow_id}: the key reached the logs");
    }
}

#[tokio::test]
async fn rotation_keeps_the_old_key_until_its_grace_ends() {
    for backend in BACKENDS {
        let g = KeyGate::start(backend, "", "").await;
        let (old, id) = g
            .create_key(json!({"name": "svc", "scopes": ["items:read"], "expires_in": "30d"}))
            .await;
        assert_eq!(g.get("/echo/a", &[("x-api-key", &old)]).await.0, 200);
        let (status, v) = g
            .admin_call(
                "POST",
                &format!("/admin/v1/keys/{id}/rotate"),
                Some(json!({"grace": "1h"})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let new = v["key"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        assert_eq!(v["rotated_from"], json!(id));
        assert_eq!(v["previous"]["replaced_by"], v["id"]);
        assert_eq!(v["scopes"], json!(["items:read"]));
        // Within the grace period both work (the grace is long, so no timing is involved).
        assert_eq!(g.get("/echo/a", &[("x-api-key", &new)]).await.0, 200);
        assert_eq!(
            g.get("/echo/a", &[("x-api-key", &old)]).await.0,
            200,
            "{backend:?}: the old key must work during its grace"
        );
        // A rotated key cannot be rotated again.
        let (status, _) = g.admin_call("POST", &format!("/admin/v1/keys/{id}/rotate"), None).await;
        assert_eq!(status, StatusCode::CONFLICT);

        // A short grace ends (bounded wait), and then only the successor works.
        let (old, id) = g.create_key(json!({"name": "svc2", "scopes": ["items:read"]})).await;
        let (status, v) = g
            .admin_call(
                "POST",
                &format!("/admin/v1/keys/{id}/rotate"),
                Some(json!({"grace": "300ms"})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let new = v["key"].as_str().unwrap().to_owned();
        let ended = eventually(Duration::from_secs(10), || async {
            let (status, _, v) = g.get("/echo/a", &[("x-api-key", &old)]).await;
            status == 401 && code(&v) == "api_key_expired"
        })
        .await;
        assert!(ended, "{backend:?}: the old key outlived its grace period");
        assert_eq!(g.get("/echo/a", &[("x-api-key", &new)]).await.0, 200);
        // A zero grace ends the old key at once.
        let new_id = v["id"].as_str().unwrap();
        let (status, v) = g
            .admin_call(
                "POST",
                &format!("/admin/v1/keys/{new_id}/rotate"),
                Some(json!({"grace": "0s"})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let (status, _, body) = g.get("/echo/a", &[("x-api-key", &new)]).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "api_key_expired"));
        assert_eq!(g.get("/echo/a", &[("x-api-key", v["key"].as_str().unwrap())]).await.0, 200);
    }
}

#[tokio::test]
async fn admin_api_needs_the_token_lists_without_secrets_and_audits_every_change() {
    for backend in BACKENDS {
        let g = KeyGate::start(backend, "last_used_flush = \"100ms\"", "").await;
        for token in [None, Some("wrong"), Some("")] {
            let (status, v) = admin_call(g.admin(), token, "GET", "/admin/v1/keys", None).await;
            assert_eq!(
                (status, code(&v)),
                (StatusCode::UNAUTHORIZED, "unauthenticated"),
                "{token:?}"
            );
        }
        let (status, v) = admin_call(
            g.admin(),
            Some(&ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]),
            "POST",
            "/admin/v1/keys",
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(status, 401, "{v}");
        let (key, id) = g
            .create_key(
                json!({"name": "listed", "scopes": ["items:read"], "metadata": {"team": "a"}}),
            )
            .await;
        let (status, v) = g.admin_call("GET", "/admin/v1/keys", None).await;
        assert_eq!(status, 200);
        let listed = v["keys"].as_array().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["id"], json!(id));
        assert_eq!(listed[0]["metadata"], json!({"team": "a"}));
        assert_eq!(listed[0]["hint"], json!(format!("fgk_...{}", &key[key.len() - 4..])));
        assert!(!v.to_string().contains(&key[4..20]), "a secret in the list: {v}");
        for (body, field) in [
            (json!({"name": ""}), "name"),
            (json!({"name": "a", "scopes": ["a b"]}), "scope"),
            (json!({"name": "a", "cidrs": ["nope"]}), "cidrs"),
            (json!({"name": "a", "surprise": 1}), "surprise"),
            (json!(["not", "an", "object"]), "body"),
        ] {
            let (status, v) = g.admin_call("POST", "/admin/v1/keys", Some(body)).await;
            assert_eq!(
                (status, code(&v)),
                (StatusCode::BAD_REQUEST, "validation_failed"),
                "{field}: {v}"
            );
            assert!(v["detail"].as_str().unwrap().contains(field), "{field}: {v}");
        }
        let (status, v) = g.admin_call("GET", "/admin/v1/keys/key_nope", None).await;
        assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "route_not_found"));
        let (status, _) = g.admin_call("DELETE", "/admin/v1/keys/key_nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Last-used times are written in batches, not per request.
        assert_eq!(g.get("/echo/a", &[("x-api-key", &key)]).await.0, 200);
        let written = eventually(Duration::from_secs(10), || async {
            g.admin_call("GET", &format!("/admin/v1/keys/{id}"), None).await.1["last_used_at"]
                .is_string()
        })
        .await;
        assert!(written, "{backend:?}: last_used_at never written");
        g.admin_call("POST", &format!("/admin/v1/keys/{id}/rotate"), Some(json!({"grace": "1m"})))
            .await;
        g.admin_call("DELETE", &format!("/admin/v1/keys/{id}"), None).await;
        let (status, v) = g.admin_call("GET", &format!("/admin/v1/audit?target={id}"), None).await;
        assert_eq!(status, 200, "{v}");
        let actions: Vec<&str> =
            v["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["api_key.revoke", "api_key.rotate", "api_key.create"], "{backend:?}");
        assert!(!v.to_string().contains(&key[4..]), "a key in the audit log");
        let (status, v) = g.admin_call("GET", "/admin/v1/openapi.json", None).await;
        assert_eq!((status, v["openapi"].as_str()), (StatusCode::OK, Some("3.0.3")));
    }
}

#[tokio::test]
async fn the_cli_manages_keys_in_the_same_store() {
    for backend in BACKENDS {
        let g = KeyGate::start(backend, "cache_ttl = \"200ms\"", "").await;
        let cli = |args: &[&str]| {
            let out = std::process::Command::new(common::BIN)
                .arg("keys")
                .args(args)
                .arg("-c")
                .arg(&g.gate.config_path)
                .output()
                .expect("run frontgate keys");
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON output")
        };
        let v = cli(&[
            "create",
            "--name",
            "from-cli",
            "--scopes",
            "items:read,items:write",
            "--expires-in",
            "90d",
            "--origins",
            "https://app.example.com",
        ]);
        let (key, id) =
            (v["key"].as_str().unwrap().to_owned(), v["id"].as_str().unwrap().to_owned());
        assert_eq!(v["scopes"], json!(["items:read", "items:write"]));
        let (status, _, body) =
            g.get("/echo/a", &[("x-api-key", &key), ("origin", "https://app.example.com")]).await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert_eq!(cli(&["show", &id])["name"], "from-cli");
        assert!(cli(&["list"])["keys"].as_array().unwrap().iter().any(|k| k["id"] == json!(id)));
        assert_eq!(cli(&["revoke", &id, "--reason", "test"])["revoked_reason"], "test");
        // No Redis here: the gateway sees the CLI's revocation within cache_ttl (bounded wait).
        let refused = eventually(Duration::from_secs(10), || async {
            code(
                &g.get("/echo/a", &[("x-api-key", &key), ("origin", "https://app.example.com")])
                    .await
                    .2,
            ) == "api_key_revoked"
        })
        .await;
        assert!(refused, "{backend:?}");
        let out = std::process::Command::new(common::BIN)
            .args(["keys", "show", "key_none", "-c"])
            .arg(&g.gate.config_path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no key with id"));
    }
}

#[tokio::test]
async fn a_store_outage_is_a_503_problem_not_a_500_or_a_pass() {
    // PostgreSQL: drop the database under the running gateway.
    let pg = std::sync::Arc::new(PgDb::create());
    let store = format!("[store]\nurl = \"{}\"\ntimeout = \"1s\"\n", pg.url());
    let g = KeyGate::start_on(Backend::Postgres, &store, Some(pg.clone()), "", "").await;
    let (key, _) = g.create_key(json!({"name": "k", "scopes": ["items:read"]})).await;
    assert_eq!(common::plain_get(g.admin(), "/ready").await.0, 200);
    pg.drop_now();
    let (status, _, body) = common::plain_get(g.admin(), "/ready").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::SERVICE_UNAVAILABLE, &b"{\"status\":\"store_unavailable\"}"[..])
    );
    let hits = g.upstream.hits();
    let (status, _, v) = g.get("/echo/a", &[("x-api-key", &key)]).await;
    assert_eq!((status, code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"), "{v}");
    let unknown = frontgate::keys::format::generate("fgk_");
    let (status, _, v) = g.get("/echo/a", &[("x-api-key", &unknown)]).await;
    assert_eq!((status, code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"), "{v}");
    assert_eq!(g.upstream.hits(), hits);
    let (status, v) = g.admin_call("POST", "/admin/v1/keys", Some(json!({"name": "x"}))).await;
    assert_eq!((status, code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"), "{v}");
}

#[tokio::test]
async fn a_store_outage_at_start_is_a_clear_error() {
    let up = common::Upstream::start().await;
    let text = common::api_keys::keyed_config(
        &up,
        "[store]\nurl = \"postgres://postgres@127.0.0.1:1/none\"\ntimeout = \"1s\"\n",
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.toml");
    std::fs::write(&path, format!("data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{text}", dir.path().display().to_string())).unwrap();
    let out =
        std::process::Command::new(common::BIN).args(["serve", "-c"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the store at postgres://postgres@127.0.0.1:1/none"), "{err}");
}

/// Two nodes on one PostgreSQL database with a 5-minute key cache (so expiry cannot explain
/// anything), and `shared` as their `[shared]` section.
async fn two_nodes(shared: &str) -> (std::sync::Arc<PgDb>, KeyGate, KeyGate) {
    let pg = std::sync::Arc::new(PgDb::create());
    let store = format!("[store]\nurl = \"{}\"\n", pg.url());
    let ttl = "cache_ttl = \"5m\"";
    let a = KeyGate::start_on(Backend::Postgres, &store, Some(pg.clone()), ttl, shared).await;
    let b = KeyGate::start_on(Backend::Postgres, &store, Some(pg.clone()), ttl, shared).await;
    (pg, a, b)
}

/// B verifies (and caches) a key that A then revokes: B must refuse it, having read the record
/// once more because the event dropped its cache entry.
async fn revocation_on_a_reaches_b(a: &KeyGate, b: &KeyGate) {
    let (key, id) = a.create_key(json!({"name": "shared", "scopes": ["items:read"]})).await;
    for _ in 0..2 {
        assert_eq!(b.get("/echo/a", &[("x-api-key", &key)]).await.0, 200);
    }
    let lookups = b.counter(LOOKUPS, "").await;
    let (status, _) = a.admin_call("DELETE", &format!("/admin/v1/keys/{id}"), None).await;
    assert_eq!(status, 200);
    let refused = eventually(Duration::from_secs(10), || async {
        code(&b.get("/echo/a", &[("x-api-key", &key)]).await.2) == "api_key_revoked"
    })
    .await;
    assert!(refused, "node B kept accepting a key revoked on node A");
    assert_eq!(b.counter(LOOKUPS, "").await, lookups + 1.0);
}

#[tokio::test]
async fn a_key_revoked_on_node_a_is_refused_by_node_b_through_redis() {
    let (_pg, a, b) = two_nodes(&format!(
        "[shared]\nredis = \"{}\"\nprefix = \"{}\"\n",
        stores::REDIS_URL,
        stores::redis_prefix()
    ))
    .await;
    revocation_on_a_reaches_b(&a, &b).await;
}

#[tokio::test]
async fn a_key_revoked_on_node_a_is_refused_by_node_b_through_postgres_notify() {
    // No Redis: the nodes share only the PostgreSQL store.
    let (pg, a, b) = two_nodes("").await;
    let listens = || async { b.counter("frontgate_postgres_event_listens_total", "").await };
    // Listening (and its first resync) before B caches anything.
    let listening = eventually(Duration::from_secs(10), || async { listens().await >= 1.0 }).await;
    assert!(listening, "node B never listened");
    revocation_on_a_reaches_b(&a, &b).await;

    // When the listener's connection is cut, it listens again and drops everything cached,
    // since events sent meanwhile are lost.
    let (key, _) = a.create_key(json!({"name": "second", "scopes": ["items:read"]})).await;
    assert_eq!(b.get("/echo/a", &[("x-api-key", &key)]).await.0, 200);
    let lookups = b.counter(LOOKUPS, "").await;
    pg.terminate_listeners();
    let relistened = eventually(Duration::from_secs(10), || async { listens().await >= 2.0 }).await;
    assert!(relistened, "node B did not listen again");
    assert_eq!(b.get("/echo/a", &[("x-api-key", &key)]).await.0, 200);
    assert_eq!(b.counter(LOOKUPS, "").await, lookups + 1.0, "the resync did not drop B's cache");
}

#[tokio::test]
async fn reload_keeps_the_store_and_warns_when_it_changed() {
    let g = KeyGate::start(Backend::Sqlite, "", "").await;
    let (key, _) = g.create_key(json!({"name": "k", "scopes": ["items:read"]})).await;
    assert_eq!(g.get("/echo/a", &[("x-api-key", &key)]).await.0, 200);
    let text = std::fs::read_to_string(&g.gate.config_path).unwrap();
    let changed = text
        .replace("url = \"sqlite://frontgate.db\"", "url = \"sqlite://other.db\"")
        .replace("[api_keys]\n", "[api_keys]\ncache_ttl = \"1s\"\n");
    assert_ne!(changed, text);
    std::fs::write(&g.gate.config_path, changed).unwrap();
    g.gate.signal("HUP");
    assert!(
        g.gate.wait_for_log("configuration reloaded", Duration::from_secs(10)),
        "{}",
        g.gate.logs()
    );
    assert!(g.gate.logs().contains("[store] changed"), "{}", g.gate.logs());
    // The new pipeline verifies against the same (running) store.
    assert_eq!(g.get("/echo/a", &[("x-api-key", &key)]).await.0, 200);
    assert!(!g.gate.dir.path().join("data/other.db").exists());
}

/// The first-time user's case: `scopes` on a `[[routes]]` entry for an OpenAPI operation whose
/// document requires an API key. The entry merges into the operation and its scopes apply: a
/// key with only `items:read` cannot delete.
#[tokio::test]
async fn route_scopes_apply_to_the_openapi_operation_they_merge_into() {
    let upstream = common::Upstream::start().await;
    let spec_dir = tempfile::tempdir().unwrap();
    let spec = spec_dir.path().join("api.yaml");
    std::fs::write(
        &spec,
        "openapi: 3.0.3\ninfo: { title: t, version: '1' }\n\
         components: { securitySchemes: { key: { type: apiKey, in: header, name: X-API-Key } } }\n\
         security: [{ key: [] }]\npaths:\n  /echo/items/{id}:\n    parameters: [{ name: id, in: path, required: true, schema: { type: string } }]\n\
         \x20   get: { responses: { '200': { description: ok } } }\n\
         \x20   delete: { responses: { '200': { description: gone } } }\n",
    )
    .unwrap();
    let config = format!(
        "{}\n[store]\nurl = \"sqlite://frontgate.db\"\n[api_keys]\nhash_secret = \"{}\"\n[openapi]\nspec = {:?}\n\
         [[routes]]\nmatch = \"DELETE /echo/items/{{id}}\"\nscopes = [\"items:delete\"]\n",
        upstream.config(),
        common::api_keys::HASH_SECRET,
        spec.display().to_string()
    );
    let gate = common::api_keys::start_with_token(&config);
    let admin = gate.admin.unwrap();
    let key = |scopes: serde_json::Value| async move {
        let (status, v) = admin_call(
            admin,
            Some(ADMIN_TOKEN),
            "POST",
            "/admin/v1/keys",
            Some(json!({"name": "k", "scopes": scopes})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["key"].as_str().unwrap().to_owned()
    };
    let reader = key(json!(["items:read"])).await;
    let deleter = key(json!(["items:delete"])).await;
    let send = |method: &'static str, key: String| {
        let client = gate.tls();
        async move {
            let r = common::req(method, "/echo/items/7")
                .header("x-api-key", key)
                .body(http_body_util::Full::default())
                .unwrap();
            let (status, _, body) = client.send(r).await;
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default())
        }
    };
    assert_eq!(
        send("GET", reader.clone()).await.0,
        200,
        "the document's requirement alone: any key"
    );
    let (status, v) = send("DELETE", reader).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"), "{v}");
    assert_eq!(send("DELETE", deleter).await.0, 200);
    assert_eq!(upstream.hits(), 2);
}
