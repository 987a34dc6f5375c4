//! Forks with the pinned Claude Code against the fake Messages API: the fork's next turn
//! sends the source's conversation to the model, and its files are the source's.

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup, node};

/// A session of the pinned CLI with one remembered turn and a file its agent wrote.
async fn source(http: &Http) -> String {
    let id = http.create_session("claude").await;
    let result = http.turn(&id, "remember the blue door").await;
    assert_eq!(result["result"], "echo: remember the blue door", "{result}");
    let result = http
        .turn(
            &id,
            r#"TOOL:Bash {"command":"printf 'made by claude' > made.txt"}"#,
        )
        .await;
    assert_eq!(result["is_error"], false, "{result}");
    // The turn's result comes before its `idle` and the sync's `file` event: the log is
    // complete (and a fork's seq predictable) once both are in.
    crate::modal::wait_until("the source's turn to be synced", async || {
        let log = events(http, &id).await;
        let result = log
            .iter()
            .rposition(|e| e["type"] == "agent" && e["data"]["type"] == "result");
        let after = &log[result.map_or(0, |at| at + 1)..];
        let idle = after.iter().any(|e| e["data"]["status"] == "idle");
        let synced = log
            .iter()
            .any(|e| e["type"] == "file" && e["data"]["path"] == "made.txt");
        idle && synced
    })
    .await;
    id
}

async fn events(http: &Http, id: &str) -> Vec<Value> {
    let (status, page) = http
        .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["hasMore"], false);
    page["events"].as_array().unwrap().clone()
}

/// Checks a fork made just now of `source` (whose log ended at `seq`), then has it take
/// a turn: the model gets the source's conversation, and the file the source's agent
/// wrote is in the fork's workspace.
async fn check_fork(http: &Http, fake: &FakeAnthropic, fork: &Value, source: &str, seq: u64) {
    let fork_id = fork["id"].as_str().unwrap();
    assert_eq!(fork["status"], "idle", "{fork}");
    assert_eq!(
        fork["forkedFrom"],
        json!({ "sessionId": source, "seq": seq })
    );
    let (_, got) = http.get(&format!("/v1/sessions/{source}")).await;
    assert_ne!(fork["agentSessionId"], got["session"]["agentSessionId"]);
    let (status, file) = http
        .get(&format!("/v1/sessions/{fork_id}/files/made.txt"))
        .await;
    assert_eq!(
        (status, file),
        (200, json!("made by claude")),
        "copied file"
    );

    let result = http.turn(fork_id, "after the fork").await;
    assert_eq!(result["result"], "echo: after the fork", "{result}");
    assert_eq!(
        result["session_id"], fork["agentSessionId"],
        "Claude Code runs the fork's conversation id: {result}"
    );
    let texts = fake.last_user_texts();
    assert!(
        texts.iter().any(|t| t.contains("remember the blue door")),
        "the fork's turn sends the source's history: {texts:?}"
    );
    let log = events(http, fork_id).await;
    assert_eq!(log[0]["seq"], 1, "the fork's log starts at 1");
    assert_eq!(log[0]["data"]["status"], "starting");
}

#[tokio::test]
async fn claude_code_sessions_fork_live_and_stopped_over_rest() {
    let fake = FakeAnthropic::start().await;
    let Some(setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = source(&http).await;

    // Live and idle.
    let before = events(&http, &id).await;
    let seq = before.last().unwrap()["seq"].as_u64().unwrap();
    let (status, forked) = http
        .post(&format!("/v1/sessions/{id}/fork"), json!({}))
        .await;
    assert_eq!(status, 201, "{forked}");
    check_fork(&http, &fake, &forked["session"], &id, seq).await;
    assert_eq!(
        events(&http, &id).await,
        before,
        "the source's log is as it was"
    );

    // The source goes on with its own conversation, without the fork's turn.
    http.turn(&id, "only in the source").await;
    let texts = fake.last_user_texts();
    assert!(texts.iter().any(|t| t.contains("remember the blue door")));
    assert!(
        !texts.iter().any(|t| t.contains("after the fork")),
        "{texts:?}"
    );

    // Stopped: forked from storage, and left stopped.
    let (status, stopped) = http
        .post(&format!("/v1/sessions/{id}/stop"), json!({}))
        .await;
    assert_eq!(status, 200, "{stopped}");
    let before = events(&http, &id).await;
    let seq = before.last().unwrap()["seq"].as_u64().unwrap();
    let (status, forked) = http
        .post(&format!("/v1/sessions/{id}/fork"), json!({}))
        .await;
    assert_eq!(status, 201, "{forked}");
    check_fork(&http, &fake, &forked["session"], &id, seq).await;
    assert!(
        fake.last_user_texts()
            .iter()
            .any(|t| t.contains("only in the source")),
        "a fork of the stopped source has its last turn too"
    );
    assert_eq!(events(&http, &id).await, before);
    let (_, got) = http.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(got["session"]["status"], "stopped");

    // An unknown session.
    let (status, missing) = http
        .post("/v1/sessions/no-such-session/fork", json!({}))
        .await;
    assert_eq!(
        (status, &missing["error"]["code"]),
        (404, &json!("not_found"))
    );
    assert_eq!(runtime.terminate(), Some(0));
}

// Multi-threaded: the node script blocks one thread while the fake API serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_session_forks_over_socketio() {
    let fake = FakeAnthropic::start().await;
    let Some(setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = source(&http).await;
    let seq = events(&http, &id).await.last().unwrap()["seq"]
        .as_u64()
        .unwrap();

    let args = json!({ "sessionId": id, "content": "after the fork" });
    let out = tokio::task::block_in_place(|| node("fork.mjs", &runtime, &args));
    assert_eq!(
        out["fork"]["forkedFrom"],
        json!({ "sessionId": id, "seq": seq })
    );
    assert_eq!(
        out["statuses"],
        json!(["starting", "idle", "running", "idle"])
    );
    assert_eq!(out["result"], "echo: after the fork");
    assert!(
        out["files"]
            .as_array()
            .unwrap()
            .contains(&json!("made.txt")),
        "{out}"
    );
    let texts = fake.last_user_texts();
    assert!(
        texts.iter().any(|t| t.contains("remember the blue door")),
        "the fork's turn sends the source's history: {texts:?}"
    );
    assert_eq!(runtime.terminate(), Some(0));
}

/// Forks of a live and a stopped session of the scripted agent, on a store and a storage
/// adapter of `setup`: the fork has the files and the conversation, the source its log.
async fn fork_on(setup: &Setup) {
    let runtime = Runtime::start(setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;
    http.turn(&id, "write notes/a.txt from the source").await;
    http.turn(&id, "remember the blue door").await;
    for stop_first in [false, true] {
        if stop_first {
            let (status, body) = http
                .post(&format!("/v1/sessions/{id}/stop"), json!({}))
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let before = events(&http, &id).await;
        let seq = before.last().unwrap()["seq"].as_u64().unwrap();
        let (status, forked) = http
            .post(&format!("/v1/sessions/{id}/fork"), json!({}))
            .await;
        assert_eq!(status, 201, "{forked}");
        let fork = &forked["session"];
        assert_eq!(fork["forkedFrom"], json!({ "sessionId": id, "seq": seq }));
        let fork_id = fork["id"].as_str().unwrap();
        let (status, file) = http
            .get(&format!("/v1/sessions/{fork_id}/files/notes/a.txt"))
            .await;
        assert_eq!((status, file), (200, json!("from the source")));
        let result = http.turn(fork_id, "history").await;
        let history = result["result"].as_str().unwrap();
        assert!(history.contains("remember the blue door"), "{history}");
        assert_eq!(events(&http, fork_id).await[0]["seq"], 1);
        assert_eq!(events(&http, &id).await, before, "the source's log");
        // Read back from the store, the fork still says where it came from.
        let (status, stopped) = http
            .post(&format!("/v1/sessions/{fork_id}/stop"), json!({}))
            .await;
        assert_eq!(status, 200, "{stopped}");
        assert_eq!(stopped["session"]["forkedFrom"], fork["forkedFrom"]);
    }
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_on_postgres_and_s3() {
    let (Some((_, database)), Some(endpoint)) = (
        crate::outage::postgres_database("forks"),
        crate::outage::s3_endpoint(),
    ) else {
        return;
    };
    let bucket = format!("forks-{}", std::process::id());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let mut setup = Setup::scripted();
    setup.store_toml =
        format!("kind = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/{database}\"");
    setup.storage_toml = format!(
        "kind = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\nallow_http = true\npath_style = true"
    );
    fork_on(&setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_on_convex() {
    let convex = agent_runtime_testkit::fake_convex::FakeConvex::start().await;
    let mut setup = Setup::scripted();
    setup.store_toml = "kind = \"convex\"".into();
    setup.storage_toml = "kind = \"convex\"".into();
    setup.extra_toml = format!(
        "[convex]\nurl = \"{url}\"\ndeploy_key = \"{key}\"\nallow_http = true\n",
        url = convex.base_url(),
        key = convex.deploy_key(),
    );
    fork_on(&setup).await;
}
