//! Profile tools served to agents over MCP, so that credentials stay in the runtime.
//!
//! # Layout
//! - `sessions`: [`ToolSessions`], the per-session bearer tokens (only their SHA-256 kept).
//! - `server`: the token gate in front of `/mcp` and the rmcp `ServerHandler`.
//! - `call`: one call: validate the arguments, render the templates, run HTTP or Convex.
//! - `template`: rendering; a JSON leaf that is exactly `{{ expr }}` keeps expr's type.
//! - `url`: where an `http` tool may send a request: its template's literal scheme, host,
//!   port and path, every value percent-encoded as a component.
//!
//! **Invariant:** the tools a request sees come from that request's token, never from the
//! MCP session it belongs to, so revoking a token cuts the agent off at its next request.

mod call;
mod server;
mod sessions;
mod template;
#[cfg(test)]
mod tests;
mod url;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::middleware;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;

pub use sessions::{IssueError, ToolSession, ToolSessions};
pub(crate) use url::UrlTemplate;

use crate::profiles::ConvexFunctionType;

/// The path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

/// The `Host` names accepted by default: loopback only (rmcp's DNS-rebinding guard).
pub const DEFAULT_ALLOWED_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The most redirects a tool call follows, all within its URL's origin.
const MAX_REDIRECTS: usize = 5;

/// The HTTP client for `http` tools.
///
/// # Behavior
/// - A redirect is followed only to the origin (scheme, host, port) the call started at,
///   at most 5 times; any other redirect is handed back as it is (and the
///   call fails), so templated headers never reach another origin.
///
/// # Panics
/// When the TLS backend cannot start; called once, while the runtime starts.
pub fn http_client() -> reqwest::Client {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    // Building fails only when the TLS backend cannot start (no usable root
    // certificates or crypto provider), which no input can cause: the runtime cannot
    // call out at all then, and says so at start rather than at the first tool call.
    reqwest::Client::builder()
        .redirect(policy)
        .build()
        .expect("the HTTP client for tools could not start its TLS backend")
}

/// How long an idle MCP session is kept. Revoking its token closes it sooner; this only
/// bounds sessions whose agent vanished while its token stayed live.
const MCP_SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Calls Convex functions with the runtime's deployment credentials.
#[async_trait]
pub trait ConvexCaller: Send + Sync {
    /// Calls `function` (such as `events:list`) with `args`.
    ///
    /// # Behavior
    /// - Returns the function's value as JSON.
    /// - Any failure is `Err` with a message fit for the agent: no credentials in it.
    async fn call(
        &self,
        kind: ConvexFunctionType,
        function: &str,
        args: Value,
    ) -> Result<Value, String>;
}

/// Learns of failed tool calls, to tell the session's clients.
pub trait ToolFailureSink: Send + Sync {
    /// Called once per failed call (bad arguments, template error, upstream error), after
    /// the agent got the same message as an error result.
    fn tool_failed(&self, session_id: &str, tool: &str, message: &str);
}

/// Everything the `/mcp` router needs.
#[derive(Clone)]
pub struct ToolsState {
    /// The live tokens; the session manager issues and revokes through the same `Arc`.
    pub sessions: Arc<ToolSessions>,
    /// The client for `http` tools; each call gets a 30 s timeout. Build it with
    /// [`http_client`], which keeps redirects within a call's origin.
    pub http: reqwest::Client,
    /// The Convex deployment for `convex` tools; without one they fail with a clear error.
    pub convex: Option<Arc<dyn ConvexCaller>>,
    /// Where failures are reported.
    pub failures: Arc<dyn ToolFailureSink>,
    /// `Host` values accepted (`name` or `name:port`; a bare name matches any port). Every
    /// name sandboxes use to reach the runtime must be here, or they get 403. Empty accepts
    /// any host.
    pub allowed_hosts: Vec<String>,
}

impl ToolsState {
    /// State without Convex, accepting the loopback names.
    pub fn new(
        sessions: Arc<ToolSessions>,
        http: reqwest::Client,
        failures: Arc<dyn ToolFailureSink>,
    ) -> ToolsState {
        ToolsState {
            sessions,
            http,
            convex: None,
            failures,
            allowed_hosts: DEFAULT_ALLOWED_HOSTS.map(String::from).to_vec(),
        }
    }
}

/// The loopback names plus the host of `public_url` (how sandboxes reach the runtime),
/// with and without its port. `Err` if `public_url` is not a URL with a host.
pub fn allowed_hosts_for(public_url: Option<&str>) -> Result<Vec<String>, String> {
    let mut hosts: Vec<String> = DEFAULT_ALLOWED_HOSTS.map(String::from).to_vec();
    let Some(public_url) = public_url else {
        return Ok(hosts);
    };
    let url = reqwest::Url::parse(public_url)
        .map_err(|e| format!("public_url `{public_url}` is not a URL: {e}"))?;
    let Some(host) = url.host_str() else {
        return Err(format!("public_url `{public_url}` has no host"));
    };
    // `[::1]` in a URL is `::1` in rmcp's list.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if let Some(port) = url.port() {
        hosts.push(format!("{host}:{port}"));
    }
    if !hosts.contains(&host) {
        hosts.push(host);
    }
    Ok(hosts)
}

/// The `/mcp` endpoint (MCP Streamable HTTP) behind the bearer-token gate; merge it into
/// the main router.
///
/// # Behavior
/// - No, malformed, unknown or revoked token: 401 `{"error":{"code":"unauthorized",..}}`.
/// - `Host` not in `allowed_hosts`: 403 (from rmcp).
/// - `tools/list` lists exactly the token's session tools; `tools/call` of another name is
///   an MCP `invalid_params` error; a failed call is an error result plus a
///   [`ToolFailureSink::tool_failed`].
/// - Revoking a token also closes the MCP sessions opened with it.
pub fn router<S>(state: ToolsState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(MCP_SESSION_IDLE);
    let manager = Arc::new(manager);
    state.sessions.attach(manager.clone());
    let executor = Arc::new(call::Executor {
        http: state.http,
        convex: state.convex,
        failures: state.failures,
        renderer: template::Renderer::new(),
    });
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(state.allowed_hosts);
    let service = StreamableHttpService::new(
        move || {
            Ok(server::SessionTools {
                executor: executor.clone(),
            })
        },
        manager,
        config,
    );
    let gate = middleware::from_fn_with_state(state.sessions, server::authenticate);
    Router::new()
        .route_service(MCP_PATH, service)
        .route_layer(gate)
}
