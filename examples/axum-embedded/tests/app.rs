//! The example service with the layer in front of its handlers: what the document declares
//! reaches them, nothing else does, over a real socket and in-process.

use std::net::SocketAddr;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum_embedded::{Items, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn config() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("frontgate.toml")
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(path);
    if !body.is_empty() {
        req = req.header("content-type", "application/json").header("content-length", body.len());
    }
    let resp =
        router.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn declared_operations_reach_the_handlers_and_nothing_else_does() {
    let items = Items::default();
    let router = app(&config(), items.clone()).unwrap();

    let (status, created) = call(&router, "POST", "/api/items", r#"{"name":"first"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["name"], "first");
    let (status, list) = call(&router, "GET", "/api/items", "").await;
    assert_eq!((status, list.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));

    // Bodies the document does not allow: validated by the layer, never seen by the handler.
    for bad in [r#"{}"#, r#"{"name":""}"#, r#"{"name":"x","admin":true}"#, r#"{"name":7}"#] {
        let (status, problem) = call(&router, "POST", "/api/items", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(problem["code"], "validation_failed", "{bad}: {problem}");
    }
    // Undeclared paths and methods, and paths two parsers could read differently.
    let (status, problem) = call(&router, "GET", "/api/admin", "").await;
    assert_eq!((status, &problem["code"]), (StatusCode::NOT_FOUND, &"route_not_found".into()));
    let (status, _) = call(&router, "DELETE", "/api/items", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = call(&router, "GET", "/api/%2e%2e/items", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(items.len(), 1, "only the valid item reached the handler");
}

#[tokio::test]
async fn over_a_socket_the_client_address_keys_the_rate_limit() {
    let router = app(&config(), Items::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let svc = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, svc).await.unwrap();
    });
    // One keep-alive connection: the burst (40) passes, then the limit answers 429.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let req = Request::builder()
            .uri("/api/items")
            .header("host", "127.0.0.1")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        statuses.push(resp.status().as_u16());
        let _ = resp.into_body().collect().await;
    }
    server.abort();
    assert!(statuses[..30].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
}
