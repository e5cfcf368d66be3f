//! frontgate's checks as a tower layer, for a Rust (axum/hyper) backend that wants them
//! in-process instead of in front of it.
//!
//! The layer runs the same admission path as the gateway (limits, path normalization, the route
//! table, the route's checks) and calls the inner service only for requests that pass, with the
//! normalized path; refusals are the same problem documents, and responses get the same
//! security headers. The config is the gateway's TOML, minus `[upstream]`: routes declare what
//! exists and `to = "upstream"` (the default) means the inner service.
//!
//! The layer takes requests with any body type and hands the inner service a [`Body`]: checks
//! that read the body (OpenAPI validation, the proof of work's `altcha` form field) buffer it,
//! bounded by the route's `max_body_bytes`, and the inner service then gets exactly the bytes
//! that were checked. The gateway's own endpoints under `/.frontgate/` (the proof of work's
//! challenge and verify, OIDC login) are served by the layer too. `examples/axum-embedded` is a
//! complete axum service built this way.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use frontgate_core::layer::FrontgateLayer;
//! let layer = FrontgateLayer::from_toml(r#"
//!     [server]
//!     public_url = "https://app.example.com"
//!     [[routes]]
//!     match = "GET /api/items"
//! "#)?;
//! // axum: Router::new().route("/api/items", get(list)).layer(layer)
//! # let _ = layer; Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};

use crate::admission::{Admission, Admitted, BuildError, Decision, Outgoing, RequestBody};
pub use crate::body::Body;
use crate::body::{BoxError, ClientBody};
use crate::config::ConfigErrors;
use crate::exchange::Client;
use crate::problem::{Code, Problem};

/// The client address, for embedders that know it (a hyper accept loop). With the `axum`
/// feature, axum's `ConnectInfo<SocketAddr>` (`into_make_service_with_connect_info`) is read as
/// well. Without either, the client is taken to be 0.0.0.0:0 (and limits keyed by address share
/// one bucket).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The tower layer: wraps an inner service in [`Frontgate`]. Build it once with
/// [`FrontgateLayer::from_toml`]; clones share the same admission.
#[derive(Clone)]
pub struct FrontgateLayer {
    admission: Arc<Admission>,
}

/// Why [`FrontgateLayer::from_toml`] refused a config.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The config text, or what it points at, is invalid; each error names its place.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// Admission could not be built from a valid config: a feature could not be built, or the
    /// process state could not be started.
    #[error("{0}")]
    Build(#[from] BuildError),
}

impl FrontgateLayer {
    /// Parses, checks and builds the layer from the gateway's TOML config (without
    /// `[upstream]`). Relative paths in it resolve against the current directory.
    pub fn from_toml(text: &str) -> Result<FrontgateLayer, LayerError> {
        let plan =
            crate::plan::Plan::parse_embedded(text, "<embedded>", std::path::Path::new("."))?;
        FrontgateLayer::from_plan(plan)
    }

    /// The layer for a config file; relative paths in it are relative to its directory.
    pub fn from_file(path: &std::path::Path) -> Result<FrontgateLayer, LayerError> {
        let text = crate::config::read_file(path)?;
        let base = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let plan = crate::plan::Plan::parse_embedded(&text, &path.display().to_string(), &base)?;
        FrontgateLayer::from_plan(plan)
    }

    fn from_plan(plan: crate::plan::Plan) -> Result<FrontgateLayer, LayerError> {
        let services = Arc::new(
            crate::state::Services::current_or_start(&plan.config).map_err(BuildError::State)?,
        );
        Ok(FrontgateLayer { admission: Arc::new(Admission::build(plan, &services)?) })
    }
}

impl<S> tower::Layer<S> for FrontgateLayer {
    type Service = Frontgate<S>;
    fn layer(&self, inner: S) -> Frontgate<S> {
        Frontgate { admission: self.admission.clone(), inner }
    }
}

/// The service [`FrontgateLayer`] wraps around `S`: it admits or refuses each request and calls
/// `S` only for those that pass.
#[derive(Clone)]
pub struct Frontgate<S> {
    admission: Arc<Admission>,
    inner: S,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for Frontgate<S>
where
    S: tower::Service<Request<Body>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    ReqB: http_body::Body<Data = Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let admission = self.admission.clone();
        // The clone that was driven to readiness is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let start = Instant::now();
            let (mut head, body) = req.into_parts();
            // Any body type: checks that read the body (OpenAPI validation, the proof of
            // work's form field) buffer it, and the inner service then gets those bytes.
            let mut body = RequestBody::Embedded(Body::boxed(body));
            let peer = client_addr(&head.extensions);
            let client = Client {
                peer,
                // A client address a trusted proxy in front of the service vouches for, as the
                // gateway reads it (`[server] trusted_proxies`).
                ip: crate::headers::client_ip(&admission.config().server, peer.ip(), &head.headers),
                https: admission.config().public_origin().is_https(),
                forwarding: None,
            };
            let request_id = admission.request_ids.next();
            let rid = request_id.to_str().unwrap_or("").to_owned();
            let method = head.method.clone();
            let raw_path = head.uri.path().to_owned();
            let mut out = Outgoing::new();
            let admitted =
                admission.admit(&mut head, &client, &request_id, &mut out, &mut body).await;
            let mut resp = match admitted {
                Err(problem) => problem.into_response(&rid),
                Ok(Admitted::Answer(r)) => r,
                // The gateway's own endpoints (the proof of work's challenge and verify, OIDC
                // login): the same as in front of a backend, with the body read first.
                Ok(Admitted::Endpoint(endpoint)) => {
                    let limit = admission.config().server.max_body_bytes.0;
                    match body.buffer(&head.headers, limit, ENDPOINT_BODY_TIME).await {
                        Err(problem) => problem.into_response(&rid),
                        Ok(bytes) => {
                            let body = if bytes.is_empty() {
                                ClientBody::Empty
                            } else {
                                ClientBody::Read(Some(bytes))
                            };
                            endpoint
                                .handle(&mut head, body, &client, &rid)
                                .await
                                .unwrap_or_else(|problem| problem.into_response(&rid))
                        }
                    }
                }
                Ok(Admitted::Pass { path, identity }) => {
                    if let Some(p) = path {
                        let pq = match head.uri.query() {
                            Some(q) => format!("{p}?{q}"),
                            None => p,
                        };
                        if let Ok(uri) = pq.parse() {
                            head.uri = uri;
                        }
                    }
                    head.headers.insert("x-request-id", request_id.clone());
                    crate::headers::strip_identity_headers(&mut head.headers);
                    if let Some(identity) = &identity {
                        for (k, v) in identity.headers() {
                            head.headers.insert(k, v);
                        }
                    }
                    match inner_body(&admission, &out, &mut head, body) {
                        Err(problem) => problem.into_response(&rid),
                        Ok(body) => {
                            out.decision = Decision::Forwarded;
                            let method = head.method.clone();
                            let resp = inner.call(Request::from_parts(head, body)).await?;
                            // As in front of a backend: the route's response hooks (OpenAPI
                            // response validation) on the inner service's answers.
                            let mut resp = resp.map(Body::boxed);
                            for hook in admission.response_hooks(&out) {
                                resp = match hook.on_response(&method, &rid, resp).await {
                                    Ok(r) => r,
                                    Err(problem) => problem.into_response(&rid),
                                };
                            }
                            resp
                        }
                    }
                }
            };
            admission.finish_headers(&mut resp, &out, &request_id, client.https);
            admission.record(&method, &raw_path, &resp, &mut out, start, &request_id, &client);
            Ok(resp)
        })
    }
}

/// The body the inner service gets: a body a check read, as exactly the bytes that were
/// checked; an unread one bounded by the route's `max_body_bytes`, as in front of a backend
/// (a declared excess, or conflicting lengths, refused at once; a streamed excess ends the body
/// with an error at the limit).
fn inner_body(
    admission: &Admission,
    out: &Outgoing,
    head: &mut http::request::Parts,
    body: RequestBody,
) -> Result<Body, Problem> {
    Ok(match body {
        RequestBody::Embedded(b) => {
            let limit = admission.max_body_bytes(out);
            if crate::admission::canonical_content_length(&mut head.headers)?
                .is_some_and(|n| n > limit)
            {
                return Err(Problem::new(Code::PayloadTooLarge));
            }
            Body::boxed(http_body_util::Limited::new(
                b,
                usize::try_from(limit).unwrap_or(usize::MAX),
            ))
        }
        RequestBody::Buffered(bytes) => {
            head.headers.remove(http::header::TRANSFER_ENCODING);
            head.headers.insert(http::header::CONTENT_LENGTH, bytes.len().into());
            Body::full(bytes)
        }
        RequestBody::Stream(_) | RequestBody::Unavailable => Body::Empty,
    })
}

/// The client's address: [`ClientAddr`] when the embedder set it, else axum's
/// `ConnectInfo<SocketAddr>` (with the `axum` feature), else 0.0.0.0:0.
fn client_addr(extensions: &http::Extensions) -> SocketAddr {
    if let Some(c) = extensions.get::<ClientAddr>() {
        return c.0;
    }
    #[cfg(feature = "axum")]
    if let Some(c) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return c.0;
    }
    // Every client shares one address: limits keyed by address become one bucket for all.
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "the embedded layer does not know the client's address (no ClientAddr, no axum ConnectInfo): every client counts as 0.0.0.0 for rate limits and bindings"
        )
    });
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// How long the body of a request to one of the gateway's own endpoints may take to arrive.
const ENDPOINT_BODY_TIME: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use tower::{Layer, ServiceExt};

    /// Calls the layer around an inner service that says what it received.
    async fn send(layer: &FrontgateLayer, req: Request<Full<Bytes>>) -> (u16, String) {
        let inner = tower::service_fn(|req: Request<Body>| async move {
            let path = req.uri().path().to_owned();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let said = format!("inner saw {path} with {} bytes", body.len());
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(said))))
        });
        let resp = layer.layer(inner).oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn call(
        layer: &FrontgateLayer,
        method: &str,
        path: &str,
        origin: Option<&str>,
    ) -> (u16, String) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        send(layer, b.body(Full::default()).unwrap()).await
    }

    #[test]
    fn keys_of_the_gateways_listener_and_forwarding_are_errors_in_the_layer() {
        let Err(err) = FrontgateLayer::from_toml(
            "[server]\npublic_url = \"https://app.example.com\"\nlisten = \"127.0.0.1:9\"\n\
             [upstream]\nurl = \"http://127.0.0.1:3000\"\n[frontend]\ndir = \".\"\n\
             [[routes]]\nmatch = \"GET /api/items\"\n",
        ) else {
            panic!("accepted")
        };
        let text = err.to_string();
        for key in ["[upstream]", "[server] listen", "[frontend] dir"] {
            assert!(text.contains(&format!("{key} has no effect in the embedded layer")), "{text}");
        }
    }

    #[tokio::test]
    async fn embedded_layer_admits_only_declared_routes() {
        let layer = FrontgateLayer::from_toml(
            "[server]\npublic_url = \"https://app.example.com\"\n[[routes]]\nmatch = \"GET /api/items/{id}\"\n",
        )
        .unwrap();
        assert_eq!(
            call(&layer, "GET", "/api/items/%37", None).await,
            (200, "inner saw /api/items/7 with 0 bytes".into())
        );
        let (s, b) = call(&layer, "GET", "/api/admin", None).await;
        assert_eq!(s, 404);
        assert!(b.contains("route_not_found"));
        assert_eq!(call(&layer, "POST", "/api/items/7", None).await.0, 405);
        assert_eq!(call(&layer, "GET", "/api/items/..%2f", None).await.0, 400);
        assert_eq!(call(&layer, "GET", "/api/items/7", Some("https://evil.example")).await.0, 403);
        assert_eq!(
            call(&layer, "GET", "/api/items/7", Some("https://app.example.com")).await.0,
            200
        );
    }

    /// The proof of work through the layer: the challenge endpoint answers, the checked route
    /// reads the `altcha` form field from the body, a solution admits the request once (the
    /// inner service gets the whole body), and a replay or a bad solution reaches nothing.
    #[tokio::test]
    async fn embedded_layer_serves_and_checks_the_proof_of_work() {
        let layer = FrontgateLayer::from_toml(
            "[server]\npublic_url = \"https://app.example.com\"\n\
             [pow]\nsecret = \"a-test-secret-that-is-long-enough-for-pow\"\n\
             levels = [ { above_rps = 0, cost = 10 } ]\n\
             [[routes]]\nmatch = \"POST /api/signup\"\nchallenge = \"pow\"\n",
        )
        .unwrap();
        let post = |altcha: &str| {
            let body = format!("email=a%40example.com&altcha={altcha}");
            // As hyper hands a request to the service: with its framing header.
            Request::builder()
                .method("POST")
                .uri("/api/signup")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("content-length", body.len())
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        };
        let (s, b) = send(&layer, post("bm90LWEtc29sdXRpb24")).await;
        assert!(s == 400 || s == 403, "a bad solution is refused: {s} {b}");
        assert!(!b.contains("inner saw"), "{b}");

        let (s, b) = call(&layer, "GET", "/.frontgate/challenge?route=/api/signup", None).await;
        assert_eq!(s, 200, "{b}");
        let challenge: altcha::Challenge = serde_json::from_str(&b).unwrap();
        let solution = altcha::solve_challenge(altcha::SolveChallengeOptions::new(&challenge))
            .unwrap()
            .expect("solved");
        let payload =
            crate::checks::pow::protocol::encode_payload(&altcha::Payload { challenge, solution });
        let field: String =
            percent_encoding::utf8_percent_encode(&payload, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let sent = format!("email=a%40example.com&altcha={field}").len();
        let (s, b) = send(&layer, post(&field)).await;
        assert_eq!((s, b), (200, format!("inner saw /api/signup with {sent} bytes")));
        let (s, b) = send(&layer, post(&field)).await;
        assert!(s == 400 || s == 403, "a replayed solution is refused: {s} {b}");
    }

    /// `[openapi] response_validation` applies to the inner service's answers as to a
    /// backend's: an undeclared success status is refused in `block` mode.
    #[tokio::test]
    async fn embedded_layer_validates_the_inner_services_responses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("api.yaml"),
            "openapi: 3.1.0\ninfo: {title: t, version: \"1\"}\npaths:\n  /api/items:\n    get:\n      \
             responses:\n        \"204\": {description: none}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("fg.toml"),
            "[server]\npublic_url = \"https://app.example.com\"\n\
             [openapi]\nspec = \"api.yaml\"\nresponse_validation = \"block\"\n",
        )
        .unwrap();
        let layer = FrontgateLayer::from_file(&dir.path().join("fg.toml")).unwrap();
        // The inner service answers 200 with a body where the document declares only 204.
        let (status, body) = call(&layer, "GET", "/api/items", None).await;
        assert_eq!(status, 502, "{body}");
        assert!(!body.contains("inner saw"), "{body}");
    }

    /// A route's `max_body_bytes` holds for bodies no check reads: a declared excess is a 413
    /// the inner service never sees; a body within it arrives whole.
    #[tokio::test]
    async fn embedded_layer_enforces_max_body_bytes_on_unread_bodies() {
        let layer = FrontgateLayer::from_toml(
            "[server]\npublic_url = \"https://app.example.com\"\n\
             [[routes]]\nmatch = \"POST /api/upload\"\nmax_body_bytes = \"1KiB\"\n",
        )
        .unwrap();
        let post = |len: usize| {
            Request::builder()
                .method("POST")
                .uri("/api/upload")
                .header("content-length", len)
                .body(Full::new(Bytes::from(vec![b'x'; len])))
                .unwrap()
        };
        assert_eq!(
            send(&layer, post(1024)).await,
            (200, "inner saw /api/upload with 1024 bytes".into())
        );
        let (status, body) = send(&layer, post(1025)).await;
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("payload_too_large") && !body.contains("inner saw"), "{body}");
    }
}
