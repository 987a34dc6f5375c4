//! A warm pool: sandboxes made ahead of sessions, so that a session's create skips the
//! provider's cold start (seconds on a remote provider).
//!
//! [`WarmPool`] wraps any [`SandboxProvider`] and is one itself. It keeps pools of
//! running sandboxes, made with the runtime's owner tag and a placeholder session id
//! (`warm-…`), so startup recovery reaps them like any orphan:
//! - the shared pool (`size`): empty sandboxes, for a session of any profile;
//! - a pool per profile (`[warm_pool.profiles]`): sandboxes that already hold the
//!   profile's fixed files ([`Profile::fixed_workspace`]: files copied verbatim, templates
//!   that read no variable), loaded from the profile source when each is made.
//!
//! A `create` asks the pool of the spec's profile, then the shared pool, and takes the
//! oldest sandbox that fits: one whose files laid in ahead are all among the session's
//! files (a profile that dropped a file since leaves sandboxes that do not fit; they are
//! terminated). It hands the sandbox to the session ([`Sandbox::assign`]) and returns it;
//! the session's files that are not already there with the same contents go in with the
//! first write into it (the agent's config, which the launch writes next), in one
//! [`Sandbox::write_batch`], or before anything reads or runs in it. The spec's
//! environment goes to every command started in it (instead of to the sandbox, which was
//! made before the environment was known). A background task makes a replacement.
//! The image and resources are the provider's, the same for every sandbox, so they always
//! fit. When no pool has one, or taking it fails, `create` makes a sandbox as without a
//! pool.
//!
//! A warm sandbox older than `max_age` is terminated and replaced, so none outlives the
//! provider's own sandbox lifetime, an image update or a profile update by much.
//!
//! **Architecture Invariant:** the pool knows no provider: it uses only the
//! `SandboxProvider` and `Sandbox` traits.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_runtime_api::{
    AdapterResult, AgentProcess, CommandSpec, FileReader, FileStat, FileTree, ProfileSource,
    RelPath, Sandbox, SandboxDir, SandboxInfo, SandboxProvider, SandboxSpec, async_trait,
};
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WarmPoolConfig;
use crate::metrics::Metrics;
use crate::profiles::Profile;

/// A pool's first wait after a failed warm create; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The shared pool's name in the metrics' `pool` label (no profile is named so).
pub const SHARED_POOL: &str = "*";

/// A sandbox provider with sandboxes ready ahead of time.
pub struct WarmPool {
    inner: Arc<dyn SandboxProvider>,
    /// Where a profile's pool reads the profile's fixed files from.
    profiles: Arc<dyn ProfileSource>,
    owner_tag: String,
    max_age: Duration,
    metrics: Arc<Metrics>,
    /// The shared pool, if its size is above 0, then one per profile.
    pools: Vec<Pool>,
    /// Wakes the filler: a sandbox was taken or made.
    wake: Notify,
    /// Cancelled by [`WarmPool::drain`]; the filler stops and no sandbox is handed out.
    stopped: CancellationToken,
    /// The filler and every termination it left running, for `drain` to wait for.
    tasks: TaskTracker,
}

/// One pool: what its sandboxes hold, how many it keeps, those ready.
struct Pool {
    /// The profile whose fixed files its sandboxes hold; `None` for the shared pool.
    profile: Option<String>,
    size: usize,
    state: Mutex<PoolState>,
}

impl Pool {
    /// The pool's `pool` label.
    fn label(&self) -> &str {
        self.profile.as_deref().unwrap_or(SHARED_POOL)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct PoolState {
    /// Ready sandboxes, oldest first.
    ready: VecDeque<Warm>,
    /// How many are being made.
    making: usize,
    /// After a failed make: when the pool may try again, and the wait after the next
    /// failure (doubling up to [`MAX_BACKOFF`]).
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Default for PoolState {
    fn default() -> Self {
        PoolState {
            ready: VecDeque::new(),
            making: 0,
            retry_at: None,
            backoff: FIRST_BACKOFF,
        }
    }
}

/// One ready sandbox, when it was made and the workspace files laid into it then.
struct Warm {
    sandbox: Box<dyn Sandbox>,
    made_at: Instant,
    laid: FileTree,
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pools: BTreeMap<&str, (usize, usize)> = self
            .pools
            .iter()
            .map(|pool| (pool.label(), (pool.lock().ready.len(), pool.size)))
            .collect();
        f.debug_struct("WarmPool")
            .field("max_age", &self.max_age)
            .field("ready_of_size", &pools)
            .finish_non_exhaustive()
    }
}

impl WarmPool {
    /// A pool over `inner` whose sandboxes carry `owner_tag`, reading the profiles of
    /// `[warm_pool.profiles]` from `profiles`. It makes nothing until
    /// [`WarmPool::start`], so that startup recovery, which reaps every sandbox of the
    /// owner tag, runs first.
    pub fn new(
        inner: Arc<dyn SandboxProvider>,
        profiles: Arc<dyn ProfileSource>,
        owner_tag: &str,
        config: WarmPoolConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<WarmPool> {
        let shared = (config.size > 0).then_some((None, config.size));
        let own = config
            .profiles
            .into_iter()
            .filter(|(_, size)| *size > 0)
            .map(|(name, size)| (Some(name), size));
        let pools = shared
            .into_iter()
            .chain(own)
            .map(|(profile, size)| Pool {
                profile,
                size,
                state: Mutex::new(PoolState::default()),
            })
            .collect();
        Arc::new(WarmPool {
            inner,
            profiles,
            owner_tag: owner_tag.to_owned(),
            max_age: config.max_age,
            metrics,
            pools,
            wake: Notify::new(),
            stopped: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// Starts keeping every pool full, in the background. Needs a Tokio runtime.
    pub fn start(self: &Arc<Self>) {
        for pool in &self.pools {
            self.metrics.warm_pool_ready(pool.label(), 0);
        }
        let pool = Arc::clone(self);
        self.tasks.spawn(async move { pool.fill().await });
    }

    /// How many sandboxes are ready now, in all pools.
    pub fn ready(&self) -> usize {
        self.pools.iter().map(|pool| pool.lock().ready.len()).sum()
    }

    /// How many sandboxes the pool of `profile` (`None`: the shared pool) has ready now.
    pub fn ready_in(&self, profile: Option<&str>) -> usize {
        self.pools
            .iter()
            .find(|pool| pool.profile.as_deref() == profile)
            .map_or(0, |pool| pool.lock().ready.len())
    }

    /// Stops filling and terminates the ready sandboxes (at shutdown).
    pub async fn drain(&self) {
        self.stopped.cancel();
        self.wake.notify_one();
        let mut ready: Vec<Warm> = Vec::new();
        for pool in &self.pools {
            ready.extend(pool.lock().ready.drain(..));
            self.report_size(pool);
        }
        for warm in ready {
            terminate(warm.sandbox.as_ref()).await;
        }
        // The filler ends its round (terminating what it makes from now on) and every
        // termination under way finishes, so no sandbox outlives the runtime.
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn report_size(&self, pool: &Pool) {
        self.metrics
            .warm_pool_ready(pool.label(), pool.lock().ready.len());
    }

    /// The filler: replaces sandboxes past `max_age`, starts making every pool's missing
    /// ones (all at once, each pool in a task of its own), then sleeps until a sandbox is
    /// taken or made, the oldest comes of age, or a pool whose last make failed may try
    /// again. Each pool fills and backs off on its own, so a pool whose makes fail or
    /// hang (its profile gone, a slow provider) does not hold up the others.
    async fn fill(self: Arc<Self>) {
        while !self.stopped.is_cancelled() {
            for pool in &self.pools {
                for expired in self.take_expired(pool) {
                    self.metrics.warm_pool_expired(pool.label());
                    terminate(expired.sandbox.as_ref()).await;
                }
            }
            let now = Instant::now();
            for (index, pool) in self.pools.iter().enumerate() {
                let mut state = pool.lock();
                if state.retry_at.is_some_and(|at| at > now) {
                    continue;
                }
                let missing = pool.size.saturating_sub(state.ready.len() + state.making);
                state.making += missing;
                drop(state);
                if missing > 0 {
                    let this = self.clone();
                    self.tasks
                        .spawn(async move { this.fill_pool(index, missing).await });
                }
            }
            let next_expiry = self
                .pools
                .iter()
                .filter_map(|pool| pool.lock().ready.front().map(|warm| warm.made_at))
                .min()
                .map(|made_at| made_at + self.max_age);
            let next_retry = self
                .pools
                .iter()
                .filter_map(|pool| pool.lock().retry_at)
                .min();
            let until = next_expiry
                .into_iter()
                .chain(next_retry)
                .min()
                .unwrap_or_else(|| Instant::now() + self.max_age);
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(until) => {}
                () = self.stopped.cancelled() => {}
            }
        }
    }

    /// The files a sandbox of `pool` holds ahead of its session: a profile's fixed files.
    async fn files_ahead(&self, pool: &Pool) -> Result<FileTree, String> {
        let Some(name) = &pool.profile else {
            return Ok(FileTree::default());
        };
        let profile = Profile::load(self.profiles.as_ref(), name)
            .await
            .map_err(|e| e.to_string())?;
        Ok(profile.fixed_workspace())
    }

    /// Makes `count` sandboxes for the pool at `index` at once, its files read once; each
    /// that is done wakes the filler.
    async fn fill_pool(&self, index: usize, count: usize) {
        let pool = &self.pools[index];
        let laid = self.files_ahead(pool).await;
        let makes = (0..count).map(|_| async {
            self.make(pool, &laid).await;
            self.wake.notify_one();
        });
        futures::future::join_all(makes).await;
    }

    /// Makes one warm sandbox for `pool`, holding `laid`; after a failure, the pool waits
    /// before its next round.
    async fn make(&self, pool: &Pool, laid: &Result<FileTree, String>) {
        let made = match laid.clone() {
            Ok(laid) => {
                let spec = SandboxSpec {
                    session_id: format!("warm-{}", uuid::Uuid::new_v4().simple()),
                    owner_tag: self.owner_tag.clone(),
                    profile: pool.profile.clone().unwrap_or_default(),
                    workspace: laid.clone(),
                    ..SandboxSpec::default()
                };
                self.inner
                    .create(&spec)
                    .await
                    .map(|sandbox| (sandbox, laid))
                    .map_err(|error| error.to_string())
            }
            Err(error) => Err(error),
        };
        let stopped = self.stopped.is_cancelled();
        let made = match made {
            Ok((sandbox, laid)) if !stopped => {
                tracing::debug!(
                    sandbox = sandbox.id(),
                    pool = pool.label(),
                    "warm sandbox ready"
                );
                let mut state = pool.lock();
                state.making -= 1;
                state.retry_at = None;
                state.backoff = FIRST_BACKOFF;
                state.ready.push_back(Warm {
                    sandbox,
                    made_at: Instant::now(),
                    laid,
                });
                drop(state);
                self.report_size(pool);
                return;
            }
            Ok((sandbox, _)) => Some(sandbox),
            Err(error) => {
                tracing::warn!(%error, pool = pool.label(), "making a warm sandbox failed");
                let mut state = pool.lock();
                let now = Instant::now();
                // Once per round: the makes of one round that fail together wait once.
                if state.retry_at.is_none_or(|at| at <= now) {
                    state.retry_at = Some(now + state.backoff);
                    state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
                }
                None
            }
        };
        pool.lock().making -= 1;
        if let Some(sandbox) = made {
            terminate(sandbox.as_ref()).await;
        }
    }

    fn take_expired(&self, pool: &Pool) -> Vec<Warm> {
        let mut state = pool.lock();
        let max_age = self.max_age;
        let (expired, kept): (Vec<Warm>, Vec<Warm>) = std::mem::take(&mut state.ready)
            .into_iter()
            .partition(|warm| warm.made_at.elapsed() >= max_age);
        state.ready = kept.into();
        drop(state);
        self.report_size(pool);
        expired
    }

    /// The pools a session of `spec` may take from, in order: its profile's, the shared;
    /// none for a spec of another owner tag (the warm sandboxes carry the pool's).
    fn pools_for<'a>(&'a self, spec: &'a SandboxSpec) -> Vec<&'a Pool> {
        if spec.owner_tag != self.owner_tag {
            return Vec::new();
        }
        let own = self.pools.iter().find(|pool| {
            !spec.profile.is_empty() && pool.profile.as_deref() == Some(&spec.profile)
        });
        let shared = self.pools.iter().find(|pool| pool.profile.is_none());
        own.into_iter().chain(shared).collect()
    }

    /// The oldest ready sandbox of `pool` that has not come of age and fits `spec`.
    /// Those that do not are terminated in the background.
    fn take(&self, pool: &Pool, spec: &SandboxSpec) -> Option<Warm> {
        if self.stopped.is_cancelled() {
            return None;
        }
        let mut state = pool.lock();
        while let Some(warm) = state.ready.pop_front() {
            if warm.made_at.elapsed() < self.max_age && fits(&warm.laid, &spec.workspace) {
                drop(state);
                self.report_size(pool);
                self.wake.notify_one();
                return Some(warm);
            }
            // Expired, or made from a profile that has changed since: the filler replaces
            // it; this one is out of its reach.
            tracing::debug!(
                sandbox = warm.sandbox.id(),
                pool = pool.label(),
                "a warm sandbox is too old or no longer fits its profile"
            );
            let sandbox = warm.sandbox;
            self.tasks
                .spawn(async move { terminate(sandbox.as_ref()).await });
            self.wake.notify_one();
        }
        drop(state);
        self.report_size(pool);
        None
    }
}

/// Whether a sandbox holding the workspace files `laid` can serve a session whose
/// workspace is `wanted`: every file laid in is one of the session's (files cannot be
/// taken out again; contents that differ are written over).
fn fits(laid: &FileTree, wanted: &FileTree) -> bool {
    laid.files
        .iter()
        .all(|file| wanted.get(file.path.as_str()).is_some())
}

/// The files of `wanted` that `laid` does not already hold as they are.
fn missing(laid: &FileTree, wanted: &FileTree) -> FileTree {
    let files = wanted
        .files
        .iter()
        .filter(|file| {
            laid.get(file.path.as_str()).is_none_or(|there| {
                there.contents != file.contents || there.executable != file.executable
            })
        })
        .cloned()
        .collect();
    FileTree { files }
}

async fn terminate(sandbox: &dyn Sandbox) {
    if let Err(error) = sandbox.terminate().await {
        tracing::warn!(sandbox = sandbox.id(), %error, "terminating a warm sandbox failed");
    }
}

#[async_trait]
impl SandboxProvider for WarmPool {
    async fn create(&self, spec: &SandboxSpec) -> AdapterResult<Box<dyn Sandbox>> {
        for pool in self.pools_for(spec) {
            let Some(warm) = self.take(pool, spec) else {
                self.metrics.warm_pool_miss(pool.label());
                continue;
            };
            // Handed to the session, recovery sees it as the session's. The call also
            // finds a warm sandbox that died while it waited, while a cold create can
            // still take its place.
            match warm.sandbox.assign(&spec.session_id).await {
                Ok(()) => {
                    self.metrics
                        .warm_pool_hit(pool.label(), warm.made_at.elapsed());
                    tracing::debug!(sandbox = warm.sandbox.id(), session_id = %spec.session_id,
                        pool = pool.label(), "a session took a warm sandbox");
                    let pending = [
                        (SandboxDir::Workspace, missing(&warm.laid, &spec.workspace)),
                        (SandboxDir::AgentHome, spec.agent_home.clone()),
                    ];
                    return Ok(Box::new(Pooled {
                        inner: warm.sandbox,
                        env: spec.env.clone(),
                        pending: tokio::sync::Mutex::new(
                            pending
                                .into_iter()
                                .filter(|(_, files)| !files.files.is_empty())
                                .collect(),
                        ),
                    }));
                }
                Err(error) => {
                    tracing::warn!(sandbox = warm.sandbox.id(), %error,
                        "taking a warm sandbox failed; creating one");
                    self.metrics.warm_pool_miss(pool.label());
                    terminate(warm.sandbox.as_ref()).await;
                    break;
                }
            }
        }
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
///
/// The session's files are laid in with the first write into the sandbox, in one
/// `write_batch` with it (the agent's config, which the launch writes next: one command on
/// a remote sandbox instead of two), or before anything reads, lists or runs in the
/// sandbox, whichever comes first. Through this handle the sandbox holds them from the
/// start; the agent, which only a `spawn` starts, finds them in place.
struct Pooled {
    inner: Box<dyn Sandbox>,
    env: BTreeMap<String, String>,
    /// The writes not made yet, in order.
    pending: tokio::sync::Mutex<Vec<(SandboxDir, FileTree)>>,
}

impl Pooled {
    /// Makes the pending writes, if any; they stay pending if that fails.
    async fn flush(&self) -> AdapterResult<()> {
        self.write_batch(&[]).await
    }
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
        self.write_batch(&[(dir, files)]).await
    }

    async fn write_batch(&self, writes: &[(SandboxDir, &FileTree)]) -> AdapterResult<()> {
        let mut pending = self.pending.lock().await;
        if pending.is_empty() && writes.is_empty() {
            return Ok(());
        }
        let all: Vec<(SandboxDir, &FileTree)> = pending
            .iter()
            .map(|(dir, files)| (*dir, files))
            .chain(writes.iter().copied())
            .collect();
        self.inner.write_batch(&all).await?;
        pending.clear();
        Ok(())
    }

    async fn list_files(
        &self,
        dir: SandboxDir,
        max_entries: usize,
    ) -> AdapterResult<Vec<FileStat>> {
        self.flush().await?;
        self.inner.list_files(dir, max_entries).await
    }

    async fn read_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<Bytes> {
        self.flush().await?;
        self.inner.read_file(dir, path, max_bytes).await
    }

    async fn open_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<FileReader> {
        self.flush().await?;
        self.inner.open_file(dir, path, max_bytes).await
    }

    async fn spawn(&self, command: &CommandSpec) -> AdapterResult<AgentProcess> {
        self.flush().await?;
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
