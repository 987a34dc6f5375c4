//! Storage that goes away for a while: the runtime stays up, sessions stay alive, the
//! outage is reported, and when storage returns everything lands.

use std::net::SocketAddr;
use std::time::Duration;

use agent_runtime_testkit::proxy::Proxy;
use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup};

/// The S3 API the tests use (moto), or `None` with a message. Under CI it must be there.
pub(crate) fn s3_endpoint() -> Option<String> {
    match std::env::var("AGENT_RUNTIME_TEST_S3_ENDPOINT") {
        Ok(endpoint) => Some(endpoint),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "AGENT_RUNTIME_TEST_S3_ENDPOINT is not set"
            );
            eprintln!(
                "SKIPPED: set AGENT_RUNTIME_TEST_S3_ENDPOINT to an S3 API (scripts/test starts moto)"
            );
            None
        }
    }
}

fn address_of(url: &str) -> SocketAddr {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    host.parse()
        .unwrap_or_else(|_| panic!("{url} is not http://IP:PORT"))
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn ready(http: &Http) -> (u16, Value) {
    http.get("/readyz").await
}

/// A fresh bucket on the test S3 API, reached through a proxy the test can cut, and the
/// `[storage]` section for it; `None` (with a message) when no S3 API is configured.
async fn s3_behind_proxy(label: &str) -> Option<(Proxy, String)> {
    let endpoint = s3_endpoint()?;
    let bucket = format!("{label}-{}", std::process::id());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "bucket: {}",
        created.status()
    );
    let proxy = Proxy::start(address_of(&endpoint)).await;
    let storage = format!(
        "kind = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"http://{}\"\nregion = \"us-east-1\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\nallow_http = true\npath_style = true",
        proxy.addr()
    );
    Some((proxy, storage))
}

async fn log(http: &Http, id: &str) -> Vec<Value> {
    let (_, page) = http
        .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
        .await;
    page["events"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blob_store_going_away_is_reported_and_files_land_when_it_returns() {
    let Some((proxy, storage_toml)) = s3_behind_proxy("outage").await else {
        return;
    };
    let mut setup = Setup::scripted();
    setup.storage_toml = storage_toml;
    setup.extra_toml = "[sessions]\nsync_interval = \"1s\"\n".into();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;

    proxy.cut();
    let (status, reply) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "write during.txt written in the outage", "wait": true }),
        )
        .await;
    assert_eq!(
        status, 200,
        "the session works on while storage is away: {reply}"
    );
    wait_until("a sync_failed event", async || {
        log(&http, &id)
            .await
            .iter()
            .any(|e| e["type"] == "error" && e["data"]["code"] == "sync_failed")
    })
    .await;
    let (status, body) = ready(&http).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failed"][0]["adapter"], "storage", "{body}");

    proxy.restore();
    wait_until("readiness", async || ready(&http).await.0 == 200).await;
    let (status, stopped) = http
        .post(&format!("/v1/sessions/{id}/stop"), json!({}))
        .await;
    assert_eq!(status, 200, "{stopped}");
    let (status, file) = http
        .get(&format!("/v1/sessions/{id}/files/during.txt"))
        .await;
    assert_eq!(
        (status, file),
        (200, Value::String("written in the outage".into())),
        "the file landed"
    );
    let errors: Vec<_> = log(&http, &id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "one report per outage: {errors:?}");
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_while_shutdown_waits_for_storage() {
    let Some((proxy, storage_toml)) = s3_behind_proxy("signal").await else {
        return;
    };
    let mut setup = Setup::scripted();
    setup.storage_toml = storage_toml;
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let (status, _) = http
        .post("/v1/sessions", json!({ "agentType": "tester" }))
        .await;
    assert_eq!(status, 201);
    // The final sync now waits for storage to come back; a second signal must not.
    proxy.cut();
    let started = std::time::Instant::now();
    let code = runtime.terminate_twice(Duration::from_millis(700));
    assert_eq!(code, Some(130), "exit at once on the second signal");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A fresh database on the test PostgreSQL server, named after `label` and this
/// process, or `None` with a message.
pub(crate) fn postgres_database(label: &str) -> Option<(SocketAddr, String)> {
    let url = std::env::var("AGENT_RUNTIME_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("ar_{label}_{}", std::process::id());
    let created = std::process::Command::new("psql")
        .args([
            url.as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name}"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status();
    match created {
        Ok(status) if status.success() => Some(("127.0.0.1:5432".parse().unwrap(), name)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL at {url} is not reachable"
            );
            eprintln!("SKIPPED: PostgreSQL at {url} is not reachable");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_store_going_away_holds_events_and_applies_them_when_it_returns() {
    let Some((postgres, database)) = postgres_database("outage") else {
        return;
    };
    let proxy = Proxy::start(postgres).await;
    let mut setup = Setup::scripted();
    setup.store_toml = format!(
        "kind = \"postgres\"\nurl = \"postgres://postgres@{}/{database}\"\nacquire_timeout = \"1s\"",
        proxy.addr()
    );
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let id = http.create_session("tester").await;

    proxy.cut();
    let (status, sent) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "emit 50" }),
        )
        .await;
    assert_eq!(
        status, 202,
        "a message is accepted while the store is away: {sent}"
    );
    wait_until("an unready runtime", async || {
        let (status, body) = ready(&http).await;
        status == 503 && body["failed"][0]["adapter"] == "store"
    })
    .await;
    // A request that needs the store gets a clear, retryable error, not a hang or a 500.
    let (status, body) = http.get("/v1/sessions").await;
    assert_eq!(status, 503, "{body}\n{}", runtime.log());
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");

    proxy.restore();
    wait_until("readiness", async || ready(&http).await.0 == 200).await;
    wait_until("the turn's events", async || {
        log(&http, &id)
            .await
            .iter()
            .any(|e| e["data"]["type"] == "result")
    })
    .await;
    let events = log(&http, &id).await;
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], index as u64 + 1, "no gap: {events:?}");
    }
    let chunks = events
        .iter()
        .filter(|e| e["data"]["type"] == "assistant")
        .count();
    assert_eq!(chunks, 50, "every line the agent printed landed");
    assert_eq!(runtime.terminate(), Some(0));
    drop(proxy);
    let _ = std::process::Command::new("psql")
        .args([
            "postgres://postgres@127.0.0.1:5432/postgres",
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        ])
        .status();
}
