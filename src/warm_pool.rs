//! A warm pool: sandboxes made ahead of sessions, so that a session's create skips the
//! provider's cold start (seconds on a remote provider).
//!
//! [`WarmPool`] wraps any [`SandboxProvider`] and is one itself. It keeps `size` sandboxes
//! running with empty directories, made with the runtime's owner tag and a placeholder
//! session id (`warm-…`), so startup recovery reaps them like any orphan. A `create` takes
//! the oldest one, hands it to the session ([`Sandbox::assign`]), lays the session's files
//! into it and gives the spec's environment to every command started in it (instead of to
//! the sandbox, which was made before the environment was known); a background task makes
//! a replacement. Every warm sandbox fits every session this way: the image and resources
//! are the provider's, the same for all. When none is ready, or taking one fails, `create`
//! makes a sandbox as without a pool.
//!
//! A warm sandbox older than `max_age` is terminated and replaced, so none outlives the
//! provider's own sandbox lifetime or an image update by much.
//!
//! **Architecture Invariant:** the pool knows no provider: it uses only the
//! `SandboxProvider` and `Sandbox` traits.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_runtime_api::{
    AdapterResult, AgentProcess, CommandSpec, FileReader, FileStat, FileTree, RelPath, Sandbox,
    SandboxDir, SandboxInfo, SandboxProvider, SandboxSpec, async_trait,
};
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WarmPoolConfig;
use crate::metrics::Metrics;

/// The first wait after a failed warm create; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A sandbox provider with sandboxes ready ahead of time.
pub struct WarmPool {
    inner: Arc<dyn SandboxProvider>,
    owner_tag: String,
    config: WarmPoolConfig,
    metrics: Arc<Metrics>,
    /// Ready sandboxes, oldest first, and how many are being made.
    state: Mutex<PoolState>,
    /// Wakes the filler: a sandbox was taken or made.
    wake: Notify,
    /// Cancelled by [`WarmPool::drain`]; the filler stops and no sandbox is handed out.
    stopped: CancellationToken,
    /// The filler and every termination it left running, for `drain` to wait for.
    tasks: TaskTracker,
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Warm>,
    making: usize,
}

/// One ready sandbox and when it was made.
struct Warm {
    sandbox: Box<dyn Sandbox>,
    made_at: Instant,
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("config", &self.config)
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

impl WarmPool {
    /// A pool over `inner` whose sandboxes carry `owner_tag`. It makes nothing until
    /// [`WarmPool::start`], so that startup recovery, which reaps every sandbox of the owner
    /// tag, runs first.
    pub fn new(
        inner: Arc<dyn SandboxProvider>,
        owner_tag: &str,
        config: WarmPoolConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<WarmPool> {
        Arc::new(WarmPool {
            inner,
            owner_tag: owner_tag.to_owned(),
            config,
            metrics,
            state: Mutex::new(PoolState::default()),
            wake: Notify::new(),
            stopped: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// Starts keeping `size` sandboxes ready, in the background. Needs a Tokio runtime.
    pub fn start(self: &Arc<Self>) {
        let pool = Arc::clone(self);
        self.tasks.spawn(async move { pool.fill().await });
    }

    /// How many sandboxes are ready now.
    pub fn ready(&self) -> usize {
        self.lock().ready.len()
    }

    /// Stops filling and terminates the ready sandboxes (at shutdown).
    pub async fn drain(&self) {
        self.stopped.cancel();
        self.wake.notify_one();
        let ready: Vec<Warm> = self.lock().ready.drain(..).collect();
        self.report_size();
        for warm in ready {
            terminate(warm.sandbox.as_ref()).await;
        }
        // The filler ends its round (terminating what it makes from now on) and every
        // termination under way finishes, so no sandbox outlives the runtime.
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report_size(&self) {
        self.metrics.warm_pool_ready(self.ready());
    }

    /// The filler: replaces sandboxes past `max_age`, makes missing ones (all at once),
    /// then sleeps until a sandbox is taken or made, or the oldest comes of age.
    async fn fill(self: Arc<Self>) {
        let mut backoff = FIRST_BACKOFF;
        while !self.stopped.is_cancelled() {
            for expired in self.take_expired() {
                self.metrics.warm_pool_expired();
                terminate(expired.sandbox.as_ref()).await;
            }
            let missing = {
                let mut state = self.lock();
                let missing = self
                    .config
                    .size
                    .saturating_sub(state.ready.len() + state.making);
                state.making += missing;
                missing
            };
            let made = futures::future::join_all((0..missing).map(|_| self.make())).await;
            if made.iter().any(|ok| !ok) {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = self.stopped.cancelled() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            if missing > 0 {
                backoff = FIRST_BACKOFF;
                continue; // Sandboxes may have been taken meanwhile.
            }
            let next_expiry = self
                .lock()
                .ready
                .front()
                .map(|warm| warm.made_at + self.config.max_age);
            let until = next_expiry.unwrap_or_else(|| Instant::now() + self.config.max_age);
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Makes one warm sandbox; `false` if that failed.
    async fn make(&self) -> bool {
        let spec = SandboxSpec {
            session_id: format!("warm-{}", uuid::Uuid::new_v4().simple()),
            owner_tag: self.owner_tag.clone(),
            ..SandboxSpec::default()
        };
        let made = self.inner.create(&spec).await;
        let stopped = self.stopped.is_cancelled();
        let made = match made {
            Ok(sandbox) if !stopped => {
                tracing::debug!(sandbox = sandbox.id(), "warm sandbox ready");
                let mut state = self.lock();
                state.making -= 1;
                state.ready.push_back(Warm {
                    sandbox,
                    made_at: Instant::now(),
                });
                drop(state);
                self.report_size();
                return true;
            }
            Ok(sandbox) => Some(sandbox),
            Err(error) => {
                tracing::warn!(%error, "making a warm sandbox failed");
                None
            }
        };
        self.lock().making -= 1;
        match made {
            Some(sandbox) => {
                terminate(sandbox.as_ref()).await;
                true
            }
            None => false,
        }
    }

    fn take_expired(&self) -> Vec<Warm> {
        let mut state = self.lock();
        let max_age = self.config.max_age;
        let (expired, kept): (Vec<Warm>, Vec<Warm>) = std::mem::take(&mut state.ready)
            .into_iter()
            .partition(|warm| warm.made_at.elapsed() >= max_age);
        state.ready = kept.into();
        drop(state);
        self.report_size();
        expired
    }

    /// The oldest ready sandbox that has not come of age.
    fn take(&self) -> Option<Warm> {
        if self.stopped.is_cancelled() {
            return None;
        }
        let mut state = self.lock();
        while let Some(warm) = state.ready.pop_front() {
            if warm.made_at.elapsed() < self.config.max_age {
                drop(state);
                self.report_size();
                self.wake.notify_one();
                return Some(warm);
            }
            // Expired: the filler terminates what it finds; this one is out of its reach.
            let sandbox = warm.sandbox;
            self.tasks
                .spawn(async move { terminate(sandbox.as_ref()).await });
        }
        None
    }

    /// Hands `warm` to the session of `spec` and lays its files in, all at once.
    async fn claim(&self, warm: &Warm, spec: &SandboxSpec) -> AdapterResult<()> {
        let sandbox = warm.sandbox.as_ref();
        tokio::try_join!(
            sandbox.assign(&spec.session_id),
            write_files(sandbox, SandboxDir::Workspace, &spec.workspace),
            write_files(sandbox, SandboxDir::AgentHome, &spec.agent_home),
        )?;
        Ok(())
    }
}

/// Writes `files` below `dir`, if there are any.
async fn write_files(
    sandbox: &dyn Sandbox,
    dir: SandboxDir,
    files: &FileTree,
) -> AdapterResult<()> {
    if files.files.is_empty() {
        return Ok(());
    }
    sandbox.write_files(dir, files).await
}

async fn terminate(sandbox: &dyn Sandbox) {
    if let Err(error) = sandbox.terminate().await {
        tracing::warn!(sandbox = sandbox.id(), %error, "terminating a warm sandbox failed");
    }
}

#[async_trait]
impl SandboxProvider for WarmPool {
    async fn create(&self, spec: &SandboxSpec) -> AdapterResult<Box<dyn Sandbox>> {
        if let Some(warm) = self.take() {
            match self.claim(&warm, spec).await {
                Ok(()) => {
                    self.metrics.warm_pool_hit(warm.made_at.elapsed());
                    tracing::debug!(sandbox = warm.sandbox.id(), session_id = %spec.session_id,
                        "a session took a warm sandbox");
                    return Ok(Box::new(Pooled {
                        inner: warm.sandbox,
                        env: spec.env.clone(),
                    }));
                }
                Err(error) => {
                    tracing::warn!(sandbox = warm.sandbox.id(), %error,
                        "taking a warm sandbox failed; creating one");
                    terminate(warm.sandbox.as_ref()).await;
                }
            }
        }
        self.metrics.warm_pool_miss();
        self.inner.create(spec).await
    }

    async fn list_owned(&self, owner_tag: &str) -> AdapterResult<Vec<SandboxInfo>> {
        self.inner.list_owned(owner_tag).await
    }

    async fn open(&self, id: &str) -> AdapterResult<Box<dyn Sandbox>> {
        self.inner.open(id).await
    }
}

/// A warm sandbox serving a session: the session's environment goes to every command,
/// under the command's own variables (the sandbox itself was made without it).
struct Pooled {
    inner: Box<dyn Sandbox>,
    env: BTreeMap<String, String>,
}

#[async_trait]
impl Sandbox for Pooled {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn workspace_path(&self) -> &str {
        self.inner.workspace_path()
    }

    fn agent_home_path(&self) -> &str {
        self.inner.agent_home_path()
    }

    async fn write_files(&self, dir: SandboxDir, files: &FileTree) -> AdapterResult<()> {
        self.inner.write_files(dir, files).await
    }

    async fn list_files(
        &self,
        dir: SandboxDir,
        max_entries: usize,
    ) -> AdapterResult<Vec<FileStat>> {
        self.inner.list_files(dir, max_entries).await
    }

    async fn read_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<Bytes> {
        self.inner.read_file(dir, path, max_bytes).await
    }

    async fn open_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<FileReader> {
        self.inner.open_file(dir, path, max_bytes).await
    }

    async fn spawn(&self, command: &CommandSpec) -> AdapterResult<AgentProcess> {
        let mut env = self.env.clone();
        env.extend(command.env.clone());
        let command = CommandSpec {
            env,
            ..command.clone()
        };
        self.inner.spawn(&command).await
    }

    async fn terminate(&self) -> AdapterResult<()> {
        self.inner.terminate().await
    }

    async fn assign(&self, session_id: &str) -> AdapterResult<()> {
        self.inner.assign(session_id).await
    }
}
