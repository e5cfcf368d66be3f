//! Logs: one JSON access line per request with its request id, and never a credential —
//! Authorization, Cookie, API-key headers and query strings are not written at all.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

#[tokio::test]
async fn access_log_has_request_ids_and_no_credentials() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let client = gate.tls();
    let secret = |r: http::request::Builder| {
        r.header("authorization", "Bearer S3CR3T-TOKEN")
            .header("cookie", "session=S3CR3T-COOKIE")
            .header("x-api-key", "S3CR3T-KEY")
            .header("proxy-authorization", "Basic S3CR3T-PROXY")
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    let mut ids = Vec::new();
    for path in [
        "/echo/a?api_key=S3CR3T-QUERY",
        "/nowhere?token=S3CR3T-QUERY",
        "/echo/%2e%2e/x?k=S3CR3T-QUERY",
    ] {
        let (_, headers, _) = client.send(secret(req("GET", path))).await;
        ids.push(headers["x-request-id"].to_str().unwrap().to_owned());
    }
    for id in &ids {
        // A bounded wait for the line to be written, not a timing check.
        let logged = gate.wait_for_log(id, Duration::from_secs(10));
        assert!(logged, "no access line for {id}:\n{}", gate.logs());
    }
    let logs = gate.logs();
    assert!(!logs.contains("S3CR3T"), "a credential reached the log:\n{logs}");
    // The access lines are JSON with the fields operators search by.
    let line = logs.lines().find(|l| l.contains(&ids[1])).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["status"], 404);
    assert_eq!(v["code"], "route_not_found");
    assert_eq!(v["path"], "/nowhere");
    // The upstream did get what the client sent it (apart from hop-by-hop headers).
    let seen = up.last.lock().unwrap().clone().unwrap();
    assert_eq!(seen.2["authorization"], vec!["Bearer S3CR3T-TOKEN".to_string()]);
    assert!(!seen.2.contains_key("proxy-authorization"));
}
