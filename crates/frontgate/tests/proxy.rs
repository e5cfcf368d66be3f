//! Forwarding: what the backend sees, what the client sees, and the failure modes in between.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

#[tokio::test]
async fn forwards_declared_routes_and_strips_spoofed_identity_and_fingerprints() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let client = gate.tls();
    let r = req("GET", "/echo/a?x=1&y=%20")
        .header("x-frontgate-subject", "admin")
        .header("X-Frontgate-Scopes", "everything")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-real-ip", "6.6.6.6")
        .header("x-request-id", "chosen-by-attacker")
        .body(Full::default())
        .unwrap();
    let (status, headers, body) = client.send(r).await;
    assert_eq!(status, 200);
    let seen = json(&body);
    assert_eq!(seen["path"], "/echo/a?x=1&y=%20");
    let h = &seen["headers"];
    assert!(h.get("x-frontgate-subject").is_none() && h.get("x-frontgate-scopes").is_none(), "{h}");
    assert_eq!(h["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"][0], "https");
    assert!(h.get("x-real-ip").is_none());
    assert_eq!(h["forwarded"][0], "for=127.0.0.1;proto=https;host=\"localhost\"");
    assert_ne!(h["x-request-id"][0], "chosen-by-attacker");
    assert_eq!(headers["x-request-id"].to_str().unwrap(), h["x-request-id"][0].as_str().unwrap());
    assert!(headers.get("server").is_none() && headers.get("x-powered-by").is_none());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn undeclared_paths_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"GET /echo/{{id}}\"\n", up.config()));
    let client = gate.tls();
    let (s1, _, b1) = client.get("/nope").await;
    let (s2, _, b2) = client.get("/echo/1/2").await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (404, 404));
    let (p1, p2) = (json(&b1), json(&b2));
    assert_eq!(p1["code"], "route_not_found");
    // Indistinguishable apart from the request id.
    assert_eq!(p1["detail"], p2["detail"]);
    assert_eq!(b1.len(), b2.len());
    let (s, h, b) = client.send(req("DELETE", "/echo/1").body(Full::<Bytes>::default()).unwrap()).await;
    assert_eq!(s, 405);
    assert_eq!(h["allow"], "GET, HEAD");
    assert_eq!(json(&b)["code"], "method_not_allowed");
    assert_eq!(up.hits(), 0);
}
