//! The runtime on the Modal sandbox provider, against the fake Modal gRPC server of the
//! test kit. The fake really runs the commands it is sent as local processes sharing this
//! host's filesystem, so the scripted agent runs "in" each sandbox, and every session gets
//! its own workspace and agent home through `{session_id}`.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_runtime_modal::{OWNER_TAG, SESSION_TAG};
use agent_runtime_testkit::fake_modal::FakeModal;
use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup};

/// The owner tag the runtime puts on its sandboxes.
const RUNTIME_OWNER: &str = "agent-runtime";

/// A runtime whose sandboxes are made by `fake`, under `<temp dir>/modal/<session id>/`.
pub(crate) fn modal_setup(fake: &FakeModal) -> Setup {
    let mut setup = Setup::scripted();
    let root = modal_root(&setup);
    setup.sandbox_toml = format!(
        "kind = \"modal\"\nserver_url = \"{url}\"\ntoken_id = \"{id}\"\n\
         token_secret = \"{secret}\"\napp = \"e2e\"\n\
         workdir = \"{root}/{{session_id}}/workspace\"\n\
         agent_home = \"{root}/{{session_id}}/home\"\ntags = {{ suite = \"e2e\" }}",
        url = fake.url(),
        id = FakeModal::TOKEN_ID,
        secret = FakeModal::TOKEN_SECRET,
        root = root.display(),
    );
    setup.extra_toml = format!(
        "[agent]\ncommand = \"{}\"\nenv_passthrough = [\"PATH\"]\n",
        setup.agent_command.display()
    );
    setup
}

fn modal_root(setup: &Setup) -> PathBuf {
    setup.dir.path().join("modal")
}

pub(crate) async fn post_empty(http: &Http, path: &str) -> Value {
    let (status, body) = http.post(path, json!({})).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The session's whole event log.
async fn events(http: &Http, id: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().map_or(0, |e| e["seq"].as_u64().unwrap());
        let (status, page) = http
            .get(&format!(
                "/v1/sessions/{id}/events?after={after}&limit=1000"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        all.extend(page["events"].as_array().unwrap().iter().cloned());
        if page["hasMore"] != true {
            return all;
        }
    }
}

pub(crate) async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn has_tag(fake: &FakeModal, name: &str, value: &str) -> bool {
    let request = fake.last_create_request().expect("a sandbox was created");
    request
        .tags
        .iter()
        .any(|t| t.tag_name == name && t.tag_value == value)
}

fn assert_tagged_for(fake: &FakeModal, id: &str) {
    assert!(has_tag(fake, OWNER_TAG, RUNTIME_OWNER), "owner tag");
    assert!(has_tag(fake, SESSION_TAG, id), "session tag");
    assert!(has_tag(fake, "suite", "e2e"), "the configured extra tag");
}

fn assert_gap_free(log: &[Value]) {
    for (index, event) in log.iter().enumerate() {
        assert_eq!(event["seq"], index as u64 + 1, "no gap in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_session_runs_stops_resumes_and_is_deleted_on_modal() {
    let fake = FakeModal::start().await;
    let setup = modal_setup(&fake);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);

    let id = http.create_session("tester").await;
    assert_tagged_for(&fake, &id);
    let first_sandbox = fake.live_sandboxes();
    assert_eq!(first_sandbox.len(), 1, "one sandbox per session");
    assert_eq!(fake.image_builds(), 1);

    let reply = http.turn(&id, "reply hello from modal").await;
    assert_eq!(reply["result"], "hello from modal", "{reply}");
    let reply = http.turn(&id, "write notes.md hi").await;
    assert_eq!(reply["result"], "wrote notes.md", "{reply}");
    let workspace = modal_root(&setup).join(&id).join("workspace");
    assert_eq!(
        std::fs::read_to_string(workspace.join("notes.md")).unwrap(),
        "hi",
        "the agent ran in the sandbox's workdir"
    );
    wait_until("a file event", async || {
        events(&http, &id).await.iter().any(|e| {
            e["type"] == "file"
                && e["data"]["path"] == "notes.md"
                && e["data"]["change"] == "created"
        })
    })
    .await;

    let stopped = post_empty(&http, &format!("/v1/sessions/{id}/stop")).await;
    assert_eq!(stopped["session"]["status"], "stopped", "{stopped}");
    assert_eq!(fake.live_sandboxes(), Vec::<String>::new(), "stop ends it");
    let (status, file) = http.get(&format!("/v1/sessions/{id}/files/notes.md")).await;
    assert_eq!((status, file), (200, Value::String("hi".into())), "synced");

    // A new Modal sandbox has a fresh filesystem: remove what the old one left on this
    // shared host, so only a real restore can bring the file and the transcript back.
    std::fs::remove_dir_all(modal_root(&setup).join(&id)).unwrap();
    let resumed = post_empty(&http, &format!("/v1/sessions/{id}/resume")).await;
    assert_eq!(resumed["session"]["status"], "idle", "{resumed}");
    let second_sandbox = fake.live_sandboxes();
    assert_eq!(second_sandbox.len(), 1, "{second_sandbox:?}");
    assert_ne!(second_sandbox, first_sandbox, "resume makes a new sandbox");
    assert_tagged_for(&fake, &id);
    assert_eq!(fake.image_builds(), 1, "the image is built once");
    assert_eq!(
        std::fs::read_to_string(workspace.join("notes.md")).unwrap(),
        "hi",
        "the workspace was restored into the new sandbox"
    );
    let history = http.turn(&id, "history").await;
    let history = history["result"].as_str().unwrap();
    assert!(
        history.contains("reply hello from modal") && history.contains("write notes.md hi"),
        "the conversation continues: {history}"
    );
    assert_gap_free(&events(&http, &id).await);

    let (status, body) = http
        .send(reqwest::Method::DELETE, &format!("/v1/sessions/{id}"), None)
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        fake.live_sandboxes(),
        Vec::<String>::new(),
        "delete ends it"
    );
    let (status, _) = http.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_crash_fails_the_session_and_it_resumes_on_a_new_sandbox() {
    let fake = FakeModal::start().await;
    let setup = modal_setup(&fake);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;
    http.turn(&id, "reply before the crash").await;

    let (status, body) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "crash" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    wait_until("the crash to be reported", async || {
        events(&http, &id)
            .await
            .iter()
            .any(|e| e["type"] == "error")
    })
    .await;
    let log = events(&http, &id).await;
    let error = log.iter().find(|e| e["type"] == "error").unwrap();
    assert_eq!(error["data"]["code"], "agent_crashed", "{error}");
    assert_eq!(error["data"]["fatal"], true, "{error}");
    wait_until("status failed", async || {
        let (_, body) = http.get(&format!("/v1/sessions/{id}")).await;
        body["session"]["status"] == "failed"
    })
    .await;
    let (_, body) = http.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(body["session"]["error"]["code"], "agent_crashed", "{body}");
    wait_until("the crashed session's sandbox to end", async || {
        fake.live_sandboxes().is_empty()
    })
    .await;

    let resumed = post_empty(&http, &format!("/v1/sessions/{id}/resume")).await;
    assert_eq!(resumed["session"]["status"], "idle", "{resumed}");
    assert_eq!(fake.live_sandboxes().len(), 1);
    let history = http.turn(&id, "history").await;
    assert!(
        history["result"]
            .as_str()
            .unwrap()
            .contains("reply before the crash"),
        "{history}"
    );
    assert_gap_free(&events(&http, &id).await);
    assert_eq!(runtime.terminate(), Some(0));
    assert_eq!(
        fake.live_sandboxes(),
        Vec::<String>::new(),
        "shutdown ends it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_modal_cannot_create_fails_the_create_with_sandbox_failed() {
    let fake = FakeModal::start().await;
    let setup = modal_setup(&fake);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);

    // More failures than the provider retries (3 attempts per call).
    fake.fail_next(50);
    let (status, body) = http
        .post("/v1/sessions", json!({ "agentType": "tester" }))
        .await;
    let served = fake.failures_served();
    fake.fail_next(0);
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "sandbox_failed", "{body}");
    assert!(
        (3..50).contains(&served),
        "retried, then gave up: {served} failures served"
    );
    assert_eq!(fake.live_sandboxes(), Vec::<String>::new());

    let (status, list) = http.get("/v1/sessions").await;
    assert_eq!(status, 200, "{list}");
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    assert_eq!(sessions[0]["status"], "failed", "{list}");
    assert_eq!(sessions[0]["error"]["code"], "sandbox_failed", "{list}");

    // Modal is back: the next session works.
    let id = http.create_session("tester").await;
    let reply = http.turn(&id, "reply recovered").await;
    assert_eq!(reply["result"], "recovered");
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_output_streams_lose_no_agent_output() {
    /// Streams to break: more than the session's start opens, so some are left for the
    /// turn's output (each break resumes at the offset; the next open breaks again).
    const BREAKS: u32 = 40;
    let fake = FakeModal::start().await;
    let setup = modal_setup(&fake);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);

    for _ in 0..BREAKS {
        fake.drop_next_stream();
    }
    let id = http.create_session("tester").await;
    let left = BREAKS - fake.streams_dropped();
    assert!(left > 5, "breaks left for the turn: {left}");
    let reply = http.turn(&id, "emit 200").await;
    assert_eq!(reply["result"], "chunk 200", "{reply}");
    assert!(
        fake.streams_dropped() > BREAKS - left,
        "the turn's stream broke"
    );

    let log = events(&http, &id).await;
    assert_gap_free(&log);
    let texts: Vec<String> = log
        .iter()
        .filter(|e| e["type"] == "agent" && e["data"]["type"] == "assistant")
        .map(|e| {
            e["data"]["message"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = (1..=200).map(|i| format!("chunk {i}")).collect();
    assert_eq!(texts, expected, "every chunk once, in order");
    let resumed_mid_output = runtime.log().lines().any(|line| {
        serde_json::from_str::<Value>(line).is_ok_and(|entry| {
            entry["fields"]["message"] == "output stream broke; resuming at the offset"
                && entry["fields"]["offset"].as_u64().unwrap_or(0) > 16 * 1024
        })
    });
    assert!(
        resumed_mid_output,
        "the agent's output stream broke mid-turn:\n{}",
        runtime.log()
    );
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_modal_tokens_are_renewed_mid_session() {
    let fake = FakeModal::start().await;
    let setup = modal_setup(&fake);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;
    http.turn(&id, "reply before expiry").await;

    let issued = fake.auth_tokens_issued();
    fake.expire_tokens();
    let reply = http.turn(&id, "reply after expiry").await;
    assert_eq!(reply["result"], "after expiry", "{reply}");
    assert!(fake.tokens_refused() > 0, "the old tokens were refused");
    // Files are listed (a router command) after each turn, and the sandbox can be stopped
    // (a control-plane call): both need the renewed credentials.
    let stopped = post_empty(&http, &format!("/v1/sessions/{id}/stop")).await;
    assert_eq!(stopped["session"]["status"], "stopped", "{stopped}");
    assert!(
        fake.auth_tokens_issued() > issued,
        "a new auth token was fetched"
    );
    assert_eq!(fake.live_sandboxes(), Vec::<String>::new());
    assert_gap_free(&events(&http, &id).await);
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_phases_are_logged_and_measured() {
    let fake = FakeModal::start().await;
    let setup = modal_setup(&fake);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;

    let (status, metrics) = http.get("/metrics").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    let count = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "agent_runtime_session_start_seconds_count{phase=\"sandbox\",provider=\"modal\"} ",
            )
        })
        .unwrap_or_else(|| panic!("no sandbox phase count:\n{metrics}"));
    assert!(count.trim().parse::<u64>().unwrap() >= 1, "{metrics}");

    let started = runtime
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| {
            entry["fields"]["message"] == "session started"
                && entry["fields"]["session_id"] == id.as_str()
        })
        .unwrap_or_else(|| panic!("no \"session started\" line:\n{}", runtime.log()));
    for phase in ["prepare_ms", "sandbox_ms", "agent_ms"] {
        assert!(started["fields"][phase].is_u64(), "{phase}: {started}");
    }
    assert_eq!(runtime.terminate(), Some(0));
}

#[test]
fn check_names_both_missing_modal_credentials_without_network() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing may connect here: `check` works offline.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/profiles");
    let agent = agent_runtime_testkit::bin_path("scripted-agent");
    let config = dir.path().join("runtime.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles]\nkind = \"directory\"\npath = \"{}\"\n[agent]\ncommand = \"{}\"\n\
             [sandbox]\nkind = \"modal\"\nserver_url = \"http://{}\"\n",
            profiles.display(),
            agent.display(),
            listener.local_addr().unwrap()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_agent-runtime"))
        .args(["check", "--config", config.to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("MODAL_TOKEN_ID")
        .env_remove("MODAL_TOKEN_SECRET")
        .output()
        .expect("the binary runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{report}");
    for missing in [
        "token_id",
        "MODAL_TOKEN_ID",
        "token_secret",
        "MODAL_TOKEN_SECRET",
    ] {
        assert!(report.contains(missing), "{missing}: {report}");
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "check contacted the Modal server"
    );
}
