//! The local sandbox provider against the sandbox contract, plus its own behaviours.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::contract::Behaviour;
use agent_runtime_api::{
    AdapterError, CommandSpec, ErrorKind, RelPath, SandboxDir, SandboxProvider, SandboxSpec,
};
use agent_runtime_local::{InitProgram, Isolation, LocalSandboxConfig, build};
use tempfile::TempDir;

fn provider(
    root: &TempDir,
    isolation: Isolation,
) -> Result<Arc<dyn SandboxProvider>, AdapterError> {
    build(LocalSandboxConfig {
        isolation,
        init_program: Some(InitProgram {
            program: env!("CARGO_BIN_EXE_agent-runtime-sandbox-init").into(),
            args: Vec::new(),
        }),
        ..LocalSandboxConfig::new(root.path().join("sandboxes"))
    })
}

fn plain(root: &TempDir) -> Arc<dyn SandboxProvider> {
    provider(root, Isolation::DangerouslyNone).expect("build")
}

/// A provider with bubblewrap, or `None` (with the reason printed) where it cannot work.
fn bubblewrapped(root: &TempDir) -> Option<Arc<dyn SandboxProvider>> {
    match provider(root, Isolation::Bubblewrap) {
        Ok(provider) => Some(provider),
        Err(error) => {
            eprintln!("SKIPPED: bubblewrap does not work on this host: {error}");
            None
        }
    }
}

fn spec(session_id: &str, owner_tag: &str) -> SandboxSpec {
    SandboxSpec {
        session_id: session_id.to_owned(),
        owner_tag: owner_tag.to_owned(),
        env: BTreeMap::from([("PATH".to_owned(), std::env::var("PATH").unwrap())]),
        ..SandboxSpec::default()
    }
}

fn shell(script: &str) -> CommandSpec {
    CommandSpec {
        program: "sh".to_owned(),
        args: vec!["-c".to_owned(), script.to_owned()],
        env: BTreeMap::new(),
    }
}

/// Runs `behaviour` against a provider without isolation, under a root of its own.
async fn on_plain(behaviour: Behaviour<dyn SandboxProvider>) {
    let root = tempfile::tempdir().unwrap();
    behaviour.check(plain(&root).as_ref()).await;
}

agent_runtime_api::sandbox_contract!(plain_processes, with on_plain);

/// Runs `behaviour` against a provider with bubblewrap, under a root of its own, where
/// bubblewrap works.
async fn on_bubblewrap(behaviour: Behaviour<dyn SandboxProvider>) {
    let root = tempfile::tempdir().unwrap();
    if let Some(provider) = bubblewrapped(&root) {
        behaviour.check(provider.as_ref()).await;
    }
}

agent_runtime_api::sandbox_contract!(bubblewrapped_processes, with on_bubblewrap);

#[tokio::test]
async fn bubblewrap_hides_other_sandboxes_and_the_host_is_read_only() {
    let root = tempfile::tempdir().unwrap();
    let Some(provider) = bubblewrapped(&root) else {
        return;
    };
    let first = provider.create(&spec("first", "bw")).await.unwrap();
    let second = provider.create(&spec("second", "bw")).await.unwrap();
    let script = format!(
        "ls {other} 2>/dev/null && echo visible; touch /usr/planted 2>/dev/null && echo wrote; \
         touch $HOME_DIR/ok && echo home-ok",
        other = first.workspace_path()
    );
    let mut command = shell(&script);
    command
        .env
        .insert("HOME_DIR".into(), second.agent_home_path().into());
    let (out, status) = run(second.as_ref(), &command).await;
    assert!(status.success(), "{status}: {out}");
    assert_eq!(
        out, "home-ok\n",
        "only the sandbox's own directories are reachable"
    );
    assert!(!std::path::Path::new("/usr/planted").exists());
    first.terminate().await.unwrap();
    second.terminate().await.unwrap();
}

async fn run(
    sandbox: &dyn agent_runtime_api::Sandbox,
    command: &CommandSpec,
) -> (String, agent_runtime_api::ExitStatus) {
    use tokio::io::AsyncReadExt;
    let mut process = sandbox.spawn(command).await.expect("spawn");
    drop(process.stdin);
    let mut out = String::new();
    process.stdout.read_to_string(&mut out).await.unwrap();
    (out, process.exit.await)
}

#[tokio::test]
async fn session_ids_that_are_not_one_plain_name_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let provider = plain(&root);
    for bad in ["", "..", "../escape", "a/b", "/abs", ".hidden", "a\0b"] {
        let result = provider.create(&spec(bad, "ids")).await;
        assert!(
            matches!(&result, Err(e) if e.kind() == ErrorKind::InvalidInput),
            "{bad:?} was not refused"
        );
    }
    assert!(provider.list_owned("ids").await.unwrap().is_empty());
    for bad in ["..", "../sandboxes", "a/b", ""] {
        let opened = provider.open(bad).await;
        assert!(
            matches!(&opened, Err(e) if e.kind() == ErrorKind::NotFound),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_program_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let provider = plain(&root);
    let sandbox = provider
        .create(&spec("missing-program", "prog"))
        .await
        .unwrap();
    let command = CommandSpec {
        program: "no-such-program-anywhere".to_owned(),
        ..CommandSpec::default()
    };
    let error = sandbox.spawn(&command).await.unwrap_err();
    assert!(error.kind() == ErrorKind::InvalidInput, "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("command `no-such-program-anywhere` not found on the sandbox PATH"),
        "{message}"
    );
    sandbox.terminate().await.unwrap();
}

#[tokio::test]
async fn symlinks_out_of_the_sandbox_are_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let provider = plain(&root);
    let sandbox = provider.create(&spec("symlinks", "links")).await.unwrap();
    let script = format!(
        "ln -s {dir}/secret.txt leak.txt && ln -s {dir} leakdir",
        dir = outside.path().display()
    );
    let (_, status) = run(sandbox.as_ref(), &shell(&script)).await;
    assert!(status.success());

    for path in ["leak.txt", "leakdir/secret.txt"] {
        let read = sandbox
            .read_file(
                SandboxDir::Workspace,
                &RelPath::new(path).unwrap(),
                u64::MAX,
            )
            .await;
        assert!(
            matches!(&read, Err(e) if e.kind() == ErrorKind::InvalidInput),
            "{path}: {read:?}"
        );
    }
    let mut tree = agent_runtime_api::FileTree::default();
    tree.insert(RelPath::new("leakdir/planted.txt").unwrap(), "x");
    assert!(
        sandbox
            .write_files(SandboxDir::Workspace, &tree)
            .await
            .is_err()
    );
    assert!(!outside.path().join("planted.txt").exists());
    let listed = sandbox
        .list_files(SandboxDir::Workspace, 1000)
        .await
        .unwrap();
    assert!(listed.is_empty(), "symlinks are not listed: {listed:?}");
    sandbox.terminate().await.unwrap();
    assert!(
        outside.path().join("secret.txt").exists(),
        "terminate stays inside"
    );
}

#[tokio::test]
async fn orphans_of_an_earlier_run_are_listed_opened_and_reaped() {
    let root = tempfile::tempdir().unwrap();
    let earlier = plain(&root);
    let orphan = earlier.create(&spec("orphaned", "node-1")).await.unwrap();
    let (orphan_id, orphan_dir) = (orphan.id().to_owned(), orphan.workspace_path().to_owned());
    let process = orphan
        .spawn(&shell("echo kept > kept.txt; exec sleep 1000"))
        .await
        .unwrap();
    // The earlier run forgets everything but what is on disk.
    drop(orphan);
    drop(earlier);

    let later = plain(&root);
    let listed = later.list_owned("node-1").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].id.as_str(), listed[0].session_id.as_str()),
        (orphan_id.as_str(), "orphaned")
    );
    assert!(later.list_owned("node-2").await.unwrap().is_empty());

    let reopened = later.open(&orphan_id).await.unwrap();
    assert_eq!(reopened.workspace_path(), orphan_dir);
    let kept = RelPath::new("kept.txt").unwrap();
    let mut contents = None;
    for _ in 0..100 {
        // The shell creates the file before it writes to it: wait for the whole line.
        if let Ok(bytes) = reopened
            .read_file(SandboxDir::Workspace, &kept, u64::MAX)
            .await
            && bytes.ends_with(b"\n")
        {
            contents = Some(bytes);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        contents.expect("the orphan's file is readable"),
        &b"kept\n"[..]
    );

    reopened.terminate().await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), process.exit)
        .await
        .expect("terminate through the reopened handle killed the orphan's process");
    assert_eq!(status.signal, Some(libc_sigterm()), "{status}");
    assert!(later.list_owned("node-1").await.unwrap().is_empty());
    assert!(
        !std::path::Path::new(&orphan_dir).exists(),
        "the directory is removed"
    );
    assert!(matches!(
        later.open(&orphan_id).await,
        Err(e) if e.kind() == ErrorKind::NotFound
    ));
}

/// SIGTERM's number, which is 15 on every Linux architecture.
fn libc_sigterm() -> i32 {
    15
}

#[tokio::test]
async fn build_reports_a_root_it_cannot_create() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let Err(error) = build(LocalSandboxConfig::new(file.join("sandboxes"))) else {
        panic!("a root below a file was accepted");
    };
    assert!(
        error.to_string().contains("creating the sandbox root"),
        "{error}"
    );
}

#[tokio::test]
async fn processes_that_ignore_sigterm_are_killed_after_the_grace_period() {
    let root = tempfile::tempdir().unwrap();
    let provider = build(LocalSandboxConfig {
        terminate_grace: Duration::from_millis(300),
        ..LocalSandboxConfig::new(root.path())
    })
    .expect("build");
    let sandbox = provider.create(&spec("stubborn", "grace")).await.unwrap();
    let script = "trap '' TERM; echo ready; while :; do sleep 0.1; done";
    let mut process = sandbox.spawn(&shell(script)).await.unwrap();
    let mut ready = [0u8; 6];
    tokio::io::AsyncReadExt::read_exact(&mut process.stdout, &mut ready)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    sandbox.terminate().await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), process.exit)
        .await
        .expect("the stubborn process was killed");
    assert_eq!(status.signal, Some(9), "killed by SIGKILL: {status}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the grace period was given"
    );
}

#[tokio::test]
async fn terminate_lets_processes_end_cleanly_before_killing_them() {
    let root = tempfile::tempdir().unwrap();
    let mut providers = vec![("none", plain(&root))];
    let wrapped_root = tempfile::tempdir().unwrap();
    providers.extend(bubblewrapped(&wrapped_root).map(|provider| ("bubblewrap", provider)));
    for (isolation, provider) in providers {
        let sandbox = provider.create(&spec("graceful", "clean")).await.unwrap();
        let script = "trap 'echo bye; exit 3' TERM; echo ready; while :; do sleep 0.1; done";
        let mut process = sandbox.spawn(&shell(script)).await.unwrap();
        let mut ready = [0u8; 6];
        tokio::io::AsyncReadExt::read_exact(&mut process.stdout, &mut ready)
            .await
            .unwrap();
        sandbox.terminate().await.unwrap();
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut process.stdout, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest, "bye\n", "{isolation}: the SIGTERM handler ran");
        let status = process.exit.await;
        assert_eq!(status.code, Some(3), "{isolation}: {status}");
    }
}

#[tokio::test]
async fn reading_a_fifo_is_refused_without_waiting_for_a_writer() {
    let root = tempfile::tempdir().unwrap();
    let provider = plain(&root);
    let sandbox = provider.create(&spec("fifo", "fifo")).await.unwrap();
    let (_, status) = run(sandbox.as_ref(), &shell("mkfifo pipe")).await;
    assert!(status.success());
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        sandbox.read_file(
            SandboxDir::Workspace,
            &RelPath::new("pipe").unwrap(),
            u64::MAX,
        ),
    )
    .await
    .expect("no wait for a writer");
    assert!(
        matches!(&read, Err(e) if e.kind() == ErrorKind::InvalidInput),
        "{read:?}"
    );
    sandbox.terminate().await.unwrap();
}
