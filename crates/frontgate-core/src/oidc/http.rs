//! The HTTP client frontgate uses to talk to the identity provider (discovery, JWKS, token
//! endpoint), plugged into `openidconnect` as its async client. Deliberately small: one request
//! per connection, HTTP/1.1, https through rustls with the system's roots (http only for the
//! loopback issuers config allows), no redirects followed, bounded time and response size.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use openidconnect::{HttpRequest, HttpResponse};
use tokio::net::TcpStream;

/// Responses from the IdP larger than this are refused (discovery and JWKS are a few KiB).
const MAX_RESPONSE: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum IdpHttpError {
    #[error("bad URL: {0}")]
    Url(String),
    #[error("cannot connect to the identity provider: {0}")]
    Connect(std::io::Error),
    #[error("TLS with the identity provider failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP exchange with the identity provider failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the identity provider's response is larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    #[error("the identity provider did not answer within {TIMEOUT:?}")]
    Timeout,
}

/// The client; cheap to clone.
#[derive(Clone)]
pub struct IdpClient {
    tls: Arc<rustls::ClientConfig>,
}

impl IdpClient {
    pub fn new() -> IdpClient {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| unreachable!("the default protocol versions are supported"));
        IdpClient { tls: Arc::new(tls) }
    }

    /// Sends one request; the answer's status is left for the caller (openidconnect) to judge.
    pub async fn send(&self, req: HttpRequest) -> Result<HttpResponse, IdpHttpError> {
        tokio::time::timeout(TIMEOUT, self.exchange(req))
            .await
            .map_err(|_| IdpHttpError::Timeout)?
    }

    async fn exchange(&self, req: HttpRequest) -> Result<HttpResponse, IdpHttpError> {
        let uri = req.uri().clone();
        let host = uri.host().ok_or_else(|| IdpHttpError::Url(uri.to_string()))?.to_owned();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(IdpHttpError::Url(uri.to_string())),
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let bare_host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let tcp =
            TcpStream::connect((bare_host.as_str(), port)).await.map_err(IdpHttpError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let (parts, body) = req.into_parts();
        let mut out = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        *out.uri_mut() = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| IdpHttpError::Url(uri.to_string()))?;
        let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or(host.clone());
        if let Ok(v) = http::HeaderValue::from_str(&authority) {
            out.headers_mut().insert(http::header::HOST, v);
        }
        if https {
            let name = rustls_pki_types::ServerName::try_from(bare_host)
                .map_err(|e| IdpHttpError::Url(e.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(IdpHttpError::Tls)?;
            Self::over(TokioIo::new(stream), out).await
        } else {
            Self::over(TokioIo::new(tcp), out).await
        }
    }

    async fn over<IO>(io: IO, req: http::Request<Full<Bytes>>) -> Result<HttpResponse, IdpHttpError>
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let resp = sender.send_request(req).await;
        let result = match resp {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                match Limited::new(body, MAX_RESPONSE).collect().await {
                    Ok(b) => Ok(http::Response::from_parts(parts, b.to_bytes().to_vec())),
                    Err(e) => match e.downcast::<hyper::Error>() {
                        Ok(h) => Err(IdpHttpError::Http(*h)),
                        Err(_) => Err(IdpHttpError::TooLarge),
                    },
                }
            }
            Err(e) => Err(IdpHttpError::Http(e)),
        };
        driver.abort();
        result
    }
}

impl Default for IdpClient {
    fn default() -> Self {
        IdpClient::new()
    }
}
