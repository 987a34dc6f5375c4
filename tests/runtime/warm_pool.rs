//! The warm pool over real local sandboxes: sandboxes ready ahead of time, taken by a
//! create with the session's files and environment, handed to the session, replaced,
//! expired, drained; and its metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::config::WarmPoolConfig;
use agent_runtime::metrics::Metrics;
use agent_runtime::warm_pool::WarmPool;
use agent_runtime_api::{
    CommandSpec, FileTree, RelPath, Sandbox, SandboxDir, SandboxProvider, SandboxSpec,
};
use tokio::io::AsyncReadExt;

const OWNER: &str = "pool-tests";

struct Pool {
    pool: Arc<WarmPool>,
    local: Arc<dyn SandboxProvider>,
    metrics: Arc<Metrics>,
    _root: tempfile::TempDir,
}

fn pool(size: usize, max_age: Duration) -> Pool {
    let root = tempfile::tempdir().unwrap();
    let local = agent_runtime_local::build(agent_runtime_local::LocalSandboxConfig::new(
        root.path().join("sandboxes"),
    ))
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let config = WarmPoolConfig { size, max_age };
    let pool = WarmPool::new(local.clone(), OWNER, config, metrics.clone());
    Pool {
        pool,
        local,
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
        metric(&p.metrics, "agent_runtime_warm_pool_ready "),
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
            "agent_runtime_warm_pool_takes_total{outcome=\"hit\"}"
        ),
        Some(1.0)
    );
    assert!(
        metric(&p.metrics, "agent_runtime_warm_pool_age_seconds_count").is_some_and(|n| n == 1.0)
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
            "agent_runtime_warm_pool_takes_total{outcome=\"miss\"}"
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
    assert!(metric(&p.metrics, "agent_runtime_warm_pool_expired_total").is_some_and(|n| n >= 1.0));
    p.pool.drain().await;
    assert!(p.local.list_owned(OWNER).await.unwrap().is_empty());
}
