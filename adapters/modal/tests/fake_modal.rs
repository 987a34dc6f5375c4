//! The Modal provider against the fake Modal server of the test kit: the sandbox contract,
//! then the behaviours only a remote backend has (dropped streams, retries, tokens, death).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use agent_runtime_api::contract::Behaviour;
use agent_runtime_api::{
    AgentProcess, CommandSpec, ErrorKind, ExitStatus, Sandbox, SandboxProvider, SandboxSpec,
};
use agent_runtime_modal::proto::status;
use agent_runtime_modal::{ModalConfig, ModalSandboxProvider, OWNER_TAG, SESSION_TAG, Secret};
use agent_runtime_testkit::fake_modal::FakeModal;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(30);

#[path = "fake_modal/conformance.rs"]
mod conformance;
#[path = "fake_modal/official_clients.rs"]
mod official_clients;

fn config(fake: &FakeModal, root: &Path) -> ModalConfig {
    ModalConfig {
        server_url: fake.url().to_owned(),
        token_id: Some(FakeModal::TOKEN_ID.to_owned()),
        token_secret: Some(Secret::new(FakeModal::TOKEN_SECRET)),
        workdir: format!("{}/{{session_id}}/workspace", root.display()),
        agent_home: format!("{}/{{session_id}}/home", root.display()),
        ..ModalConfig::default()
    }
}

struct Setup {
    fake: FakeModal,
    provider: ModalSandboxProvider,
    _root: TempDir,
}

async fn setup() -> Setup {
    let fake = FakeModal::start().await;
    let root = tempfile::tempdir().unwrap();
    let provider = ModalSandboxProvider::new(config(&fake, root.path())).expect("provider");
    Setup {
        fake,
        provider,
        _root: root,
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

/// Closes stdin, reads stdout to its end, and waits for the exit.
async fn finish(mut process: AgentProcess) -> (String, ExitStatus) {
    process.stdin.shutdown().await.unwrap();
    let mut out = String::new();
    let read = timeout(PATIENCE, process.stdout.read_to_string(&mut out)).await;
    read.expect("stdout ends").expect("read stdout");
    let status = timeout(PATIENCE, process.exit)
        .await
        .expect("exit resolves");
    (out, status)
}

async fn run(sandbox: &dyn Sandbox, script: &str) -> (String, ExitStatus) {
    finish(sandbox.spawn(&shell(script)).await.expect("spawn")).await
}

/// Runs `behaviour` against a provider on a fake Modal server of its own; afterwards the
/// server has no live sandbox, and built the image once at most.
async fn on_fake_modal(behaviour: Behaviour<dyn SandboxProvider>) {
    let s = setup().await;
    behaviour.check(&s.provider).await;
    assert!(
        s.fake.live_sandboxes().is_empty(),
        "the behaviour terminated everything"
    );
    assert!(
        s.fake.image_builds() <= 1,
        "the image is built once and reused"
    );
}

agent_runtime_api::sandbox_contract!(sandbox_contract, with on_fake_modal);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_is_built_once_and_create_reports_its_phases() {
    let s = setup().await;
    for n in 0..3 {
        let sandbox = s
            .provider
            .create(&spec(&format!("image-{n}"), "image"))
            .await
            .expect("create");
        sandbox.terminate().await.expect("terminate");
    }
    assert_eq!(
        s.fake.image_builds(),
        1,
        "the image is built once and reused"
    );
    let timings = s
        .provider
        .last_create_timings()
        .expect("create reports its phases");
    assert!(timings.total() >= timings.ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_sandboxes_as_configured() {
    let fake = FakeModal::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut config = config(&fake, root.path());
    config.resources.cpu = 0.5;
    config.resources.memory_mb = 1024;
    config.timeout = Duration::from_secs(7200);
    config.tags = BTreeMap::from([("team".to_owned(), "x".to_owned())]);
    let provider = ModalSandboxProvider::new(config).unwrap();
    let sandbox = provider.create(&spec("s1", "owner")).await.expect("create");
    let request = fake.last_create_request().expect("a create request");
    let definition = request.definition.unwrap();
    assert_eq!(definition.entrypoint_args, ["sleep", "infinity"]);
    assert_eq!(definition.timeout_secs, 7200);
    assert_eq!(definition.idle_timeout_secs, Some(900));
    assert_eq!(
        definition.workdir.as_deref(),
        Some(sandbox.workspace_path())
    );
    let resources = definition.resources.unwrap();
    assert_eq!((resources.milli_cpu, resources.memory_mb), (500, 1024));
    let tags: Vec<(String, String)> = request
        .tags
        .into_iter()
        .map(|t| (t.tag_name, t.tag_value))
        .collect();
    for expected in [(OWNER_TAG, "owner"), (SESSION_TAG, "s1"), ("team", "x")] {
        assert!(
            tags.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{tags:?}"
        );
    }
    assert_eq!(
        request.secret_sources.len(),
        1,
        "the spec's environment travels as a secret"
    );
    assert!(sandbox.workspace_path().ends_with("/s1/workspace"));
    sandbox.terminate().await.unwrap();
}

/// `SandboxTagsSetV2` replaces the whole tag set (as the official client documents
/// `Sandbox.set_tags`; the fake does the same), so handing a sandbox to a session sends
/// every tag again: the owner, the directories and the configured ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_sends_every_tag_again_because_modal_replaces_them() {
    let fake = FakeModal::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut config = config(&fake, root.path());
    config.tags = BTreeMap::from([("team".to_owned(), "x".to_owned())]);
    let provider = ModalSandboxProvider::new(config).unwrap();
    let sandbox = provider.create(&spec("warm-1", "owner")).await.unwrap();
    let mut before = fake.tags(sandbox.id()).unwrap();
    sandbox.assign("s2").await.expect("assign");
    let mut after = fake.tags(sandbox.id()).unwrap();
    for tags in [&mut before, &mut after] {
        tags.retain(|(name, _)| name != SESSION_TAG);
        tags.sort();
    }
    assert_eq!(after, before, "only the session tag changed");
    assert!(
        after.contains(&("team".to_owned(), "x".to_owned())),
        "{after:?}"
    );
    assert!(
        after.contains(&(OWNER_TAG.to_owned(), "owner".to_owned())),
        "{after:?}"
    );
    let session = fake.tags(sandbox.id()).unwrap();
    assert!(
        session.contains(&(SESSION_TAG.to_owned(), "s2".to_owned())),
        "{session:?}"
    );
    let listed = provider.list_owned("owner").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].session_id, "s2");
    sandbox.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_output_streams_resume_without_loss_or_duplication() {
    let s = setup().await;
    let sandbox = s
        .provider
        .create(&spec("seq", "owner"))
        .await
        .expect("create");
    for _ in 0..3 {
        s.fake.drop_next_stream();
    }
    let process = sandbox.spawn(&shell("seq 1 5000")).await.unwrap();
    let (out, status) = finish(process).await;
    assert!(status.success(), "{status}");
    let expected: String = (1..=5000).map(|n| format!("{n}\n")).collect();
    assert_eq!(out.len(), expected.len(), "no byte lost or repeated");
    assert!(out == expected, "the output arrives in order");
    assert_eq!(
        s.fake.streams_dropped(),
        3,
        "the stream really broke three times"
    );
    sandbox.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_is_retried_and_then_reported() {
    let s = setup().await;
    s.fake.fail_next(2);
    let sandbox = s
        .provider
        .create(&spec("retry", "owner"))
        .await
        .expect("create after 2 failures");
    assert_eq!(s.fake.failures_served(), 2);
    s.fake.fail_next(3);
    let (out, status) = run(sandbox.as_ref(), "echo through").await;
    assert_eq!((out.as_str(), status.success()), ("through\n", true));
    assert_eq!(s.fake.failures_served(), 5);

    s.fake.fail_next(1000);
    let refused = s.provider.list_owned("owner").await;
    assert!(
        matches!(&refused, Err(e) if e.is_transient()),
        "{refused:?}"
    );
    s.fake.fail_next(0);
    sandbox.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_fetched_again() {
    let s = setup().await;
    let sandbox = s
        .provider
        .create(&spec("tokens", "owner"))
        .await
        .expect("create");
    let issued = s.fake.auth_tokens_issued();
    s.fake.expire_tokens();
    let listed = s
        .provider
        .list_owned("owner")
        .await
        .expect("list after expiry");
    assert_eq!(listed.len(), 1);
    let (out, _) = run(sandbox.as_ref(), "echo still here").await;
    assert_eq!(out, "still here\n", "the router JWT is fetched again too");
    assert!(
        s.fake.tokens_refused() >= 2,
        "both tokens were really refused"
    );
    assert!(
        s.fake.auth_tokens_issued() > issued,
        "a new auth token was fetched"
    );
    sandbox.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_before_they_expire() {
    let s = setup().await;
    s.fake.set_token_ttl(Duration::from_secs(2));
    let sandbox = s
        .provider
        .create(&spec("refresh", "owner"))
        .await
        .expect("create");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.provider.list_owned("owner").await.expect("list");
        run(sandbox.as_ref(), "true").await;
    }
    assert!(
        s.fake.auth_tokens_issued() >= 2,
        "refreshed: {}",
        s.fake.auth_tokens_issued()
    );
    assert_eq!(
        s.fake.tokens_refused(),
        0,
        "no call went out with an expired token"
    );
    sandbox.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_resolves_when_the_process_or_the_sandbox_dies() {
    let s = setup().await;
    let sandbox = s
        .provider
        .create(&spec("death", "owner"))
        .await
        .expect("create");

    let victim = sandbox
        .spawn(&shell("echo $$; exec sleep 1000"))
        .await
        .unwrap();
    let mut lines = BufReader::new(victim.stdout).lines();
    let pid = timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("a pid");
    let (_, status) = run(sandbox.as_ref(), &format!("kill -9 {pid}")).await;
    assert!(status.success());
    let status = timeout(PATIENCE, victim.exit)
        .await
        .expect("exit resolves after a kill");
    assert_eq!(status.signal, Some(9), "{status}");

    // With the router unreachable, only the sandbox watcher can tell.
    let stuck = sandbox.spawn(&shell("sleep 1000")).await.unwrap();
    s.fake.stall_router(true);
    assert!(s.fake.end_sandbox(sandbox.id(), status::TIMEOUT));
    let status = timeout(PATIENCE, stuck.exit)
        .await
        .expect("exit resolves when the sandbox ends");
    assert!(!status.success(), "{status}");
    s.fake.stall_router(false);
    let after = sandbox.spawn(&shell("true")).await;
    assert!(
        matches!(&after, Err(e) if e.kind() == ErrorKind::NotFound),
        "an ended sandbox runs nothing"
    );

    let other = s
        .provider
        .create(&spec("death-2", "owner"))
        .await
        .expect("create");
    let sleeper = other.spawn(&shell("sleep 1000")).await.unwrap();
    other.terminate().await.unwrap();
    let status = timeout(PATIENCE, sleeper.exit)
        .await
        .expect("exit resolves after terminate");
    assert!(!status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_opens_sandboxes_by_owner_tag() {
    let s = setup().await;
    let mut mine = Vec::new();
    for n in 0..4 {
        let sandbox = s
            .provider
            .create(&spec(&format!("mine-{n}"), "owner-a"))
            .await
            .unwrap();
        mine.push(sandbox);
    }
    let theirs = s.provider.create(&spec("theirs", "owner-b")).await.unwrap();
    let mut listed = s.provider.list_owned("owner-a").await.unwrap();
    listed.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    let sessions: Vec<&str> = listed.iter().map(|i| i.session_id.as_str()).collect();
    assert_eq!(
        sessions,
        ["mine-0", "mine-1", "mine-2", "mine-3"],
        "every page is read"
    );
    let others = s.provider.list_owned("owner-b").await.unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].id, theirs.id());

    let reopened = s.provider.open(mine[2].id()).await.expect("open");
    assert_eq!(reopened.workspace_path(), mine[2].workspace_path());
    let (out, _) = run(reopened.as_ref(), "pwd").await;
    assert_eq!(out.trim_end(), mine[2].workspace_path());

    for sandbox in mine.iter().chain([&theirs]) {
        sandbox.terminate().await.unwrap();
    }
    assert!(s.provider.list_owned("owner-a").await.unwrap().is_empty());
    let gone = s.provider.open(mine[0].id()).await;
    assert!(
        matches!(&gone, Err(e) if e.kind() == ErrorKind::NotFound),
        "a terminated sandbox cannot be opened"
    );
    assert_eq!(s.fake.image_builds(), 1);
}

#[test]
fn check_offline_names_missing_credentials() {
    if std::env::var_os("MODAL_TOKEN_ID").is_some()
        || std::env::var_os("MODAL_TOKEN_SECRET").is_some()
    {
        eprintln!("SKIPPED: MODAL_TOKEN_ID or MODAL_TOKEN_SECRET is set in this environment");
        return;
    }
    let problems = agent_runtime_modal::check_offline(&ModalConfig::default()).join("\n");
    assert!(
        problems.contains("token_id") && problems.contains("token_secret"),
        "{problems}"
    );
    let with_id = ModalConfig {
        token_id: Some("ak-x".into()),
        ..ModalConfig::default()
    };
    let problems = agent_runtime_modal::check_offline(&with_id).join("\n");
    assert!(
        !problems.contains("token_id") && problems.contains("token_secret"),
        "{problems}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_urls_speak_tls_and_report_a_failed_handshake() {
    // A server that accepts and hangs up: the TLS handshake fails, which must surface as a
    // transient error (not a panic over a missing crypto provider).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let config = ModalConfig {
        server_url: format!("https://127.0.0.1:{port}"),
        token_id: Some("ak-x".into()),
        token_secret: Some(Secret::new("as-x")),
        ..ModalConfig::default()
    };
    let provider = ModalSandboxProvider::new(config).unwrap();
    let listed = timeout(PATIENCE, provider.list_owned("x"))
        .await
        .expect("gives up in time");
    assert!(matches!(&listed, Err(e) if e.is_transient()), "{listed:?}");
}
