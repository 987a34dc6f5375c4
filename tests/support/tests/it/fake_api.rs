//! The fake Messages API over real HTTP.

use std::time::{Duration, Instant};

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use serde_json::{Value, json};

/// One parsed SSE frame: its `event:` name and `data:` JSON.
#[derive(Debug)]
struct Frame {
    event: String,
    data: Value,
}

fn parse_sse(body: &str) -> Vec<Frame> {
    body.split("\n\n")
        .filter(|chunk| !chunk.trim().is_empty())
        .map(|chunk| {
            let mut event = String::new();
            let mut data = Value::Null;
            for line in chunk.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = name.to_owned();
                } else if let Some(json) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(json).unwrap();
                }
            }
            Frame { event, data }
        })
        .collect()
}

fn request(messages: Value) -> Value {
    json!({"model": "claude-test", "max_tokens": 100, "stream": true, "messages": messages})
}

async fn post(fake: &FakeAnthropic, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/messages?beta=true", fake.base_url()))
        .header("x-api-key", "test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn frames(fake: &FakeAnthropic, body: &Value) -> Vec<Frame> {
    let response = post(fake, body).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "text/event-stream");
    parse_sse(&response.text().await.unwrap())
}

fn text_of(frames: &[Frame]) -> String {
    frames
        .iter()
        .filter_map(|f| f.data["delta"]["text"].as_str())
        .collect()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[tokio::test]
async fn head_root_is_404_and_unknown_paths_get_error_json() {
    let fake = FakeAnthropic::start().await;
    let client = reqwest::Client::new();
    let head = client.head(fake.base_url() + "/").send().await.unwrap();
    assert_eq!(head.status(), 404);
    let other = client
        .get(fake.base_url() + "/v1/models")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn text_reply_frames_come_in_the_documented_order() {
    let fake = FakeAnthropic::start().await;
    let body = request(json!([
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nToday is a day. FAIL:500\n</system-reminder>"},
            {"type": "text", "text": "hello there", "cache_control": {"type": "ephemeral"}}]},
        {"role": "system", "content": "agent listing"},
    ]));
    let frames = frames(&fake, &body).await;
    let events: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for frame in &frames {
        assert_eq!(frame.data["type"], frame.event.as_str());
    }
    assert_eq!(frames[0].data["message"]["model"], "claude-test");
    assert_eq!(frames[1].data["content_block"]["type"], "text");
    assert_eq!(text_of(&frames), "echo: hello there");
    assert_eq!(frames[4].data["delta"]["stop_reason"], "end_turn");
    assert_eq!(fake.requests(), [body]);
}

#[tokio::test]
async fn tool_round_trip() {
    let fake = FakeAnthropic::start().await;
    let first = request(json!([user(r#"TOOL:Bash {"command":"echo hi"}"#)]));
    let frames = frames(&fake, &first).await;
    let block = &frames[1].data["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "Bash");
    assert_eq!(block["input"], json!({}));
    let partial: String = frames
        .iter()
        .filter(|f| f.data["delta"]["type"] == "input_json_delta")
        .map(|f| f.data["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"command": "echo hi"})
    );
    let stop = frames.iter().find(|f| f.event == "message_delta").unwrap();
    assert_eq!(stop.data["delta"]["stop_reason"], "tool_use");

    let tool_id = block["id"].as_str().unwrap();
    let second = request(json!([
        user(r#"TOOL:Bash {"command":"echo hi"}"#),
        {"role": "assistant", "content": [block]},
        {"role": "system", "content": "late system entry"},
        {"role": "user", "content": [{"tool_use_id": tool_id, "type": "tool_result",
            "content": "hi\n", "is_error": false, "cache_control": {"type": "ephemeral"}}]},
    ]));
    let frames = self::frames(&fake, &second).await;
    assert_eq!(text_of(&frames), "TOOL RESULT SEEN: hi\n");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn fail_returns_the_status_and_error_body() {
    let fake = FakeAnthropic::start().await;
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let response = post(&fake, &request(json!([user(&format!("FAIL:{status}"))]))).await;
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind);
    }
}

#[tokio::test]
async fn invalid_json_body_is_400() {
    let fake = FakeAnthropic::start().await;
    let response = reqwest::Client::new()
        .post(fake.base_url() + "/v1/messages")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn slow_and_set_delay_wait_before_answering() {
    let fake = FakeAnthropic::start().await;
    let started = Instant::now();
    let frames = frames(&fake, &request(json!([user("SLOW:300 take your time")]))).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(text_of(&frames), "echo: take your time");

    fake.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    let frames = self::frames(&fake, &request(json!([user("plain")]))).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(text_of(&frames), "echo: plain");
}

#[tokio::test]
async fn history_lists_user_texts_outside_reminders() {
    let fake = FakeAnthropic::start().await;
    let body = request(json!([
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>ignore me</system-reminder>"},
            {"type": "text", "text": "first"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "echo: first"}]},
        {"role": "user", "content": "second"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "out"}]},
        {"role": "user", "content": "HISTORY"},
    ]));
    let frames = frames(&fake, &body).await;
    assert_eq!(text_of(&frames), "first | second | HISTORY");
}
