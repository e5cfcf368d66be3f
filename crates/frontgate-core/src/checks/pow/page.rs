//! The interstitial page a browser navigation to a protected route gets: it says what is
//! happening in plain words (also without JavaScript), announces progress to screen readers
//! through a live region, and lets the keyboard reach its one button.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::body::Body;
use crate::problem::html_escape;

/// The page; `retry_by_reload`: the original request was a GET, so reloading repeats it.
pub fn interstitial(challenge_url: &str, retry_by_reload: bool) -> Response<Body> {
    let after = if retry_by_reload {
        "When it is done, this page reloads by itself."
    } else {
        "When it is done, go back and send the form again: it will go through."
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>One moment: checking your browser</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:38rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a;background:#fff}}\
button{{font:inherit;padding:.5rem 1rem}}button:focus-visible{{outline:3px solid #1a5fb4;outline-offset:2px}}\
progress{{width:100%;height:1rem}}</style></head>\
<body><main aria-labelledby=\"fg-title\"><h1 id=\"fg-title\">One moment: checking your browser</h1>\
<p>This site asks each browser to do a short calculation before it accepts this request, \
to make automated abuse expensive. It needs no clicks and sends nothing about you; on a phone it takes a few seconds.</p>\
<p>{after}</p>\
<div id=\"fg-status\" role=\"status\" aria-live=\"polite\">Starting the calculation…</div>\
<noscript><p><strong>This check needs JavaScript, which is turned off.</strong> Turn JavaScript on for this site and reload the page. \
If you cannot, contact the site's owner: the check cannot be done without it.</p></noscript>\
<p><button type=\"button\" id=\"fg-retry\" hidden>Try again</button></p></main>\
<script src=\"/.frontgate/widget.js\" data-frontgate-challenge=\"{url}\" data-frontgate-reload=\"{reload}\" defer></script>\
</body></html>\n",
        url = html_escape(challenge_url),
        reload = retry_by_reload,
    );
    let mut r = Response::new(Body::full(Bytes::from(html)));
    // 403: the request itself was not served. The page is the explanation and the way through.
    *r.status_mut() = StatusCode::FORBIDDEN;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    r.extensions_mut().insert(crate::problem::Code::ChallengeRequired);
    r
}
