//! The web console: the static page at `/` and its assets under `/console/`, embedded in
//! the binary from the `console/` directory (plain HTML, CSS and ES modules: nothing to
//! build, nothing to install).
//!
//! The files are served without a token, as they hold no data; the page asks for one
//! when the API answers `unauthorized` and talks to the API like any client (REST for
//! profiles and files, Socket.IO for sessions and their events).
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts, styles and
//! connections of this origin only, no inline script, no framing), an `ETag` of its bytes
//! and `Cache-Control: no-cache`, so a browser revalidates and a new binary's assets are
//! never mixed with an old one's.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::Shared;
use super::error::route_not_found;

/// The policy of every console answer. `connect-src 'self'` covers the page's own
/// WebSocket origin too (CSP level 3).
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its path under `/console/`, its media type and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $path)),
        }
    };
}

/// Every file of the console. `index.html` is also the page at `/`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("conversation.js", "text/javascript; charset=utf-8"),
    asset!("markdown.js", "text/javascript; charset=utf-8"),
    asset!("schema-form.js", "text/javascript; charset=utf-8"),
    asset!("pending.js", "text/javascript; charset=utf-8"),
    asset!("session-head.js", "text/javascript; charset=utf-8"),
    asset!("files.js", "text/javascript; charset=utf-8"),
    asset!(
        "vendor/socket.io.esm.min.js",
        "text/javascript; charset=utf-8"
    ),
];

/// The `ETag` of each asset, in the order of [`ASSETS`]: a digest of its bytes.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header value")
        })
        .collect()
});

/// `/` and `/console/{*path}`.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(index))
        .route("/console/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

async fn file(Path(path): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    match serve(&path, &headers) {
        Some(response) => response,
        None => route_not_found(Method::GET, uri).await.into_response(),
    }
}

/// The asset at `path` (or 304 when the browser's copy is current); `None` for a path that
/// is not one.
fn serve(path: &str, headers: &HeaderMap) -> Option<Response> {
    let index = ASSETS.iter().position(|asset| asset.path == path)?;
    let asset = &ASSETS[index];
    let etag = ETAGS[index].clone();
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let common: [(HeaderName, HeaderValue); 7] = [
        (ETAG, etag),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
        ),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    let response = if fresh {
        (StatusCode::NOT_MODIFIED, common).into_response()
    } else {
        let content_type = HeaderValue::from_static(asset.content_type);
        (common, [(CONTENT_TYPE, content_type)], asset.bytes).into_response()
    };
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_path_and_some_bytes() {
        let mut paths: Vec<_> = ASSETS.iter().map(|asset| asset.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|asset| !asset.bytes.is_empty()));
    }

    #[test]
    fn a_matching_etag_is_not_modified() {
        let first = serve("app.js", &HeaderMap::new()).unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, etag);
        let again = serve("app.js", &headers).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(serve("../Cargo.toml", &HeaderMap::new()).is_none());
    }

    #[test]
    fn the_page_loads_only_its_own_modules() {
        let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        assert!(
            !page.contains("<script>"),
            "no inline script: the CSP forbids it"
        );
        assert!(page.contains("src=\"/console/app.js\""));
    }
}
