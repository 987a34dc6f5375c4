//! An in-process fake of Modal's gRPC API, for testing the Modal sandbox provider offline.
//!
//! It serves both services on one plain HTTP/2 port: the control plane
//! (`modal.client.ModalClient`) and the command router
//! (`modal.task_command_router.TaskCommandRouter`), whose URL it hands out with each
//! sandbox. It speaks the messages of `agent_runtime_modal::proto`.
//!
//! What it really does:
//! - every sandbox is a temporary directory; its working directory is the definition's
//!   `workdir` (created if missing), else that temporary directory;
//! - commands run as local processes, each in its own process group, with only the
//!   sandbox's environment (its `secret_sources`) plus the command's own;
//! - output is kept whole, so a read from any offset gets exactly the bytes after it;
//! - stdin writes are idempotent by offset;
//! - terminating (or [`FakeModal::end_sandbox`]) kills every process group of the sandbox;
//! - auth tokens and router JWTs are JWT-shaped with an `exp`, and checked on every call,
//!   along with the client headers and the token id and secret.
//!
//! Fault injection: [`FakeModal::fail_next`], [`FakeModal::drop_next_stream`],
//! [`FakeModal::expire_tokens`], [`FakeModal::set_token_ttl`], [`FakeModal::stall_router`],
//! and the behaviours of a real deployment that Modal's own clients handle:
//! [`FakeModal::set_create_delay`] (slow creates; attempts with one `x-idempotency-key`
//! share one sandbox), [`FakeModal::throttle_next`] (`RESOURCE_EXHAUSTED` with an
//! `RPCRetryPolicy`), [`FakeModal::expire_router_jwt_mid_stream`],
//! [`FakeModal::withhold_task_ids`] (the task id only from `SandboxGetTaskIdV2`, after
//! polls) and [`FakeModal::start_router_late`].
//!
//! The fake shares the host's filesystem: sandboxes are kept apart only by their working
//! directories, so tests give each session its own paths (the provider's `{session_id}`
//! placeholder does that).

mod process;
mod rpc_control;
mod rpc_router;
mod service;
mod state;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use agent_runtime_modal::proto::SandboxCreateV2Request;
use tokio::sync::oneshot;
use tonic::codegen::tokio_stream::wrappers::TcpListenerStream;
use tonic::codegen::tokio_stream::{Stream, StreamExt};

use service::{ControlService, RouterService};
pub use state::CreateAttempt;
use state::{State, lock};

/// A running fake Modal; stops (and kills what it started) when dropped.
pub struct FakeModal {
    state: Arc<State>,
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

/// The connections accepted on `listener`, with `TCP_NODELAY` set as gRPC servers do:
/// tonic sets it only on listeners it binds itself, and without it every answer written in
/// more than one segment waits for the client's delayed ACK (about 40 ms on Linux), which
/// Modal's servers do not add to a call.
fn connections(
    listener: tokio::net::TcpListener,
) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

impl FakeModal {
    /// The token id the fake accepts.
    pub const TOKEN_ID: &'static str = "ak-fake-modal";
    /// The token secret the fake accepts.
    pub const TOKEN_SECRET: &'static str = "as-fake-modal";

    /// Starts the fake on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start() -> FakeModal {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the fake Modal server");
        let address = listener
            .local_addr()
            .expect("local address of the fake Modal server");
        let url = format!("http://{address}");
        let state = Arc::new(State::new(url.clone()));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(ControlService(Arc::clone(&state)))
            .add_service(RouterService(Arc::clone(&state)))
            .serve_with_incoming_shutdown(connections(listener), async {
                let _ = stopped.await;
            });
        tokio::spawn(async move {
            if let Err(error) = server.await {
                eprintln!("fake Modal server stopped: {error}");
            }
        });
        FakeModal {
            state,
            url,
            shutdown: Some(shutdown),
        }
    }

    /// The URL to configure as the provider's `server_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next `n` calls (of either service) fail with `UNAVAILABLE`.
    pub fn fail_next(&self, n: u32) {
        self.state.faults.fail_next.store(n, Ordering::SeqCst);
    }

    /// The next stdout stream opened breaks with `UNAVAILABLE` after its first chunk (at
    /// most 4 KiB). Calls add up: three calls break the next three streams.
    pub fn drop_next_stream(&self) {
        self.state
            .faults
            .drop_streams
            .fetch_add(1, Ordering::SeqCst);
    }

    /// Every auth token and router JWT issued so far stops being accepted
    /// (`UNAUTHENTICATED`), as if they had expired.
    pub fn expire_tokens(&self) {
        self.state.expire_tokens();
    }

    /// The lifetime of tokens issued from now on (default one hour).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.state.lock().token_ttl = ttl;
    }

    /// While stalled, router calls hang instead of answering.
    pub fn stall_router(&self, stalled: bool) {
        self.state.faults.router_stalled.send_replace(stalled);
    }

    /// Each `SandboxCreateV2` takes `delay` from now on, whether or not its caller waits.
    pub fn set_create_delay(&self, delay: Duration) {
        *lock(&self.state.faults.create_delay) = delay;
    }

    /// The next `n` control-plane calls (other than `AuthTokenGet`) fail with
    /// `RESOURCE_EXHAUSTED`, asking the client to try again after `retry_after`.
    pub fn throttle_next(&self, n: u32, retry_after: Duration) {
        *lock(&self.state.faults.throttle_delay) = retry_after;
        self.state.faults.throttle_next.store(n, Ordering::SeqCst);
    }

    /// The next stdout stream opened is refused with `UNAUTHENTICATED` after its first
    /// chunk, its sandbox's router JWTs having expired meanwhile. Calls add up.
    pub fn expire_router_jwt_mid_stream(&self) {
        self.state
            .faults
            .refuse_streams
            .fetch_add(1, Ordering::SeqCst);
    }

    /// Task ids are missing from create responses and listings until `SandboxGetTaskIdV2`
    /// has answered `polls` more times without one (a sandbox not yet scheduled).
    pub fn withhold_task_ids(&self, polls: u32) {
        self.state
            .faults
            .withhold_task_ids
            .store(polls, Ordering::SeqCst);
    }

    /// Sandboxes created from now on are told their router is on another port, which
    /// refuses connections until `delay` has passed (a sandbox slow to start on its worker).
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start_router_late(&self, delay: Duration) {
        let reserved = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the late router");
        let address = reserved.local_addr().expect("the late router's address");
        drop(reserved); // Refused until the router binds it again.
        self.state.lock().router_url = Some(format!("http://{address}"));
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let listener = match tokio::net::TcpListener::bind(address).await {
                Ok(listener) => listener,
                Err(error) => return eprintln!("fake Modal: late router: {error}"),
            };
            let server = tonic::transport::Server::builder()
                .add_service(RouterService(state))
                .serve_with_incoming(connections(listener));
            if let Err(error) = server.await {
                eprintln!("fake Modal: late router stopped: {error}");
            }
        });
    }

    /// Ends a sandbox from Modal's side with a `GenericStatus` (4 timeout, 7 idle timeout,
    /// …): kills its processes and reports the status. `false` for an unknown id.
    pub fn end_sandbox(&self, sandbox_id: &str, status: i32) -> bool {
        let sandbox = self.state.lock().sandboxes.get(sandbox_id).cloned();
        sandbox
            .map(|sandbox| sandbox.end(status, "ended by the test"))
            .is_some()
    }

    /// How many calls were failed by [`FakeModal::fail_next`].
    pub fn failures_served(&self) -> u32 {
        self.state.counters.failures_served.load(Ordering::SeqCst)
    }

    /// How many `AuthTokenGet` calls succeeded.
    pub fn auth_tokens_issued(&self) -> u32 {
        self.state
            .counters
            .auth_tokens_issued
            .load(Ordering::SeqCst)
    }

    /// How many calls were refused for an expired or unknown token or JWT.
    pub fn tokens_refused(&self) -> u32 {
        self.state.counters.tokens_refused.load(Ordering::SeqCst)
    }

    /// How many stdout streams were broken by [`FakeModal::drop_next_stream`].
    pub fn streams_dropped(&self) -> u32 {
        self.state.counters.streams_dropped.load(Ordering::SeqCst)
    }

    /// How many calls were refused by [`FakeModal::throttle_next`].
    pub fn throttles_served(&self) -> u32 {
        self.state.counters.throttles_served.load(Ordering::SeqCst)
    }

    /// How many streams were refused by [`FakeModal::expire_router_jwt_mid_stream`].
    pub fn streams_refused(&self) -> u32 {
        self.state.counters.streams_refused.load(Ordering::SeqCst)
    }

    /// How many `SandboxGetTaskIdV2` calls were answered.
    pub fn task_id_polls(&self) -> u32 {
        self.state.counters.task_id_polls.load(Ordering::SeqCst)
    }

    /// The metadata of every `SandboxCreateV2` attempt, in arrival order.
    pub fn create_attempts(&self) -> Vec<CreateAttempt> {
        self.state.lock().create_attempts.clone()
    }

    /// How many images were built (each distinct image once).
    pub fn image_builds(&self) -> u32 {
        self.state.counters.image_builds.load(Ordering::SeqCst)
    }

    /// The ids of the sandboxes that have not ended.
    pub fn live_sandboxes(&self) -> Vec<String> {
        let state = self.state.lock();
        let mut ids: Vec<String> = state
            .sandboxes
            .values()
            .filter(|s| s.result().is_none())
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// A sandbox's tags as they are now (`SandboxTagsSetV2` replaces them), as
    /// (name, value) pairs; `None` for an unknown id.
    pub fn tags(&self, sandbox_id: &str) -> Option<Vec<(String, String)>> {
        let sandbox = self.state.lock().sandboxes.get(sandbox_id).cloned()?;
        let tags = lock(&sandbox.tags).clone();
        Some(
            tags.into_iter()
                .map(|t| (t.tag_name, t.tag_value))
                .collect(),
        )
    }

    /// The command lines started in a sandbox (`TaskExecStart`), in order; `None` for an
    /// unknown id.
    pub fn commands(&self, sandbox_id: &str) -> Option<Vec<Vec<String>>> {
        let sandbox = self.state.lock().sandboxes.get(sandbox_id).cloned()?;
        let commands = lock(&sandbox.commands).clone();
        Some(commands)
    }

    /// The last `SandboxCreateV2` request received.
    pub fn last_create_request(&self) -> Option<SandboxCreateV2Request> {
        self.state.lock().last_create.clone()
    }
}

impl Drop for FakeModal {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let sandboxes: Vec<_> = self.state.lock().sandboxes.values().cloned().collect();
        for sandbox in sandboxes {
            sandbox.end(
                agent_runtime_modal::proto::status::TERMINATED,
                "fake server stopped",
            );
        }
    }
}
