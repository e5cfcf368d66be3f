//! The static front-end: content types, validators, precompressed variants, caching, the SPA
//! fallback, what is never served, and the security headers on every file.

use crate::common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

const INDEX: &[u8] =
    b"<!doctype html><html><head><title>app</title></head><body><div id=app></div></body></html>\n";
const JS: &[u8] = b"console.log('app');\n";
const JS_BR: &[u8] = b"\x1b\x13\x00\xf8pretend-brotli\x00\x01";
const JS_GZ: &[u8] = b"\x1f\x8b\x08\x00pretend-gzip\x00\x02";
const CSS: &[u8] = b"body { margin: 0 }\n";
const ASSET: &str = "/assets/app-3f9a1c2b.js";

/// A dist dir next to a directory holding a secret; the dist dir has symlinks into the latter.
struct Dist {
    root: tempfile::TempDir,
    dist: std::path::PathBuf,
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn dist() -> Dist {
    let root = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    let outside = root.path().join("outside");
    write(&dist.join("index.html"), INDEX);
    write(&dist.join("assets/app-3f9a1c2b.js"), JS);
    write(&dist.join("assets/app-3f9a1c2b.js.br"), JS_BR);
    write(&dist.join("assets/app-3f9a1c2b.js.gz"), JS_GZ);
    write(&dist.join("styles.css"), CSS);
    write(&dist.join(".env"), b"DATABASE_PASSWORD=hunter2\n");
    write(&dist.join(".git/config"), b"[core]\n");
    write(&dist.join("nested/deeper/notes.txt"), b"nested notes\n");
    write(&dist.join("nested/index.html"), b"<p>nested index</p>\n");
    write(&dist.join("embed/widget.html"), b"<p>widget</p>\n");
    write(&dist.join("plain/page.html"), b"<p>plain</p>\n");
    write(&outside.join("secret.txt"), b"top secret\n");
    std::os::unix::fs::symlink(outside.join("secret.txt"), dist.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, dist.join("escape")).unwrap();
    // A symlink that stays inside the directory is fine.
    std::os::unix::fs::symlink(dist.join("styles.css"), dist.join("alias.css")).unwrap();
    Dist { root, dist }
}

fn frontend_config(d: &Dist, extra: &str) -> String {
    format!("[frontend]\ndir = {:?}\n{extra}\n", d.dist.display().to_string())
}

async fn get_with(
    client: &TlsClient,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let mut r = req(method, path);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    client.send(r.body(Full::<Bytes>::default()).unwrap()).await
}

fn assert_security_headers(h: &http::HeaderMap) {
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert!(h.get("permissions-policy").is_some());
    assert!(h["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    assert!(h.get("x-request-id").is_some());
}

#[tokio::test]
async fn files_have_content_types_caching_and_security_headers() {
    let d = dist();
    let gate = start("", &frontend_config(&d, ""));
    let client = gate.tls();

    let (s, h, b) = client.get("/").await;
    assert_eq!(s, 200);
    assert_eq!(&b[..], INDEX);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(
        h["content-security-policy"],
        "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
    );
    assert_security_headers(&h);

    let (s, h, b) = client.get("/index.html").await;
    assert_eq!((s.as_u16(), &b[..]), (200, INDEX));
    assert_eq!(h["cache-control"], "no-cache");

    let (s, h, b) = client.get(ASSET).await;
    assert_eq!(s, 200);
    assert_eq!(&b[..], JS);
    let ct = h["content-type"].to_str().unwrap();
    assert!(ct.starts_with("text/javascript") || ct.starts_with("application/javascript"), "{ct}");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert!(h.get("content-encoding").is_none());
    assert_eq!(h["content-length"], JS.len().to_string());
    assert_security_headers(&h);

    let (s, h, b) = client.get("/styles.css").await;
    assert_eq!((s.as_u16(), &b[..]), (200, CSS));
    assert!(h["content-type"].to_str().unwrap().starts_with("text/css"));
    assert_eq!(h["cache-control"], "no-cache");

    let (s, h, b) = client.get("/nested/deeper/notes.txt").await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"nested notes\n"[..]));
    assert!(h["content-type"].to_str().unwrap().starts_with("text/plain"));
    let (s, _, b) = client.get("/nested/").await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"<p>nested index</p>\n"[..]));
    let (s, _, b) = client.get("/alias.css").await;
    assert_eq!((s.as_u16(), &b[..]), (200, CSS));
}

#[tokio::test]
async fn validators_give_304_without_a_body() {
    let d = dist();
    let gate = start("", &frontend_config(&d, ""));
    let client = gate.tls();
    let (s, h, _) = client.get("/styles.css").await;
    assert_eq!(s, 200);
    let etag = h["etag"].to_str().unwrap().to_owned();
    let last_modified = h["last-modified"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    for inm in [etag.as_str(), &format!("W/{etag}"), &format!("\"other\", {etag}"), "*"] {
        let (s, h, b) = get_with(&client, "GET", "/styles.css", &[("if-none-match", inm)]).await;
        assert_eq!(s, 304, "{inm}");
        assert!(b.is_empty());
        assert_eq!(h["etag"], etag.as_str());
        assert_security_headers(&h);
    }
    let (s, _, b) =
        get_with(&client, "GET", "/styles.css", &[("if-none-match", "\"stale\"")]).await;
    assert_eq!((s.as_u16(), &b[..]), (200, CSS));
    let (s, _, b) =
        get_with(&client, "GET", "/styles.css", &[("if-modified-since", &last_modified)]).await;
    assert_eq!(s, 304);
    assert!(b.is_empty());
    let (s, _, b) = get_with(
        &client,
        "GET",
        "/styles.css",
        &[("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
    )
    .await;
    assert_eq!((s.as_u16(), &b[..]), (200, CSS));

    // A compressed variant has its own validator: the identity ETag does not match it.
    let (_, h, _) = get_with(&client, "GET", ASSET, &[("accept-encoding", "br")]).await;
    let br_etag = h["etag"].to_str().unwrap().to_owned();
    let (_, h, _) = client.get(ASSET).await;
    let id_etag = h["etag"].to_str().unwrap().to_owned();
    assert_ne!(br_etag, id_etag);
    let (s, _, b) =
        get_with(&client, "GET", ASSET, &[("accept-encoding", "br"), ("if-none-match", &id_etag)])
            .await;
    assert_eq!((s.as_u16(), &b[..]), (200, JS_BR));
    let (s, h, b) =
        get_with(&client, "GET", ASSET, &[("accept-encoding", "br"), ("if-none-match", &br_etag)])
            .await;
    assert_eq!(s, 304);
    assert!(b.is_empty());
    assert_eq!(h["content-encoding"], "br");
}

#[tokio::test]
async fn precompressed_variants_follow_accept_encoding() {
    let d = dist();
    let gate = start("", &frontend_config(&d, ""));
    let client = gate.tls();
    let cases: &[(&str, Option<&str>, &[u8])] = &[
        ("br", Some("br"), JS_BR),
        ("gzip", Some("gzip"), JS_GZ),
        ("gzip, deflate, br", Some("br"), JS_BR),
        ("br;q=0, gzip", Some("gzip"), JS_GZ),
        ("deflate", None, JS),
        ("identity", None, JS),
    ];
    for (accept, want, body) in cases {
        let (s, h, b) = get_with(&client, "GET", ASSET, &[("accept-encoding", accept)]).await;
        assert_eq!(s, 200, "{accept}");
        assert_eq!(h.get("content-encoding").map(|v| v.to_str().unwrap()), *want, "{accept}");
        assert_eq!(&b[..], *body, "{accept}");
        assert_eq!(h["content-length"], body.len().to_string());
        assert_eq!(h["vary"], "Accept-Encoding", "{accept}");
        let ct = h["content-type"].to_str().unwrap();
        assert!(
            ct.contains("javascript"),
            "{accept}: the variant keeps the original's type, got {ct}"
        );
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    }
    // No Accept-Encoding at all: identity.
    let (s, h, b) = client.get(ASSET).await;
    assert_eq!((s.as_u16(), &b[..]), (200, JS));
    assert!(h.get("content-encoding").is_none());
    assert_eq!(h["vary"], "Accept-Encoding");
    // A file without variants is served as is whatever the client accepts.
    let (s, h, b) =
        get_with(&client, "GET", "/styles.css", &[("accept-encoding", "br, gzip")]).await;
    assert_eq!((s.as_u16(), &b[..]), (200, CSS));
    assert!(h.get("content-encoding").is_none());
}

#[tokio::test]
async fn spa_fallback_serves_index_only_to_navigations() {
    let d = dist();
    let gate = start("", &frontend_config(&d, ""));
    let client = gate.tls();
    let html = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];

    let (s, h, b) = get_with(&client, "GET", "/some/client/route", &html).await;
    assert_eq!(s, 200);
    assert_eq!(&b[..], INDEX);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache", "the fallback index is never cached as immutable");
    let (s, h, b) = get_with(&client, "GET", "/assets/client/route", &html).await;
    assert_eq!((s.as_u16(), &b[..]), (200, INDEX));
    assert_eq!(
        h["cache-control"], "no-cache",
        "a fallback under an immutable prefix is still the mutable index"
    );
    let (s, _, b) = get_with(&client, "GET", "/nested", &html).await;
    assert_eq!((s.as_u16(), &b[..]), (200, INDEX));

    // An API-style request for the same path gets the JSON 404, not HTML.
    let (s, h, b) =
        get_with(&client, "GET", "/some/client/route", &[("accept", "application/json")]).await;
    assert_eq!(s, 404);
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(json(&b)["code"], "route_not_found");
    let (s, _, b) = client.get("/some/client/route").await;
    assert_eq!(s, 404);
    assert_eq!(json(&b)["code"], "route_not_found");

    // A missing file is a 404 even for a navigation: no HTML for /missing.js.
    for path in ["/missing.js", "/assets/app-00000000.js", "/favicon.ico"] {
        let (s, _, b) = get_with(&client, "GET", path, &html).await;
        assert_eq!(s, 404, "{path}");
        assert_eq!(json(&b)["code"], "route_not_found");
    }
    // Only GET and HEAD reach the front-end.
    let (s, h, _) = get_with(&client, "POST", "/some/client/route", &html).await;
    assert_eq!(s, 405);
    assert_eq!(h["allow"], "GET, HEAD");
}

/// A navigation to an API path no route declares gets the 404 problem, not the app's HTML:
/// the prefixes of the upstream's routes are left out of the fallback unless configured.
#[tokio::test]
async fn spa_fallback_leaves_api_prefixes_alone() {
    let d = dist();
    let up = Upstream::start().await;
    let html = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let routes = format!("{}\n[[routes]]\nmatch = \"GET /api/items/{{id}}\"\n", up.config());
    let gate = start("", &format!("{}{routes}", frontend_config(&d, "")));
    let client = gate.tls();
    for path in ["/api/undeclared", "/api", "/api/items"] {
        let (s, _, b) = get_with(&client, "GET", path, &html).await;
        assert_eq!(s, 404, "{path}: {}", String::from_utf8_lossy(&b));
        assert_eq!(json(&b)["code"], "route_not_found", "{path}");
    }
    let (s, _, b) = get_with(&client, "GET", "/apiary/page", &html).await;
    assert_eq!((s.as_u16(), &b[..]), (200, INDEX), "a prefix is a whole segment");
    assert_eq!(
        get_with(&client, "GET", "/api/items/7", &html).await.0,
        200,
        "the declared route still goes upstream"
    );
    drop(gate);
    // Configured: only what is listed; [] turns it off.
    let gate = start(
        "",
        &format!("{}{routes}", frontend_config(&d, "spa_fallback_exclude = [\"/admin/\"]")),
    );
    let client = gate.tls();
    assert_eq!(get_with(&client, "GET", "/api/undeclared", &html).await.2, INDEX);
    assert_eq!(get_with(&client, "GET", "/admin/x", &html).await.0, 404);
}

#[tokio::test]
async fn dotfiles_and_symlinks_out_of_the_dir_are_never_served() {
    let d = dist();
    let gate = start("", &frontend_config(&d, ""));
    let client = gate.tls();
    let html = [("accept", "text/html")];
    for path in [
        "/.env",
        "/.git/config",
        "/leak.txt",
        "/escape/secret.txt",
        "/nested/../.env",
        "/%2eenv",
        "/.env.",
    ] {
        for headers in [&[][..], &html[..]] {
            let (s, _, b) = get_with(&client, "GET", path, headers).await;
            assert!(s == 404 || s == 400, "{path}: {s}");
            let text = String::from_utf8_lossy(&b);
            assert!(
                !text.contains("hunter2")
                    && !text.contains("top secret")
                    && !text.contains("[core]"),
                "{path}: {text}"
            );
            if s == 404 {
                assert_eq!(json(&b)["code"], "route_not_found", "{path}");
            }
        }
    }
    // Raw bytes too, so no client-side normalization hides anything.
    for path in
        ["/.env", "/nested/%2e%2e/.env", "/escape/secret.txt", "/leak.txt", "/nested/..%2f.env"]
    {
        let out = client
            .raw(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        assert!(
            out.starts_with("HTTP/1.1 404 ") || out.starts_with("HTTP/1.1 400 "),
            "{path}: {out}"
        );
        assert!(!out.contains("hunter2") && !out.contains("top secret"), "{path}: {out}");
    }
}

#[tokio::test]
async fn large_files_are_streamed_whole() {
    let d = dist();
    // Above the size the front-end reads into memory, and not a multiple of its chunk size.
    let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    write(&d.dist.join("assets/big-0a1b2c3d.bin"), &big);
    let gate = start("", &frontend_config(&d, ""));
    let client = gate.tls();
    let (s, h, b) = client.get("/assets/big-0a1b2c3d.bin").await;
    assert_eq!(s, 200);
    assert_eq!(h["content-length"], big.len().to_string());
    assert!(b[..] == big[..], "streamed body differs ({} bytes)", b.len());
    let mut h2 = client.h2().await;
    let r = http::Request::builder()
        .uri("https://localhost/assets/big-0a1b2c3d.bin")
        .body(Full::<Bytes>::default())
        .unwrap();
    let (s, _, b) = collect(h2.send_request(r).await.unwrap()).await;
    assert_eq!(s, 200);
    assert!(b[..] == big[..], "streamed body over h2 differs ({} bytes)", b.len());
}

#[tokio::test]
async fn head_gives_the_headers_without_a_body() {
    let d = dist();
    let gate = start("", &frontend_config(&d, ""));
    let client = gate.tls();
    let (_, get_h, _) = client.get(ASSET).await;
    let (s, h, b) = get_with(&client, "HEAD", ASSET, &[]).await;
    assert_eq!(s, 200);
    assert!(b.is_empty());
    assert_eq!(h["content-length"], JS.len().to_string());
    for name in [
        "content-type",
        "etag",
        "last-modified",
        "cache-control",
        "vary",
        "content-security-policy",
    ] {
        assert_eq!(h.get(name), get_h.get(name), "{name}");
    }
    assert_security_headers(&h);
    let (s, h, b) = get_with(&client, "HEAD", ASSET, &[("accept-encoding", "gzip")]).await;
    assert_eq!(s, 200);
    assert!(b.is_empty());
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["content-length"], JS_GZ.len().to_string());
    // Over raw bytes, to see that nothing at all follows the head.
    let out = client
        .raw(b"HEAD /styles.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "a body followed the head: {out:?}");
}

#[tokio::test]
async fn csp_can_be_set_for_the_frontend_and_overridden_per_route() {
    let d = dist();
    let extra = "csp = \"default-src 'none'; script-src 'self'\"\n\n\
        [[routes]]\nmatch = \"GET /embed/**\"\nto = \"frontend\"\n\
        csp = \"default-src 'self'; frame-ancestors https://partner.example.test\"\n\
        headers = { \"x-frame-options\" = \"\", \"x-embed\" = \"yes\" }\n\n\
        [[routes]]\nmatch = \"GET /plain/**\"\nto = \"frontend\"\ncsp = \"\"\n\n\
        [[routes]]\nmatch = \"GET /**\"\nto = \"frontend\"\n";
    let gate = start("", &frontend_config(&d, extra));
    let client = gate.tls();

    let (s, h, _) = client.get("/styles.css").await;
    assert_eq!(s, 200);
    assert_eq!(h["content-security-policy"], "default-src 'none'; script-src 'self'");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.get("x-embed").is_none());

    let (s, h, b) = client.get("/embed/widget.html").await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"<p>widget</p>\n"[..]));
    assert_eq!(
        h["content-security-policy"],
        "default-src 'self'; frame-ancestors https://partner.example.test"
    );
    assert!(h.get("x-frame-options").is_none());
    assert_eq!(h["x-embed"], "yes");
    assert_eq!(h["x-content-type-options"], "nosniff");
    // The route's overrides apply to its 304s and to its SPA fallback too.
    let etag = h["etag"].to_str().unwrap().to_owned();
    let (s, h, _) =
        get_with(&client, "GET", "/embed/widget.html", &[("if-none-match", &etag)]).await;
    assert_eq!(s, 304);
    assert_eq!(h["x-embed"], "yes");
    let (s, h, b) = get_with(&client, "GET", "/embed/some/view", &[("accept", "text/html")]).await;
    assert_eq!((s.as_u16(), &b[..]), (200, INDEX));
    assert_eq!(
        h["content-security-policy"],
        "default-src 'self'; frame-ancestors https://partner.example.test"
    );

    let (s, h, _) = client.get("/plain/page.html").await;
    assert_eq!(s, 200);
    assert!(h.get("content-security-policy").is_none());
    assert_eq!(h["x-frame-options"], "DENY");
}

#[tokio::test]
async fn the_frontend_and_the_api_share_one_origin() {
    let d = dist();
    let up = Upstream::start().await;
    let gate = start(
        "",
        &format!("{}\n[[routes]]\nmatch = \"/api/**\"\n\n{}", up.config(), frontend_config(&d, "")),
    );
    let client = gate.tls();
    let (s, _, b) = get_with(&client, "GET", "/api/items", &[("accept", "text/html")]).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"ok"[..]));
    assert_eq!(up.hits(), 1);
    let (s, _, b) = get_with(&client, "GET", "/app/route", &[("accept", "text/html")]).await;
    assert_eq!((s.as_u16(), &b[..]), (200, INDEX));
    let (s, _, b) = client.get("/styles.css").await;
    assert_eq!((s.as_u16(), &b[..]), (200, CSS));
    assert_eq!(up.hits(), 1);
    drop(d.root);
}
