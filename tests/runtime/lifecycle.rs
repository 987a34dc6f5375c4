use agent_runtime::runtime::CreateSession;
use agent_runtime_api::{BlobKey, BlobStore, EventKind, RelPath, SessionStatus};
use serde_json::json;

use crate::harness::{Harness, assert_gap_free, data, statuses};

#[tokio::test]
async fn create_message_stop_resume_with_history_and_delete() {
    let h = Harness::start().await;
    let session = h.create().await;
    assert_eq!(session.status, SessionStatus::Idle);
    assert_eq!(session.owner, "alice");

    let result = h.turn(&session.id, "reply hello there").await;
    assert_eq!(result["result"], "hello there");
    assert_eq!(result["is_error"], false);
    h.turn(&session.id, "remember the blue door").await;

    let stopped = h.manager.stop(&h.alice, &session.id).await.unwrap();
    assert_eq!(stopped.status, SessionStatus::Stopped);
    let agent_id = stopped.agent_session_id.clone().expect("agent session id");
    let key = RelPath::new(&session.id).unwrap();
    let transcript = h
        .blobs
        .get(&BlobKey::transcript(
            &key,
            &RelPath::new(&format!("{agent_id}.jsonl")).unwrap(),
        ))
        .await
        .unwrap();
    assert!(transcript.is_some(), "the transcript was stored at stop");

    let resumed = h.manager.resume(&h.alice, &session.id).await.unwrap();
    assert_eq!(resumed.status, SessionStatus::Idle);
    assert_eq!(
        resumed.agent_session_id.as_deref(),
        Some(agent_id.as_str()),
        "same conversation"
    );
    let result = h.turn(&session.id, "history").await;
    let history = result["result"].as_str().unwrap();
    assert!(
        history.contains("remember the blue door"),
        "resumed with prior context: {history}"
    );

    let log = h.log(&session.id).await;
    assert_gap_free(&log);
    let statuses = statuses(&log);
    assert_eq!(
        statuses,
        [
            "starting", "idle", "running", "idle", "running", "idle", "stopping", "stopped",
            "starting", "idle", "running", "idle"
        ]
    );
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.usage.turns, 3);
    assert_eq!(record.last_seq, log.last().unwrap().seq);

    h.manager.delete(&h.alice, &session.id).await.unwrap();
    assert!(h.manager.get(&h.alice, &session.id).await.is_err());
    assert!(
        h.blobs
            .list(&BlobKey::session(&key))
            .await
            .unwrap()
            .is_empty(),
        "blobs deleted"
    );
    let err = h
        .manager
        .events(&h.alice, &session.id, 0, 10)
        .await
        .unwrap_err();
    assert_eq!(
        err.code.as_str(),
        "not_found",
        "the log went with the record"
    );
}

#[tokio::test]
async fn a_written_file_becomes_a_file_event_and_survives_stop_and_resume() {
    let h = Harness::start().await;
    let session = h.create().await;
    let mut watch = h.watch();
    let seq = h.say(&session.id, "write notes/plan.md step one").await;
    let file = watch
        .until(&session.id, |e| e.seq > seq && e.kind == EventKind::File)
        .await;
    assert_eq!(
        data(&file),
        json!({ "path": "notes/plan.md", "change": "created", "size": 8 })
    );

    let files = h.manager.files(&h.alice, &session.id).await.unwrap();
    assert!(files.iter().any(|f| f.path == "notes/plan.md"), "{files:?}");
    assert!(
        files.iter().any(|f| f.path == "CLAUDE.md"),
        "profile files are in the workspace"
    );

    h.manager.stop(&h.alice, &session.id).await.unwrap();
    let stored = h.file(&session.id, "notes/plan.md").await;
    assert_eq!(&stored[..], b"step one");
    let claude_md = h.file(&session.id, "CLAUDE.md").await;
    assert_eq!(
        &claude_md[..],
        format!("Session {}\n", session.id).as_bytes(),
        "templates rendered"
    );

    h.manager.resume(&h.alice, &session.id).await.unwrap();
    let live = h.file(&session.id, "notes/plan.md").await;
    assert_eq!(&live[..], b"step one", "restored into the new sandbox");
}

#[tokio::test]
async fn a_message_to_a_stopped_session_resumes_it() {
    let h = Harness::start().await;
    let session = h.create().await;
    h.turn(&session.id, "reply one").await;
    h.manager.stop(&h.alice, &session.id).await.unwrap();
    let result = h.turn(&session.id, "history").await;
    assert!(result["result"].as_str().unwrap().contains("reply one"));
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.status, SessionStatus::Idle);
}

#[tokio::test]
async fn messages_sent_during_a_turn_are_queued_and_run_in_order() {
    let h = Harness::start().await;
    let session = h.create().await;
    let mut watch = h.watch();
    let first = h.say(&session.id, "sleep 300").await;
    h.say(&session.id, "reply second").await;
    h.say(&session.id, "reply third").await;
    let mut results = Vec::new();
    let mut after = first;
    for _ in 0..3 {
        let event = watch
            .until(&session.id, |e| {
                e.seq > after && e.kind == EventKind::Agent && data(e)["type"] == "result"
            })
            .await;
        after = event.seq;
        results.push(data(&event)["result"].as_str().unwrap().to_owned());
    }
    assert_eq!(results, ["slept", "second", "third"]);
    watch.status(&session.id, "idle").await;
    let log = h.log(&session.id).await;
    let statuses = statuses(&log);
    assert_eq!(
        statuses,
        ["starting", "idle", "running", "idle"],
        "running through the queue"
    );
}

#[tokio::test]
async fn interrupt_ends_the_turn_and_keeps_the_agent() {
    let h = Harness::start().await;
    let session = h.create().await;
    let mut watch = h.watch();
    let seq = h.say(&session.id, "sleep 20000").await;
    // The turn has begun once the agent announced it.
    watch
        .until(&session.id, |e| {
            e.seq > seq && e.kind == EventKind::Agent && data(e)["type"] == "system"
        })
        .await;
    h.manager.interrupt(&h.alice, &session.id).await.unwrap();
    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(result["subtype"], "error_during_execution");
    let result = h.turn(&session.id, "reply still here").await;
    assert_eq!(result["result"], "still here");
}

#[tokio::test]
async fn create_with_a_first_message_and_a_proposed_id() {
    let h = Harness::start().await;
    let mut watch = h.watch();
    let request = CreateSession {
        agent_type: "tester".into(),
        metadata: json!({ "topic": "x" }),
        session_id: Some("my-session_1".into()),
        message: Some(agent_runtime::runtime::MessageContent::new(json!("reply first")).unwrap()),
        owner: None,
        budget: None,
    };
    let session = h.manager.create(&h.alice, request).await.unwrap();
    assert_eq!(session.id, "my-session_1");
    assert_eq!(session.metadata, json!({ "topic": "x" }));
    let result = watch.result_after(&session.id, 0).await;
    assert_eq!(result["result"], "first");
}

#[tokio::test]
async fn sessions_belong_to_their_creator() {
    let h = Harness::start().await;
    let session = h.create().await;
    let err = h.manager.get(&h.bob, &session.id).await.unwrap_err();
    assert_eq!(err.code.as_str(), "not_found");
    let content = agent_runtime::runtime::MessageContent::new(json!("hi")).unwrap();
    let err = h
        .manager
        .send_message(&h.bob, &session.id, content, None)
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "not_found");
    for result in [
        h.manager.stop(&h.bob, &session.id).await.map(drop),
        h.manager.resume(&h.bob, &session.id).await.map(drop),
        h.manager.interrupt(&h.bob, &session.id).await.map(drop),
        h.manager.delete(&h.bob, &session.id).await,
        h.manager.events(&h.bob, &session.id, 0, 10).await.map(drop),
        h.manager.files(&h.bob, &session.id).await.map(drop),
    ] {
        assert_eq!(result.unwrap_err().code.as_str(), "not_found");
    }
    let listed = h.manager.list(&h.bob, Default::default()).await.unwrap();
    assert!(listed.sessions.is_empty());
    let listed = h.manager.list(&h.alice, Default::default()).await.unwrap();
    assert_eq!(listed.sessions.len(), 1);
    assert_eq!(
        h.manager.get(&h.alice, &session.id).await.unwrap().status,
        SessionStatus::Idle
    );
}

#[tokio::test]
async fn waiting_for_a_queued_message_gets_its_own_turns_result() {
    let h = Harness::start().await;
    let session = h.create().await;
    h.say(&session.id, "sleep 300").await;
    let content = agent_runtime::runtime::MessageContent::new(json!("reply mine")).unwrap();
    let (_, waiter) = h
        .manager
        .send_message_and_wait(&h.alice, &session.id, content, None)
        .await
        .unwrap();
    let result: serde_json::Value =
        serde_json::from_str(waiter.result().await.unwrap().get()).unwrap();
    assert_eq!(result["result"], "mine", "not the earlier turn's result");
}

#[tokio::test]
async fn a_start_reports_the_time_of_each_phase() {
    let h = Harness::start().await;
    let mut bus = h.manager.bus().subscribe();
    let session = h.create().await;
    let timings = loop {
        match bus.recv().await.unwrap() {
            agent_runtime::runtime::DomainEvent::Started {
                session_id,
                timings,
            } if *session_id == *session.id => {
                break timings;
            }
            _ => {}
        }
    };
    assert!(
        timings.sandbox > std::time::Duration::ZERO && timings.agent > std::time::Duration::ZERO,
        "{timings:?}"
    );
    let names: Vec<_> = timings.phases().iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["prepare", "sandbox", "agent"]);
}

#[tokio::test]
async fn a_message_to_a_stopping_session_waits_for_the_stop_and_resumes_it() {
    let store = std::sync::Arc::new(crate::controlled_store::ControlledStore::default());
    let h = Harness::with_store(crate::harness::settings(), store.clone()).await;
    let session = h.create().await;
    h.turn(&session.id, "reply before").await;

    // The stop is held at its last save: the actor refuses commands and is not gone yet.
    let (held, release) = store.hold_next_update_to(SessionStatus::Stopped);
    let stop = tokio::spawn({
        let (manager, alice, id) = (h.manager.clone(), h.alice.clone(), session.id.clone());
        async move { manager.stop(&alice, &id).await }
    });
    held.await.unwrap();
    let message = tokio::spawn({
        let (manager, alice, id) = (h.manager.clone(), h.alice.clone(), session.id.clone());
        async move {
            let content =
                agent_runtime::runtime::MessageContent::new(json!("reply after")).unwrap();
            manager.send_message(&alice, &id, content, None).await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !message.is_finished(),
        "the message waits for the ending actor"
    );
    release.send(()).unwrap();

    assert_eq!(stop.await.unwrap().unwrap().status, SessionStatus::Stopped);
    let accepted = message
        .await
        .unwrap()
        .expect("the message resumes the session");
    let mut watch = h.watch();
    let result = watch.result_after(&session.id, accepted.seq).await;
    assert_eq!(result["result"], "after");
    let log = h.log(&session.id).await;
    assert_gap_free(&log);
    let statuses = statuses(&log);
    // The stop ended its life; the message began the next one (its turn's closing
    // `idle` may follow the result).
    let stopping = statuses.iter().position(|s| s == "stopping").unwrap();
    assert_eq!(
        statuses[stopping..stopping + 5],
        ["stopping", "stopped", "starting", "idle", "running"],
        "{statuses:?}"
    );
}
