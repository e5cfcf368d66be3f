//! The demo upstream: a small in-memory JSON API on loopback, standing in for a team's backend.
//! It counts every request that reaches it, so the demo (and tests) can show what the gateway
//! kept away from it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

#[derive(Default)]
pub struct DemoApi {
    items: Mutex<Vec<(u64, String)>>,
    next_id: AtomicU64,
    /// Requests that reached the upstream.
    pub hits: AtomicU64,
}

impl DemoApi {
    pub fn new() -> Arc<Self> {
        let api = DemoApi { next_id: AtomicU64::new(3), ..Default::default() };
        *api.items.lock().unwrap_or_else(|e| e.into_inner()) = vec![(1, "first item".into()), (2, "second item".into())];
        Arc::new(api)
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    // Fingerprints a real backend would leak; the gateway strips them.
    r.headers_mut().insert(header::SERVER, http::HeaderValue::from_static("demo-api/1.0"));
    r.headers_mut().insert("x-powered-by", http::HeaderValue::from_static("demo"));
    r
}

fn item_json(id: u64, name: &str) -> serde_json::Value {
    serde_json::json!({ "id": id, "name": name })
}

async fn handle(api: Arc<DemoApi>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    api.hits.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_owned();
    let identity = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/api/hello") => {
            let who = serde_json::json!({
                "hello": "from the demo upstream",
                "request_id": identity("x-request-id"),
                "forwarded_for": identity("x-forwarded-for"),
                "subject": identity("x-frontgate-subject"),
            });
            json(StatusCode::OK, who.to_string())
        }
        (Method::GET, "/api/items") => {
            let items = api.items.lock().unwrap_or_else(|e| e.into_inner());
            let list: Vec<_> = items.iter().map(|(id, n)| item_json(*id, n)).collect();
            json(StatusCode::OK, serde_json::json!({ "items": list }).to_string())
        }
        (Method::POST, "/api/items") => {
            let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return json(StatusCode::BAD_REQUEST, r#"{"error":"unreadable body"}"#.into()),
            };
            let name = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned));
            let Some(name) = name else {
                return json(StatusCode::BAD_REQUEST, r#"{"error":"expected {\"name\": \"...\"}"}"#.into());
            };
            let id = api.next_id.fetch_add(1, Ordering::Relaxed);
            api.items.lock().unwrap_or_else(|e| e.into_inner()).push((id, name.clone()));
            json(StatusCode::CREATED, item_json(id, &name).to_string())
        }
        (Method::GET, p) if p.starts_with("/api/items/") => {
            let id = p["/api/items/".len()..].parse::<u64>().ok();
            let items = api.items.lock().unwrap_or_else(|e| e.into_inner());
            match id.and_then(|id| items.iter().find(|(i, _)| *i == id)) {
                Some((id, n)) => json(StatusCode::OK, item_json(*id, n).to_string()),
                None => json(StatusCode::NOT_FOUND, r#"{"error":"no such item"}"#.into()),
            }
        }
        (Method::GET, "/api/whoami") => {
            // Behind an API-key route: what the gateway told the upstream about the caller.
            let who = serde_json::json!({
                "subject": identity("x-frontgate-subject"),
                "key_id": identity("x-frontgate-key-id"),
                "scopes": identity("x-frontgate-scopes"),
                "saw_a_key": req.headers().contains_key("x-api-key") || req.headers().contains_key("authorization"),
            });
            json(StatusCode::OK, who.to_string())
        }
        (Method::GET, "/api/crash") => {
            json(StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"NullPointerException at com.example.Db.query(Db.java:42)"}"#.into())
        }
        _ => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into()),
    }
}

/// Serves the demo API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, api: Arc<DemoApi>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(handle(api, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Starts the demo API on its own thread; returns its address.
pub fn spawn(addr: SocketAddr) -> std::io::Result<(SocketAddr, Arc<DemoApi>)> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let bound = std_listener.local_addr()?;
    let api = DemoApi::new();
    let api2 = api.clone();
    std::thread::Builder::new().name("demo-upstream".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("demo runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("demo listener");
            serve(listener, api2).await;
        });
    })?;
    Ok((bound, api))
}
