//! The transports: Socket.IO, REST and SSE on one axum router, speaking the wire protocol.
//!
//! # Layout
//! - `socketio`: the Socket.IO namespace `/` (handshake auth, request events, acks) and
//!   the task that fans bus events out to session rooms; `socketio/requests.rs` has one
//!   handler per request event.
//! - `rest`: the `/v1` REST routes and their bearer-token middleware (`wait: true` on a
//!   message waits for that turn's `result` through the manager's turn waiter).
//! - `sse`: the event log as JSON pages, as Server-Sent Events, and as NDJSON transcript.
//! - `ops`: `/healthz`, `/readyz`, `/metrics`, `/openapi.json` (no authentication:
//!   probes, scrapers and client generators).
//! - [`openapi`]: the REST API's OpenAPI 3.1 document: the operation table, with the
//!   schemas of [`schema`].
//! - `console`: the web console's page and assets (`console/`, embedded), when enabled.
//! - [`wire`]: the JSON shapes clients see; [`payload`]: request parsing that names fields.
//! - [`requests`]: the request payloads as types (field types in `fields`);
//!   [`schema`]: the protocol's JSON Schema, generated from those and the wire types.
//! - [`error`]: the error → HTTP status table and the error bodies.
//! - [`origin`]: the `Origin` and `Host` checks in front of every route, and CORS.
//! - `proptests` (tests only): arbitrary payloads and HTTP requests, no panic, every
//!   refusal a documented code.
//! - `/mcp`, the runtime-served tools, comes from `crate::tools` when the app state has it.
//!
//! **Architecture Invariant:** transports reach sessions only through
//! [`SessionManager`] and the [`crate::runtime::EventBus`]; no adapter is visible here.
//! **Architecture Invariant:** every live stream (room broadcast, SSE, `wait: true`)
//! subscribes to the bus *before* it reads the log, and clients dedup by `seq`, so nothing
//! falls between the read and the subscription.

mod console;
pub mod error;
mod fields;
pub mod openapi;
mod ops;
pub mod origin;
pub mod payload;
#[cfg(test)]
mod proptests;
pub mod requests;
mod rest;
pub mod schema;
mod socketio;
mod sse;
pub mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::ListenerExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Authenticator;
use crate::metrics::Metrics;
use crate::runtime::SessionManager;
use origin::RequestGuard;

/// What the transports need to serve clients.
#[derive(Clone)]
pub struct AppState {
    /// Every session operation goes through it.
    pub manager: SessionManager,
    /// Turns tokens into principals, for Socket.IO handshakes and REST requests.
    pub auth: Arc<dyn Authenticator>,
    /// The largest Socket.IO payload and REST body accepted, in bytes.
    pub max_payload: usize,
    /// The runtime-served MCP tools at `/mcp`, when the runtime serves any.
    pub tools: Option<crate::tools::ToolsState>,
    /// Which web pages and `Host` names are served, on every route.
    pub guard: RequestGuard,
    /// Serves the web console at `/` and `/console/`.
    pub console: bool,
}

impl AppState {
    /// The default for [`AppState::max_payload`]: 1 MiB, the protocol's minimum.
    pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

    /// State with the default payload limit and the guard of a loopback runtime.
    pub fn new(manager: SessionManager, auth: Arc<dyn Authenticator>) -> Self {
        Self {
            manager,
            auth,
            max_payload: Self::DEFAULT_MAX_PAYLOAD,
            tools: None,
            guard: RequestGuard::loopback(),
            console: false,
        }
    }
}

/// What every handler shares.
pub(crate) struct Context {
    /// The session manager.
    pub(crate) manager: SessionManager,
    /// The authenticator.
    pub(crate) auth: Arc<dyn Authenticator>,
    /// The metrics behind `/metrics`: the manager's, which the transports add to.
    pub(crate) metrics: Arc<Metrics>,
    /// Turns true once the server shuts down, so endless responses (SSE, `wait: true`)
    /// end and graceful shutdown can finish.
    shutdown: watch::Receiver<bool>,
}

/// The handlers' shared state.
pub(crate) type Shared = Arc<Context>;

impl Context {
    /// Resolves once the server is shutting down; never, if it never does.
    pub(crate) async fn shutting_down(&self) {
        let mut shutdown = self.shutdown.clone();
        // `wait_for` fails only when the sender is gone, which `router` allows: then
        // there is no shutdown to wait for.
        if shutdown.wait_for(|down| *down).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The whole HTTP surface: Socket.IO at `/socket.io`, REST, SSE and the ops routes.
///
/// Spawns the task that forwards bus events to Socket.IO rooms, so it must be called
/// inside a Tokio runtime; that task lives as long as the runtime. Prefer [`serve`],
/// which also ends it and closes live connections on shutdown.
pub fn router(state: AppState) -> Router {
    let parts = build(state);
    // Keeping the sender alive would change nothing: without `serve` nobody sends.
    drop(parts.shutdown);
    parts.router
}

/// Serves the runtime's HTTP surface on `listener` until `shutdown` resolves.
///
/// On shutdown it stops accepting, ends SSE streams and pending `wait: true` requests,
/// disconnects every Socket.IO client, then waits for in-flight requests to finish.
///
/// `sandboxes`, when given, is a unix socket on which sandboxes reach the runtime: it
/// serves only `/mcp`, so a sandbox that can connect to it still cannot use the API.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sandboxes: Option<tokio::net::UnixListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Parts {
        router,
        sandbox_router,
        io,
        lifecycle,
        shutdown: stop,
    } = build(state);
    if let (Some(listener), Some(router)) = (sandboxes, sandbox_router) {
        let mut stopped = stop.subscribe();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.wait_for(|down| *down).await;
            };
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "serving sandboxes failed");
            }
        });
    }
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down the transports");
        let _ = stop.send(true);
        io.close().await;
    };
    // Small frames (an ack right after an event) must not wait for the peer's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(signal)
        .await;
    lifecycle.abort();
    served
}

struct Parts {
    router: Router,
    /// Only `/mcp`, for sandboxes; `None` when the runtime serves no tools.
    sandbox_router: Option<Router>,
    io: socketioxide::SocketIo,
    /// Follows session starts and deletes for the Socket.IO rooms and the metrics.
    lifecycle: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

fn build(state: AppState) -> Parts {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let metrics = state.manager.metrics().clone();
    let ctx: Shared = Arc::new(Context {
        manager: state.manager,
        auth: state.auth,
        metrics: metrics.clone(),
        shutdown: shutdown_rx,
    });
    let (layer, io) = socketio::layer(ctx.clone(), state.max_payload);
    let rooms = socketio::Rooms {
        io: io.clone(),
        metrics: metrics.clone(),
    };
    if !ctx.manager.bus().set_sink(Arc::new(rooms)) {
        // Only a second router over one manager (tests build several) gets here; the
        // first one's clients keep receiving events.
        tracing::warn!("the session manager already sends its events to another router's clients");
    }
    let news = ctx.manager.bus().subscribe();
    let lifecycle = tokio::spawn(socketio::follow_lifecycle(io.clone(), news, metrics));
    let mut router = Router::new().merge(rest::routes(&ctx)).merge(ops::routes());
    if state.console {
        router = router.merge(console::routes());
    }
    let tools = state.tools.map(crate::tools::router::<()>);
    if let Some(tools) = &tools {
        router = router.merge(tools.clone().with_state(()));
    }
    let sandbox_router = tools.map(|tools| tools.fallback(error::route_not_found));
    let guard = Arc::new(state.guard);
    let router = router
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_payload))
        .layer(middleware::from_fn_with_state(ctx.clone(), count_response))
        .with_state(ctx)
        // Outside the REST middleware, so Socket.IO traffic never reaches it.
        .layer(layer)
        // CORS headers go on Socket.IO polling answers too; preflights end here.
        .layer(guard.cors())
        // Outermost: a refused page or Host reaches nothing, preflights included.
        .layer(middleware::from_fn_with_state(
            guard.clone(),
            origin::guard_requests,
        ));
    Parts {
        router,
        sandbox_router,
        io,
        lifecycle,
        shutdown,
    }
}

/// Counts every HTTP response by status for `/metrics`.
async fn count_response(State(ctx): State<Shared>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    ctx.metrics.http_response(response.status().as_u16());
    response
}

/// How often a long-lived connection (a socket, an SSE stream) checks its token again,
/// so that a revoked API key or an expired JWT does not keep it open.
pub(crate) const REVALIDATE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The Socket.IO room of a session.
pub fn room(session_id: &str) -> String {
    format!("session:{session_id}")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn bearer_tokens() {
        let table = [
            ("Bearer abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("Basic abc", None),
            ("Bearer ", None),
            ("Bearer", None),
            ("abc", None),
        ];
        for (header, expected) in table {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_static(header));
            assert_eq!(bearer_token(&headers), expected, "{header:?}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn rooms_are_named_after_sessions() {
        assert_eq!(room("abc"), "session:abc");
    }
}
