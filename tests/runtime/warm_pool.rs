//! The warm pool over real local sandboxes: sandboxes ready ahead of time, taken by a
//! create with the session's files and environment, handed to the session, replaced,
//! expired, drained; a profile's own pool, whose sandboxes hold the profile's fixed files;
//! and their metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_runtime::config::WarmPoolConfig;
use agent_runtime::metrics::Metrics;
use agent_runtime::warm_pool::WarmPool;
use agent_runtime_api::{
    AdapterError, AdapterResult, CommandSpec, FileTree, ProfileBundle, ProfileSource, RelPath,
    Sandbox, SandboxDir, SandboxProvider, SandboxSpec, async_trait,
};
use tokio::io::AsyncReadExt;

const OWNER: &str = "pool-tests";

struct Pool {
    pool: Arc<WarmPool>,
    local: Arc<dyn SandboxProvider>,
    profiles: Arc<Profiles>,
    metrics: Arc<Metrics>,
    _root: tempfile::TempDir,
}

/// Profiles that a test can change while the pool runs.
#[derive(Default)]
struct Profiles(Mutex<BTreeMap<String, ProfileBundle>>);

impl Profiles {
    fn set(&self, name: &str, files: &[(&str, &str)]) {
        let mut tree = FileTree::default();
        for (path, contents) in files {
            tree.insert(RelPath::new(path).unwrap(), contents.to_string());
        }
        let bundle = ProfileBundle {
            name: name.to_owned(),
            manifest: "description = \"a test profile\"\n".to_owned(),
            files: tree,
        };
        self.0.lock().unwrap().insert(name.to_owned(), bundle);
    }
}

#[async_trait]
impl ProfileSource for Profiles {
    async fn list(&self) -> AdapterResult<Vec<String>> {
        Ok(self.0.lock().unwrap().keys().cloned().collect())
    }

    async fn load(&self, name: &str) -> AdapterResult<ProfileBundle> {
        let bundle = self.0.lock().unwrap().get(name).cloned();
        bundle.ok_or_else(|| AdapterError::not_found(name.to_owned()))
    }
}

fn pool(size: usize, max_age: Duration) -> Pool {
    pool_of(WarmPoolConfig {
        size,
        max_age,
        profiles: BTreeMap::new(),
    })
}

fn pool_of(config: WarmPoolConfig) -> Pool {
    let root = tempfile::tempdir().unwrap();
    let local = agent_runtime_local::build(agent_runtime_local::LocalSandboxConfig::new(
        root.path().join("sandboxes"),
    ))
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let profiles = Arc::new(Profiles::default());
    let pool = WarmPool::new(
        local.clone(),
        profiles.clone(),
        OWNER,
        config,
        metrics.clone(),
    );
    Pool {
        pool,
        local,
        profiles,
        metrics,
        _root: root,
    }
}

/// Waits (without a time limit of its own; the test's harness has one) until `check`.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}

fn spec(session_id: &str) -> SandboxSpec {
    let mut workspace = FileTree::default();
    workspace.insert(RelPath::new("task.md").unwrap(), "do it\n");
    let mut agent_home = FileTree::default();
    agent_home.insert(RelPath::new("settings.json").unwrap(), "{}");
    SandboxSpec {
        session_id: session_id.to_owned(),
        owner_tag: OWNER.to_owned(),
        profile: "any".to_owned(),
        workspace,
        agent_home,
        env: BTreeMap::from([
            ("PATH".to_owned(), std::env::var("PATH").unwrap()),
            ("SESSION_VAR".to_owned(), "from the spec".to_owned()),
        ]),
    }
}

async fn output(sandbox: &dyn Sandbox, script: &str) -> String {
    let command = CommandSpec {
        program: "sh".to_owned(),
        args: vec!["-c".to_owned(), script.to_owned()],
        env: BTreeMap::from([("COMMAND_VAR".to_owned(), "own".to_owned())]),
    };
    let mut process = sandbox.spawn(&command).await.expect("spawn");
    drop(process.stdin);
    let mut out = String::new();
    process.stdout.read_to_string(&mut out).await.unwrap();
    assert!(process.exit.await.success());
    out
}

async fn read_task(sandbox: &dyn Sandbox) -> String {
    let path = RelPath::new("task.md").unwrap();
    let bytes = sandbox.read_file(SandboxDir::Workspace, &path, 100).await;
    String::from_utf8(bytes.expect("task.md").to_vec()).unwrap()
}

fn metric(metrics: &Metrics, line_start: &str) -> Option<f64> {
    let text = metrics.render();
    let line = text.lines().find(|line| line.starts_with(line_start))?;
    line.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_takes_a_warm_sandbox_with_the_sessions_files_and_environment() {
    let p = pool(2, Duration::from_secs(600));
    // Nothing is made before start (startup recovery comes first).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(p.local.list_owned(OWNER).await.unwrap().is_empty());
    p.pool.start();
    until("two warm sandboxes", || p.pool.ready() == 2).await;
    let warm = p.local.list_owned(OWNER).await.unwrap();
    assert_eq!(warm.len(), 2);
    assert!(
        warm.iter().all(|info| info.session_id.starts_with("warm-")),
        "{warm:?}"
    );
    assert_eq!(
        metric(&p.metrics, "agent_runtime_warm_pool_ready{pool=\"*\"} "),
        Some(2.0)
    );

    let sandbox = p.pool.create(&spec("s1")).await.expect("create");
    assert!(
        warm.iter().any(|info| info.id == sandbox.id()),
        "a warm one was taken"
    );
    assert_eq!(read_task(sandbox.as_ref()).await, "do it\n");
    let home = sandbox.list_files(SandboxDir::AgentHome, 10).await.unwrap();
    assert_eq!(home.len(), 1, "{home:?}");
    let env = output(sandbox.as_ref(), "echo $SESSION_VAR/$COMMAND_VAR").await;
    assert_eq!(
        env, "from the spec/own\n",
        "the spec's environment reaches commands"
    );
    let listed = p.local.list_owned(OWNER).await.unwrap();
    let entry = listed.iter().find(|info| info.id == sandbox.id()).unwrap();
    assert_eq!(entry.session_id, "s1", "recovery sees it as the session's");
    assert_eq!(
        metric(
            &p.metrics,
            "agent_runtime_warm_pool_takes_total{pool=\"*\",outcome=\"hit\"}"
        ),
        Some(1.0)
    );
    assert!(
        metric(
            &p.metrics,
            "agent_runtime_warm_pool_age_seconds_count{pool=\"*\"}"
        )
        .is_some_and(|n| n == 1.0)
    );

    until("the pool to be topped up", || p.pool.ready() == 2).await;
    p.pool.drain().await;
    assert_eq!(p.pool.ready(), 0);
    let left = p.local.list_owned(OWNER).await.unwrap();
    assert_eq!(left.len(), 1, "drain ends the warm ones only: {left:?}");
    let cold = p
        .pool
        .create(&spec("s2"))
        .await
        .expect("create without the pool");
    assert!(!warm.iter().any(|info| info.id == cold.id()));
    assert_eq!(
        metric(
            &p.metrics,
            "agent_runtime_warm_pool_takes_total{pool=\"*\",outcome=\"miss\"}"
        ),
        Some(1.0)
    );
    assert_eq!(read_task(cold.as_ref()).await, "do it\n");
    sandbox.terminate().await.unwrap();
    cold.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_sandboxes_past_max_age_are_replaced() {
    let p = pool(1, Duration::from_secs(1));
    p.pool.start();
    until("a warm sandbox", || p.pool.ready() == 1).await;
    let first = p.local.list_owned(OWNER).await.unwrap();
    assert_eq!(first.len(), 1);
    let replaced = async {
        loop {
            let now = p.local.list_owned(OWNER).await.unwrap();
            if now.len() == 1 && now[0].id != first[0].id {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), replaced)
        .await
        .expect("the old one is terminated and a new one made");
    assert!(
        metric(
            &p.metrics,
            "agent_runtime_warm_pool_expired_total{pool=\"*\"}"
        )
        .is_some_and(|n| n >= 1.0)
    );
    p.pool.drain().await;
    assert!(p.local.list_owned(OWNER).await.unwrap().is_empty());
}

/// The spec of a session of the `support` profile: its fixed files as the profile has
/// them, and a file rendered for the session.
fn support_spec(session_id: &str, fixed: &[(&str, &str)]) -> SandboxSpec {
    let mut workspace = FileTree::default();
    for (path, contents) in fixed {
        workspace.insert(RelPath::new(path).unwrap(), contents.to_string());
    }
    workspace.insert(
        RelPath::new("task.md").unwrap(),
        format!("Session {session_id}\n"),
    );
    SandboxSpec {
        session_id: session_id.to_owned(),
        owner_tag: OWNER.to_owned(),
        profile: "support".to_owned(),
        workspace,
        ..SandboxSpec::default()
    }
}

/// The workspace's files with their modification times.
async fn workspace(sandbox: &dyn Sandbox) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    let files = sandbox
        .list_files(SandboxDir::Workspace, 100)
        .await
        .unwrap();
    files
        .into_iter()
        .map(|f| (f.path.to_string(), f.modified_at))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profiles_own_pool_holds_its_fixed_files_and_serves_its_sessions_first() {
    const CLAUDE_MD: (&str, &str) = ("CLAUDE.md", "Answer support questions.\n");
    const SETTINGS: (&str, &str) = (".claude/settings.json", "{}\n");
    let p = pool_of(WarmPoolConfig {
        size: 1,
        max_age: Duration::from_secs(600),
        profiles: BTreeMap::from([("support".to_owned(), 1)]),
    });
    p.profiles.set(
        "support",
        &[
            CLAUDE_MD,
            SETTINGS,
            ("task.md", "Session {{ SESSION_ID }}\n"),
        ],
    );
    p.pool.start();
    until("a warm sandbox in each pool", || {
        p.pool.ready_in(None) == 1 && p.pool.ready_in(Some("support")) == 1
    })
    .await;
    assert_eq!(
        metric(
            &p.metrics,
            "agent_runtime_warm_pool_ready{pool=\"support\"} "
        ),
        Some(1.0)
    );
    let warm = p.local.list_owned(OWNER).await.unwrap();
    let mut ahead = BTreeMap::new();
    for info in &warm {
        let sandbox = p.local.open(&info.id).await.unwrap();
        ahead.insert(info.id.clone(), workspace(sandbox.as_ref()).await);
    }
    let (support_id, laid) = ahead
        .iter()
        .find(|(_, files)| !files.is_empty())
        .expect("the profile's sandbox");
    let paths: Vec<&str> = laid.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [".claude/settings.json", "CLAUDE.md"],
        "the fixed files are there ahead; the session's template is not"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;

    // A session of the profile takes the profile's sandbox; only its own file is written.
    let sandbox = p
        .pool
        .create(&support_spec("s1", &[CLAUDE_MD, SETTINGS]))
        .await
        .unwrap();
    assert_eq!(sandbox.id(), support_id);
    let now = workspace(sandbox.as_ref()).await;
    assert_eq!(
        &now[..2],
        &laid[..],
        "the files laid ahead are not written again"
    );
    assert_eq!(now[2].0, "task.md");
    let task = sandbox
        .read_file(
            SandboxDir::Workspace,
            &RelPath::new("task.md").unwrap(),
            100,
        )
        .await
        .unwrap();
    assert_eq!(&task[..], b"Session s1\n");
    let hit = |pool: &str| {
        metric(
            &p.metrics,
            &format!("agent_runtime_warm_pool_takes_total{{pool=\"{pool}\",outcome=\"hit\"}}"),
        )
    };
    let miss = |pool: &str| {
        metric(
            &p.metrics,
            &format!("agent_runtime_warm_pool_takes_total{{pool=\"{pool}\",outcome=\"miss\"}}"),
        )
    };
    assert_eq!((hit("support"), hit("*")), (Some(1.0), None));

    // Another profile's session takes from the shared pool only.
    let other = p.pool.create(&spec("s2")).await.unwrap();
    assert!(ahead[other.id()].is_empty(), "the shared pool's sandbox");
    assert_eq!(
        (hit("support"), hit("*"), miss("support")),
        (Some(1.0), Some(1.0), None)
    );

    // The profile drops a file: a sandbox made before holds a file its sessions no longer
    // have, so it does not fit; the session takes the shared pool's, and the profile's
    // pool is refilled from the profile as it is now.
    until("both pools refilled", || p.pool.ready() == 2).await;
    p.profiles.set(
        "support",
        &[CLAUDE_MD, ("task.md", "Session {{ SESSION_ID }}\n")],
    );
    let third = p
        .pool
        .create(&support_spec("s3", &[CLAUDE_MD]))
        .await
        .unwrap();
    assert_eq!((miss("support"), hit("*")), (Some(1.0), Some(2.0)));
    until("the profile's pool refilled", || {
        p.pool.ready_in(Some("support")) == 1
    })
    .await;
    let fourth = p
        .pool
        .create(&support_spec("s4", &[CLAUDE_MD]))
        .await
        .unwrap();
    assert_eq!(
        hit("support"),
        Some(2.0),
        "a sandbox of the changed profile fits"
    );
    let files: Vec<String> = workspace(fourth.as_ref())
        .await
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(files, ["CLAUDE.md", "task.md"]);

    p.pool.drain().await;
    for sandbox in [sandbox, other, third, fourth] {
        sandbox.terminate().await.unwrap();
    }
    assert!(p.local.list_owned(OWNER).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_cannot_be_filled_does_not_hold_up_the_others() {
    let p = pool_of(WarmPoolConfig {
        size: 1,
        max_age: Duration::from_secs(600),
        profiles: BTreeMap::from([("gone".to_owned(), 1)]),
    });
    p.pool.start();
    until("the shared pool", || p.pool.ready_in(None) == 1).await;
    // The profile's makes fail (there is no such profile) and its pool backs off: after
    // failures at about 0, 1 and 3 s, its next try is 4 s away.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(p.pool.ready_in(Some("gone")), 0);
    let taken = p.pool.create(&spec("s1")).await.unwrap();
    let refilled = async {
        while p.pool.ready_in(None) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_millis(1500), refilled)
        .await
        .expect("the shared pool refills at once, not after the other pool's backoff");
    p.pool.drain().await;
    taken.terminate().await.unwrap();
    assert!(p.local.list_owned(OWNER).await.unwrap().is_empty());
}
