//! The OpenAPI positive security model against the real binary and a real upstream: only
//! declared operations exist, every parameter and body is validated before the upstream sees
//! it (the upstream's hit counter proves refusals happened at the gateway), responses are
//! reported, blocked or stripped, and hostile specs and bodies are refused with bounded work.

use crate::common;

use bytes::Bytes;
use common::openapi::*;
use common::*;
use http_body_util::Full;

fn config(up: &Upstream, openapi_extra: &str, rest: &str) -> String {
    format!("{}\n[openapi]\nspec = \"petstore.yaml\"\n{openapi_extra}\n{rest}\n", up.config())
}

/// Sends a request and returns (status, headers, body as JSON or Null).
async fn send(
    client: &TlsClient,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (u16, http::HeaderMap, serde_json::Value) {
    let mut r = req(method, path);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let (status, h, body) = client.send(r.body(Full::new(body.into())).unwrap()).await;
    let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status.as_u16(), h, v)
}

/// The `errors` pointers of a validation_failed problem.
fn pointers(v: &serde_json::Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["pointer"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}

fn assert_refused(
    case: &str,
    got: &(u16, http::HeaderMap, serde_json::Value),
    status: u16,
    code: &str,
    pointer: Option<&str>,
) {
    let (s, h, v) = got;
    assert_eq!(*s, status, "{case}: {v}");
    assert_eq!(v["code"], code, "{case}: {v}");
    assert_eq!(h["content-type"], "application/problem+json", "{case}");
    if let Some(p) = pointer {
        assert!(pointers(v).iter().any(|x| x == p), "{case}: expected an error at {p}: {v}");
    }
}

#[tokio::test]
async fn operations_are_the_routes() {
    let up = Upstream::start().await;
    let gate = start_with_fixtures("", &config(&up, "", ""));
    let c = gate.tls();
    let (s, _, v) = send(&c, "GET", "/echo/items", &[], "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["path"], "/echo/items");
    let (s, _, v) = send(&c, "GET", "/echo/items/7", &[], "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(up.hits(), 2);
    // Undeclared paths do not exist; the servers base path is part of every route.
    for path in ["/echo/admin", "/items", "/echo/items/7/x", "/echo", "/echo/strict/x"] {
        let r = send(&c, "GET", path, &[], "").await;
        assert_refused(path, &r, 404, "route_not_found", None);
    }
    // Undeclared methods: 405 with the declared ones (GET implies HEAD).
    let r = send(&c, "PATCH", "/echo/items", &[], "").await;
    assert_refused("PATCH", &r, 405, "method_not_allowed", None);
    assert_eq!(r.1["allow"], "GET, HEAD, POST");
    let r = send(&c, "POST", "/echo/items/3", &[], "").await;
    assert_eq!(r.1["allow"], "DELETE, GET, HEAD, PUT");
    assert_eq!(up.hits(), 2, "no refused request reached the upstream");
}

#[tokio::test]
async fn parameters_are_validated() {
    let up = Upstream::start().await;
    let gate = start_with_fixtures("", &config(&up, "", ""));
    let c = gate.tls();
    let valid = [
        "/echo/items?limit=5",
        "/echo/items?tags=red&tags=blue",
        "/echo/items?filter[min]=3&filter[name]=abc",
        "/echo/items?ids=1,2,3",
        "/echo/items?sort=asc&limit=100",
        "/echo/items?filter%5Bmin%5D=3",
    ];
    for path in valid {
        let (s, _, v) = send(&c, "GET", path, &[], "").await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    let hits = up.hits();
    assert_eq!(hits, valid.len() as u64);
    let invalid: &[(&str, &str)] = &[
        ("/echo/items?limit=0", "/query/limit"),
        ("/echo/items?limit=101", "/query/limit"),
        ("/echo/items?limit=abc", "/query/limit"),
        ("/echo/items?limit=1.5", "/query/limit"),
        ("/echo/items?limit=1&limit=2", "/query/limit"),
        ("/echo/items?sort=random", "/query/sort"),
        ("/echo/items?tags=pink", "/query/tags/0"),
        ("/echo/items?ids=1,2,3,4", "/query/ids"),
        ("/echo/items?ids=1,x", "/query/ids/1"),
        ("/echo/items?filter[min]=x", "/query/filter/min"),
        ("/echo/items?filter[name]=waytoolongname", "/query/filter/name"),
        ("/echo/items?filter[admin]=1", "/query/filter"),
        ("/echo/items?filter[a][b]=1", "/query/filter"),
        ("/echo/items?debug=1", "/query/debug"),
        ("/echo/items?limit=5&__proto__=x", "/query/__proto__"),
        ("/echo/items/0", "/path/itemId"),
        ("/echo/items/abc", "/path/itemId"),
        ("/echo/items/-1", "/path/itemId"),
    ];
    for (path, pointer) in invalid {
        let r = send(&c, "GET", path, &[], "").await;
        assert_refused(path, &r, 400, "validation_failed", Some(pointer));
    }
    let r = send(&c, "GET", "/echo/items", &[("x-tenant", "NOT-valid")], "").await;
    assert_refused("header pattern", &r, 400, "validation_failed", Some("/header/X-Tenant"));
    let (s, _, _) = send(&c, "GET", "/echo/items", &[("x-tenant", "acme")], "").await;
    assert_eq!(s, 200);
    let r = send(&c, "GET", "/echo/items", &[("cookie", "session_hint=not-a-uuid")], "").await;
    assert_refused("cookie format", &r, 400, "validation_failed", Some("/cookie/session_hint"));
    let (s, _, _) = send(
        &c,
        "GET",
        "/echo/items",
        &[("cookie", "a=b; session_hint=9b2c3c1e-8d2f-4b8e-9a55-1f0e7a1d2c3b")],
        "",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(up.hits(), hits + 2, "only the two valid requests reached the upstream");
}

#[tokio::test]
async fn unknown_query_parameters_can_be_allowed() {
    let up = Upstream::start().await;
    let gate = start_with_fixtures("", &config(&up, "unknown_query = \"allow\"", ""));
    let c = gate.tls();
    let (s, _, v) = send(&c, "GET", "/echo/items?utm_source=x&limit=3", &[], "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["path"], "/echo/items?utm_source=x&limit=3");
    // Declared ones are still checked.
    let r = send(&c, "GET", "/echo/items?utm_source=x&limit=0", &[], "").await;
    assert_refused("limit", &r, 400, "validation_failed", Some("/query/limit"));
}

const JSON: (&str, &str) = ("content-type", "application/json");
const TAG: (&str, &str) = ("x-request-tag", "t1");

#[tokio::test]
async fn json_bodies_are_validated_and_forwarded_as_checked() {
    let up = Upstream::start().await;
    let gate = start_with_fixtures("", &config(&up, "", ""));
    let c = gate.tls();
    let good = r#"{"name":"bolt","quantity":3,"price":0.5,"note":null,"email":"a@example.com","tags":["steel"],"owner":{"id":1,"nick":"x"}}"#;
    let (s, _, v) = send(&c, "POST", "/echo/items", &[JSON, TAG], good).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["body_len"], good.len(), "the upstream got exactly the checked bytes");
    assert_eq!(v["headers"]["content-length"][0], good.len().to_string());
    // The media type's parameters do not matter; the +json suffix is not application/json.
    let (s, _, v) = send(
        &c,
        "POST",
        "/echo/items",
        &[("content-type", "application/json; charset=utf-8"), TAG],
        good,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let hits = up.hits();
    let cases: &[(&str, &str, &str)] = &[
        ("wrong type", r#"{"name":"bolt","quantity":"3"}"#, "/body/quantity"),
        ("missing required", r#"{"name":"bolt"}"#, "/body"),
        ("additional property", r#"{"name":"bolt","quantity":1,"admin":true}"#, "/body"),
        ("readOnly property", r#"{"id":5,"name":"bolt","quantity":1}"#, "/body/id"),
        (
            "exclusiveMinimum (3.0 boolean form)",
            r#"{"name":"bolt","quantity":1,"price":0}"#,
            "/body/price",
        ),
        ("format email", r#"{"name":"bolt","quantity":1,"email":"nope"}"#, "/body/email"),
        (
            "pattern in a referenced file",
            r#"{"name":"bolt","quantity":1,"tags":["UPPER"]}"#,
            "/body/tags/0",
        ),
        (
            "nested object from a JSON file",
            r#"{"name":"bolt","quantity":1,"owner":{"id":1,"role":"admin"}}"#,
            "/body/owner",
        ),
        ("bounds", r#"{"name":"","quantity":1001}"#, "/body/quantity"),
        ("not nullable", r#"{"name":null,"quantity":1}"#, "/body/name"),
        ("duplicate keys", r#"{"name":"bolt","quantity":1,"quantity":-5}"#, "/body"),
        ("not JSON", r#"{"name":"bolt","#, "/body"),
        ("trailing data", r#"{"name":"bolt","quantity":1} {}"#, "/body"),
        ("array instead of object", r#"[]"#, "/body"),
    ];
    for (case, body, pointer) in cases {
        let r = send(&c, "POST", "/echo/items", &[JSON, TAG], *body).await;
        assert_refused(case, &r, 400, "validation_failed", Some(pointer));
    }
    // Missing body, required header.
    let r = send(&c, "POST", "/echo/items", &[JSON, TAG], "").await;
    assert_refused("no body", &r, 400, "validation_failed", Some("/body"));
    let r = send(&c, "POST", "/echo/items", &[JSON], good).await;
    assert_refused("required header", &r, 400, "validation_failed", Some("/header/X-Request-Tag"));
    // Content types the operation does not declare.
    for ct in ["text/plain", "application/xml", "application/merge-patch+json"] {
        let r = send(&c, "POST", "/echo/items", &[("content-type", ct), TAG], good).await;
        assert_refused(ct, &r, 415, "unsupported_media_type", None);
    }
    let r = send(&c, "POST", "/echo/items", &[TAG], good).await;
    assert_refused("no content type", &r, 415, "unsupported_media_type", None);
    // A body where the operation takes none.
    let r = send(&c, "DELETE", "/echo/items/3", &[JSON], "{}").await;
    assert_refused("body on DELETE", &r, 415, "unsupported_media_type", None);
    assert_eq!(up.hits(), hits, "no refused request reached the upstream");
    // Every error is listed, up to max_errors.
    let (_, _, v) = send(
        &c,
        "POST",
        "/echo/items",
        &[JSON, TAG],
        r#"{"name":5,"quantity":"x","price":"y","email":7,"tags":"z"}"#,
    )
    .await;
    assert!(pointers(&v).len() >= 5, "{v}");
}

#[tokio::test]
async fn form_and_multipart_bodies_are_validated() {
    let up = Upstream::start().await;
    let gate = start_with_fixtures("", &config(&up, "", ""));
    let c = gate.tls();
    let form = ("content-type", "application/x-www-form-urlencoded");
    let (s, _, v) =
        send(&c, "POST", "/echo/items", &[form, TAG], "name=bolt+nut&quantity=4&tags=a&tags=b")
            .await;
    assert_eq!(s, 200, "{v}");
    let hits = up.hits();
    let r = send(&c, "POST", "/echo/items", &[form, TAG], "name=bolt&quantity=lots").await;
    assert_refused("form type", &r, 400, "validation_failed", Some("/body/quantity"));
    let r = send(&c, "POST", "/echo/items", &[form, TAG], "name=bolt&quantity=1&quantity=2").await;
    assert_refused("form duplicate", &r, 400, "validation_failed", Some("/body"));
    let r = send(&c, "POST", "/echo/items", &[form, TAG], "name=bolt&quantity=1&is_admin=1").await;
    assert_refused("form extra", &r, 400, "validation_failed", Some("/body"));

    let ct = "multipart/form-data; boundary=XyZ";
    let part = |name: &str, value: &str| {
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    };
    let good = format!("{}{}--XyZ--\r\n", part("name", "bolt"), part("quantity", "9"));
    let (s, _, v) =
        send(&c, "POST", "/echo/items", &[("content-type", ct), TAG], good.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["body_len"], good.len());
    let bad = format!("{}{}--XyZ--\r\n", part("name", "bolt"), part("quantity", "-1"));
    let r = send(&c, "POST", "/echo/items", &[("content-type", ct), TAG], bad).await;
    assert_refused("multipart bound", &r, 400, "validation_failed", Some("/body/quantity"));
    let r =
        send(&c, "POST", "/echo/items", &[("content-type", ct), TAG], "--XyZ\r\nno headers").await;
    // Malformed multipart is not a schema error: the body has no one reading (tests/it/multipart.rs).
    assert_refused("multipart malformed", &r, 400, "invalid_body", None);
    let r = send(&c, "POST", "/echo/items", &[("content-type", "multipart/form-data"), TAG], good)
        .await;
    assert_refused("multipart without boundary", &r, 400, "invalid_body", None);
    assert_eq!(up.hits(), hits + 1);
}

#[tokio::test]
async fn body_bombs_are_refused_in_bounded_memory() {
    let up = Upstream::start().await;
    let gate = start_with_fixtures(
        "max_body_bytes = \"64KiB\"",
        &config(&up, "max_json_depth = 16\nmax_errors = 5", ""),
    );
    let c = gate.tls();
    // Declared larger than the route's limit: refused before a byte of it is read.
    let out = c.raw(b"POST /echo/items HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\nx-request-tag: t\r\ncontent-length: 10000000\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    // Deep nesting: refused by depth, not by recursion.
    let deep = format!("{}1{}", "[".repeat(20), "]".repeat(20));
    let r = send(&c, "POST", "/echo/items", &[JSON, TAG], deep).await;
    assert_refused("deep", &r, 400, "validation_failed", Some("/body"));
    assert!(
        r.2["errors"][0]["message"].as_str().unwrap().contains("nested deeper than 16"),
        "{}",
        r.2
    );
    // A huge array under the byte limit: the schema's maxItems; and the error count is capped.
    let many =
        format!("{{\"name\":\"a\",\"quantity\":1,\"tags\":[{}\"x\"]}}", "\"UPPER\",".repeat(6000));
    let r = send(&c, "POST", "/echo/items", &[JSON, TAG], many).await;
    assert_refused("huge array", &r, 400, "validation_failed", None);
    assert_eq!(pointers(&r.2).len(), 5, "capped at max_errors: {}", r.2);
    // A long string: maxLength, and the value is not echoed back.
    let long = format!("{{\"name\":\"{}\",\"quantity\":1}}", "A".repeat(60_000));
    let r = send(&c, "POST", "/echo/items", &[JSON, TAG], long).await;
    assert_refused("long string", &r, 400, "validation_failed", Some("/body/name"));
    assert!(r.2.to_string().len() < 2000, "the problem does not echo the value");
    // Over the limit without a Content-Length (chunked): 413 while buffering.
    let mut raw = b"POST /echo/items HTTP/1.1\r\nHost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\nx-request-tag: t\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(format!("{:x}\r\n", 64 * 1024 + 1).as_bytes());
    raw.extend_from_slice(&vec![b' '; 64 * 1024 + 1]);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    let out = c.raw(&raw).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn response_validation_report_block_and_strip() {
    let up = Upstream::start().await;
    // report: passes, logs and counts.
    let gate = start_with_fixtures("", &config(&up, "response_validation = \"report\"", ""));
    let c = gate.tls();
    let (s, _, v) = send(&c, "GET", "/echo/strict", &[], "").await;
    assert_eq!(s, 200);
    assert!(v.get("headers").is_some());
    assert!(gate.wait_for_log(
        "response does not match the OpenAPI document",
        std::time::Duration::from_secs(5)
    ));
    assert!(gate.metrics().await.contains("frontgate_openapi_responses_total{route=\"GET /echo/strict\",mode=\"report\",outcome=\"invalid\"}"));
    let (s, _, _) = send(&c, "GET", "/echo/items", &[], "").await;
    assert_eq!(s, 200, "a matching response passes");
    drop(gate);

    // block: 502 response_invalid; undeclared status too.
    let gate = start_with_fixtures("", &config(&up, "response_validation = \"block\"", ""));
    let c = gate.tls();
    let r = send(&c, "GET", "/echo/strict", &[], "").await;
    assert_refused("block", &r, 502, "response_invalid", None);
    assert!(!r.2.to_string().contains("x-forwarded-for"), "nothing of the upstream body leaks");
    let r = send(&c, "GET", "/echo/undeclared-status", &[], "").await;
    assert_refused("undeclared status", &r, 502, "response_invalid", None);
    let (s, _, v) = send(&c, "GET", "/echo/items/4", &[("accept-encoding", "gzip")], "").await;
    assert_eq!(s, 200);
    assert!(
        v["headers"].get("accept-encoding").is_none(),
        "responses to validate are asked for uncompressed: {v}"
    );
    let (s, _, _) = send(&c, "HEAD", "/echo/items/4", &[], "").await;
    assert_eq!(s, 200, "a HEAD answer has no body to validate");
    drop(gate);

    // strip: undeclared properties removed (OWASP API3), the rest passes.
    let gate = start_with_fixtures("", &config(&up, "response_validation = \"strip\"", ""));
    let c = gate.tls();
    let (s, h, v) = send(&c, "GET", "/echo/strict", &[], "").await;
    assert_eq!(s, 200, "{v}");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["method", "path"], "{v}");
    assert_eq!(h["content-length"], v.to_string().len().to_string());
    // An undeclared client-error status is the backend's answer to the client: it keeps its
    // status and body in every mode (a 404 stays a 404), and is counted.
    for mode in ["block", "strip"] {
        let gate =
            start_with_fixtures("", &config(&up, &format!("response_validation = \"{mode}\""), ""));
        let (s, _, v) = send(&gate.tls(), "GET", "/echo/answer/404", &[], "").await;
        assert_eq!(s, 404, "{mode}: {v}");
        assert_eq!(v["error"], "not here", "{mode}: {v}");
        assert!(
            gate.metrics().await.contains(&"outcome=\"undeclared_error_status\"".to_string()),
            "{mode}"
        );
        // A declared status still validates, and an undeclared success is still refused.
        let r = send(&gate.tls(), "GET", "/echo/undeclared-status", &[], "").await;
        assert_refused(mode, &r, 502, "response_invalid", None);
    }
}

#[tokio::test]
async fn config_routes_lend_policy_to_operations() {
    let up = Upstream::start().await;
    let rest = "[[routes]]\nmatch = \"GET,PUT /echo/items/{id}\"\nmax_body_bytes = 64\nheaders = { x-merged = \"yes\" }\n";
    let gate = start_with_fixtures("", &config(&up, "", rest));
    let c = gate.tls();
    let (s, h, _) = send(&c, "GET", "/echo/items/5", &[], "").await;
    assert_eq!(s, 200);
    assert_eq!(h["x-merged"], "yes", "the route's policy applies to the operation");
    // Still validated by the operation.
    let r = send(&c, "GET", "/echo/items/0", &[], "").await;
    assert_refused("validated", &r, 400, "validation_failed", Some("/path/itemId"));
    // The route's body limit applies.
    let big = format!("{{\"name\":\"{}\",\"quantity\":1}}", "a".repeat(100));
    let r = send(&c, "PUT", "/echo/items/5", &[JSON], big).await;
    assert_eq!(r.0, 413);
    // Other operations keep their defaults.
    let (_, h, _) = send(&c, "GET", "/echo/items", &[], "").await;
    assert!(h.get("x-merged").is_none());

    // A route naming a method the spec does not declare for its path is refused.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(std::path::Path::new(FIXTURES), dir.path());
    let cfg = dir.path().join("f.toml");
    std::fs::write(&cfg, config(&up, "", "[[routes]]\nmatch = \"GET,PATCH /echo/items/{id}\"\n"))
        .unwrap();
    let out = std::process::Command::new(BIN).args(["check", "-c"]).arg(&cfg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("does not declare PATCH /echo/items/{id}"), "{text}");
}

/// A prefix route's policy never reaches the operations under it (each is a route of its own),
/// so policy written there for them is refused rather than silently dropped.
#[test]
fn a_prefix_route_cannot_silently_miss_the_operations_under_it() {
    let spec = "openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths:\n  /api/items/{id}:\n    delete:\n      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]\n      responses: { '204': { description: gone } }\n";
    let keys = "[api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\n[store]\nurl = \"sqlite://f.db\"\n";
    let (ok, out) = check_spec(
        "api.yaml",
        spec,
        &[],
        &format!(
            "{keys}[[routes]]\nmatch = \"/api/**\"\nauth = \"api_key\"\nscopes = [\"items:delete\"]\n"
        ),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("route `/api/**` sets policy for paths OpenAPI operations serve (DELETE /api/items/{id})"), "{out}");
    // The operation's own entry takes the policy (and then the prefix may keep it for the rest),
    // and a prefix without policy only forwards what the document does not declare.
    for rest in [
        "[[routes]]\nmatch = \"DELETE /api/items/{id}\"\nauth = \"api_key\"\nscopes = [\"items:delete\"]\n[[routes]]\nmatch = \"/api/**\"\nauth = \"api_key\"\n",
        "[[routes]]\nmatch = \"/api/**\"\n",
        "[[routes]]\nmatch = \"GET /api/**\"\nauth = \"api_key\"\n",
    ] {
        let (ok, out) = check_spec("api.yaml", spec, &[], &format!("{keys}{rest}"));
        assert!(ok, "{rest}\n{out}");
    }
}

/// A `{param}` entry also matches a static operation's path beside it; that operation does not
/// take the entry's policy, and `check` says so.
#[test]
fn a_param_route_that_also_matches_a_static_operation_is_warned_about() {
    let spec = "openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths:\n  /api/items/{id}:\n    get:\n      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]\n      responses: { '200': { description: ok } }\n  /api/items/export:\n    get:\n      responses: { '200': { description: ok } }\n";
    let keys = "[api_keys]\nhash_secret = \"0123456789abcdef0123456789abcdef\"\n[store]\nurl = \"sqlite://f.db\"\n";
    let (ok, out) = check_spec(
        "api.yaml",
        spec,
        &[],
        &format!("{keys}[[routes]]\nmatch = \"GET /api/items/{{id}}\"\nauth = \"api_key\"\n"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("route `GET /api/items/{id}` also matches the path of OpenAPI operation GET /api/items/export"), "{out}");
    let (ok, out) = check_spec(
        "api.yaml",
        spec,
        &[],
        &format!(
            "{keys}[[routes]]\nmatch = \"GET /api/items/{{id}}\"\nauth = \"api_key\"\n[[routes]]\nmatch = \"GET /api/items/export\"\nauth = \"api_key\"\n"
        ),
    );
    assert!(ok && !out.contains("also matches"), "{out}");
}

/// (case, spec text, files beside it, expected message).
type SpecCase<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str);
/// (method, path, headers, body, status).
type Refusal<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str, u16);

const HEAD: &str = "openapi: 3.1.0\ninfo: { title: t, version: '1' }\n";

#[test]
fn spec_errors_refuse_the_config_with_a_pointer() {
    let ok = format!(
        "{HEAD}paths:\n  /a:\n    get:\n      responses: {{ '200': {{ description: ok }} }}\n"
    );
    let (success, out) = check_spec("api.yaml", &ok, &[], "");
    assert!(success, "{out}");
    let cases: Vec<SpecCase<'_>> = vec![
        ("version", "openapi: 2.0\npaths: {}\n".into(), vec![], "(at /openapi)"),
        (
            "remote ref",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{ $ref: 'https://example.com/p.yaml' }}]\n      responses: {{}}\n"
            ),
            vec![],
            "remote references are never fetched",
        ),
        (
            "outside the dir",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{ $ref: '../secret.yaml#/p' }}]\n      responses: {{}}\n"
            ),
            vec![("secret.yaml", "p: { name: a, in: query }\n")],
            "outside the spec's directory",
        ),
        (
            "dangling",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{ $ref: '#/components/parameters/nope' }}]\n      responses: {{}}\n"
            ),
            vec![],
            "(at /paths/~1a/get/parameters/0/$ref)",
        ),
        (
            "cycle",
            format!(
                "{HEAD}paths: {{}}\ncomponents:\n  schemas:\n    A: {{ $ref: '#/components/schemas/B' }}\n    B: {{ $ref: '#/components/schemas/A' }}\n"
            ),
            vec![],
            "reference cycle",
        ),
        (
            "segment",
            format!("{HEAD}paths:\n  /a/{{x}}.json:\n    get:\n      responses: {{}}\n"),
            vec![],
            "a parameter must be a whole segment",
        ),
        (
            "undeclared path param",
            format!("{HEAD}paths:\n  /a/{{x}}:\n    get:\n      responses: {{}}\n"),
            vec![],
            "`x` is not declared",
        ),
        (
            "bad schema",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{ name: q, in: query, schema: {{ type: 12 }} }}]\n      responses: {{}}\n"
            ),
            vec![],
            "invalid schema",
        ),
        (
            "bad pattern",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{ name: q, in: query, schema: {{ type: string, pattern: '(a' }} }}]\n      responses: {{}}\n"
            ),
            vec![],
            "(at /paths/~1a/get/parameters/0/schema)",
        ),
        (
            "lookaround needs a backtracking engine",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{ name: q, in: query, schema: {{ type: string, pattern: '(?=a)b' }} }}]\n      responses: {{}}\n"
            ),
            vec![],
            "invalid schema",
        ),
        (
            "basic auth",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      security: [{{ basic: [] }}]\n      responses: {{}}\ncomponents:\n  securitySchemes:\n    basic: {{ type: http, scheme: basic }}\n"
            ),
            vec![],
            "no frontgate equivalent",
        ),
        (
            "key in query",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      security: [{{ k: [] }}]\n      responses: {{}}\ncomponents:\n  securitySchemes:\n    k: {{ type: apiKey, in: query, name: key }}\n"
            ),
            vec![],
            "credentials_in_query",
        ),
        (
            "bearer needs [jwt]",
            format!(
                "{HEAD}security: [{{ bearer: [items:read] }}]\npaths:\n  /a:\n    get:\n      responses: {{}}\ncomponents:\n  securitySchemes:\n    bearer: {{ type: http, scheme: bearer }}\n"
            ),
            vec![],
            "requires jwt authentication, which needs the [jwt] section",
        ),
        (
            "apiKey needs [api_keys]",
            format!(
                "{HEAD}paths:\n  /a:\n    get:\n      security: [{{ k: [] }}]\n      responses: {{}}\ncomponents:\n  securitySchemes:\n    k: {{ type: apiKey, in: header, name: X-API-Key }}\n"
            ),
            vec![],
            "needs the [api_keys] section",
        ),
        ("not YAML", "openapi: [unclosed\n".into(), vec![], "not valid YAML"),
    ];
    for (case, spec, files, expected) in cases {
        let (success, out) = check_spec("api.yaml", &spec, &files, "");
        assert!(!success, "{case}: accepted\n{out}");
        assert!(out.contains(expected), "{case}: expected `{expected}` in:\n{out}");
    }
    // Public operations (security: [] or [{}]) need no auth section.
    let public = format!(
        "{HEAD}security: [{{ bearer: [] }}]\npaths:\n  /a:\n    get:\n      security: [{{}}]\n      responses: {{}}\ncomponents:\n  securitySchemes:\n    bearer: {{ type: http, scheme: bearer }}\n"
    );
    let (success, out) = check_spec("api.yaml", &public, &[], "");
    assert!(success, "{out}");
    // JSON specs load too.
    let (success, out) = check_spec(
        "api.json",
        r#"{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{"/a":{"get":{"responses":{}}}}}"#,
        &[],
        "",
    );
    assert!(success, "{out}");
}

#[test]
fn spec_bombs_are_refused_with_bounded_work() {
    // A chain of 5,000 references.
    let mut chain = format!("{HEAD}paths: {{}}\ncomponents:\n  schemas:\n");
    for i in 0..5000 {
        chain.push_str(&format!("    S{i}: {{ $ref: '#/components/schemas/S{}' }}\n", i + 1));
    }
    chain.push_str("    S5000: { type: string }\n");
    let (success, out) = check_spec("api.yaml", &chain, &[], "");
    assert!(!success && out.contains("a chain of more than 32 references"), "{out}");
    // Deep nesting.
    let deep = format!("{HEAD}paths: {{}}\nx-deep: {}1{}\n", "[".repeat(5000), "]".repeat(5000));
    let (success, out) = check_spec("api.yaml", &deep, &[], "");
    assert!(!success, "{out}");
    let deep_json = format!(
        r#"{{"openapi":"3.1.0","paths":{{}},"x":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (success, out) = check_spec("api.json", &deep_json, &[], "");
    assert!(!success, "{out}");
    // A YAML alias bomb (billion laughs).
    let mut laughs = format!(
        "{HEAD}paths: {{}}\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    );
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        laughs.push_str(&format!("x-a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
    }
    let (success, out) = check_spec("api.yaml", &laughs, &[], "");
    assert!(!success, "{out}");
    // Larger than max_spec_bytes.
    let huge = format!("{HEAD}paths: {{}}\nx-pad: '{}'\n", "x".repeat(300_000));
    let (success, out) = check_spec("api.yaml", &huge, &[], "max_spec_bytes = \"256KiB\"");
    assert!(!success && out.contains("too large"), "{out}");
    // A recursive (but well-founded) schema is fine: a tree.
    let tree = format!(
        "{HEAD}paths: {{}}\ncomponents:\n  schemas:\n    Node: {{ type: object, properties: {{ children: {{ type: array, items: {{ $ref: '#/components/schemas/Node' }} }} }} }}\n"
    );
    let (success, out) = check_spec("api.yaml", &tree, &[], "");
    assert!(success, "{out}");
}

#[tokio::test]
async fn the_demo_validates_its_api_and_the_upstream_sees_only_valid_requests() {
    let demo = start_demo();
    let c = demo.tls();
    let (s, _, spec) = c.get("/openapi.yaml").await;
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&spec).contains("openapi: 3.1.0"));
    let (s, h, v) = send(&c, "GET", "/api/items?limit=1", &[], "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    let (hits, rejected) = upstream_counters(&h);
    assert_eq!((hits, rejected), (1, 0));
    let refused: &[Refusal<'_>] = &[
        ("GET", "/api/items?limit=1000", &[], "", 400),
        ("GET", "/api/items?limit=1&debug=true", &[], "", 400),
        ("GET", "/api/items/0", &[], "", 400),
        ("GET", "/api/items/x", &[], "", 400),
        ("GET", "/api/hello?x=1", &[], "", 400),
        ("POST", "/api/items", &[JSON], r#"{"name":"x","admin":true}"#, 400),
        ("POST", "/api/items", &[JSON], r#"{"id":1,"name":"x"}"#, 400),
        ("POST", "/api/items", &[JSON], r#"{"name":""}"#, 400),
        ("POST", "/api/items", &[("content-type", "text/plain")], r#"{"name":"x"}"#, 415),
        ("DELETE", "/api/items/1", &[], "", 405),
        ("GET", "/api/admin", &[], "", 404),
    ];
    for (method, path, headers, body, status) in refused {
        let (s, h, v) = send(&c, method, path, headers, *body).await;
        assert_eq!(s, *status, "{method} {path}: {v}");
        assert_eq!(h["content-type"], "application/problem+json", "{method} {path}");
    }
    let (s, h, v) = send(&c, "POST", "/api/items", &[JSON], r#"{"name":"from the test"}"#).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["name"], "from the test");
    assert_eq!(upstream_counters(&h), (2, 0), "only the two valid requests reached the upstream");
}

/// schemathesis (scripts/test.sh installs it; `FRONTGATE_SCHEMATHESIS` names its `st`) fuzzes
/// the demo API through frontgate with valid and invalid requests: no 5xx, every response as
/// documented, and the upstream never had to refuse anything itself.
#[tokio::test]
async fn schemathesis_finds_nothing_and_negative_cases_never_reach_the_upstream() {
    let st = std::env::var("FRONTGATE_SCHEMATHESIS")
        .unwrap_or_else(|_| "/var/tmp/frontgate-schemathesis/bin/st".into());
    if !std::path::Path::new(&st).is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "schemathesis is not installed at {st}; scripts/test.sh installs it"
        );
        eprintln!("skipped: schemathesis is not installed at {st} (run scripts/test.sh)");
        return;
    }
    let demo = start_demo();
    let base = format!("https://{}", demo.addr);
    let cert = demo.cert_path();
    // schemathesis keeps a cache in its working directory: a temp dir, not the checkout.
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(st)
            .current_dir(cwd)
            .args(["run", &format!("{base}/openapi.yaml"), "--url", &base, "--tls-verify"])
            .arg(&cert)
            .args([
                "--checks",
                "all",
                "--max-examples",
                "25",
                "--workers",
                "2",
                "--request-timeout",
                "10",
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    let c = demo.tls();
    let (s, h, _) = send(&c, "GET", "/api/hello", &[], "").await;
    assert_eq!(s, 200);
    let (hits, rejected) = upstream_counters(&h);
    assert!(hits > 10, "schemathesis's valid requests reached the upstream: {hits}\n{text}");
    assert_eq!(
        rejected, 0,
        "a request the gateway should have refused reached the upstream\n{text}"
    );
    // And it did send invalid ones, which the gateway refused.
    let metrics = demo.metrics().await;
    let refused: u64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("frontgate_requests_total") && l.contains("code=\"validation_failed\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum();
    assert!(
        refused > 10,
        "schemathesis's negative cases were refused by the gateway: {refused}\n{metrics}"
    );
}

#[tokio::test]
async fn a_reload_recompiles_the_spec_and_a_broken_one_is_refused() {
    let up = Upstream::start().await;
    let gate = start_with_fixtures("", &config(&up, "", ""));
    let c = gate.tls();
    assert_eq!(send(&c, "GET", "/echo/items/7", &[], "").await.0, 200);
    let spec = gate.dir.path().join("petstore.yaml");
    let smaller = format!(
        "{HEAD}servers: [{{ url: /echo }}]\npaths:\n  /items:\n    get:\n      responses: {{ '200': {{ description: ok }} }}\n"
    );
    std::fs::write(&spec, smaller).unwrap();
    gate.signal("HUP");
    assert!(
        gate.wait_for_log_count("configuration reloaded", 1, std::time::Duration::from_secs(10))
            .await,
        "{}",
        gate.logs()
    );
    assert_eq!(send(&c, "GET", "/echo/items/7", &[], "").await.0, 404, "the operation is gone");
    assert_eq!(
        send(&c, "GET", "/echo/items?limit=5", &[], "").await.0,
        400,
        "and limit is no longer declared"
    );
    // A broken spec: the reload is refused and the running config stays.
    std::fs::write(
        &spec,
        format!("{HEAD}paths:\n  /items:\n    get:\n      parameters: [{{ $ref: '#/nope' }}]\n"),
    )
    .unwrap();
    gate.signal("HUP");
    assert!(gate.wait_for_log("#/nope", std::time::Duration::from_secs(10)), "{}", gate.logs());
    assert_eq!(send(&c, "GET", "/echo/items", &[], "").await.0, 200);
}

/// A reload runs beside the admin listener and signal handling, not in their way. The spec is
/// made a FIFO, so a reload blocks reading it for as long as the test likes: meanwhile
/// `/health` answers and requests are served; a second SIGHUP is queued, not lost; and a
/// SIGTERM during a reload that never ends still stops the gateway.
#[cfg(unix)]
#[tokio::test]
async fn a_reload_stuck_reading_its_spec_stalls_neither_the_admin_listener_nor_shutdown() {
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::{Duration, Instant};
    const WAIT: Duration = Duration::from_secs(10);
    let up = Upstream::start().await;
    let mut gate = start_with_fixtures("", &config(&up, "", ""));
    let c = gate.tls();
    let spec = gate.dir.path().join("petstore.yaml");
    std::fs::remove_file(&spec).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&spec).status().unwrap().success());
    // Opening a FIFO's write end without blocking succeeds only once a reader has it open: it
    // tells the test that a reload is now waiting for the spec.
    let reader_waiting = |spec: std::path::PathBuf| async move {
        let deadline = Instant::now() + WAIT;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(0o4000 /* O_NONBLOCK */)
                .open(&spec)
            {
                Ok(f) => return Some(f),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(_) => return None,
            }
        }
    };

    gate.signal("HUP");
    let mut writer = reader_waiting(spec.clone()).await.expect("the reload did not open the spec");
    // The reload is blocked in read(2) until the test writes. Meanwhile:
    let health = tokio::time::timeout(WAIT, plain_get(gate.admin.unwrap(), "/health")).await;
    assert_eq!(health.expect("the admin listener did not answer during a reload").0, 200);
    assert_eq!(send(&c, "GET", "/echo/items/7", &[], "").await.0, 200, "the running config serves");
    gate.signal("HUP");
    let smaller = format!(
        "{HEAD}servers: [{{ url: /echo }}]\npaths:\n  /items:\n    get:\n      responses: {{ '200': {{ description: ok }} }}\n"
    );
    std::io::Write::write_all(&mut writer, smaller.as_bytes()).unwrap();
    drop(writer);
    assert!(gate.wait_for_log_count("configuration reloaded", 1, WAIT).await, "{}", gate.logs());
    assert_eq!(
        send(&c, "GET", "/echo/items/7", &[], "").await.0,
        404,
        "the reloaded spec is in force"
    );

    // The queued SIGHUP: a second reload, now waiting on the spec in turn. SIGTERM still works.
    let _writer = reader_waiting(spec.clone()).await.expect("the second SIGHUP was lost");
    gate.signal("TERM");
    let status = gate.wait_exit(WAIT).await.expect("a reload that never ends held up the shutdown");
    assert!(status.success(), "{}", gate.logs());
    assert_eq!(gate.log_count("configuration reloaded"), 1);
}
