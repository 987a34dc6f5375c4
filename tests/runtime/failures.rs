use std::time::Duration;

use agent_runtime::runtime::{CreateSession, MessageContent};
use agent_runtime_api::{EventKind, SessionStatus};
use serde_json::json;

use crate::harness::{Harness, assert_gap_free, data, settings};

#[tokio::test]
async fn an_agent_crash_fails_the_session_and_it_stays_resumable() {
    let h = Harness::start().await;
    let session = h.create().await;
    h.turn(&session.id, "reply before the crash").await;
    let mut watch = h.watch();
    h.say(&session.id, "crash").await;
    let error = watch.next_of(&session.id, EventKind::Error).await;
    let error = data(&error);
    assert_eq!(error["code"], "agent_crashed");
    assert_eq!(error["fatal"], true);
    watch.status(&session.id, "failed").await;
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.status, SessionStatus::Failed);
    assert_eq!(record.error.unwrap().code, "agent_crashed");

    let resumed = h.manager.resume(&h.alice, &session.id).await.unwrap();
    assert_eq!(resumed.status, SessionStatus::Idle);
    assert_eq!(resumed.error, None);
    let result = h.turn(&session.id, "history").await;
    assert!(
        result["result"]
            .as_str()
            .unwrap()
            .contains("reply before the crash")
    );
    assert_gap_free(&h.log(&session.id).await);
}

#[tokio::test]
async fn a_malformed_agent_line_is_reported_and_the_turn_goes_on() {
    let h = Harness::start().await;
    let session = h.create().await;
    let mut watch = h.watch();
    let seq = h.say(&session.id, "malformed").await;
    let error = watch
        .until(&session.id, |e| e.seq > seq && e.kind == EventKind::Error)
        .await;
    assert_eq!(data(&error)["fatal"], false);
    assert!(
        data(&error)["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON object")
    );
    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(result["is_error"], false);
}

#[tokio::test]
async fn bad_requests_get_their_codes_and_change_nothing() {
    let h = Harness::start().await;
    let create = |agent_type: &str, metadata: serde_json::Value, id: Option<&str>| CreateSession {
        agent_type: agent_type.into(),
        metadata,
        session_id: id.map(String::from),
        message: None,
        owner: None,
        budget: None,
    };
    let cases = [
        (create("nope", json!({}), None), "profile_not_found"),
        (create("", json!({}), None), "invalid_request"),
        (
            create("tester", json!({ "topic": 3 }), None),
            "metadata_invalid",
        ),
        (create("tester", json!([1]), None), "invalid_request"),
        (
            create("tester", json!({}), Some("../etc")),
            "invalid_request",
        ),
        (create("tester", json!({}), Some("")), "invalid_request"),
    ];
    for (request, code) in cases {
        let err = h
            .manager
            .create(&h.alice, request.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code.as_str(), code, "{request:?}: {err}");
    }
    assert!(
        h.manager
            .list(&h.alice, Default::default())
            .await
            .unwrap()
            .sessions
            .is_empty(),
        "no records"
    );

    let session = h.create().await;
    let taken = h
        .manager
        .create(&h.alice, create("tester", json!({}), Some(&session.id)))
        .await
        .unwrap_err();
    assert_eq!(taken.code.as_str(), "invalid_request");
    let err = h.manager.get(&h.alice, "missing").await.unwrap_err();
    assert_eq!(err.code.as_str(), "not_found");
    let err = h
        .manager
        .file(&h.alice, &session.id, "../../etc/passwd")
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "invalid_request");
    let err = h
        .manager
        .file(&h.alice, &session.id, "nothing-here")
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "not_found");
    let err = h
        .manager
        .send_message(
            &h.alice,
            &session.id,
            MessageContent::new(json!("x")).unwrap(),
            Some("bad id!".into()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "invalid_request");
    assert_gap_free(&h.log(&session.id).await);
}

#[tokio::test]
async fn a_missing_agent_command_fails_the_session_with_agent_failed() {
    let mut settings = settings();
    settings.agent.command = "/nonexistent/claude".into();
    let h = Harness::with_settings(settings).await;
    h.assert_create_fails("agent_failed").await;
}

#[tokio::test]
async fn capacity_is_enforced() {
    let mut settings = settings();
    settings.max_sessions = 1;
    let h = Harness::with_settings(settings).await;
    h.create().await;
    let err = h.try_create().await.unwrap_err();
    assert_eq!(err.code.as_str(), "capacity_exceeded");
}

#[tokio::test]
async fn idle_sessions_are_stopped() {
    let mut settings = settings();
    settings.idle_timeout = Duration::from_millis(400);
    let h = Harness::with_settings(settings).await;
    let mut watch = h.watch();
    let session = h.create().await;
    let stopped = watch.status(&session.id, "stopped").await;
    assert_eq!(data(&stopped)["reason"], "idle");
}

#[tokio::test]
async fn shutdown_stops_every_session_with_a_final_sync() {
    let h = Harness::start().await;
    let a = h.create().await;
    let b = h.create().await;
    h.turn(&a.id, "write a.txt from a").await;
    h.manager.shutdown().await;
    for id in [&a.id, &b.id] {
        assert_eq!(
            h.manager.get(&h.alice, id).await.unwrap().status,
            SessionStatus::Stopped
        );
    }
    let stored = h.file(&a.id, "a.txt").await;
    assert_eq!(&stored[..], b"from a");
}

#[tokio::test]
async fn shutdown_waits_for_a_create_under_way_and_leaves_no_sandbox() {
    let h = Harness::start().await;
    let mut watch = h.watch();
    let (manager, alice) = (h.manager.clone(), h.alice.clone());
    let create = tokio::spawn(async move {
        let request = CreateSession {
            agent_type: "tester".into(),
            session_id: Some("made-during-shutdown".into()),
            ..Default::default()
        };
        manager.create(&alice, request).await
    });
    // Its `starting` event is written before the sandbox is made: the create is under way.
    watch.status("made-during-shutdown", "starting").await;
    h.manager.shutdown().await;
    // Shutdown returned only after the create had finished and the session was stopped.
    assert_eq!(h.manager.live_sessions(), 0);
    let record = h
        .manager
        .get(&h.alice, "made-during-shutdown")
        .await
        .unwrap();
    assert_eq!(record.status, SessionStatus::Stopped);
    let created = create.await.unwrap().expect("the create finished");
    assert_eq!(created.id, "made-during-shutdown");
    // One directory per sandbox; `.shared` is the provider's own.
    let left: Vec<_> = std::fs::read_dir(h.sandbox_root())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name != ".shared")
        .collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}

#[tokio::test]
async fn a_failed_turn_is_reported_but_an_interrupted_one_is_not() {
    let h = Harness::start().await;
    let session = h.create().await;
    let result = h.turn(&session.id, "fail overloaded").await;
    assert_eq!(result["is_error"], true);
    let errors: Vec<_> = h
        .log(&session.id)
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(data(&errors[0])["code"], "turn_failed");
    assert!(
        data(&errors[0])["message"]
            .as_str()
            .unwrap()
            .contains("overloaded")
    );

    let mut watch = h.watch();
    let seq = h.say(&session.id, "sleep 20000").await;
    watch
        .until(&session.id, |e| {
            e.seq > seq && e.kind == EventKind::Agent && data(e)["type"] == "system"
        })
        .await;
    h.manager.interrupt(&h.alice, &session.id).await.unwrap();
    watch.result_after(&session.id, seq).await;
    h.manager.get(&h.alice, &session.id).await.unwrap();
    let errors = h
        .log(&session.id)
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Error)
        .count();
    assert_eq!(errors, 1, "no error event for an interrupt");
}

#[tokio::test]
async fn a_sandbox_that_cannot_be_made_gives_sandbox_failed_and_a_failed_record() {
    let h = Harness::start().await;
    // The provider's root turns into a file: no sandbox directory can be made below it.
    std::fs::remove_dir_all(h.sandbox_root()).unwrap();
    std::fs::write(h.sandbox_root(), b"not a directory").unwrap();
    let record = h.assert_create_fails("sandbox_failed").await;
    let log = h.log(&record.id).await;
    assert_gap_free(&log);
    let last = data(log.last().unwrap());
    assert_eq!(
        last,
        json!({ "status": "failed", "reason": "sandbox_failed" })
    );
}

#[tokio::test]
async fn concurrent_creates_cannot_pass_the_session_limit_together() {
    let mut settings = settings();
    settings.max_sessions = 2;
    let h = Harness::with_settings(settings).await;
    let request = || CreateSession {
        agent_type: "tester".into(),
        ..Default::default()
    };
    let results =
        futures::future::join_all((0..5).map(|_| h.manager.create(&h.alice, request()))).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 2, "{results:?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(refused.code.as_str(), "capacity_exceeded");
    }
}
