//! REST and SSE end to end, with plain HTTP (reqwest) against the real binary.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup};

/// How long a test waits for one SSE frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// One SSE stream, read frame by frame.
struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    /// Opens `/events` as SSE, resuming after `last_event_id` when given.
    async fn open(runtime: &Runtime, id: &str, last_event_id: Option<u64>) -> SseStream {
        let mut request = reqwest::Client::new()
            .get(format!("{}/v1/sessions/{id}/events", runtime.url))
            .header("accept", "text/event-stream");
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's `id:` and parsed `data:`; comments (keep-alives) are skipped.
    async fn next(&mut self) -> (u64, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().parse::<u64>().unwrap());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if let Some(id) = id {
                    return (id, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(FRAME_TIMEOUT, self.response.chunk())
                .await
                .expect("an SSE frame in time")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Reads frames until one matches; returns every envelope read.
    async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut read = Vec::new();
        loop {
            let (id, envelope) = self.next().await;
            assert_eq!(envelope["seq"], id, "id: is the seq");
            let finished = done(&envelope);
            read.push(envelope);
            if finished {
                return read;
            }
        }
    }
}

/// Reads `stream` up to the end of the turn that gave `result` (its `idle` status), so
/// the log holds the whole turn; returns every envelope read.
async fn through_turn(stream: &mut SseStream, result: &Value) -> Vec<Value> {
    let mut read = stream
        .until(|e| is_agent(e, "result") && e["data"]["uuid"] == result["uuid"])
        .await;
    read.extend(stream.until(|e| is_status(e, "idle")).await);
    read
}

fn is_agent(envelope: &Value, kind: &str) -> bool {
    envelope["type"] == "agent" && envelope["data"]["type"] == kind
}

fn is_status(envelope: &Value, status: &str) -> bool {
    envelope["type"] == "status" && envelope["data"]["status"] == status
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn sessions_messages_and_control_over_rest() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let first = http.create_session("tester").await;
    let second = http.create_session("tester").await;

    // Paging through the list one session at a time.
    let mut listed = Vec::new();
    let mut path = "/v1/sessions?limit=1".to_owned();
    loop {
        let (status, page) = http.get(&path).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["sessions"].as_array().unwrap().len(), 1, "{page}");
        listed.extend(page["sessions"].as_array().unwrap().clone());
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/sessions?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    let mut ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = vec![first.as_str(), second.as_str()];
    expected.sort();
    assert_eq!(ids, expected);

    // 202 with the input's seq, then the same turn through `wait: true`.
    let (status, accepted) = http
        .post(
            &format!("/v1/sessions/{first}/messages"),
            json!({ "content": "reply no wait" }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["seq"], 3, "{accepted}");
    assert!(accepted["messageId"].is_string());
    let result = http.turn(&first, "reply waited").await;
    assert_eq!(result["type"], "result");
    assert_eq!(result["result"], "waited", "the waited turn's own result");

    // Stop and resume; the agent remembers.
    let (status, stopped) = http
        .post(&format!("/v1/sessions/{first}/stop"), json!({}))
        .await;
    assert_eq!(
        (status, &stopped["session"]["status"]),
        (200, &json!("stopped"))
    );
    let (status, resumed) = http
        .post(&format!("/v1/sessions/{first}/resume"), json!({}))
        .await;
    assert_eq!(
        (status, &resumed["session"]["status"]),
        (200, &json!("idle"))
    );
    let history = http.turn(&first, "history").await;
    assert_eq!(history["result"], "reply no wait | reply waited");
    let mut stream = SseStream::open(&runtime, &first, None).await;
    let settled = through_turn(&mut stream, &history).await;
    drop(stream);

    // The log as JSON pages.
    let (status, page) = http
        .get(&format!("/v1/sessions/{first}/events?after=2&limit=3"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(seqs(page["events"].as_array().unwrap()), [3, 4, 5]);
    assert_eq!(page["hasMore"], true);
    let (_, all) = http.get(&format!("/v1/sessions/{first}/events")).await;
    let all = all["events"].as_array().unwrap().clone();
    let last = all.len() as u64;
    assert_eq!(seqs(&all), (1..=last).collect::<Vec<_>>());
    assert_eq!(all, settled, "the JSON pages and SSE agree");
    let (_, tail) = http
        .get(&format!("/v1/sessions/{first}/events?after={last}"))
        .await;
    assert_eq!(tail, json!({ "events": [], "hasMore": false }));

    // The transcript: the same envelopes as NDJSON.
    let response = reqwest::get(format!("{}/v1/sessions/{first}/transcript", runtime.url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, all);

    // Files: listed, and their bytes.
    http.turn(&first, "write docs/a.txt alpha").await;
    let (status, files) = http.get(&format!("/v1/sessions/{first}/files")).await;
    assert_eq!(status, 200);
    let entry = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "docs/a.txt")
        .unwrap_or_else(|| panic!("listed: {files}"))
        .clone();
    assert_eq!(entry["size"], 5);
    let (status, bytes) = http
        .get(&format!("/v1/sessions/{first}/files/docs/a.txt"))
        .await;
    assert_eq!((status, bytes), (200, Value::String("alpha".into())));
    let (status, missing) = http
        .get(&format!("/v1/sessions/{first}/files/nope.txt"))
        .await;
    assert_eq!(
        (status, &missing["error"]["code"]),
        (404, &json!("not_found"))
    );

    // Delete: 204, then 404 everywhere.
    let (status, body) = http
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/sessions/{first}"),
            None,
        )
        .await;
    assert_eq!((status, body), (204, Value::String(String::new())));
    for path in ["", "/events", "/files", "/transcript"] {
        let (status, body) = http.get(&format!("/v1/sessions/{first}{path}")).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn sse_streams_live_and_resumes_after_last_event_id() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;

    // From the start: the log so far, `id:` = seq.
    let first = http.turn(&id, "reply one").await;
    let mut stream = SseStream::open(&runtime, &id, None).await;
    let replayed = through_turn(&mut stream, &first).await;
    let logged = replayed.len() as u64;
    assert_eq!(seqs(&replayed), (1..=logged).collect::<Vec<_>>());

    // Live: a slow turn, interrupted once the agent has started it.
    let (status, sent) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "sleep 20000" }),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let started = stream
        .until(|e| is_agent(e, "system") && e["data"]["subtype"] == "init")
        .await;
    assert_eq!(started[0]["seq"], sent["seq"]);
    let (status, body) = http
        .post(&format!("/v1/sessions/{id}/interrupt"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["id"], id.as_str());
    let ended = stream.until(|e| is_status(e, "idle")).await;
    let result = ended.iter().find(|e| is_agent(e, "result")).unwrap();
    assert_eq!(result["data"]["subtype"], "error_during_execution");
    let last = ended.last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(
        seqs(&[started, ended].concat()),
        (sent["seq"].as_u64().unwrap()..=last).collect::<Vec<_>>()
    );
    drop(stream);

    // Resuming with Last-Event-ID: only what came after it, then live events.
    let mut resumed = SseStream::open(&runtime, &id, Some(last - 2)).await;
    let (first_id, _) = resumed.next().await;
    assert_eq!(first_id, last - 1);
    resumed.until(|e| e["seq"] == last).await;
    let (status, _) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "reply live" }),
        )
        .await;
    assert_eq!(status, 202);
    let live = resumed.until(|e| is_status(e, "idle")).await;
    assert_eq!(seqs(&live)[0], last + 1);
    let reply = live.iter().find(|e| is_agent(e, "result")).unwrap();
    assert_eq!(reply["data"]["result"], "live");

    // `?after=` works like Last-Event-ID.
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/sessions/{id}/events?after={last}",
            runtime.url
        ))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut after = SseStream {
        response,
        buffer: String::new(),
    };
    assert_eq!(after.next().await.0, last + 1);

    // The live events the stream got were timed as sent over SSE (replayed ones are not).
    let (_, metrics) = http.get("/metrics").await;
    let metrics = metrics.as_str().unwrap();
    let sent = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("agent_runtime_event_send_latency_seconds_count{transport=\"sse\"} ")
        })
        .unwrap_or_else(|| panic!("no SSE send latency in\n{metrics}"));
    assert!(sent.parse::<f64>().unwrap() >= 1.0, "{metrics}");
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn errors_ops_routes_and_body_limits() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", runtime.url);

    // Bad JSON and a missing content type: 400 invalid_request.
    let response = client
        .post(url("/v1/sessions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_request").await;
    let response = client
        .post(url("/v1/sessions"))
        .body(r#"{"agentType":"tester"}"#)
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_request").await;

    let table = [
        (json!({}), 400, "invalid_request"),
        (json!({ "agentType": "no-such" }), 422, "profile_not_found"),
        (
            json!({ "agentType": "tester", "metadata": { "topic": 1 } }),
            422,
            "metadata_invalid",
        ),
    ];
    for (body, status, code) in table {
        let (got, answer) = http.post("/v1/sessions", body.clone()).await;
        assert_eq!(
            (got, &answer["error"]["code"]),
            (status, &json!(code)),
            "{body}"
        );
        assert!(answer["error"]["message"].as_str().unwrap().len() > 1);
    }
    // An unknown route is no operation of the OpenAPI document: probed off it.
    let probe = Http::new(&runtime).off_spec();
    for (client, path) in [
        (&http, "/v1/sessions/no-such"),
        (&http, "/v1/sessions/no-such/events"),
        (&probe, "/v1/nothing-here"),
    ] {
        let (status, body) = client.get(path).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{path}"
        );
    }
    let (status, body) = http
        .post("/v1/sessions/no-such/messages", json!({ "content": "hi" }))
        .await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, body) = http.get("/v1/sessions?limit=0").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_request"))
    );

    // Ops routes.
    assert_eq!(http.get("/healthz").await, (200, json!({ "status": "ok" })));
    assert_eq!(
        http.get("/readyz").await,
        (200, json!({ "status": "ready" }))
    );
    let (status, metrics) = http.get("/metrics").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("# TYPE agent_runtime_http_requests_total counter"),
        "{metrics}"
    );
    assert!(metrics.contains("agent_runtime_http_requests_total{status=\"404\"}"));

    // 900 KiB of content fits; a body over 1 MiB does not.
    let id = http.create_session("tester").await;
    let big = format!("reply {}", "z".repeat(900 * 1024));
    // `wait` makes sure the input is in the log before it is read back.
    let result = http.turn(&id, &big).await;
    assert_eq!(result["result"].as_str().map(str::len), Some(900 * 1024));
    let (_, input) = http
        .get(&format!("/v1/sessions/{id}/events?after=2&limit=1"))
        .await;
    assert_eq!(input["events"][0]["data"]["content"], big.as_str());
    let huge = json!({ "content": "z".repeat(1100 * 1024) });
    let (status, body) = http
        .post(&format!("/v1/sessions/{id}/messages"), huge)
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_request")),
        "{body}"
    );

    // The real binary's metrics after that traffic: every event went through the
    // Socket.IO fan-out (and no SSE stream was open), and the configured store was measured under its kind. The actor
    // answers a `get` only after it dealt with the turn's end (its `idle` is published).
    let (status, session) = http.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(
        (status, &session["session"]["status"]),
        (200, &json!("idle"))
    );
    let (_, metrics) = http.get("/metrics").await;
    let metrics = metrics.as_str().unwrap();
    let value = |series: &str| -> f64 {
        let sample = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '));
        let sample = sample.unwrap_or_else(|| panic!("no {series} in\n{metrics}"));
        sample.parse().unwrap()
    };
    let persisted = value("agent_runtime_event_persist_latency_seconds_count");
    assert!(persisted >= 4.0, "{metrics}");
    assert_eq!(
        value("agent_runtime_event_send_latency_seconds_count{transport=\"socketio\"}"),
        persisted
    );
    assert_eq!(
        value("agent_runtime_sessions{status=\"idle\",profile=\"tester\"}"),
        1.0
    );
    let batch = "{adapter=\"sqlite\",operation=\"append_batch\"}";
    assert!(value(&format!("agent_runtime_store_call_seconds_count{batch}")) >= 1.0);
    assert_eq!(
        value(&format!("agent_runtime_store_errors_total{batch}")),
        0.0
    );
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn shared_secret_guards_rest_but_not_probes() {
    let mut setup = Setup::scripted();
    setup.extra_toml = "[auth]\nmode = \"shared-secret\"\nsecret = \"rest-secret\"\n".into();
    let runtime = Runtime::start(&setup);
    let anonymous = Http::new(&runtime);
    for (status, body) in [
        anonymous.get("/v1/sessions").await,
        Http::new(&runtime)
            .with_token("wrong")
            .get("/v1/sessions")
            .await,
        anonymous
            .post("/v1/sessions", json!({ "agentType": "tester" }))
            .await,
    ] {
        assert_eq!(
            (status, &body["error"]["code"]),
            (401, &json!("unauthorized")),
            "{body}"
        );
    }
    assert_eq!(anonymous.get("/healthz").await.0, 200);
    assert_eq!(anonymous.get("/readyz").await.0, 200);
    let http = Http::new(&runtime).with_token("rest-secret");
    let id = http.create_session("tester").await;
    assert_eq!(http.turn(&id, "reply ok").await["result"], "ok");
    assert_eq!(runtime.terminate(), Some(0));
}

async fn assert_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
}

#[tokio::test]
async fn downloads_stream_and_a_file_over_the_limit_is_refused() {
    let mut setup = Setup::scripted();
    setup.extra_toml = "[limits]\nfile_bytes = \"1MiB\"\n".into();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;
    let script = "sh head -c 1048576 /dev/urandom > fits.bin && head -c 1048577 /dev/zero > over.bin \
                  && sha256sum fits.bin";
    let result = http.turn(&id, script).await;
    let text = result["result"].as_str().unwrap();
    let digest = text.lines().nth(1).unwrap().split(' ').next().unwrap();

    let response = reqwest::get(format!("{}/v1/sessions/{id}/files/fits.bin", runtime.url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("transfer-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("chunked"),
        "the body is streamed, not sent as one buffer"
    );
    let bytes = response.bytes().await.unwrap();
    use sha2::Digest;
    let got = sha2::Sha256::digest(&bytes);
    let got: String = got.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!((bytes.len(), got.as_str()), (1_048_576, digest));

    let (status, body) = http.get(&format!("/v1/sessions/{id}/files/over.bin")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "file_too_large");

    // At stop the oversized file is skipped and reported; the other is stored.
    let (status, _) = http
        .post(&format!("/v1/sessions/{id}/stop"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, events) = http.get(&format!("/v1/sessions/{id}/events")).await;
    let skipped: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "error" && e["data"]["code"] == "file_skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["data"]["path"], "over.bin");
    let (status, _) = http.get(&format!("/v1/sessions/{id}/files/fits.bin")).await;
    assert_eq!(status, 200);
    let (status, _) = http.get(&format!("/v1/sessions/{id}/files/over.bin")).await;
    assert_eq!(status, 404);
    assert_eq!(runtime.terminate(), Some(0));
}
