use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::unique_prefix;
use crate::{
    AdapterError, AdapterResult, AgentProcess, CommandSpec, ExitStatus, FileTree, RelPath, Sandbox,
    SandboxDir, SandboxProvider, SandboxSpec,
};

/// A variable set in the test process's own environment; no sandbox process may see it.
const LEAK_VAR: &str = "AGENT_RUNTIME_CONTRACT_LEAK";
/// How long a process may take to finish after it was told to (or killed).
const PATIENCE: Duration = Duration::from_secs(15);

fn rel(path: &str) -> RelPath {
    RelPath::new(path).unwrap()
}

fn tree(files: &[(&str, &str)]) -> FileTree {
    let mut tree = FileTree::default();
    for (path, contents) in files {
        tree.insert(rel(path), contents.as_bytes().to_vec());
    }
    tree
}

/// `sh -c script`, with extra variables for this command only.
fn shell(script: &str, env: &[(&str, &str)]) -> CommandSpec {
    CommandSpec {
        program: "sh".to_owned(),
        args: vec!["-c".to_owned(), script.to_owned()],
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// Runs `command` to its end with stdin closed; returns stdout, stderr and the status.
async fn run(sandbox: &dyn Sandbox, command: &CommandSpec) -> (String, String, ExitStatus) {
    let process = sandbox.spawn(command).await.expect("spawn");
    collect(process, b"").await
}

async fn collect(mut process: AgentProcess, input: &[u8]) -> (String, String, ExitStatus) {
    process.stdin.write_all(input).await.expect("write stdin");
    process.stdin.shutdown().await.expect("close stdin");
    drop(process.stdin);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let reads = async {
        tokio::try_join!(
            process.stdout.read_to_end(&mut out),
            process.stderr.read_to_end(&mut err)
        )
    };
    timeout(PATIENCE, reads)
        .await
        .expect("the process's output ends")
        .expect("read output");
    let status = timeout(PATIENCE, process.exit)
        .await
        .expect("exit resolves once the process ended");
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        status,
    )
}

/// A limit no file of the suite reaches.
const NO_LIMIT: u64 = 1 << 30;
/// More entries than any directory of these tests holds.
const MAX_ENTRIES: usize = 1000;

async fn read(sandbox: &dyn Sandbox, dir: SandboxDir, path: &str) -> AdapterResult<Bytes> {
    sandbox.read_file(dir, &rel(path), NO_LIMIT).await
}

async fn paths_and_sizes(sandbox: &dyn Sandbox, dir: SandboxDir) -> Vec<(String, u64)> {
    let listed = sandbox
        .list_files(dir, MAX_ENTRIES)
        .await
        .expect("list_files");
    listed
        .into_iter()
        .map(|stat| (stat.path.as_str().to_owned(), stat.size))
        .collect()
}

fn owned(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(p, s)| ((*p).to_owned(), *s)).collect()
}

/// Runs every behaviour of [`Sandbox`] and [`SandboxProvider`] against `provider`.
///
/// Sandboxes are created with `owner_tag`, which should be unique to the call. Their
/// processes run `sh`, `env`, `cat`, `pwd` and `sleep` from the test process's `PATH`, which
/// the suite passes in the sandbox's environment.
pub async fn sandbox_provider(provider: &dyn SandboxProvider, owner_tag: &str) {
    let spec = SandboxSpec {
        session_id: unique_prefix("sb"),
        owner_tag: owner_tag.to_owned(),
        workspace: tree(&[("README.md", "hello\n"), ("src/main.rs", "fn main() {}\n")]),
        agent_home: tree(&[("settings.json", "{}")]),
        env: BTreeMap::from([
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
            ("SPEC_VAR".to_owned(), "spec-value".to_owned()),
        ]),
    };
    let sandbox = provider.create(&spec).await.expect("create");
    files(sandbox.as_ref()).await;
    processes(sandbox.as_ref()).await;
    ownership(provider, sandbox.as_ref(), &spec).await;
    empty_sandbox(provider, owner_tag).await;
    listing_limit(provider, owner_tag).await;
    termination(provider, sandbox.as_ref(), owner_tag).await;
}

/// A listing of more files than `max_entries` is refused, one within it is whole.
async fn listing_limit(provider: &dyn SandboxProvider, owner_tag: &str) {
    let spec = SandboxSpec {
        session_id: unique_prefix("many"),
        owner_tag: owner_tag.to_owned(),
        ..SandboxSpec::default()
    };
    let sandbox = provider.create(&spec).await.expect("create");
    let sandbox = sandbox.as_ref();
    let mut many = FileTree::default();
    for n in 0..12 {
        many.insert(rel(&format!("many/{n}.txt")), "x");
    }
    sandbox
        .write_files(SandboxDir::AgentHome, &many)
        .await
        .expect("write many files");
    assert!(
        matches!(
            sandbox.list_files(SandboxDir::AgentHome, 10).await,
            Err(AdapterError::TooLarge(_))
        ),
        "a directory of more files than max_entries is TooLarge"
    );
    let listed = sandbox
        .list_files(SandboxDir::AgentHome, 100)
        .await
        .expect("list within the limit");
    assert_eq!(listed.len(), 12, "{listed:?}");
    sandbox.terminate().await.expect("terminate");
}

async fn files(sandbox: &dyn Sandbox) {
    assert!(
        sandbox.workspace_path().starts_with('/') && sandbox.agent_home_path().starts_with('/'),
        "workspace_path and agent_home_path are absolute"
    );
    assert_ne!(sandbox.workspace_path(), sandbox.agent_home_path());
    assert_eq!(
        paths_and_sizes(sandbox, SandboxDir::Workspace).await,
        owned(&[("README.md", 6), ("src/main.rs", 13)]),
        "create places exactly the spec's workspace files; list_files is recursive, \
         ordered by path, with sizes"
    );
    assert_eq!(
        paths_and_sizes(sandbox, SandboxDir::AgentHome).await,
        owned(&[("settings.json", 2)]),
        "create places exactly the spec's agent home files"
    );
    let contents = read(sandbox, SandboxDir::Workspace, "src/main.rs");
    assert_eq!(contents.await.expect("read_file"), &b"fn main() {}\n"[..]);
    let missing = read(sandbox, SandboxDir::Workspace, "nope/missing.txt");
    assert!(
        matches!(missing.await, Err(AdapterError::NotFound(_))),
        "read_file of a missing file is NotFound"
    );

    let update = tree(&[
        ("README.md", "replaced"),
        ("a/b/c/deep.txt", "deep"),
        ("a/z.txt", ""),
    ]);
    sandbox
        .write_files(SandboxDir::Workspace, &update)
        .await
        .expect("write_files");
    assert_eq!(
        paths_and_sizes(sandbox, SandboxDir::Workspace).await,
        owned(&[
            ("README.md", 8),
            ("a/b/c/deep.txt", 4),
            ("a/z.txt", 0),
            ("src/main.rs", 13)
        ]),
        "write_files creates parent directories and replaces existing files"
    );
    let replaced = read(sandbox, SandboxDir::Workspace, "README.md");
    assert_eq!(
        replaced.await.unwrap(),
        &b"replaced"[..],
        "the last write wins"
    );
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut home_update = FileTree::default();
    home_update.insert(rel("projects/x/t.jsonl"), binary.clone());
    sandbox
        .write_files(SandboxDir::AgentHome, &home_update)
        .await
        .expect("write_files in the agent home");
    let home_read = read(sandbox, SandboxDir::AgentHome, "projects/x/t.jsonl");
    assert_eq!(home_read.await.unwrap(), binary, "binary bytes survive");
    let absent = read(sandbox, SandboxDir::Workspace, "projects/x/t.jsonl");
    assert!(
        matches!(absent.await, Err(AdapterError::NotFound(_))),
        "the workspace and the agent home are separate directories"
    );
    size_limits(sandbox, &binary).await;
    owner_only_home(sandbox).await;
}

/// `projects/x/t.jsonl` in the agent home holds `binary`.
async fn size_limits(sandbox: &dyn Sandbox, binary: &[u8]) {
    let path = rel("projects/x/t.jsonl");
    let size = binary.len() as u64;
    let home = SandboxDir::AgentHome;
    let over = sandbox.read_file(home, &path, size - 1).await;
    assert!(
        matches!(over, Err(AdapterError::TooLarge(_))),
        "read_file of a file over max_bytes is TooLarge: {over:?}"
    );
    let at = sandbox.read_file(home, &path, size).await;
    assert_eq!(at.expect("a file of exactly max_bytes"), binary);

    let mut opened = sandbox
        .open_file(home, &path, size)
        .await
        .expect("open_file");
    assert_eq!(opened.size, size, "open_file gives the size");
    let mut streamed = Vec::new();
    opened
        .reader
        .read_to_end(&mut streamed)
        .await
        .expect("read the stream");
    assert_eq!(streamed, binary, "open_file streams the file's bytes");
    let over = sandbox.open_file(home, &path, size - 1).await;
    assert!(
        matches!(over, Err(AdapterError::TooLarge(_))),
        "open_file of a file over max_bytes is TooLarge: {:?}",
        over.map(|f| f.size)
    );
    let missing = sandbox.open_file(home, &rel("missing"), size).await;
    assert!(
        matches!(missing, Err(AdapterError::NotFound(_))),
        "open_file of a missing file is NotFound"
    );
}

/// The agent home holds tokens: only its owner may read it or the files written to it.
async fn owner_only_home(sandbox: &dyn Sandbox) {
    let home = sandbox.agent_home_path();
    let script = format!("stat -c %a '{home}' '{home}/projects/x/t.jsonl'");
    let (out, err, status) = run(sandbox, &shell(&script, &[])).await;
    assert!(status.success(), "stat succeeds: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["700", "600"],
        "the agent home is 0700 and its files 0600"
    );
}

async fn processes(sandbox: &dyn Sandbox) {
    let (out, _, status) = run(sandbox, &shell("pwd", &[])).await;
    assert_eq!(
        out.trim_end(),
        sandbox.workspace_path(),
        "spawn runs in the workspace"
    );
    assert!(status.success(), "pwd succeeds: {status}");

    let (out, _, _) = run(sandbox, &shell("cat README.md", &[])).await;
    assert_eq!(out, "replaced", "processes see the written files");
    let (_, _, status) = run(sandbox, &shell("echo made > made.txt", &[])).await;
    assert!(status.success());
    let made = read(sandbox, SandboxDir::Workspace, "made.txt");
    assert_eq!(
        made.await.expect("a file a process wrote"),
        &b"made\n"[..],
        "read_file sees what processes write"
    );

    // SAFETY: edition 2024 marks set_var unsafe because another thread may read the
    // environment at the same time. The value is a constant set before the spawn that must
    // not see it, and nothing reads this variable concurrently.
    unsafe { std::env::set_var(LEAK_VAR, "1") };
    let (out, _, status) = run(sandbox, &shell("env", &[("CMD_VAR", "cmd-value")])).await;
    assert!(status.success(), "env succeeds: {status}");
    let vars: Vec<&str> = out.lines().collect();
    assert!(
        vars.contains(&"SPEC_VAR=spec-value"),
        "the spec's environment reaches processes: {out}"
    );
    assert!(
        vars.contains(&"CMD_VAR=cmd-value"),
        "the command's environment reaches processes: {out}"
    );
    assert!(
        !out.contains(LEAK_VAR),
        "processes get only the spec's and the command's environment: {out}"
    );
    let (out, _, _) = run(sandbox, &shell("echo $SPEC_VAR", &[("SPEC_VAR", "mine")])).await;
    assert_eq!(out, "mine\n", "the command's variables override the spec's");

    let script = "i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done; \
                  echo oops >&2; exit 7";
    let (out, err, status) = run(sandbox, &shell(script, &[])).await;
    let expected: Vec<String> = (0..500).map(|i| format!("line-{i}")).collect();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        expected,
        "stdout carries what the process prints, in order"
    );
    assert_eq!(err, "oops\n", "stderr is separate");
    assert_eq!(status.code, Some(7), "exit reports the exit code");
    assert!(!status.success());

    let cat = sandbox.spawn(&shell("cat", &[])).await.expect("spawn cat");
    let (out, _, status) = collect(cat, b"ping\npong\n").await;
    assert_eq!(out, "ping\npong\n", "stdin reaches the process");
    assert!(status.success(), "cat ends when stdin closes: {status}");
}

async fn ownership(provider: &dyn SandboxProvider, sandbox: &dyn Sandbox, spec: &SandboxSpec) {
    let listed = provider
        .list_owned(&spec.owner_tag)
        .await
        .expect("list_owned");
    let entry = listed.iter().find(|info| info.id == sandbox.id());
    assert_eq!(
        entry.map(|info| info.session_id.as_str()),
        Some(spec.session_id.as_str()),
        "list_owned includes a live sandbox with its session id: {listed:?}"
    );
    let stranger = provider.list_owned(&unique_prefix("other-owner")).await;
    assert!(
        stranger.expect("list_owned").is_empty(),
        "list_owned only reports sandboxes created with the tag"
    );
    let opened = provider.open(sandbox.id()).await.expect("open a listed id");
    assert_eq!(opened.id(), sandbox.id());
    let contents = read(opened.as_ref(), SandboxDir::Workspace, "README.md");
    assert_eq!(
        contents.await.expect("read through an opened handle"),
        &b"replaced"[..]
    );
    let unknown = provider.open(&unique_prefix("no-such-sandbox")).await;
    assert!(
        matches!(unknown, Err(AdapterError::NotFound(_))),
        "open of an unknown id is NotFound"
    );
}

async fn empty_sandbox(provider: &dyn SandboxProvider, owner_tag: &str) {
    let spec = SandboxSpec {
        session_id: unique_prefix("sb-empty"),
        owner_tag: owner_tag.to_owned(),
        ..SandboxSpec::default()
    };
    let sandbox = provider
        .create(&spec)
        .await
        .expect("create an empty sandbox");
    for dir in [SandboxDir::Workspace, SandboxDir::AgentHome] {
        assert!(
            sandbox
                .list_files(dir, MAX_ENTRIES)
                .await
                .expect("list_files")
                .is_empty(),
            "an empty directory gives an empty list"
        );
    }
    assignment(provider, sandbox.as_ref(), owner_tag).await;
    sandbox
        .terminate()
        .await
        .expect("terminate an idle sandbox");
}

/// A sandbox handed to another session is listed under it, and reopens with the same
/// directories (a warm pool's sandbox, taken by a session).
async fn assignment(provider: &dyn SandboxProvider, sandbox: &dyn Sandbox, owner_tag: &str) {
    let session_id = unique_prefix("sb-assigned");
    sandbox.assign(&session_id).await.expect("assign");
    let listed = provider.list_owned(owner_tag).await.expect("list_owned");
    let entry = listed.iter().find(|info| info.id == sandbox.id());
    assert_eq!(
        entry.map(|info| info.session_id.as_str()),
        Some(session_id.as_str()),
        "list_owned reports the session it was handed to: {listed:?}"
    );
    let opened = provider.open(sandbox.id()).await.expect("open");
    assert_eq!(opened.workspace_path(), sandbox.workspace_path());
    assert_eq!(opened.agent_home_path(), sandbox.agent_home_path());
}

async fn termination(provider: &dyn SandboxProvider, sandbox: &dyn Sandbox, owner_tag: &str) {
    let mut process = sandbox
        .spawn(&shell("sleep 1000 & sleep 1000", &[]))
        .await
        .expect("spawn sleepers");
    timeout(PATIENCE, sandbox.terminate())
        .await
        .expect("terminate finishes")
        .expect("terminate");
    let status = timeout(PATIENCE, process.exit)
        .await
        .expect("after terminate, a spawned process's exit resolves");
    assert!(!status.success(), "a killed process did not succeed");
    // The background `sleep` holds stdout open too: EOF means it was killed as well.
    let mut rest = Vec::new();
    timeout(PATIENCE, process.stdout.read_to_end(&mut rest))
        .await
        .expect("terminate kills the process's children too")
        .expect("read stdout");
    sandbox.terminate().await.expect("terminate is idempotent");
    let listed = provider.list_owned(owner_tag).await.expect("list_owned");
    assert!(
        listed.iter().all(|info| info.id != sandbox.id()),
        "a terminated sandbox is not listed: {listed:?}"
    );
    assert!(
        listed.is_empty(),
        "every sandbox of the suite was terminated: {listed:?}"
    );
}
