//! An in-process fake Convex deployment, speaking Convex's HTTP API on `127.0.0.1`.
//!
//! It serves exactly the documented shapes:
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/query`, `/api/mutation`, `/api/action` `{path, args, format}` | HTTP 200 `{"status":"success","value"}` or `{"status":"error","errorMessage","errorData"?}` |
//! | `POST /api/run/{dir}/{module}/{fn}` `{args, format}` | the same, for any kind of function |
//! | any of these without `Authorization: Convex <deploy key>` | 401 `{"code","message"}` |
//! | `POST /api/storage/upload?token=<t>` with the bytes | `{"storageId"}` |
//! | `GET /api/storage/<uuid>` | the bytes, with `Content-Type` and `Content-Length`; 404 when gone |
//!
//! Arguments are decoded from Convex's encoded JSON (`$integer`, `$bytes`, `$float`) before
//! a handler sees them; results are encoded for the requested `format`.
//!
//! Built-in handlers implement the functions of `adapters/convex/convex/agentRuntime/`
//! under their default names, against in-memory tables with the same names and the same
//! semantics. Tests add their own with [`FakeConvex::on_query`] and friends, inspect
//! [`FakeConvex::calls`] and [`FakeConvex::table`], and inject failures with
//! [`FakeConvex::fail_next`].

mod builtin;
mod builtin_files;
mod builtin_keys;
mod codec;
mod db;
mod http;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use db::{FakeDb, StoredFile};

/// The kinds of Convex function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// Read-only, `POST /api/query`.
    Query,
    /// Transactional writes, `POST /api/mutation`.
    Mutation,
    /// Anything else, `POST /api/action`.
    Action,
}

impl FunctionKind {
    /// The endpoint's name: `query`, `mutation` or `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
            FunctionKind::Action => "action",
        }
    }
}

/// What a handler throws. With `data`, it is a `ConvexError` (an application error) and the
/// answer carries `errorData`; without, a plain `Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionError {
    /// The error message.
    pub message: String,
    /// The `ConvexError` data, if any.
    pub data: Option<Value>,
}

impl FunctionError {
    /// `throw new ConvexError({code, message})`, as the shipped functions throw.
    pub fn code(code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        FunctionError {
            data: Some(json!({"code": code, "message": message})),
            message,
        }
    }

    /// `throw new Error(message)`.
    pub fn message(message: impl Into<String>) -> Self {
        FunctionError {
            message: message.into(),
            data: None,
        }
    }
}

/// A function handler: gets the deployment's data and the decoded arguments.
pub type Handler = Arc<dyn Fn(&mut FakeDb, Value) -> Result<Value, FunctionError> + Send + Sync>;

/// One function request the fake received, whether or not it was answered successfully.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeCall {
    /// The endpoint: `query`, `mutation`, `action` or `run`.
    pub endpoint: String,
    /// The function path, e.g. `agentRuntime/sessions:get`.
    pub path: String,
    /// The decoded arguments (`Null` when the body could not be read).
    pub args: Value,
    /// The HTTP status answered.
    pub status: u16,
}

/// A running fake deployment. Dropping it stops the server.
pub struct FakeConvex {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

/// What the server shares with the test.
struct State {
    deploy_key: String,
    /// Tables and files; one lock, so every function runs as a serializable transaction.
    db: Mutex<FakeDb>,
    handlers: Mutex<HashMap<String, (FunctionKind, Handler)>>,
    calls: Mutex<Vec<FakeCall>>,
    /// Statuses to answer the next requests with, instead of serving them.
    failures: Mutex<Vec<u16>>,
    delay: Mutex<Duration>,
}

impl FakeConvex {
    /// Starts a fake deployment on `127.0.0.1:0` with the built-in functions.
    ///
    /// # Panics
    /// If no local port can be bound; a test cannot run without one.
    pub async fn start() -> FakeConvex {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(err) => panic!("fake Convex: cannot bind 127.0.0.1:0: {err}"),
        }
    }

    /// Starts a fake deployment on `127.0.0.1:0`, returning bind errors.
    pub async fn try_start() -> io::Result<FakeConvex> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            deploy_key: format!("prod:fake-convex|{}", uuid::Uuid::new_v4().simple()),
            db: Mutex::new(FakeDb::new(format!("http://{addr}"))),
            handlers: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
        });
        let server = tokio::spawn(http::accept_loop(listener, Arc::clone(&state)));
        let fake = FakeConvex {
            addr,
            state,
            server,
        };
        builtin::register(&fake);
        builtin_files::register(&fake);
        builtin_keys::register(&fake);
        Ok(fake)
    }

    /// The deployment URL, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The deploy key the fake accepts (`Authorization: Convex <key>`).
    pub fn deploy_key(&self) -> &str {
        &self.state.deploy_key
    }

    /// Every function request received so far, oldest first.
    pub fn calls(&self) -> Vec<FakeCall> {
        lock(&self.state.calls).clone()
    }

    /// The requests received for the function at `path`.
    pub fn calls_to(&self, path: &str) -> Vec<FakeCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == path)
            .collect()
    }

    /// The documents of `table`, system fields included, oldest first.
    pub fn table(&self, table: &str) -> Vec<Value> {
        lock(&self.state.db).table(table).to_vec()
    }

    /// Runs `inspect` on the deployment's data, e.g. to seed tables or look at files.
    pub fn with_db<T>(&self, inspect: impl FnOnce(&mut FakeDb) -> T) -> T {
        inspect(&mut lock(&self.state.db))
    }

    /// Answers the next `times` requests (function calls, uploads and downloads) with
    /// HTTP 503 without serving them.
    pub fn fail_next(&self, times: usize) {
        self.fail_next_with(times, 503);
    }

    /// Answers the next `times` requests with `status` without serving them. 560 answers
    /// with a function-error body; other statuses with `{"code","message"}`.
    pub fn fail_next_with(&self, times: usize, status: u16) {
        lock(&self.state.failures).extend(std::iter::repeat_n(status, times));
    }

    /// Sets a wait applied before every function answer, for timeout tests.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }

    /// Serves the query at `path` with `handler`, replacing any handler of that path.
    pub fn on_query(
        &self,
        path: &str,
        handler: impl Fn(&mut FakeDb, Value) -> Result<Value, FunctionError> + Send + Sync + 'static,
    ) {
        self.register(FunctionKind::Query, path, Arc::new(handler));
    }

    /// Serves the mutation at `path` with `handler`; a failing handler changes nothing.
    pub fn on_mutation(
        &self,
        path: &str,
        handler: impl Fn(&mut FakeDb, Value) -> Result<Value, FunctionError> + Send + Sync + 'static,
    ) {
        self.register(FunctionKind::Mutation, path, Arc::new(handler));
    }

    /// Serves the action at `path` with `handler`.
    pub fn on_action(
        &self,
        path: &str,
        handler: impl Fn(&mut FakeDb, Value) -> Result<Value, FunctionError> + Send + Sync + 'static,
    ) {
        self.register(FunctionKind::Action, path, Arc::new(handler));
    }

    fn register(&self, kind: FunctionKind, path: &str, handler: Handler) {
        lock(&self.state.handlers).insert(path.to_owned(), (kind, handler));
    }
}

impl Drop for FakeConvex {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not hide the recorded state from the test.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
