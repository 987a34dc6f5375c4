//! A session store that goes away: requests answer `storage_unavailable` in bounded time,
//! the runtime's own work waits for the store, and once it is back every event lands,
//! gap-free, and none was published before it was persisted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_runtime::error::RuntimeError;
use agent_runtime::runtime::{CreateSession, MessageContent};
use agent_runtime_api::{EventKind, SessionStatus};
use serde_json::json;

use crate::controlled_store::ControlledStore;
use crate::harness::{Harness, assert_gap_free, data, settings};

/// How long requests wait for the store in this test.
const PATIENCE: Duration = Duration::from_millis(600);
/// What a request may take beyond the patience: its own store call and scheduling.
const SLACK: Duration = Duration::from_millis(1500);

/// Runs a request and asserts it answers `storage_unavailable` within the bound.
async fn unavailable<T: std::fmt::Debug>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, RuntimeError>>,
) {
    let started = Instant::now();
    let answer = tokio::time::timeout(PATIENCE + SLACK, request)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {:?}", PATIENCE + SLACK));
    let error = answer.expect_err(what);
    assert_eq!(
        error.code.as_str(),
        "storage_unavailable",
        "{what}: {error}"
    );
    assert!(started.elapsed() <= PATIENCE + SLACK, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_answer_storage_unavailable_in_time_and_nothing_is_lost_or_published_early() {
    let store = Arc::new(ControlledStore::default());
    let mut settings = settings();
    settings.store_patience = PATIENCE;
    let h = Harness::with_store(settings, store.clone()).await;
    let session = h.create().await;
    h.turn(&session.id, "reply before the outage").await;
    let before = h.manager.get(&h.alice, &session.id).await.unwrap().last_seq;
    let mut bus = h.watch();
    let mut watch = h.watch();

    store.set_down(true);
    // Taking a message needs no store: its `input` event waits in the writer's queue.
    let message = MessageContent::new(json!("emit 30")).unwrap();
    let (accepted, waiter) = h
        .manager
        .send_message_and_wait(&h.alice, &session.id, message, None)
        .await
        .expect("a message is accepted during the outage");
    assert_eq!(accepted.seq, before + 1);
    // The turn runs, but its events cannot be persisted, so its result cannot be given.
    unavailable("waiting for the turn", waiter.result()).await;
    unavailable("get", h.manager.get(&h.alice, &session.id)).await;
    unavailable("list", h.manager.list(&h.alice, Default::default())).await;
    unavailable("events", h.manager.events(&h.alice, &session.id, 0, 100)).await;
    unavailable("resume", h.manager.resume(&h.alice, &session.id)).await;
    let another = MessageContent::new(json!("reply queued in the outage")).unwrap();
    unavailable(
        "a message to a session waiting for the store",
        h.manager.send_message(&h.alice, &session.id, another, None),
    )
    .await;
    let create = CreateSession {
        agent_type: "tester".into(),
        ..Default::default()
    };
    unavailable("create", h.manager.create(&h.alice, create)).await;
    // The stop goes on in the background and ends the session once the store is back.
    unavailable("stop", h.manager.stop(&h.alice, &session.id)).await;
    assert_eq!(
        bus.published(&session.id),
        Vec::<u64>::new(),
        "nothing is published that is not persisted"
    );

    store.set_down(false);
    let stopped = watch.status(&session.id, "stopped").await;
    // Whoever hears `stopped` reads a record that says so; its `lastSeq` may still be one
    // behind for the moment of the last save.
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.status, SessionStatus::Stopped);
    assert!(record.last_seq + 1 >= stopped.seq, "{record:?}");
    let log = h.log(&session.id).await;
    assert_gap_free(&log);
    assert_eq!(
        log.last().unwrap().seq,
        stopped.seq,
        "`stopped` is the last event"
    );
    let saved = async {
        while h.manager.get(&h.alice, &session.id).await.unwrap().last_seq != stopped.seq {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), saved)
        .await
        .expect("the record's lastSeq reaches the log's end");
    let chunks = log
        .iter()
        .filter(|e| e.kind == EventKind::Agent && data(e)["type"] == "assistant")
        .filter(|e| data(e)["message"]["content"][0]["text"] == "chunk 30")
        .count();
    assert_eq!(chunks, 1, "the turn's lines landed");
    let inputs = log.iter().filter(|e| e.kind == EventKind::Input).count();
    assert_eq!(
        inputs, 3,
        "the message sent while the actor waited was taken too"
    );
    let after: Vec<u64> = log.iter().map(|e| e.seq).filter(|s| *s > before).collect();
    assert_eq!(
        bus.published(&session.id),
        after,
        "every event of the outage is published once persisted, in order"
    );
}
