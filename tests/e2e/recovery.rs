//! `kill -9` of the runtime mid-turn: after a restart, every event a client received is
//! in the log with the same seq, the session is `stopped`, its orphaned sandbox is reaped
//! after its files were synced, and resuming continues the conversation.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup};

/// Reads SSE frames from `response` until `enough` of them arrived; returns their data.
async fn read_frames(response: &mut reqwest::Response, enough: usize) -> Vec<Value> {
    let mut frames = Vec::new();
    let mut buffer = String::new();
    while frames.len() < enough {
        let chunk = tokio::time::timeout(Duration::from_secs(20), response.chunk())
            .await
            .expect("SSE data in time")
            .expect("SSE read")
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                frames.push(serde_json::from_str(data.trim()).unwrap());
            }
        }
    }
    frames
}

async fn crash_mid_turn_and_recover(round: usize) {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;
    let (status, _) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "write kept.txt survives the crash", "wait": true }),
        )
        .await;
    assert_eq!(status, 200);

    let mut stream = reqwest::Client::new()
        .get(format!("{}/v1/sessions/{id}/events", runtime.url))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let (status, _) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "stamp 400 5" }),
        )
        .await;
    assert_eq!(status, 202);
    // Some events into the streaming turn, then the runtime dies without warning.
    let received = read_frames(&mut stream, 40 + round * 7).await;
    runtime.kill9();

    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let (_, page) = http
        .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
        .await;
    let log = page["events"].as_array().unwrap().clone();
    for event in &received {
        let seq = event["seq"].as_u64().unwrap();
        let stored = log
            .iter()
            .find(|e| e["seq"] == seq)
            .unwrap_or_else(|| panic!("seq {seq} lost"));
        assert_eq!(
            stored, event,
            "the log holds what the client saw, unchanged"
        );
    }
    for (index, event) in log.iter().enumerate() {
        assert_eq!(event["seq"], index as u64 + 1, "no gap in the log");
    }
    let results = log.iter().filter(|e| e["data"]["type"] == "result").count();
    assert_eq!(results, 1, "the streaming turn was cut short by the kill");
    assert_eq!(
        log.last().unwrap()["data"],
        json!({ "status": "stopped", "reason": "recovered" })
    );

    let (_, session) = http.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(session["session"]["status"], "stopped", "{session}");
    // Entries with a dot are the provider's and the runtime's own (sockets, shared files).
    let sandboxes = std::fs::read_dir(setup.dir.path().join("data/sandboxes"))
        .unwrap()
        .filter(|entry| {
            !entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(sandboxes, 0, "the orphaned sandbox was reaped");
    let (status, file) = http.get(&format!("/v1/sessions/{id}/files/kept.txt")).await;
    assert_eq!(
        (status, file),
        (200, Value::String("survives the crash".into()))
    );

    let (status, resumed) = http
        .post(&format!("/v1/sessions/{id}/resume"), json!({}))
        .await;
    assert_eq!(status, 200, "{resumed}");
    let (status, reply) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "history", "wait": true }),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let history = reply["result"]["result"].as_str().unwrap();
    assert!(
        history.contains("write kept.txt"),
        "the conversation continues: {history}"
    );
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn kill_9_mid_turn_loses_nothing_a_client_saw() {
    for round in 0..3 {
        crash_mid_turn_and_recover(round).await;
    }
}
