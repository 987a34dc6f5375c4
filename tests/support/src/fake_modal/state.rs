//! What the fake server knows: tokens, apps, images, sandboxes, injected faults.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_runtime_modal::proto::{
    GenericResult, SandboxCreateV2Request, SandboxCreateV2Response, SandboxTag,
};
use base64::Engine;
use tokio::sync::watch;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::FakeModal;
use super::process::Process;

/// Faults the test asked for.
pub(super) struct Faults {
    pub fail_next: AtomicU32,
    pub drop_streams: AtomicU32,
    pub router_stalled: watch::Sender<bool>,
    /// Control-plane calls still to refuse with `RESOURCE_EXHAUSTED`, and the delay
    /// their `RPCRetryPolicy` asks for.
    pub throttle_next: AtomicU32,
    pub throttle_delay: Mutex<Duration>,
    /// stdout streams still to refuse midway with `UNAUTHENTICATED`.
    pub refuse_streams: AtomicU32,
    /// `SandboxGetTaskIdV2` answers still to give without a task id.
    pub withhold_task_ids: AtomicU32,
    /// How long a `SandboxCreateV2` takes.
    pub create_delay: Mutex<Duration>,
}

/// The metadata of one `SandboxCreateV2` attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateAttempt {
    /// `x-idempotency-key`, empty if absent.
    pub idempotency_key: String,
    /// `x-retry-attempt`, empty if absent.
    pub retry_attempt: String,
    /// `x-retry-delay`, if present.
    pub retry_delay: Option<String>,
}

/// What happened, for assertions.
#[derive(Default)]
pub(super) struct Counters {
    pub failures_served: AtomicU32,
    pub auth_tokens_issued: AtomicU32,
    pub tokens_refused: AtomicU32,
    pub streams_dropped: AtomicU32,
    pub image_builds: AtomicU32,
    pub throttles_served: AtomicU32,
    pub streams_refused: AtomicU32,
    pub task_id_polls: AtomicU32,
}

/// The whole fake's state.
pub(super) struct State {
    /// Where the router is served (the same server).
    pub url: String,
    pub faults: Faults,
    pub counters: Counters,
    inner: Mutex<Inner>,
}

/// Everything behind the lock. Never held across an `.await`.
pub(super) struct Inner {
    pub next_id: u64,
    /// Valid auth tokens and their expiry (seconds since the epoch).
    pub tokens: HashMap<String, f64>,
    pub token_ttl: Duration,
    /// (app name, environment) → app id.
    pub apps: HashMap<(String, String), String>,
    /// Dockerfile commands → (image id, built).
    pub images: HashMap<Vec<String>, (String, bool)>,
    pub sandboxes: HashMap<String, Arc<FakeSandbox>>,
    /// Task id → sandbox id.
    pub tasks: HashMap<String, String>,
    pub last_created_at: f64,
    pub last_create: Option<SandboxCreateV2Request>,
    /// Every `SandboxCreateV2` attempt, in arrival order.
    pub create_attempts: Vec<CreateAttempt>,
    /// Idempotency key → the outcome of the create it started (`None` while running).
    pub creates: HashMap<String, watch::Receiver<Option<CreateOutcome>>>,
    /// Where sandboxes are told their router is, when it is not this server.
    pub router_url: Option<String>,
}

/// What a create answered.
pub(super) type CreateOutcome = Result<SandboxCreateV2Response, Status>;

impl Inner {
    /// A fresh id with `prefix`.
    pub fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-fake{}", self.next_id)
    }

    /// A JWT-shaped token expiring after the configured lifetime.
    pub fn jwt(&mut self) -> (String, f64) {
        let exp = now() + self.token_ttl.as_secs_f64();
        self.next_id += 1;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = format!(r#"{{"exp":{exp},"jti":{}}}"#, self.next_id);
        let token = format!(
            "{}.{}.fake",
            engine.encode(br#"{"alg":"none"}"#),
            engine.encode(claims)
        );
        (token, exp)
    }
}

/// One fake sandbox.
pub(super) struct FakeSandbox {
    pub id: String,
    pub task_id: String,
    pub app_id: String,
    pub tags: Mutex<Vec<SandboxTag>>,
    pub env: BTreeMap<String, String>,
    pub workdir: PathBuf,
    pub created_at: f64,
    /// The sandbox's own directory; removed when the fake is dropped.
    pub _root: tempfile::TempDir,
    /// Valid router JWTs and their expiry.
    pub router_jwts: Mutex<HashMap<String, f64>>,
    pub processes: Mutex<HashMap<String, Arc<Process>>>,
    /// The command line of every command started in it, in order.
    pub commands: Mutex<Vec<Vec<String>>>,
    pub ended: watch::Sender<Option<GenericResult>>,
}

impl FakeSandbox {
    /// How it ended, if it has.
    pub fn result(&self) -> Option<GenericResult> {
        self.ended.borrow().clone()
    }

    /// Ends the sandbox with `status` (first end wins) and kills all its processes.
    pub fn end(&self, status: i32, why: &str) {
        self.ended.send_if_modified(|ended| {
            if ended.is_some() {
                return false;
            }
            *ended = Some(GenericResult {
                status,
                exception: why.to_owned(),
                ..Default::default()
            });
            true
        });
        let processes: Vec<_> = lock(&self.processes).values().cloned().collect();
        for process in processes {
            process.kill();
        }
    }

    /// Whether the sandbox has every tag of `wanted`.
    pub fn has_tags(&self, wanted: &[SandboxTag]) -> bool {
        let tags = lock(&self.tags);
        wanted.iter().all(|tag| tags.contains(tag))
    }
}

impl State {
    pub fn new(url: String) -> State {
        State {
            url,
            faults: Faults {
                fail_next: AtomicU32::new(0),
                drop_streams: AtomicU32::new(0),
                router_stalled: watch::channel(false).0,
                throttle_next: AtomicU32::new(0),
                throttle_delay: Mutex::new(Duration::ZERO),
                refuse_streams: AtomicU32::new(0),
                withhold_task_ids: AtomicU32::new(0),
                create_delay: Mutex::new(Duration::ZERO),
            },
            counters: Counters::default(),
            inner: Mutex::new(Inner {
                next_id: 0,
                tokens: HashMap::new(),
                token_ttl: Duration::from_secs(3600),
                apps: HashMap::new(),
                images: HashMap::new(),
                sandboxes: HashMap::new(),
                tasks: HashMap::new(),
                last_created_at: 0.0,
                last_create: None,
                create_attempts: Vec::new(),
                creates: HashMap::new(),
                router_url: None,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Fails the call if the test asked for failures.
    pub fn injected_failure(&self) -> Result<(), Status> {
        if take(&self.faults.fail_next) {
            self.counters.failures_served.fetch_add(1, Ordering::SeqCst);
            return Err(Status::unavailable("fake Modal: injected failure"));
        }
        Ok(())
    }

    /// Refuses the call with `RESOURCE_EXHAUSTED` and a retry delay if the test asked for it.
    pub fn throttled(&self) -> Result<(), Status> {
        if !take(&self.faults.throttle_next) {
            return Ok(());
        }
        self.counters
            .throttles_served
            .fetch_add(1, Ordering::SeqCst);
        let delay = *lock(&self.faults.throttle_delay);
        Err(throttle_status(delay))
    }

    /// Whether task ids are missing from create responses and listings for now.
    pub fn task_ids_withheld(&self) -> bool {
        self.faults.withhold_task_ids.load(Ordering::SeqCst) > 0
    }

    /// Where a sandbox's command router is served.
    pub fn router_url(&self) -> String {
        self.lock()
            .router_url
            .clone()
            .unwrap_or_else(|| self.url.clone())
    }

    /// Whether to break the stdout stream being opened.
    pub fn take_stream_drop(&self) -> bool {
        take(&self.faults.drop_streams)
    }

    pub fn expire_tokens(&self) {
        let sandboxes: Vec<_> = {
            let mut inner = self.lock();
            inner.tokens.clear();
            inner.sandboxes.values().cloned().collect()
        };
        for sandbox in sandboxes {
            lock(&sandbox.router_jwts).clear();
        }
    }

    /// Checks the headers every control-plane call carries, and the auth token unless
    /// `token_call` (the call that fetches it).
    pub fn check_client(&self, metadata: &MetadataMap, token_call: bool) -> Result<(), Status> {
        let header = |name: &str| {
            metadata
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        if header("x-modal-client-type").is_empty() || header("x-modal-client-version").is_empty() {
            return Err(Status::invalid_argument(
                "missing x-modal-client-type or -version",
            ));
        }
        if header("x-modal-token-id") != FakeModal::TOKEN_ID
            || header("x-modal-token-secret") != FakeModal::TOKEN_SECRET
        {
            return Err(Status::unauthenticated("invalid token id or secret"));
        }
        if token_call {
            return Ok(());
        }
        let valid = self
            .lock()
            .tokens
            .get(header("x-modal-auth-token"))
            .is_some_and(|exp| *exp > now());
        if !valid {
            self.counters.tokens_refused.fetch_add(1, Ordering::SeqCst);
            return Err(Status::unauthenticated("auth token expired or unknown"));
        }
        Ok(())
    }

    /// The sandbox running `task_id`, if the router JWT in `metadata` admits the caller.
    pub fn router_sandbox(
        &self,
        metadata: &MetadataMap,
        task_id: &str,
    ) -> Result<Arc<FakeSandbox>, Status> {
        let sandbox = {
            let inner = self.lock();
            let id = inner.tasks.get(task_id);
            id.and_then(|id| inner.sandboxes.get(id)).cloned()
        };
        let sandbox = sandbox.ok_or_else(|| Status::not_found(format!("no task {task_id}")))?;
        let bearer = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let jwt = bearer.strip_prefix("Bearer ").unwrap_or("");
        let valid = lock(&sandbox.router_jwts)
            .get(jwt)
            .is_some_and(|exp| *exp > now());
        if !valid {
            self.counters.tokens_refused.fetch_add(1, Ordering::SeqCst);
            return Err(Status::unauthenticated("router JWT expired or unknown"));
        }
        Ok(sandbox)
    }

    /// The sandbox with `id`.
    pub fn sandbox(&self, id: &str) -> Result<Arc<FakeSandbox>, Status> {
        let sandbox = self.lock().sandboxes.get(id).cloned();
        sandbox.ok_or_else(|| Status::not_found(format!("no sandbox {id}")))
    }

    /// A new router JWT for `sandbox`.
    pub fn router_jwt(&self, sandbox: &FakeSandbox) -> String {
        let (jwt, exp) = self.lock().jwt();
        lock(&sandbox.router_jwts).insert(jwt.clone(), exp);
        jwt
    }
}

/// Takes one from a countdown of faults; `true` if there was one to take.
pub(super) fn take(count: &AtomicU32) -> bool {
    count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// `RESOURCE_EXHAUSTED` with Modal's `RPCRetryPolicy` in the status details, packed as
/// Modal's servers pack it (an `Any` in a `google.rpc.Status`-shaped `RPCStatus`).
fn throttle_status(delay: Duration) -> Status {
    use agent_runtime_modal::proto::{Any, RPC_RETRY_POLICY_TYPE, RpcRetryPolicy, RpcStatus};
    use prost::Message;
    let message = "fake Modal: too many requests";
    let policy = RpcRetryPolicy {
        retry_after_secs: delay.as_secs_f32(),
    };
    let details = RpcStatus {
        code: tonic::Code::ResourceExhausted as i32,
        message: message.to_owned(),
        details: vec![Any {
            type_url: format!("type.modal.com/{RPC_RETRY_POLICY_TYPE}"),
            value: policy.encode_to_vec(),
        }],
    };
    Status::with_details(
        tonic::Code::ResourceExhausted,
        message,
        details.encode_to_vec().into(),
    )
}

/// Seconds since the epoch.
pub(super) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Locks a std mutex, ignoring poisoning (a panicked test thread must not wedge the fake).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
