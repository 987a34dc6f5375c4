//! A person approves, denies and answers the agent's requests: the pinned Claude Code
//! against the fake Messages API, and the scripted agent for the Python client.

use std::time::Duration;

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup, node};

/// The tool_result blocks of the last request the model got.
fn last_tool_results(fake: &FakeAnthropic) -> Vec<Value> {
    let requests = fake.requests();
    let last = requests.last().expect("the model was called");
    last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .cloned()
        .collect()
}

/// A tool_result's text, whether its content is a string or text blocks.
fn text_of(result: &Value) -> String {
    match &result["content"] {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    }
}

/// Polls the log until an event of `kind` after `after` is there; returns it.
async fn wait_for_event(http: &Http, id: &str, after: u64, kind: &str) -> Value {
    for _ in 0..600 {
        let (_, page) = http
            .get(&format!(
                "/v1/sessions/{id}/events?after={after}&limit=1000"
            ))
            .await;
        if let Some(event) = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == kind)
        {
            return event.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} event in session {id}");
}

async fn wait_for_status(http: &Http, id: &str, status: &str) -> Value {
    for _ in 0..600 {
        let (_, body) = http.get(&format!("/v1/sessions/{id}")).await;
        if body["session"]["status"] == status {
            return body["session"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {id} never became {status}");
}

/// Sends a message without waiting; returns its `input` event's seq.
async fn send(http: &Http, id: &str, text: &str) -> u64 {
    let (status, sent) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": text }),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    sent["seq"].as_u64().unwrap()
}

async fn answer(http: &Http, id: &str, body: Value) -> (u16, Value) {
    http.post(&format!("/v1/sessions/{id}/answers"), body).await
}

#[tokio::test]
async fn claude_code_asks_a_person_who_allows_denies_and_answers() {
    let fake = FakeAnthropic::start().await;
    let Some(setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("claude-ask").await;

    // A shell command that writes is outside what the profile allows: a person is asked.
    let seq = send(
        &http,
        &id,
        r#"TOOL:Bash {"command":"printf approved > approved.txt"}"#,
    )
    .await;
    let asked = wait_for_event(&http, &id, seq, "permission").await;
    assert_eq!(asked["data"]["tool"], "Bash", "{asked}");
    assert_eq!(
        asked["data"]["input"]["command"],
        "printf approved > approved.txt"
    );
    assert!(asked["data"]["toolUseId"].is_string(), "{asked}");
    let request_id = asked["data"]["requestId"].as_str().unwrap().to_owned();
    let session = wait_for_status(&http, &id, "waiting").await;
    assert_eq!(session["pending"], json!([asked]), "{session}");

    let (status, refused) = answer(
        &http,
        &id,
        json!({ "requestId": "no-such-request", "behavior": "allow" }),
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (404, &json!("request_not_found"))
    );
    let (status, answered) = answer(
        &http,
        &id,
        json!({ "requestId": request_id, "behavior": "allow" }),
    )
    .await;
    assert_eq!(status, 200, "{answered}");
    let (status, late) = answer(
        &http,
        &id,
        json!({ "requestId": request_id, "behavior": "deny" }),
    )
    .await;
    assert_eq!(
        (status, &late["error"]["code"]),
        (409, &json!("request_closed"))
    );
    let session = wait_for_status(&http, &id, "idle").await;
    assert_eq!(session["pending"], json!([]));
    let (status, file) = http
        .get(&format!("/v1/sessions/{id}/files/approved.txt"))
        .await;
    assert_eq!((status, file), (200, Value::String("approved".into())));
    let allowed = last_tool_results(&fake);
    assert_eq!(allowed.last().unwrap()["is_error"], false, "{allowed:?}");

    // Denied: the command does not run and the model reads the person's words.
    let seq = send(
        &http,
        &id,
        r#"TOOL:Bash {"command":"printf no > denied.txt"}"#,
    )
    .await;
    let asked = wait_for_event(&http, &id, seq, "permission").await;
    let (status, _) = answer(
        &http,
        &id,
        json!({ "requestId": asked["data"]["requestId"], "behavior": "deny",
                "message": "The user said no: not in this folder" }),
    )
    .await;
    assert_eq!(status, 200);
    wait_for_status(&http, &id, "idle").await;
    let denied = last_tool_results(&fake);
    let denial = denied.last().unwrap();
    assert_eq!(denial["is_error"], true, "{denial}");
    assert_eq!(text_of(denial), "The user said no: not in this folder");
    let (status, _) = http
        .get(&format!("/v1/sessions/{id}/files/denied.txt"))
        .await;
    assert_eq!(status, 404, "the denied command did not run");

    // A question: the person's answer reaches the model as the tool's result.
    let questions = json!([{ "question": "Which color?", "header": "Color", "multiSelect": false,
        "options": [{ "label": "Red", "description": "warm" }, { "label": "Blue", "description": "cool" }] }]);
    let seq = send(
        &http,
        &id,
        &format!("TOOL:AskUserQuestion {}", json!({ "questions": questions })),
    )
    .await;
    let asked = wait_for_event(&http, &id, seq, "question").await;
    assert_eq!(asked["data"]["questions"], questions, "{asked}");
    let (status, answered) = answer(
        &http,
        &id,
        json!({ "requestId": asked["data"]["requestId"], "behavior": "allow",
                "answers": { "Which color?": "Blue" } }),
    )
    .await;
    assert_eq!(status, 200, "{answered}");
    wait_for_status(&http, &id, "idle").await;
    let results = last_tool_results(&fake);
    let answered = text_of(results.last().unwrap());
    assert!(
        answered.contains(r#""Which color?"="Blue""#),
        "the model got the answer: {answered}"
    );

    // An interrupt while the person thinks: the request is withdrawn, and closed.
    let seq = send(
        &http,
        &id,
        r#"TOOL:Bash {"command":"printf late > late.txt"}"#,
    )
    .await;
    let asked = wait_for_event(&http, &id, seq, "permission").await;
    wait_for_status(&http, &id, "waiting").await;
    let (status, _) = http
        .post(&format!("/v1/sessions/{id}/interrupt"), json!({}))
        .await;
    assert_eq!(status, 200);
    let withdrawn = wait_for_event(&http, &id, asked["seq"].as_u64().unwrap(), "answer").await;
    assert_eq!(withdrawn["data"]["outcome"], "withdrawn", "{withdrawn}");
    // Claude Code withdraws it itself (`control_cancel_request`), before its turn ends.
    assert_eq!(
        withdrawn["data"]["message"],
        "the agent stopped waiting for an answer"
    );
    wait_for_status(&http, &id, "idle").await;
    let (status, late) = answer(
        &http,
        &id,
        json!({ "requestId": asked["data"]["requestId"], "behavior": "allow" }),
    )
    .await;
    assert_eq!(
        (status, &late["error"]["code"]),
        (409, &json!("request_closed"))
    );

    // The next message reaches the model merged with Claude Code's note of the interrupt.
    let result = http.turn(&id, "after the interrupt").await;
    assert_eq!(result["is_error"], false, "{result}");

    // Allowed for the rest of the session: the next call of the tool is not asked about.
    let seq = send(
        &http,
        &id,
        r#"TOOL:Bash {"command":"printf one > one.txt"}"#,
    )
    .await;
    let asked = wait_for_event(&http, &id, seq, "permission").await;
    let (status, _) = answer(
        &http,
        &id,
        json!({ "requestId": asked["data"]["requestId"], "behavior": "allow", "always": true }),
    )
    .await;
    assert_eq!(status, 200);
    wait_for_status(&http, &id, "idle").await;
    let seq = send(
        &http,
        &id,
        r#"TOOL:Bash {"command":"printf two > two.txt"}"#,
    )
    .await;
    wait_for_status(&http, &id, "idle").await;
    let (status, file) = http.get(&format!("/v1/sessions/{id}/files/two.txt")).await;
    assert_eq!((status, file), (200, Value::String("two".into())));
    let (_, page) = http
        .get(&format!("/v1/sessions/{id}/events?after={seq}&limit=1000"))
        .await;
    assert!(
        !page["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "permission"),
        "not asked again: {page}"
    );

    let (_, page) = http
        .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
        .await;
    let answers: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "answer")
        .map(|e| &e["data"])
        .collect();
    let outcomes: Vec<(&Value, &Value)> =
        answers.iter().map(|a| (&a["outcome"], &a["by"])).collect();
    assert_eq!(
        outcomes,
        [
            (&json!("allow"), &json!("local")),
            (&json!("deny"), &json!("local")),
            (&json!("allow"), &json!("local")),
            (&json!("withdrawn"), &Value::Null),
            (&json!("allow"), &json!("local")),
        ]
    );
    assert_eq!(runtime.terminate(), Some(0));
}

// Multi-threaded: the node script blocks one thread while the fake API serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_client_answers_a_claude_code_approval_after_a_reconnect() {
    let fake = FakeAnthropic::start().await;
    let Some(setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    let runtime = Runtime::start(&setup);
    let args = json!({ "agentType": "claude-ask", "tool": "Bash",
                       "message": r#"TOOL:Bash {"command":"printf from-js > js.txt"}"# });
    let summary = tokio::task::block_in_place(|| node("approval.mjs", &runtime, &args));
    assert_eq!(summary["answer"]["outcome"], "allow", "{summary}");
    assert_eq!(summary["answer"]["by"], "local");
    assert_eq!(summary["pendingAfter"], json!([]));
    let id = summary["sessionId"].as_str().unwrap();
    let http = Http::new(&runtime);
    let (status, file) = http.get(&format!("/v1/sessions/{id}/files/js.txt")).await;
    assert_eq!((status, file), (200, Value::String("from-js".into())));
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn stopping_claude_code_while_it_waits_expires_the_request() {
    let fake = FakeAnthropic::start().await;
    let Some(setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("claude-ask").await;
    let seq = send(&http, &id, r#"TOOL:Bash {"command":"printf x > x.txt"}"#).await;
    let asked = wait_for_event(&http, &id, seq, "permission").await;
    assert!(asked["data"]["expiresAt"].is_string(), "{asked}");
    wait_for_status(&http, &id, "waiting").await;
    let started = std::time::Instant::now();
    let (status, stopped) = http
        .post(&format!("/v1/sessions/{id}/stop"), json!({}))
        .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["session"]["status"], "stopped");
    assert_eq!(stopped["session"]["pending"], json!([]));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "Claude Code ended without its grace running out: {:?}",
        started.elapsed()
    );
    let expired = wait_for_event(&http, &id, asked["seq"].as_u64().unwrap(), "answer").await;
    assert_eq!(expired["data"]["outcome"], "expired", "{expired}");
    assert_eq!(expired["data"]["reason"], "stopped", "{expired}");
    let (status, late) = answer(
        &http,
        &id,
        json!({ "requestId": asked["data"]["requestId"], "behavior": "allow" }),
    )
    .await;
    assert_eq!(
        (status, &late["error"]["code"]),
        (404, &json!("request_not_found"))
    );
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn a_request_pending_across_a_kill_9_expires_and_the_model_hears_of_it() {
    let fake = FakeAnthropic::start().await;
    let Some(setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("claude-ask").await;
    let seq = send(
        &http,
        &id,
        r#"TOOL:Bash {"command":"printf lost > lost.txt"}"#,
    )
    .await;
    let asked = wait_for_event(&http, &id, seq, "permission").await;
    let request_id = asked["data"]["requestId"].as_str().unwrap().to_owned();
    wait_for_status(&http, &id, "waiting").await;
    runtime.kill9();

    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let (_, session) = http.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(session["session"]["status"], "stopped", "{session}");
    assert_eq!(session["session"]["pending"], json!([]));
    let (_, page) = http
        .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
        .await;
    let log = page["events"].as_array().unwrap();
    let tail: Vec<&Value> = log.iter().rev().take(2).rev().map(|e| &e["data"]).collect();
    assert_eq!(
        tail,
        [
            &json!({ "requestId": request_id, "outcome": "expired", "reason": "runtime_restarted",
                     "message": "The runtime stopped unexpectedly before anyone answered." }),
            &json!({ "status": "stopped", "reason": "recovered" }),
        ],
        "{page}"
    );
    for (index, event) in log.iter().enumerate() {
        assert_eq!(event["seq"], index as u64 + 1, "no gap in the log");
    }
    let (status, late) = answer(
        &http,
        &id,
        json!({ "requestId": request_id, "behavior": "allow" }),
    )
    .await;
    assert_eq!(
        (status, &late["error"]["code"]),
        (404, &json!("request_not_found"))
    );

    // Resumed, the agent's next turn carries the runtime's note to the model.
    let (status, resumed) = http
        .post(&format!("/v1/sessions/{id}/resume"), json!({}))
        .await;
    assert_eq!(status, 200, "{resumed}");
    let result = http.turn(&id, "after the restart").await;
    assert_eq!(result["is_error"], false, "{result}");
    let requests = fake.requests();
    let last = requests.last().expect("the model was called");
    let user_texts: Vec<&str> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter_map(|b| b["text"].as_str())
        .collect();
    let note = user_texts
        .iter()
        .find(|t| t.starts_with("Note from the host, not from the user:"))
        .unwrap_or_else(|| panic!("no note in {user_texts:?}"));
    assert!(
        note.contains(r#"the tool call Bash with input {"command":"printf lost > lost.txt"}"#)
            && note.contains("(the host stopped unexpectedly)"),
        "{note}"
    );
    assert!(user_texts.contains(&"after the restart"), "{user_texts:?}");
    let (status, _) = http.get(&format!("/v1/sessions/{id}/files/lost.txt")).await;
    assert_eq!(status, 404, "the expired command did not run");
    assert_eq!(runtime.terminate(), Some(0));
}
