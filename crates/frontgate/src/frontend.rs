//! The front-end, served from the same origin as the API: static files with the right content
//! types, validators (ETag/Last-Modified → 304), precompressed variants (.br, .gz), long-lived
//! caching for content-hashed assets, and the SPA fallback to index.html for navigations.
//!
//! Paths arrive normalized (no dot-segments, encoded slashes or NUL); dotfiles are never served
//! (except under /.well-known/), and symlinks that leave the directory are refused.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use crate::body::Body;
use crate::config::FrontendConfig;

pub struct Frontend {
    root: PathBuf,
    index: String,
    spa_fallback: bool,
    /// Path prefixes (`/api/`) under which the SPA fallback does not answer.
    fallback_exclude: Vec<String>,
    immutable_prefixes: Vec<String>,
}

/// What the front-end has for a request: a response, or nothing (the caller answers 404).
pub enum Served {
    Found(Response<Body>),
    NotFound,
}

const STREAM_THRESHOLD: u64 = 256 * 1024;

impl Frontend {
    /// `api_prefixes`: what the SPA fallback leaves alone when `spa_fallback_exclude` is not set
    /// (see [`api_prefixes`]).
    pub fn new(config: &FrontendConfig, api_prefixes: Vec<String>) -> std::io::Result<Frontend> {
        let dir = config.dir.as_deref().unwrap_or(Path::new(""));
        let root = std::fs::canonicalize(dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("[frontend] dir {}: {e}", dir.display()))
        })?;
        Ok(Frontend {
            root,
            index: config.index().to_owned(),
            spa_fallback: config.spa_fallback(),
            fallback_exclude: config.spa_fallback_exclude.clone().unwrap_or(api_prefixes),
            immutable_prefixes: config.immutable_prefixes(),
        })
    }

    pub async fn serve(&self, method: &Method, path: &str, headers: &HeaderMap) -> Served {
        if method != Method::GET && method != Method::HEAD {
            return Served::NotFound;
        }
        let Some(mut rel) = relative_path(path) else { return Served::NotFound };
        if path.ends_with('/') {
            rel.push(&self.index);
        }
        let immutable = self.immutable_prefixes.iter().any(|p| path.starts_with(p.as_str()));
        if let Some(resp) = self.file_response(&rel, method, headers, immutable).await {
            return Served::Found(resp);
        }
        let last = path.rsplit('/').next().unwrap_or("");
        let excluded = self
            .fallback_exclude
            .iter()
            .any(|p| path.starts_with(p.as_str()) || path == p.trim_end_matches('/'));
        if self.spa_fallback && !excluded && accepts_html(headers) && !last.contains('.') {
            let index = PathBuf::from(&self.index);
            if let Some(resp) = self.file_response(&index, method, headers, false).await {
                return Served::Found(resp);
            }
        }
        Served::NotFound
    }

    async fn file_response(
        &self,
        rel: &Path,
        method: &Method,
        headers: &HeaderMap,
        immutable: bool,
    ) -> Option<Response<Body>> {
        let full = self.root.join(rel);
        let meta = tokio::fs::metadata(&full).await.ok()?;
        if !meta.is_file() {
            return None;
        }
        let canonical = tokio::fs::canonicalize(&full).await.ok()?;
        if !canonical.starts_with(&self.root) {
            return None;
        }
        let mime = mime_guess::from_path(&full).first_or_octet_stream();
        let content_type = if mime.type_() == mime_guess::mime::TEXT
            || mime.subtype() == mime_guess::mime::JAVASCRIPT
            || mime.subtype() == mime_guess::mime::JSON
        {
            format!("{}; charset=utf-8", mime.essence_str())
        } else {
            mime.essence_str().to_owned()
        };
        let accepts =
            headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut chosen = (canonical.clone(), meta, None::<&'static str>);
        for (enc, ext) in [("br", "br"), ("gzip", "gz")] {
            if accepts_encoding(accepts, enc) {
                let mut p = canonical.clone().into_os_string();
                p.push(".");
                p.push(ext);
                let p = PathBuf::from(p);
                if let Ok(m) = tokio::fs::metadata(&p).await
                    && m.is_file()
                {
                    chosen = (p, m, Some(enc));
                    break;
                }
            }
        }
        let (file_path, meta, encoding) = chosen;
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let mtime = modified.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let etag = format!(
            "\"{:x}-{:x}{}\"",
            meta.len(),
            mtime.as_nanos(),
            encoding.map(|e| format!("-{e}")).unwrap_or_default()
        );
        let last_modified = httpdate::fmt_http_date(modified);

        let mut resp = Response::new(Body::empty());
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&content_type).ok()?);
        h.insert(header::ETAG, HeaderValue::from_str(&etag).ok()?);
        h.insert(header::LAST_MODIFIED, HeaderValue::from_str(&last_modified).ok()?);
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
        );
        if let Some(enc) = encoding {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
        }
        if not_modified(headers, &etag, modified) {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            return Some(resp);
        }
        resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
        if method == Method::HEAD {
            return Some(resp);
        }
        let body = if meta.len() <= STREAM_THRESHOLD {
            Body::full(tokio::fs::read(&file_path).await.ok()?)
        } else {
            let file = tokio::fs::File::open(&file_path).await.ok()?;
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
            use futures_util::TryStreamExt;
            Body::boxed(http_body_util::StreamBody::new(stream.map_ok(http_body::Frame::data)))
        };
        *resp.body_mut() = body;
        Some(resp)
    }
}

/// Maps a normalized URL path onto a relative file path; `None` for anything not servable.
fn relative_path(path: &str) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    let segments: Vec<&str> =
        path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    for (i, seg) in segments.iter().enumerate() {
        let decoded = percent_encoding::percent_decode_str(seg).decode_utf8().ok()?;
        if decoded.contains('/')
            || decoded.contains('\\')
            || decoded.contains('\0')
            || decoded == "."
            || decoded == ".."
        {
            return None;
        }
        // Dotfiles (.env, .git) are never served; /.well-known/ is the one exception.
        if decoded.starts_with('.') && !(i == 0 && decoded == ".well-known") {
            return None;
        }
        rel.push(decoded.as_ref());
    }
    Some(rel)
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

fn accepts_encoding(accept: &str, enc: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
        });
        name.eq_ignore_ascii_case(enc) && !q_zero
    })
}

fn not_modified(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    }
    if let Some(ims) = headers.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok())
        && let Ok(since) = httpdate::parse_http_date(ims)
    {
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        };
        return secs(modified) <= secs(since);
    }
    false
}

/// The first literal segment of every path the upstream serves, as a prefix (`/api/` for
/// `GET /api/items/{id}` or `/api/**`): where a browser navigation to an undeclared path should
/// get the 404 problem rather than the SPA's HTML. Routes whose first segment is a parameter or
/// `/**` name no prefix.
pub fn api_prefixes<'a>(upstream_paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for path in upstream_paths {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if first.is_empty() || first.starts_with('{') {
            continue;
        }
        let prefix = format!("/{first}/");
        if !out.contains(&prefix) {
            out.push(prefix);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_refuse_dotfiles_and_escapes() {
        assert_eq!(relative_path("/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(relative_path("/a%20b.txt"), Some(PathBuf::from("a b.txt")));
        assert_eq!(
            relative_path("/.well-known/security.txt"),
            Some(PathBuf::from(".well-known/security.txt"))
        );
        assert_eq!(relative_path("/.env"), None);
        assert_eq!(relative_path("/a/.git/config"), None);
        assert_eq!(relative_path("/a/.well-known/x"), None);
    }

    #[test]
    fn accept_encoding_parsing() {
        assert!(accepts_encoding("gzip, deflate, br", "br"));
        assert!(!accepts_encoding("gzip;q=0, br", "gzip"));
        assert!(!accepts_encoding("identity", "gzip"));
    }
}
