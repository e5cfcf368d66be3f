//! The demo upstream: a small in-memory JSON API on loopback, standing in for a team's backend.
//! It counts every request that reaches it, and every one it had to refuse as malformed itself
//! (it checks its inputs as strictly as its OpenAPI document, `openapi.yaml`, declares them),
//! and reports both counters on every response (`x-demo-upstream-hits`,
//! `x-demo-upstream-rejected`), so the demo and the tests can show that invalid requests were
//! stopped by the gateway, not by the upstream.

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
    /// Requests the upstream refused itself as malformed or undeclared (400/404 for a bad input).
    pub rejected: AtomicU64,
}

/// The demo API's OpenAPI document (served at `/openapi.yaml` by `frontgate demo`).
pub const OPENAPI_YAML: &str = include_str!("openapi.yaml");

/// The most items the demo keeps; older ones are dropped, so memory stays bounded under fuzzing.
const MAX_ITEMS: usize = 1000;

impl DemoApi {
    pub fn new() -> Arc<Self> {
        let api = DemoApi { next_id: AtomicU64::new(3), ..Default::default() };
        *api.items.lock().unwrap_or_else(|e| e.into_inner()) =
            vec![(1, "first item".into()), (2, "second item".into())];
        Arc::new(api)
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
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
    let mut resp = route(&api, req).await;
    let h = resp.headers_mut();
    h.insert("x-demo-upstream-hits", http::HeaderValue::from(api.hits.load(Ordering::Relaxed)));
    h.insert(
        "x-demo-upstream-rejected",
        http::HeaderValue::from(api.rejected.load(Ordering::Relaxed)),
    );
    resp
}

/// A request the upstream refuses itself: counted, so a test can tell it got through.
fn reject(api: &DemoApi, status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    api.rejected.fetch_add(1, Ordering::Relaxed);
    json(status, serde_json::json!({ "error": why }).to_string())
}

/// The one field of a JSON request (no query string) such as `{"name": "..."}`: exactly that
/// member, a string of 1 to `max` characters; otherwise the refusal to answer with.
async fn only_string_field(
    api: &DemoApi,
    req: Request<Incoming>,
    field: &str,
    max: usize,
) -> Result<String, Response<Full<Bytes>>> {
    let json_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json_type || req.uri().query().is_some() {
        return Err(reject(api, StatusCode::UNSUPPORTED_MEDIA_TYPE, "send application/json"));
    }
    let Ok(body) = Limited::new(req.into_body(), 64 * 1024).collect().await else {
        return Err(reject(api, StatusCode::BAD_REQUEST, "unreadable body"));
    };
    let value = serde_json::from_slice::<serde_json::Value>(&body.to_bytes()).ok().and_then(|v| {
        let obj = v.as_object()?;
        let value = obj.get(field)?.as_str()?;
        (obj.len() == 1 && (1..=max).contains(&value.chars().count())).then(|| value.to_owned())
    });
    value.ok_or_else(|| {
        reject(
            api,
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"{field}\": \"1 to {max} characters\"}}"),
        )
    })
}

async fn route(api: &DemoApi, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let identity =
        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/api/hello") if req.uri().query().is_some() => {
            reject(api, StatusCode::BAD_REQUEST, "no query parameters here")
        }
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
            let limit = match req.uri().query() {
                None => 100,
                Some(q) => match q
                    .strip_prefix("limit=")
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=100).contains(n))
                {
                    Some(n) => n,
                    None => {
                        return reject(
                            api,
                            StatusCode::BAD_REQUEST,
                            "the only query parameter is limit, 1 to 100",
                        );
                    }
                },
            };
            let items = api.items.lock().unwrap_or_else(|e| e.into_inner());
            let list: Vec<_> = items.iter().take(limit).map(|(id, n)| item_json(*id, n)).collect();
            json(StatusCode::OK, serde_json::json!({ "items": list }).to_string())
        }
        (Method::POST, "/api/items") => {
            let name = match only_string_field(api, req, "name", 100).await {
                Ok(name) => name,
                Err(refused) => return refused,
            };
            let id = api.next_id.fetch_add(1, Ordering::Relaxed);
            let mut items = api.items.lock().unwrap_or_else(|e| e.into_inner());
            if items.len() >= MAX_ITEMS {
                items.remove(0);
            }
            items.push((id, name.clone()));
            json(StatusCode::CREATED, item_json(id, &name).to_string())
        }
        (Method::GET, p) if p.starts_with("/api/items/") => {
            let Some(id) = p["/api/items/".len()..]
                .parse::<u64>()
                .ok()
                .filter(|id| *id >= 1 && req.uri().query().is_none())
            else {
                return reject(api, StatusCode::BAD_REQUEST, "the id is a positive integer");
            };
            let items = api.items.lock().unwrap_or_else(|e| e.into_inner());
            match items.iter().find(|(i, _)| *i == id) {
                Some((id, n)) => json(StatusCode::OK, item_json(*id, n).to_string()),
                None => json(StatusCode::NOT_FOUND, r#"{"error":"no such item"}"#.into()),
            }
        }
        (Method::POST, "/api/feedback") => {
            // Behind a proof-of-work route: the gateway let it through only with a clearance.
            let message = match only_string_field(api, req, "message", 500).await {
                Ok(message) => message,
                Err(refused) => return refused,
            };
            let thanks = serde_json::json!({ "thanks": "feedback received", "chars": message.chars().count() });
            json(StatusCode::CREATED, thanks.to_string())
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
        (Method::GET, "/api/crash") => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"NullPointerException at com.example.Db.query(Db.java:42)"}"#.into(),
        ),
        _ => reject(api, StatusCode::NOT_FOUND, "not found"),
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("demo runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("demo listener");
            serve(listener, api2).await;
        });
    })?;
    Ok((bound, api))
}
