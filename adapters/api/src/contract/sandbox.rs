//! The behaviours of [`crate::Sandbox`] and [`crate::SandboxProvider`], one function each.
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::{Behaviour, unique_prefix};
use crate::{
    AdapterResult, AgentProcess, CommandSpec, ErrorKind, ExitStatus, FileTree, RelPath, Sandbox,
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

/// Runs every behaviour of [`Sandbox`] and [`SandboxProvider`] against `provider`, one
/// after the other; the first broken one panics. Tests should rather use
/// [`sandbox_contract!`](crate::sandbox_contract), a test per behaviour.
pub async fn sandbox_provider(provider: &dyn SandboxProvider) {
    for behaviour in BEHAVIOURS {
        behaviour.check(provider).await;
    }
}

/// Every behaviour of [`Sandbox`] and [`SandboxProvider`], in the order of their
/// `# Behavior` sections.
pub const BEHAVIOURS: &[Behaviour<dyn SandboxProvider>] = crate::sandbox_contract!(@list);

/// One test per behaviour of [`Sandbox`] and [`SandboxProvider`] (see
/// [`crate::contract`]): a module name (optional, attributes before it), then a factory
/// (`async { provider }`, giving the provider, an `Arc` or a `Box` of it) or
/// `with runner` (an `async fn(Behaviour<dyn SandboxProvider>)`).
///
/// Each behaviour creates its sandboxes with an owner tag of its own and terminates them
/// all. Their processes run `sh`, `env`, `cat`, `pwd`, `stat` and `sleep` from the test
/// process's `PATH`, which the behaviours pass in the sandbox's environment.
#[macro_export]
macro_rules! sandbox_contract {
    ($($input:tt)*) => {
        $crate::__contract! {
            [$crate::contract::sandbox] [dyn $crate::SandboxProvider]
            [
                write_files_creates_parents_and_replaces,
                write_batch_is_write_files_in_order,
                agent_home_is_owner_only,
                list_files_is_recursive_ordered_and_bounded,
                read_file_returns_the_bytes_within_max_bytes,
                open_file_streams_with_the_same_errors,
                spawn_runs_in_the_workspace_with_only_the_given_environment,
                spawn_pipes_output_input_and_exit_status,
                terminate_kills_every_process_and_is_idempotent,
                paths_are_absolute,
                create_places_exactly_the_spec_files,
                list_owned_reports_live_sandboxes_of_the_tag,
                open_gives_a_handle_on_a_listed_sandbox,
                assign_hands_the_sandbox_to_another_session,
            ]
            $($input)*
        }
    };
}

/// The spec of the behaviours' sandboxes: two workspace files, one agent home file, the
/// test process's `PATH` and one variable of its own.
fn sample_spec(owner_tag: &str) -> SandboxSpec {
    SandboxSpec {
        session_id: unique_prefix("sb"),
        owner_tag: owner_tag.to_owned(),
        profile: "sample".to_owned(),
        workspace: tree(&[("README.md", "hello\n"), ("src/main.rs", "fn main() {}\n")]),
        agent_home: tree(&[("settings.json", "{}")]),
        env: BTreeMap::from([
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
            ("SPEC_VAR".to_owned(), "spec-value".to_owned()),
        ]),
    }
}

/// The sandboxes of one behaviour, under an owner tag of its own.
struct Fixture<'a> {
    provider: &'a dyn SandboxProvider,
    owner_tag: String,
}

impl<'a> Fixture<'a> {
    fn new(provider: &'a dyn SandboxProvider) -> Self {
        Fixture {
            provider,
            owner_tag: unique_prefix("contract-owner"),
        }
    }

    /// A sandbox of [`sample_spec`].
    async fn sandbox(&self) -> Box<dyn Sandbox> {
        self.create(&sample_spec(&self.owner_tag)).await
    }

    async fn create(&self, spec: &SandboxSpec) -> Box<dyn Sandbox> {
        self.provider.create(spec).await.expect("create")
    }

    /// Terminates `sandboxes` and checks that none of the behaviour's is left.
    async fn finish(self, sandboxes: &[&dyn Sandbox]) {
        for sandbox in sandboxes {
            timeout(PATIENCE, sandbox.terminate())
                .await
                .expect("terminate finishes")
                .expect("terminate");
        }
        let listed = self
            .provider
            .list_owned(&self.owner_tag)
            .await
            .expect("list_owned");
        assert!(
            listed.is_empty(),
            "every sandbox of the behaviour was terminated: {listed:?}"
        );
    }
}

/// `write_files` creates parent directories and replaces existing files, in the workspace
/// and in the agent home, which are separate directories.
pub async fn write_files_creates_parents_and_replaces(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
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
        matches!(&absent.await, Err(e) if e.kind() == ErrorKind::NotFound),
        "the workspace and the agent home are separate directories"
    );
    let (out, _, _) = run(sandbox, &shell("cat README.md", &[])).await;
    assert_eq!(out, "replaced", "processes see the written files");
    fixture.finish(&[sandbox]).await;
}

/// `write_batch` leaves the directories as `write_files` of each of its writes, in order,
/// would: both directories written at once, a later write of a path winning.
pub async fn write_batch_is_write_files_in_order(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
    let first = tree(&[("README.md", "first"), ("notes/a.txt", "a")]);
    let home = tree(&[("config/x.json", "{\"x\":1}")]);
    let second = tree(&[("README.md", "second")]);
    sandbox
        .write_batch(&[
            (SandboxDir::Workspace, &first),
            (SandboxDir::AgentHome, &home),
            (SandboxDir::Workspace, &second),
        ])
        .await
        .expect("write_batch");
    assert_eq!(
        paths_and_sizes(sandbox, SandboxDir::Workspace).await,
        owned(&[("README.md", 6), ("notes/a.txt", 1), ("src/main.rs", 13)]),
        "the workspace holds both writes' files"
    );
    let readme = read(sandbox, SandboxDir::Workspace, "README.md");
    assert_eq!(
        readme.await.unwrap(),
        &b"second"[..],
        "the later write wins"
    );
    assert_eq!(
        paths_and_sizes(sandbox, SandboxDir::AgentHome).await,
        owned(&[("config/x.json", 7), ("settings.json", 2)]),
        "the agent home holds its write's files"
    );
    let (out, _, _) = run(sandbox, &shell("cat notes/a.txt", &[])).await;
    assert_eq!(out, "a", "processes see the written files");
    fixture.finish(&[sandbox]).await;
}

/// Files written to the agent home are readable only by their owner (mode 0600, and 0700
/// for the directory): it holds the token of the runtime's tools.
pub async fn agent_home_is_owner_only(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
    let mut files = FileTree::default();
    files.insert(rel("projects/x/t.jsonl"), "{}\n");
    sandbox
        .write_files(SandboxDir::AgentHome, &files)
        .await
        .expect("write_files in the agent home");
    let home = sandbox.agent_home_path();
    let script = format!("stat -c %a '{home}' '{home}/projects/x/t.jsonl'");
    let (out, err, status) = run(sandbox, &shell(&script, &[])).await;
    assert!(status.success(), "stat succeeds: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["700", "600"],
        "the agent home is 0700 and its files 0600"
    );
    fixture.finish(&[sandbox]).await;
}

/// `list_files` lists regular files under the directory, recursively, ordered by path,
/// with sizes; an empty directory gives an empty list; a directory of more than
/// `max_entries` files is `TooLarge`.
pub async fn list_files_is_recursive_ordered_and_bounded(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
    let files = tree(&[
        ("z/last.txt", "1"),
        ("a/b/c/deep.txt", "deep"),
        ("m.txt", ""),
    ]);
    sandbox
        .write_files(SandboxDir::Workspace, &files)
        .await
        .unwrap();
    assert_eq!(
        paths_and_sizes(sandbox, SandboxDir::Workspace).await,
        owned(&[
            ("README.md", 6),
            ("a/b/c/deep.txt", 4),
            ("m.txt", 0),
            ("src/main.rs", 13),
            ("z/last.txt", 1),
        ]),
        "list_files is recursive, ordered by path, with sizes"
    );

    let empty_spec = SandboxSpec {
        session_id: unique_prefix("sb-empty"),
        owner_tag: fixture.owner_tag.clone(),
        ..SandboxSpec::default()
    };
    let empty = fixture.create(&empty_spec).await;
    for dir in [SandboxDir::Workspace, SandboxDir::AgentHome] {
        assert!(
            empty
                .list_files(dir, MAX_ENTRIES)
                .await
                .expect("list_files")
                .is_empty(),
            "an empty directory gives an empty list"
        );
    }

    let mut many = FileTree::default();
    for n in 0..12 {
        many.insert(rel(&format!("many/{n}.txt")), "x");
    }
    empty
        .write_files(SandboxDir::AgentHome, &many)
        .await
        .expect("write many files");
    assert!(
        matches!(
            empty.list_files(SandboxDir::AgentHome, 10).await,
            Err(e) if e.kind() == ErrorKind::TooLarge
        ),
        "a directory of more files than max_entries is TooLarge"
    );
    let listed = empty
        .list_files(SandboxDir::AgentHome, 100)
        .await
        .expect("list within the limit");
    assert_eq!(listed.len(), 12, "{listed:?}");
    fixture.finish(&[sandbox, empty.as_ref()]).await;
}

/// A binary file of 70 000 bytes in the agent home.
async fn with_binary_file(sandbox: &dyn Sandbox) -> (RelPath, Vec<u8>) {
    let path = rel("projects/x/t.jsonl");
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut files = FileTree::default();
    files.insert(path.clone(), binary.clone());
    sandbox
        .write_files(SandboxDir::AgentHome, &files)
        .await
        .expect("write_files");
    (path, binary)
}

/// `read_file` returns the bytes of a regular file; a missing file is `NotFound`, one of
/// more than `max_bytes` is `TooLarge`.
pub async fn read_file_returns_the_bytes_within_max_bytes(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
    let contents = read(sandbox, SandboxDir::Workspace, "src/main.rs");
    assert_eq!(contents.await.expect("read_file"), &b"fn main() {}\n"[..]);
    let missing = read(sandbox, SandboxDir::Workspace, "nope/missing.txt");
    assert!(
        matches!(&missing.await, Err(e) if e.kind() == ErrorKind::NotFound),
        "read_file of a missing file is NotFound"
    );
    let (path, binary) = with_binary_file(sandbox).await;
    let size = binary.len() as u64;
    let home = SandboxDir::AgentHome;
    let over = sandbox.read_file(home, &path, size - 1).await;
    assert!(
        matches!(&over, Err(e) if e.kind() == ErrorKind::TooLarge),
        "read_file of a file over max_bytes is TooLarge: {:?}",
        over.map(|b| b.len())
    );
    let at = sandbox.read_file(home, &path, size).await;
    assert_eq!(at.expect("a file of exactly max_bytes"), binary);
    let (_, _, status) = run(sandbox, &shell("echo made > made.txt", &[])).await;
    assert!(status.success());
    let made = read(sandbox, SandboxDir::Workspace, "made.txt");
    assert_eq!(
        made.await.expect("a file a process wrote"),
        &b"made\n"[..],
        "read_file sees what processes write"
    );
    fixture.finish(&[sandbox]).await;
}

/// `open_file` is `read_file` as a stream: the same errors, before it returns, and a
/// reader of at most `max_bytes`.
pub async fn open_file_streams_with_the_same_errors(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
    let (path, binary) = with_binary_file(sandbox).await;
    let size = binary.len() as u64;
    let home = SandboxDir::AgentHome;
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
        matches!(&over, Err(e) if e.kind() == ErrorKind::TooLarge),
        "open_file of a file over max_bytes is TooLarge: {:?}",
        over.map(|f| f.size)
    );
    let missing = sandbox.open_file(home, &rel("missing"), size).await;
    assert!(
        matches!(&missing, Err(e) if e.kind() == ErrorKind::NotFound),
        "open_file of a missing file is NotFound"
    );
    fixture.finish(&[sandbox]).await;
}

/// `spawn` starts a process with the workspace as its working directory and only the
/// spec's and the command's environment variables (the command's win).
pub async fn spawn_runs_in_the_workspace_with_only_the_given_environment(
    provider: &dyn SandboxProvider,
) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
    let (out, _, status) = run(sandbox, &shell("pwd", &[])).await;
    assert_eq!(
        out.trim_end(),
        sandbox.workspace_path(),
        "spawn runs in the workspace"
    );
    assert!(status.success(), "pwd succeeds: {status}");

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
    fixture.finish(&[sandbox]).await;
}

/// A spawned process's stdout carries what it prints, in order, apart from its stderr;
/// its stdin reaches it; `exit` resolves with its status when it ends.
pub async fn spawn_pipes_output_input_and_exit_status(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
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
    fixture.finish(&[sandbox]).await;
}

/// `terminate` kills every process of the sandbox and releases it; it is idempotent.
/// After it, a spawned process's `exit` resolves.
pub async fn terminate_kills_every_process_and_is_idempotent(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
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
    let listed = provider
        .list_owned(&fixture.owner_tag)
        .await
        .expect("list_owned");
    assert!(
        listed.iter().all(|info| info.id != sandbox.id()),
        "a terminated sandbox is not listed: {listed:?}"
    );
    fixture.finish(&[]).await;
}

/// `workspace_path` and `agent_home_path` are absolute paths as processes inside the
/// sandbox see them, and not the same.
pub async fn paths_are_absolute(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
    assert!(
        sandbox.workspace_path().starts_with('/') && sandbox.agent_home_path().starts_with('/'),
        "workspace_path and agent_home_path are absolute"
    );
    assert_ne!(sandbox.workspace_path(), sandbox.agent_home_path());
    let home = sandbox.agent_home_path();
    let (out, err, status) =
        run(sandbox, &shell(&format!("cat '{home}/settings.json'"), &[])).await;
    assert!(
        status.success(),
        "a process reads the agent home at its path: {err}"
    );
    assert_eq!(out, "{}", "the agent home's path is where its files are");
    fixture.finish(&[sandbox]).await;
}

/// `create` returns a sandbox whose workspace and agent home hold exactly the spec's
/// files.
pub async fn create_places_exactly_the_spec_files(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let sandbox = sandbox.as_ref();
    assert_eq!(
        paths_and_sizes(sandbox, SandboxDir::Workspace).await,
        owned(&[("README.md", 6), ("src/main.rs", 13)]),
        "create places exactly the spec's workspace files"
    );
    assert_eq!(
        paths_and_sizes(sandbox, SandboxDir::AgentHome).await,
        owned(&[("settings.json", 2)]),
        "create places exactly the spec's agent home files"
    );
    let contents = read(sandbox, SandboxDir::Workspace, "src/main.rs");
    assert_eq!(contents.await.expect("read_file"), &b"fn main() {}\n"[..]);
    fixture.finish(&[sandbox]).await;
}

/// `list_owned(owner_tag)` returns the sandboxes created with that tag that have not been
/// terminated, each with its session id, and no other's.
pub async fn list_owned_reports_live_sandboxes_of_the_tag(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let spec = sample_spec(&fixture.owner_tag);
    let sandbox = fixture.create(&spec).await;
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
    assert_eq!(listed.len(), 1, "and only the tag's: {listed:?}");
    let stranger = provider.list_owned(&unique_prefix("other-owner")).await;
    assert!(
        stranger.expect("list_owned").is_empty(),
        "list_owned only reports sandboxes created with the tag"
    );
    fixture.finish(&[sandbox.as_ref()]).await;
}

/// `open(id)` returns a handle on a sandbox from `list_owned`, to read its files and
/// terminate it; an unknown id is `NotFound`.
pub async fn open_gives_a_handle_on_a_listed_sandbox(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let sandbox = fixture.sandbox().await;
    let opened = provider.open(sandbox.id()).await.expect("open a listed id");
    assert_eq!(opened.id(), sandbox.id());
    assert_eq!(opened.workspace_path(), sandbox.workspace_path());
    assert_eq!(opened.agent_home_path(), sandbox.agent_home_path());
    let contents = read(opened.as_ref(), SandboxDir::Workspace, "README.md");
    assert_eq!(
        contents.await.expect("read through an opened handle"),
        &b"hello\n"[..]
    );
    let unknown = provider.open(&unique_prefix("no-such-sandbox")).await;
    assert!(
        matches!(&unknown, Err(e) if e.kind() == ErrorKind::NotFound),
        "open of an unknown id is NotFound"
    );
    // Terminated through the opened handle: the sandbox is released.
    fixture.finish(&[opened.as_ref()]).await;
}

/// A sandbox handed to another session (`assign`) is listed under it, and reopens with
/// the same directories (a warm pool's sandbox, taken by a session).
pub async fn assign_hands_the_sandbox_to_another_session(provider: &dyn SandboxProvider) {
    let fixture = Fixture::new(provider);
    let spec = SandboxSpec {
        session_id: unique_prefix("sb-warm"),
        owner_tag: fixture.owner_tag.clone(),
        ..SandboxSpec::default()
    };
    let sandbox = fixture.create(&spec).await;
    let session_id = unique_prefix("sb-assigned");
    sandbox.assign(&session_id).await.expect("assign");
    let listed = provider
        .list_owned(&fixture.owner_tag)
        .await
        .expect("list_owned");
    let entry = listed.iter().find(|info| info.id == sandbox.id());
    assert_eq!(
        entry.map(|info| info.session_id.as_str()),
        Some(session_id.as_str()),
        "list_owned reports the session it was handed to: {listed:?}"
    );
    let opened = provider.open(sandbox.id()).await.expect("open");
    assert_eq!(opened.workspace_path(), sandbox.workspace_path());
    assert_eq!(opened.agent_home_path(), sandbox.agent_home_path());
    fixture.finish(&[sandbox.as_ref()]).await;
}
