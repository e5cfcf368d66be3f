//! frontgate's checks as a tower layer, for a Rust (axum/hyper) backend that wants them
//! in-process instead of in front of it.
//!
//! The layer runs the same admission path as the gateway (limits, path normalization, the route
//! table, the route's checks) and calls the inner service only for requests that pass, with the
//! normalized path; refusals are the same problem documents, and responses get the same
//! security headers. The config is the gateway's TOML, minus `[upstream]`: routes declare what
//! exists and `to = "upstream"` (the default) means the inner service.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use frontgate::layer::FrontgateLayer;
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

use crate::body::{Body, BoxError};
use crate::config::ConfigErrors;
use crate::exchange::Client;
use crate::pipeline::{Admission, BuildError, Gateway, Outgoing};
use crate::problem::{Code, Problem};

/// The client address, for embedders that know it (hyper's accept loop, axum's ConnectInfo).
/// Without it, the client is taken to be 0.0.0.0:0.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

#[derive(Clone)]
pub struct FrontgateLayer {
    gateway: Arc<Gateway>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Build(#[from] BuildError),
}

impl FrontgateLayer {
    pub fn from_toml(text: &str) -> Result<FrontgateLayer, LayerError> {
        let plan =
            crate::plan::Plan::parse_embedded(text, "<embedded>", std::path::Path::new("."))?;
        let services = Arc::new(
            crate::state::Services::current_or_start(&plan.config)
                .map_err(|e| BuildError::State(e.to_string()))?,
        );
        Ok(FrontgateLayer { gateway: Arc::new(Gateway::build(plan, &services)?) })
    }
}

impl<S> tower::Layer<S> for FrontgateLayer {
    type Service = Frontgate<S>;
    fn layer(&self, inner: S) -> Frontgate<S> {
        Frontgate { gateway: self.gateway.clone(), inner }
    }
}

#[derive(Clone)]
pub struct Frontgate<S> {
    gateway: Arc<Gateway>,
    inner: S,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for Frontgate<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    ReqB: Send + 'static,
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
        let gateway = self.gateway.clone();
        // The clone that was driven to readiness is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let start = Instant::now();
            let (mut head, body) = req.into_parts();
            let peer = head
                .extensions
                .get::<ClientAddr>()
                .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
            let client = Client {
                peer,
                ip: peer.ip(),
                https: gateway.config().public_origin().is_https(),
                forwarding: None,
            };
            let request_id = gateway.request_ids.next();
            let rid = request_id.to_str().unwrap_or("").to_owned();
            let method = head.method.clone();
            let raw_path = head.uri.path().to_owned();
            let mut out = Outgoing::new();
            let mut resp = match gateway.admit(&mut head, &client, &request_id, &mut out).await {
                Err(problem) => problem.into_response(&rid),
                Ok(Admission::Answer(r)) => r,
                Ok(Admission::Endpoint(_)) => Problem::new(Code::RouteNotFound).into_response(&rid),
                Ok(Admission::Pass { path, identity }) => {
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
                    crate::proxy::headers::strip_identity_headers(&mut head.headers);
                    if let Some(identity) = &identity {
                        for (k, v) in identity.headers() {
                            head.headers.insert(k, v);
                        }
                    }
                    out.decision = crate::pipeline::Decision::Forwarded;
                    let resp = inner.call(Request::from_parts(head, body)).await?;
                    resp.map(Body::boxed)
                }
            };
            gateway.finish_headers(&mut resp, &out, &request_id, client.https);
            gateway.record(&method, &raw_path, &resp, &mut out, start, &request_id, &client);
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use tower::{Layer, ServiceExt};

    async fn call(
        layer: &FrontgateLayer,
        method: &str,
        path: &str,
        origin: Option<&str>,
    ) -> (u16, String) {
        let inner = tower::service_fn(|req: Request<Full<Bytes>>| async move {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(format!(
                "inner saw {}",
                req.uri().path()
            )))))
        });
        let svc = layer.layer(inner);
        let mut b = Request::builder().method(method).uri(path);
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        let resp = svc.oneshot(b.body(Full::default()).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn embedded_layer_admits_only_declared_routes() {
        let layer = FrontgateLayer::from_toml(
            "[server]\npublic_url = \"https://app.example.com\"\n[[routes]]\nmatch = \"GET /api/items/{id}\"\n",
        )
        .unwrap();
        assert_eq!(
            call(&layer, "GET", "/api/items/%37", None).await,
            (200, "inner saw /api/items/7".into())
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
}
