//! An in-process fake of the Anthropic Messages API, good enough for Claude Code.
//!
//! It answers exactly the two requests Claude Code makes against `ANTHROPIC_BASE_URL`:
//! `HEAD /` (a warm-up; 404 is fine) and `POST /v1/messages?beta=true`, always streamed
//! as server-sent events. Everything else gets a 404 error body. The reply is chosen by
//! directives in the last user text (see [`Reply`] and `plan`):
//!
//! | user text | reply |
//! |---|---|
//! | `TOOL:<name> <json>` | a `tool_use` block, `stop_reason: tool_use` |
//! | (a tool_result message) | `TOOL RESULT SEEN: <content text>` |
//! | `FAIL:<status>` | that HTTP status with an error body |
//! | `SLOW:<ms> <text>` | `echo: <text>` after `<ms>` milliseconds |
//! | `HISTORY` | every user text of the conversation joined by ` \| ` |
//! | anything else | `echo: <text>` |

mod reply;
mod sse;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use reply::{Reply, plan, visible_text};

/// A running fake server. Dropping it stops the server and its open connections.
pub struct FakeAnthropic {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

/// What the handlers share with the test.
#[derive(Default)]
struct State {
    /// Every `/v1/messages` body received, in arrival order.
    requests: Mutex<Vec<Value>>,
    /// Extra wait before every reply.
    delay: Mutex<Duration>,
    /// Numbers message and tool ids so that they are unique per server.
    next_id: AtomicU64,
}

impl FakeAnthropic {
    /// Starts a server on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no local port can be bound; a test cannot run without one.
    pub async fn start() -> FakeAnthropic {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(err) => panic!("fake Messages API: cannot bind 127.0.0.1:0: {err}"),
        }
    }

    /// Starts a server on `127.0.0.1:0`, returning bind errors.
    pub async fn try_start() -> io::Result<FakeAnthropic> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::from_listener(listener)
    }

    /// Serves on an already bound listener. Must be called inside a tokio runtime.
    pub fn from_listener(listener: TcpListener) -> io::Result<FakeAnthropic> {
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let server = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(FakeAnthropic {
            addr,
            state,
            server,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value for `ANTHROPIC_BASE_URL`, e.g. `http://127.0.0.1:40123` (no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every `/v1/messages` request body received so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state.requests).clone()
    }

    /// Every user text of the last `/v1/messages` request, outside system reminders: the
    /// user side of the conversation as the model was last shown it. Panics if the model
    /// was never called.
    pub fn last_user_texts(&self) -> Vec<String> {
        let requests = lock(&self.state.requests);
        let last = requests.last().expect("the model was called");
        last["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|message| message["role"] == "user")
            .flat_map(|message| reply::texts(&message["content"]))
            .filter(|text| !text.starts_with("<system-reminder>"))
            .collect()
    }

    /// Sets a wait applied before every reply (on top of `SLOW:`), for interrupt and
    /// queueing tests.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide the recorded requests from the others.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    crate::http_server::serve(listener, state, handle).await
}

type HttpResponse = Response<Full<Bytes>>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::HEAD, "/") => empty(StatusCode::NOT_FOUND),
        (&Method::POST, "/v1/messages") => messages(&state, req).await,
        (method, path) => error(
            StatusCode::NOT_FOUND,
            &format!("the fake Messages API does not serve {method} {path}"),
        ),
    };
    Ok(response)
}

async fn messages(state: &State, req: Request<Incoming>) -> HttpResponse {
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return error(StatusCode::BAD_REQUEST, &format!("cannot read body: {err}")),
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON body: {err}"),
            );
        }
    };
    lock(&state.requests).push(body.clone());
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    let reply = plan(&body);
    let extra = match &reply {
        Reply::Text { delay, .. } => *delay,
        _ => Duration::ZERO,
    };
    let delay = *lock(&state.delay) + extra;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let n = state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let message_id = format!("msg_fake_{n}");
    match reply {
        Reply::Text { text, .. } => events(sse::text_reply(&model, &message_id, &text)),
        Reply::ToolUse { name, input_json } => {
            let tool_use_id = format!("toolu_fake_{n}");
            events(sse::tool_use_reply(
                &model,
                &message_id,
                &tool_use_id,
                &name,
                &input_json,
            ))
        }
        Reply::Error { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, &format!("fake error {}", status.as_u16()))
        }
    }
}

fn events(body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response
}

fn empty(status: StatusCode) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// The Messages API error body for a status.
fn error(status: StatusCode, message: &str) -> HttpResponse {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
