//! The pinned Claude Code CLI as the agent, against the fake Messages API.

use std::time::Duration;

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup};

#[tokio::test]
async fn claude_code_turns_files_interrupt_stop_and_resume() {
    let fake = FakeAnthropic::start().await;
    let Some(setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("claude").await;

    // A turn with text.
    let result = http.turn(&id, "hello from the test").await;
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["result"], "echo: hello from the test");

    // A turn where the agent writes a file: a `file` event follows.
    let result = http
        .turn(
            &id,
            r#"TOOL:Bash {"command":"printf 'made by claude' > made.txt"}"#,
        )
        .await;
    assert_eq!(result["is_error"], false, "{result}");
    // The turn's sync writes the `file` event, which may come just after the result.
    let mut events = Vec::new();
    crate::modal::wait_until("the file event", async || {
        let (_, page) = http
            .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
            .await;
        events = page["events"].as_array().unwrap().clone();
        events
            .iter()
            .any(|e| e["type"] == "file" && e["data"]["path"] == "made.txt")
    })
    .await;
    let file = events
        .iter()
        .find(|e| e["type"] == "file" && e["data"]["path"] == "made.txt")
        .unwrap();
    assert_eq!(file["data"]["change"], "created");
    let init = events
        .iter()
        .find(|e| e["type"] == "agent" && e["data"]["subtype"] == "init")
        .unwrap();
    assert!(
        init["data"]["claude_code_version"].is_string(),
        "real Claude Code output: {init}"
    );

    // Interrupt mid-turn: the turn ends, the agent stays.
    fake.set_delay(Duration::from_secs(30));
    let (status, sent) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "a slow one" }),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    wait_for_status(&http, &id, "running").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = http
        .post(&format!("/v1/sessions/{id}/interrupt"), json!({}))
        .await;
    assert_eq!(status, 200);
    wait_for_status(&http, &id, "idle").await;
    fake.set_delay(Duration::ZERO);
    let (_, page) = http
        .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
        .await;
    let interrupted = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["type"] == "agent" && e["data"]["type"] == "result")
        .cloned()
        .unwrap();
    assert_eq!(
        interrupted["data"]["subtype"], "error_during_execution",
        "{interrupted}"
    );

    // Stop, resume on a new sandbox: the model gets the earlier conversation.
    let (status, stopped) = http
        .post(&format!("/v1/sessions/{id}/stop"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stopped["session"]["status"], "stopped");
    let (status, file) = http.get(&format!("/v1/sessions/{id}/files/made.txt")).await;
    assert_eq!(
        (status, file),
        (200, Value::String("made by claude".into())),
        "synced at stop"
    );
    let (status, resumed) = http
        .post(&format!("/v1/sessions/{id}/resume"), json!({}))
        .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["session"]["status"], "idle");
    let result = http.turn(&id, "after the resume").await;
    assert_eq!(result["result"], "echo: after the resume");
    let texts = fake.last_user_texts();
    assert!(
        texts.iter().any(|t| t.contains("hello from the test")),
        "the resumed conversation carries the earlier turns: {texts:?}"
    );
    let (status, file) = http.get(&format!("/v1/sessions/{id}/files/made.txt")).await;
    assert_eq!(
        (status, file),
        (200, Value::String("made by claude".into())),
        "restored file"
    );

    assert_eq!(runtime.terminate(), Some(0));
}

async fn wait_for_status(http: &Http, id: &str, status: &str) {
    for _ in 0..300 {
        let (_, body) = http.get(&format!("/v1/sessions/{id}")).await;
        if body["session"]["status"] == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {id} never became {status}");
}

/// A budget of one turn, given at create: the pinned Claude Code's first turn runs, its
/// `result` is counted, and the second message is refused until an admin raises the
/// budget; then the session goes on.
#[tokio::test]
async fn claude_code_on_a_one_turn_budget_is_stopped_until_an_admin_raises_it() {
    let fake = FakeAnthropic::start().await;
    let Some(mut setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    setup.extra_toml += "[auth]\nmode = \"principals\"\n";
    let alice = crate::principals::create_key(&setup, &["alice"]);
    let ops = crate::principals::create_key(&setup, &["ops", "--admin"]);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime).with_token(&alice);
    let admin = Http::new(&runtime).with_token(&ops);

    let (status, created) = http
        .post(
            "/v1/sessions",
            json!({ "agentType": "claude", "budget": { "maxTurns": 1 } }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let session = &created["session"];
    assert_eq!(
        session["budget"],
        json!({ "maxCostUsd": null, "maxTokens": null, "maxTurns": 1 })
    );
    let id = session["id"].as_str().unwrap().to_owned();

    let result = http.turn(&id, "first message").await;
    assert_eq!(result["result"], "echo: first message", "{result}");
    // The error follows the turn's result, so it may be written just after the result
    // reached the client.
    let mut exceeded = Value::Null;
    crate::modal::wait_until("the budget_exceeded event", async || {
        let (_, page) = http
            .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
            .await;
        let found = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "error" && e["data"]["code"] == "budget_exceeded")
            .cloned();
        exceeded = found.unwrap_or_default();
        !exceeded.is_null()
    })
    .await;
    assert_eq!(exceeded["data"]["fatal"], false);

    let requests_before = fake.requests().len();
    let (status, refused) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "second message" }),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "budget_exceeded");
    let (_, got) = http.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(got["session"]["usage"]["turns"], 1, "{got}");
    assert_eq!(got["session"]["status"], "idle", "{got}");
    assert_eq!(
        fake.requests().len(),
        requests_before,
        "the model was not called"
    );

    // The owner may not raise its own budget; an admin may.
    let path = format!("/v1/sessions/{id}/budget");
    let (status, forbidden) = http
        .send(reqwest::Method::PUT, &path, Some(json!({ "maxTurns": 2 })))
        .await;
    assert_eq!(status, 403, "{forbidden}");
    assert_eq!(forbidden["error"]["code"], "forbidden");
    let (status, raised) = admin
        .send(reqwest::Method::PUT, &path, Some(json!({ "maxTurns": 2 })))
        .await;
    assert_eq!(status, 200, "{raised}");
    assert_eq!(raised["session"]["budget"]["maxTurns"], 2);

    let result = http.turn(&id, "second message").await;
    assert_eq!(result["result"], "echo: second message", "{result}");
    assert!(
        fake.last_user_texts()
            .contains(&"second message".to_owned()),
        "the second message reached the model"
    );
    let (_, got) = http.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(got["session"]["usage"]["turns"], 2, "{got}");
}
