//! The client's retries, error mapping, auth failures and secrecy of the deploy key.

use std::time::Duration;

use agent_runtime_api::contract::sample_record;
use agent_runtime_api::{AdapterError, ErrorKind};
use agent_runtime_convex::{
    ConvexClient, ConvexConfig, ConvexError, ConvexSessionStore, Secret, build_session_store, codec,
};
use agent_runtime_testkit::fake_convex::FunctionError;
use serde_json::json;

use crate::fake;

const PING: &str = "agentRuntime/health:ping";

fn statuses(fake: &agent_runtime_testkit::fake_convex::FakeConvex, path: &str) -> Vec<u16> {
    fake.calls_to(path).iter().map(|c| c.status).collect()
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let (fake, config) = fake().await;
    let client = ConvexClient::new(&config).unwrap();
    fake.fail_next(2);
    assert_eq!(client.query(PING, json!({})).await.unwrap(), json!(null));
    assert_eq!(statuses(&fake, PING), [503, 503, 200]);
}

#[tokio::test]
async fn retries_a_mutation_that_certainly_did_not_run() {
    let (fake, config) = fake().await;
    let store = build_session_store(&config).unwrap();
    fake.fail_next_with(1, 429);
    store
        .create(&sample_record("s", "alice"))
        .await
        .expect("429 is retried");
    assert_eq!(
        statuses(&fake, &config.functions.sessions_create),
        [429, 200]
    );
    assert_eq!(fake.table("agentRuntimeSessions").len(), 1);
}

#[tokio::test]
async fn does_not_retry_a_mutation_that_may_have_run() {
    let (fake, config) = fake().await;
    let client = ConvexClient::new(&config).unwrap();
    fake.fail_next_with(1, 500);
    let err = client
        .mutation("agentRuntime/blobs:generateUploadUrl", json!({}))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("not retried"), "{err}");
    assert_eq!(fake.calls().len(), 1);

    fake.fail_next_with(1, 500);
    client
        .query(PING, json!({}))
        .await
        .expect("a query is retried after a 500");
}

#[tokio::test]
async fn gives_up_after_max_retries_as_unavailable() {
    let (fake, mut config) = fake().await;
    config.max_retries = 2;
    let store = build_session_store(&config).unwrap();
    fake.fail_next(10);
    let err = store.ping().await.unwrap_err();
    assert!(
        err.kind() == ErrorKind::Unavailable && err.to_string().contains("3 attempt"),
        "{err:?}"
    );
    assert_eq!(statuses(&fake, PING), [503, 503, 503]);
}

#[tokio::test]
async fn function_errors_are_not_retried_and_map_their_codes() {
    let (fake, config) = fake().await;
    let client = ConvexClient::new(&config).unwrap();
    fake.on_query("test:missing", |_, _| {
        Err(FunctionError::code("NOT_FOUND", "no such thing"))
    });
    fake.on_query("test:plain", |_, _| Err(FunctionError::message("boom")));
    let err = client.query("test:missing", json!({})).await.unwrap_err();
    assert_eq!(err.code(), Some("NOT_FOUND"));
    assert_eq!(
        fake.calls_to("test:missing").len(),
        1,
        "a function error is final"
    );
    let err = AdapterError::from(err);
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.message(), "no such thing");

    let err = client.query("test:plain", json!({})).await.unwrap_err();
    assert!(
        matches!(&err, ConvexError::Function { message, data: None, .. } if message.contains("boom"))
    );
    assert_eq!(AdapterError::from(err).kind(), ErrorKind::Other);

    fake.fail_next_with(1, 560);
    let err = client.query(PING, json!({})).await.unwrap_err();
    assert!(
        matches!(err, ConvexError::Function { .. }),
        "560 is a function error: {err:?}"
    );
    assert_eq!(statuses(&fake, PING), [560]);
}

#[tokio::test]
async fn a_bad_key_is_a_clear_auth_error_and_not_retried() {
    let (fake, mut config) = fake().await;
    config.deploy_key = Secret::new("prod:fake-convex|wrong-secret-value");
    let client = ConvexClient::new(&config).unwrap();
    let err = client.query(PING, json!({})).await.unwrap_err();
    assert!(
        matches!(err, ConvexError::Auth { status: 401, .. }),
        "{err:?}"
    );
    let text = AdapterError::from(err).to_string();
    assert!(text.contains("deploy key"), "{text}");
    assert!(!text.contains("wrong-secret-value"), "{text}");
    assert_eq!(statuses(&fake, PING), [401]);
}

#[tokio::test]
async fn the_deploy_key_never_shows() {
    let (fake, config) = fake().await;
    let key = fake.deploy_key().to_owned();
    let secret = key.rsplit_once('|').unwrap().1.to_owned();
    let client = ConvexClient::new(&config).unwrap();
    let store = ConvexSessionStore::new(client.clone(), config.functions.clone());
    for shown in [
        format!("{config:?}"),
        format!("{client:?}"),
        format!("{store:?}"),
    ] {
        assert!(!shown.contains(&secret), "{shown}");
    }

    let echoed = key.clone();
    fake.on_query("test:echo-key", move |_, _| {
        Err(FunctionError::message(format!("got {echoed}")))
    });
    let err = client.query("test:echo-key", json!({})).await.unwrap_err();
    assert!(
        !err.to_string().contains(&secret),
        "scrubbed from function errors: {err}"
    );
    assert!(!format!("{err:?}").contains(&secret), "{err:?}");

    let mut closed = config.clone();
    closed.url = "http://127.0.0.1:1".into();
    closed.max_retries = 1;
    let err = ConvexClient::new(&closed)
        .unwrap()
        .query(PING, json!({}))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(&secret), "{err}");
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let (fake, mut config) = fake().await;
    config.timeout = Duration::from_millis(100);
    config.max_retries = 1;
    let client = ConvexClient::new(&config).unwrap();
    fake.set_delay(Duration::from_millis(400));
    let err = client.query(PING, json!({})).await.unwrap_err();
    assert!(
        matches!(&err, ConvexError::Unavailable { attempts: 2, .. }),
        "{err:?}"
    );
    let err = client
        .mutation("agentRuntime/blobs:generateUploadUrl", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConvexError::Unavailable { attempts: 1, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn values_are_encoded_and_decoded() {
    let (fake, config) = fake().await;
    let client = ConvexClient::new(&config).unwrap();
    fake.on_action("test:echo", |_, args| {
        Ok(json!({"seen": args, "raw": {"$integer": "AQAAAAAAAAA="}, "bytes": {"$bytes": "ABCD"}}))
    });
    let args = json!({"n": 1.5, "big": codec::int64(1 << 60), "b": codec::bytes(&[0, 0x10, 0x83])});
    let value = client.action("test:echo", args).await.unwrap();
    assert_eq!(
        value["seen"],
        json!({"n": 1.5, "big": 1_i64 << 60, "b": "ABCD"})
    );
    assert_eq!(value["raw"], 1, "an int64 result becomes a JSON integer");
    assert_eq!(value["bytes"], "ABCD", "bytes become base64 text");

    let err = client
        .action("test:echo", json!({"n": u64::MAX}))
        .await
        .unwrap_err();
    assert!(matches!(err, ConvexError::InvalidArgs(_)), "{err:?}");
    let err = client.action("test:echo", json!([1])).await.unwrap_err();
    assert!(matches!(err, ConvexError::InvalidArgs(_)), "{err:?}");
    assert_eq!(
        fake.calls_to("test:echo").len(),
        1,
        "refused arguments are not sent"
    );
}

#[tokio::test]
async fn function_names_are_configurable() {
    let (fake, mut config) = fake().await;
    config.functions.sessions_get = "custom/store:fetch".into();
    fake.on_query("custom/store:fetch", |_, args| {
        assert_eq!(args, json!({"sessionId": "x"}));
        Ok(json!(null))
    });
    let store = build_session_store(&config).unwrap();
    assert_eq!(store.get("x").await.unwrap(), None);
    assert_eq!(fake.calls_to("custom/store:fetch").len(), 1);
}

#[test]
fn refuses_unsafe_urls() {
    let key = || Secret::new("prod:x|y");
    for bad in [
        "http://example.com",
        "ftp://example.com",
        "not a url",
        "https://x.cloud/?a=1",
    ] {
        let err = ConvexClient::new(&ConvexConfig::new(bad, key())).unwrap_err();
        assert!(matches!(err, ConvexError::Config(_)), "{bad}: {err:?}");
    }
    let mut config = ConvexConfig::new("http://convex.internal:3210", key());
    config.allow_http = true;
    assert!(ConvexClient::new(&config).is_ok(), "allow_http opts in");
    let client = ConvexClient::new(&ConvexConfig::new("http://localhost:3210/", key())).unwrap();
    assert_eq!(client.url(), "http://localhost:3210");
    let empty = ConvexClient::new(&ConvexConfig::new(
        "https://x.convex.cloud",
        Secret::new(" "),
    ));
    assert!(matches!(empty, Err(ConvexError::Config(_))));
}
