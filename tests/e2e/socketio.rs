//! Socket.IO end to end: scenario scripts with the real `socket.io-client` (each asserts
//! inside and prints a summary that is checked again here), a `python-socketio` peer,
//! and a graceful shutdown with the session resumed after the restart.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup, node};

/// The shared secret of the tests that turn authentication on.
const SECRET: &str = "e2e-shared-secret";

fn shared_secret_toml() -> String {
    format!("[auth]\nmode = \"shared-secret\"\nsecret = \"{SECRET}\"\n")
}

fn setup_with(extra_toml: &str) -> Setup {
    let mut setup = Setup::scripted();
    setup.extra_toml = extra_toml.to_owned();
    setup
}

/// The whole event log of a session over REST, page by page.
async fn rest_log(http: &Http, id: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = http
            .get(&format!(
                "/v1/sessions/{id}/events?after={after}&limit=1000"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        let batch = page["events"].as_array().unwrap().clone();
        if let Some(last) = batch.last() {
            after = last["seq"].as_u64().unwrap();
        }
        events.extend(batch);
        if page["hasMore"] != true {
            return events;
        }
    }
}

#[tokio::test]
async fn lifecycle_create_stream_interrupt_stop_resume_delete() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let summary = node("lifecycle.mjs", &runtime, &json!({}));
    assert_eq!(summary["interruptedSubtype"], "error_during_execution");
    assert_eq!(summary["history"], "reply hello there | sleep 20000");
    let statuses: Vec<&str> = summary["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "starting", "idle", "running", "idle", "running", "idle", "stopping", "stopped",
            "starting", "idle", "running", "idle"
        ]
    );
    let id = summary["sessionId"].as_str().unwrap();
    let (status, body) = Http::new(&runtime).get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(status, 404, "deleted: {body}");
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn agent_file_gives_an_event_a_listing_and_stored_bytes() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let summary = node("files.mjs", &runtime, &json!({}));
    assert_eq!(
        summary["file"],
        json!({ "path": "notes.md", "change": "created", "size": 2 })
    );
    let id = summary["sessionId"].as_str().unwrap();
    let http = Http::new(&runtime);
    let (status, bytes) = http.get(&format!("/v1/sessions/{id}/files/notes.md")).await;
    assert_eq!((status, bytes), (200, Value::String("hi".into())));
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn reconnect_and_join_after_seq_fill_every_gap() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let summary = node("replay.mjs", &runtime, &json!({}));
    let id = summary["sessionId"].as_str().unwrap();
    let seen = summary["events"].as_array().unwrap();
    let log = rest_log(&Http::new(&runtime), id).await;
    assert_eq!(seen.len(), log.len());
    assert!(*seen == log, "the clients' union equals the REST log");
    assert!(summary["lastSeenByA"].as_u64().unwrap() > summary["fillIdle"].as_u64().unwrap());
    assert!(summary["catchUpPages"].as_u64().unwrap() >= 3);
    assert!(summary["fullPages"].as_u64().unwrap() >= 3);
    assert_eq!(runtime.terminate(), Some(0));
}

/// Clients whose sessions stream thousands of lines at once, while they keep making
/// requests, hear every event live and get every ack: with socketioxide's default
/// buffer (128 packets per socket) the overflow was dropped.
#[test]
fn a_burst_reaches_every_connected_client_whole() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let summary = node(
        "burst.mjs",
        &runtime,
        &json!({ "clients": 4, "chunks": 5000 }),
    );
    for run in summary.as_array().unwrap() {
        assert_eq!(
            (&run["missing"], &run["unanswered"]),
            (&json!(0), &json!(0)),
            "{summary}"
        );
    }
}

#[test]
fn messages_sent_during_a_turn_are_queued_in_order() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let summary = node("queued.mjs", &runtime, &json!({ "pipelined": false }));
    assert_eq!(summary["results"], json!(["slept", "second", "third"]));
}

/// Three `session:message` emits in a row, without waiting for acks in between, as any
/// client may send them: each socket.io request is handled on its own task, so the
/// three race to the session and can be queued in any order.
#[test]
fn pipelined_messages_keep_their_order() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    for _ in 0..5 {
        let summary = node("queued.mjs", &runtime, &json!({ "pipelined": true }));
        assert_eq!(summary["results"], json!(["slept", "second", "third"]));
    }
}

/// A client that hears a session's `idle` status event and asks for the session at
/// once sees it `idle`, and its message is taken: the session is live before the event
/// goes out. Several clients at once, since the window this guards is short.
#[test]
fn a_session_is_idle_once_its_idle_event_is_out() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let summary = node(
        "ready_race.mjs",
        &runtime,
        &json!({ "clients": 6, "rounds": 25 }),
    );
    assert_eq!(summary["get"], json!({ "idle": 150 }));
}

#[test]
fn every_request_error_has_its_code_and_shape() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let summary = node("errors.mjs", &runtime, &json!({}));
    let messages = &summary["messages"];
    assert_eq!(
        messages["createString"],
        "the payload must be a JSON object"
    );
    assert_eq!(messages["getNoSessionId"], "`sessionId` is required");
    assert_eq!(messages["createNoAgentType"], "`agentType` is required");
    assert_eq!(
        messages["afterSeqNegative"],
        "`afterSeq` must be a non-negative integer"
    );
    assert_eq!(
        summary["errorEvent"]["error"]["code"], "not_found",
        "{summary}"
    );
}

#[test]
fn arbitrary_payloads_get_an_ack_with_a_documented_code() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let codes = [
        "unauthorized",
        "origin_forbidden",
        "host_forbidden",
        "not_found",
        "invalid_request",
        "profile_not_found",
        "profile_invalid",
        "metadata_invalid",
        "capacity_exceeded",
        "quota_exceeded",
        "rate_limited",
        "sandbox_failed",
        "agent_failed",
        "storage_unavailable",
        "request_not_found",
        "request_closed",
        "budget_exceeded",
        "forbidden",
        "session_busy",
    ];
    let args = json!({ "seed": 20261204, "perEvent": 40, "codes": codes });
    let summary = node("arbitrary.mjs", &runtime, &args);
    assert_eq!(summary["sent"], 15 * 40, "{summary}");
    assert!(
        summary["seen"]["invalid_request"].as_u64() > Some(0),
        "{summary}"
    );
    assert!(runtime.log().contains("\"level\":\"INFO\""));
    assert!(!runtime.log().contains("panicked"), "{}", runtime.log());
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn shared_secret_handshake_and_sessions_of_another_principal() {
    // A session made by the unauthenticated principal...
    let mut setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let (status, created) = Http::new(&runtime)
        .post("/v1/sessions", json!({ "agentType": "tester" }))
        .await;
    assert_eq!(status, 201, "{created}");
    let foreign = created["session"]["id"].as_str().unwrap().to_owned();
    assert_eq!(runtime.terminate(), Some(0));

    // ...is not found by the shared-secret principal after a restart with auth on.
    setup.extra_toml = shared_secret_toml();
    let runtime = Runtime::start(&setup);
    let summary = node(
        "auth.mjs",
        &runtime,
        &json!({ "secret": SECRET, "foreignSessionId": foreign }),
    );
    for (name, message) in summary["refused"].as_object().unwrap() {
        assert_eq!(message, "unauthorized", "{name}");
    }
    assert_eq!(
        summary["foreign"]["session:get"],
        format!("no session {foreign}")
    );
    let (status, body) = Http::new(&runtime)
        .with_token(SECRET)
        .get(&format!("/v1/sessions/{foreign}"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(runtime.terminate(), Some(0));
}

#[test]
fn capacity_is_enforced_on_create_and_resume() {
    let setup = setup_with("[sessions]\nmax_sessions = 1\n");
    let runtime = Runtime::start(&setup);
    let summary = node("capacity.mjs", &runtime, &json!({}));
    assert_eq!(summary["create"]["code"], "capacity_exceeded");
    assert_eq!(summary["resume"]["code"], "capacity_exceeded");
}

#[test]
fn a_900_kib_message_passes_on_every_transport() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let summary = node("large_payload.mjs", &runtime, &json!({}));
    for transport in ["defaults", "polling", "websocket"] {
        assert_eq!(
            summary[transport]["bytes"], 921_606,
            "{transport}: {summary}"
        );
    }
    // The runtime survived the oversized requests.
    assert_eq!(runtime.terminate(), Some(0));
}

/// The interpreter with python-socketio, or `None` (with a message) when it is not
/// configured here. Under CI a missing interpreter is a failure.
fn python() -> Option<String> {
    match std::env::var("AGENT_RUNTIME_TEST_PYTHON") {
        Ok(python) => Some(python),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "AGENT_RUNTIME_TEST_PYTHON is not set; scripts/test installs python-socketio"
            );
            eprintln!("SKIPPED: set AGENT_RUNTIME_TEST_PYTHON to a python with python-socketio");
            None
        }
    }
}

#[test]
fn python_socketio_peer() {
    let Some(python) = python() else {
        return;
    };
    let setup = setup_with(&shared_secret_toml());
    let runtime = Runtime::start(&setup);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_client.py");
    let output = Command::new(python)
        .arg(script)
        .env("RUNTIME_URL", &runtime.url)
        .env("SCRIPT_ARGS", json!({ "secret": SECRET }).to_string())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python_client.py failed:\n{stdout}\n{}\n--- runtime log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        runtime.log()
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("python_client.py printed no JSON ({e}):\n{stdout}"));
    assert_eq!(
        summary["refusals"],
        json!({ "wrong": "unauthorized", "missing": "unauthorized" })
    );
    assert_eq!(summary["notFound"]["error"]["code"], "not_found");
    assert_eq!(summary["lastSeq"], 8, "{summary}");
    let approval = &summary["approval"];
    assert_eq!(approval["tool"], "Write", "{summary}");
    assert_eq!(approval["answer"]["outcome"], "allow");
    assert_eq!(approval["answer"]["by"], "shared-secret");
    assert_eq!(
        approval["result"],
        "TOOL RESULT SEEN: File created successfully at: py.txt"
    );
}

#[tokio::test]
async fn sigterm_stops_live_sessions_and_they_resume_after_a_restart() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;
    let (status, body) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "write notes.md hi", "wait": true }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A second session is mid-turn when the signal comes.
    let (_, busy) = http
        .post("/v1/sessions", json!({ "agentType": "tester" }))
        .await;
    let busy = busy["session"]["id"].as_str().unwrap().to_owned();
    let (status, _) = http
        .post(
            &format!("/v1/sessions/{busy}/messages"),
            json!({ "content": "sleep 20000" }),
        )
        .await;
    assert_eq!(status, 202);
    // An open SSE stream must not hold the shutdown up.
    let mut sse = reqwest::Client::new()
        .get(format!("{}/v1/sessions/{id}/events", runtime.url))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);

    let code = tokio::task::spawn_blocking(move || runtime.terminate())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "SIGTERM exits cleanly");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Ok(Some(_)) = sse.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream ended with the runtime");

    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let (_, record) = http.get(&format!("/v1/sessions/{busy}")).await;
    assert_eq!(record["session"]["status"], "stopped", "{record}");
    let (status, bytes) = http.get(&format!("/v1/sessions/{id}/files/notes.md")).await;
    assert_eq!((status, bytes), (200, Value::String("hi".into())));
    let summary = node("resume.mjs", &runtime, &json!({ "sessionId": id }));
    assert_eq!(summary["statusBefore"], "stopped");
    assert_eq!(summary["files"], json!(["CLAUDE.md", "notes.md"]));
    assert_eq!(summary["history"], "write notes.md hi");
    let statuses = summary["statuses"].as_array().unwrap();
    assert_eq!(statuses.last().unwrap(), "idle");
    assert!(statuses.contains(&json!("stopped")), "{summary}");
    assert_eq!(runtime.terminate(), Some(0));
}
