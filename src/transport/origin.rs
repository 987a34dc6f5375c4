//! Which web pages and which `Host` names may use the HTTP surface.
//!
//! A browser lets any page it shows send requests to any address, loopback included, so
//! a runtime without authentication on `127.0.0.1` would otherwise take orders from every
//! web page its user opens. Two checks stop that, in front of every route (REST, SSE,
//! both Socket.IO transports, `/mcp` and the ops routes):
//!
//! - **Origin.** A request with an `Origin` header comes from a page; it is served only
//!   when that origin is allowed. A request without one (curl, SDKs, sandboxes) is not
//!   a page's and passes.
//! - **Host.** DNS rebinding points a name the attacker owns at `127.0.0.1`: the page is
//!   then same-origin with the runtime and sends no foreign `Origin`, but its requests
//!   carry the attacker's name as `Host`. On a loopback bind, only loopback names and
//!   the configured ones are served.
//!
//! CORS answers come from tower-http's `CorsLayer` with the same list of origins, so a
//! page that is allowed gets the headers it needs and one that is not gets none.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error::ApiError;
use crate::error::{ErrorCode, RuntimeError};

/// The written form of "any": in `allowed_origins`, any page; in `allowed_hosts`, no
/// `Host` check.
pub const ANY: &str = "*";

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The origin and host checks, built once from the config and the bound address.
#[derive(Clone, Debug)]
pub struct RequestGuard {
    origins: Allowed<OriginPattern>,
    hosts: Allowed<HostPattern>,
}

/// An allow list, or everything.
#[derive(Clone, Debug)]
enum Allowed<T> {
    Any,
    Only(Vec<T>),
}

/// One allowed origin: scheme, host, and a port or any port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: String,
    /// `None`: any port (`http://localhost:*`).
    port: Option<u16>,
}

/// One allowed `Host` value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// `localhost` or any loopback IP address, with any port: a browser never resolves
    /// those through DNS, so they cannot be rebound.
    Loopback,
    /// A name, with any port (`None`) or one port.
    Name { host: String, port: Option<u16> },
}

/// What the guard is built from.
#[derive(Clone, Debug, Default)]
pub struct GuardConfig {
    /// The bound address.
    pub listen: Option<SocketAddr>,
    /// `server.public_url`, if set.
    pub public_url: Option<String>,
    /// `server.allowed_origins`; `None` means the default.
    pub allowed_origins: Option<Vec<String>>,
    /// `server.allowed_hosts`; `None` means the default.
    pub allowed_hosts: Option<Vec<String>>,
}

impl RequestGuard {
    /// The guard for a runtime bound to `config.listen`.
    ///
    /// # Behavior
    /// - Origins: the runtime's own (`http://<listen>` unless it is a wildcard address,
    ///   and `public_url`'s), plus `allowed_origins` if set; if it is not set and the bind
    ///   is loopback, loopback pages (`http://localhost:*`, `http://127.0.0.1:*`,
    ///   `http://[::1]:*`). `"*"` in the list allows every origin.
    /// - Hosts: checked on a loopback bind, or on any bind when `allowed_hosts` is set.
    ///   Loopback names and `public_url`'s host always pass; `"*"` in the list turns the
    ///   check off.
    /// - `Err` names the first entry that is not an origin or a host.
    pub fn new(config: &GuardConfig) -> Result<RequestGuard, String> {
        let loopback_bind = config
            .listen
            .is_none_or(|a| a.ip().to_canonical().is_loopback());
        let public = match &config.public_url {
            Some(url) => Some(OriginPattern::parse_url(url)?),
            None => None,
        };
        let origins = match &config.allowed_origins {
            Some(list) if list.iter().any(|entry| entry == ANY) => Allowed::Any,
            configured => {
                let mut patterns = Vec::new();
                if let Some(listen) = config.listen.filter(|a| !a.ip().is_unspecified()) {
                    patterns.push(OriginPattern::parse(&format!("http://{listen}"))?);
                }
                patterns.extend(public.clone());
                match configured {
                    Some(list) => {
                        for entry in list {
                            patterns.push(OriginPattern::parse(entry)?);
                        }
                    }
                    None if loopback_bind => patterns.extend(OriginPattern::loopback_pages()),
                    None => {}
                }
                Allowed::Only(patterns)
            }
        };
        let hosts = match &config.allowed_hosts {
            Some(list) if list.iter().any(|entry| entry == ANY) => Allowed::Any,
            None if !loopback_bind => Allowed::Any,
            configured => {
                let mut patterns = vec![HostPattern::Loopback];
                if let Some(public) = &public {
                    patterns.push(HostPattern::Name {
                        host: public.host.clone(),
                        port: None,
                    });
                }
                for entry in configured.iter().flatten() {
                    patterns.push(HostPattern::parse(entry)?);
                }
                Allowed::Only(patterns)
            }
        };
        Ok(RequestGuard { origins, hosts })
    }

    /// The guard of a loopback runtime with the default lists (tests, embedding).
    pub fn loopback() -> RequestGuard {
        RequestGuard {
            origins: Allowed::Only(OriginPattern::loopback_pages().collect()),
            hosts: Allowed::Only(vec![HostPattern::Loopback]),
        }
    }

    /// Whether every page may call the runtime (`"*"` in `allowed_origins`).
    pub fn allows_any_origin(&self) -> bool {
        matches!(self.origins, Allowed::Any)
    }

    /// Whether a page at `origin` (an `Origin` header value) may call the runtime.
    pub fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        match &self.origins {
            Allowed::Any => true,
            Allowed::Only(patterns) => {
                let Some(origin) = origin.to_str().ok().and_then(|o| Origin::parse(o).ok()) else {
                    return false;
                };
                patterns.iter().any(|pattern| pattern.matches(&origin))
            }
        }
    }

    /// Whether a request naming `host` (a `Host` header value) may be served.
    pub fn host_allowed(&self, host: &str) -> bool {
        match &self.hosts {
            Allowed::Any => true,
            Allowed::Only(patterns) => match split_authority(host) {
                Some((name, port)) => patterns.iter().any(|p| p.matches(&name, port)),
                None => false,
            },
        }
    }

    /// Checks a request's `Host` (or HTTP/2 authority) and `Origin`.
    ///
    /// # Behavior
    /// - A `Host` that is not allowed: `host_forbidden`. No `Host` and no authority
    ///   (HTTP/1.0 tools) passes: a browser always sends one.
    /// - An `Origin` that is not allowed, `null` included: `origin_forbidden`. No
    ///   `Origin` passes.
    pub fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), RuntimeError> {
        let host = match headers.get(HOST) {
            Some(value) => Some(value.to_str().unwrap_or("")),
            None => uri.authority().map(Authority::as_str),
        };
        if let Some(host) = host
            && !self.host_allowed(host)
        {
            return Err(RuntimeError::new(
                ErrorCode::HostForbidden,
                "the Host header names neither this runtime nor a name in server.allowed_hosts",
            ));
        }
        if let Some(origin) = headers.get(ORIGIN)
            && !self.origin_allowed(origin)
        {
            return Err(RuntimeError::new(
                ErrorCode::OriginForbidden,
                "requests from this page's origin are not allowed; see server.allowed_origins",
            ));
        }
        Ok(())
    }

    /// The CORS layer for the allowed origins: preflights answered for every method the
    /// REST API has (`PUT` sets a budget); `Authorization`, `Content-Type`, `Accept` and
    /// `Last-Event-ID` allowed; no cookies (tokens travel in headers).
    pub fn cors(self: &Arc<Self>) -> CorsLayer {
        let guard = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                guard.origin_allowed(origin)
            }))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                ACCEPT,
                HeaderName::from_static("last-event-id"),
            ])
            .max_age(PREFLIGHT_MAX_AGE)
    }
}

/// `Ok` if `entry` may stand in `server.allowed_origins`.
pub fn validate_origin_entry(entry: &str) -> Result<(), String> {
    if entry == ANY {
        return Ok(());
    }
    OriginPattern::parse(entry).map(drop)
}

/// `Ok` if `entry` may stand in `server.allowed_hosts`.
pub fn validate_host_entry(entry: &str) -> Result<(), String> {
    if entry == ANY {
        return Ok(());
    }
    HostPattern::parse(entry).map(drop)
}

/// The middleware: refuses what [`RequestGuard::check`] refuses, before any route runs.
pub(crate) async fn guard_requests(
    State(guard): State<Arc<RequestGuard>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(error) = guard.check(request.headers(), request.uri()) {
        // Header values are what a page chose: log them, never echo them back.
        tracing::warn!(
            code = %error.code,
            origin = ?request.headers().get(ORIGIN),
            host = ?request.headers().get(HOST),
            path = request.uri().path(),
            "refused a request"
        );
        return ApiError(error).into_response();
    }
    next.run(request).await
}

/// An `Origin` header value, parsed.
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(text: &str) -> Result<Origin, String> {
        let pattern = OriginPattern::parse_with(text, false)?;
        Ok(Origin {
            port: pattern.port.unwrap_or_default(),
            scheme: pattern.scheme,
            host: pattern.host,
        })
    }
}

impl OriginPattern {
    /// Parses `scheme://host[:port]` or `scheme://host:*`; the scheme is `http` or
    /// `https`, a missing port is the scheme's default, one trailing `/` is ignored.
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        Self::parse_with(text, true)
    }

    /// The origin of a URL (`public_url`): its scheme, host and port, path dropped.
    fn parse_url(url: &str) -> Result<OriginPattern, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        Self::parse_with(&format!("{scheme}://{authority}"), false)
    }

    fn parse_with(text: &str, wildcard_port: bool) -> Result<OriginPattern, String> {
        let bad = || {
            format!(
                "{text:?} is not an origin: expected http://HOST[:PORT] or https://HOST[:PORT] \
                 (PORT may be *), or \"*\""
            )
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(bad()),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad());
        }
        let (authority, any_port) = match rest.strip_suffix(":*") {
            Some(host) if wildcard_port => (host, true),
            _ => (rest, false),
        };
        let (host, port) = split_authority(authority).ok_or_else(bad)?;
        let port = match (any_port, port) {
            (true, None) => None,
            (true, Some(_)) => return Err(bad()),
            (false, port) => Some(port.unwrap_or(default_port)),
        };
        Ok(OriginPattern { scheme, host, port })
    }

    fn loopback_pages() -> impl Iterator<Item = OriginPattern> {
        ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(|host| OriginPattern {
                scheme: "http".into(),
                host: host.into(),
                port: None,
            })
    }

    fn matches(&self, origin: &Origin) -> bool {
        self.scheme == origin.scheme
            && self.host == origin.host
            && self.port.is_none_or(|port| port == origin.port)
    }
}

impl HostPattern {
    /// `name` (any port), `name:port`, `[v6]`, `[v6]:port`; a bare IPv6 address too.
    fn parse(text: &str) -> Result<HostPattern, String> {
        let bracketed;
        let text = if text.parse::<std::net::Ipv6Addr>().is_ok() {
            bracketed = format!("[{text}]");
            bracketed.as_str()
        } else {
            text
        };
        let (host, port) = split_authority(text).ok_or_else(|| {
            format!("{text:?} is not a host: expected NAME or NAME:PORT, or \"*\"")
        })?;
        Ok(HostPattern::Name { host, port })
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        match self {
            HostPattern::Loopback => is_loopback_name(host),
            HostPattern::Name {
                host: name,
                port: allowed,
            } => name == host && allowed.is_none_or(|allowed| Some(allowed) == port),
        }
    }
}

/// `localhost`, or a loopback IP address (`[::1]` bracketed, as in a `Host` header).
fn is_loopback_name(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    IpAddr::from_str(bare).is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `host[:port]` as a lowercase host (IPv6 bracketed) and its port; `None` for anything
/// else (userinfo, a path, an empty host, a bad port).
fn split_authority(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() || text.contains(['@', '/', '?', '#']) {
        return None;
    }
    let authority = Authority::from_str(text).ok()?;
    let host = authority.host();
    if host.is_empty() {
        return None;
    }
    // With the userinfo refused, the host starts the authority; what follows it is
    // nothing or `:port`, read here so that a port over 65535 is an error, not "none".
    let port = match &authority.as_str()[host.len()..] {
        "" => None,
        rest => Some(rest.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests;
