//! Checks and text helpers of the client.

use reqwest::Url;
use reqwest::header::HeaderMap;

use crate::ConvexError;

/// The deployment URL without a trailing `/`; refuses what would leak the deploy key
/// (plain http off loopback unless allowed) or cannot be a deployment URL.
pub(super) fn check_url(url: &str, allow_http: bool) -> Result<String, ConvexError> {
    let parsed = Url::parse(url)
        .map_err(|err| ConvexError::Config(format!("`url` {url:?} is not a URL: {err}")))?;
    let host = parsed.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback || allow_http => {}
        "http" => {
            return Err(ConvexError::Config(format!(
                "`url` {url:?} is plain http on a non-loopback host, which would send the \
                 deploy key in the clear; use https or set `allow_http = true`"
            )));
        }
        other => {
            return Err(ConvexError::Config(format!(
                "`url` {url:?} has scheme {other:?}; use https"
            )));
        }
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(ConvexError::Config(format!(
            "`url` {url:?} must be a plain deployment URL, without query, fragment or user"
        )));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// A file URL handed out by the deployment; only http(s) is fetched.
pub(super) fn check_transfer_url(url: &str) -> Result<Url, ConvexError> {
    let parsed = Url::parse(url)
        .map_err(|err| ConvexError::InvalidResponse(format!("file URL is not a URL: {err}")))?;
    match parsed.scheme() {
        "https" | "http" => Ok(parsed),
        other => Err(ConvexError::InvalidResponse(format!(
            "file URL has scheme {other:?}"
        ))),
    }
}

/// Logs Convex's deprecation headers, which announce breaking changes ahead.
pub(super) fn log_deprecation(path: &str, headers: &HeaderMap) {
    if let Some(state) = headers.get("x-convex-deprecation-state") {
        let message = headers
            .get("x-convex-deprecation-message")
            .and_then(|m| m.to_str().ok())
            .unwrap_or("");
        tracing::warn!(
            function = path,
            ?state,
            "convex deprecation notice: {message}"
        );
    }
}

/// The error and its sources, e.g. `error sending request: connection refused`.
pub(super) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// At most 300 characters of `text`, for messages built from response bodies.
pub(super) fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
