//! Forks: a new session of the source's owner with a copy of its files and its
//! conversation, from a live (idle) or a stopped source; the source is left as it was.

use agent_runtime_api::{BlobKey, BlobStore, EventKind, RelPath, SessionRecord, SessionStatus};
use serde_json::Value;

use crate::harness::{Harness, assert_gap_free, statuses};

/// What a fork must not change of its source: its log, record, stored files and
/// transcripts.
struct Untouched {
    log: Vec<agent_runtime_api::Event>,
    record: SessionRecord,
    blobs: Vec<(String, Vec<u8>)>,
}

impl Untouched {
    async fn of(h: &Harness, id: &str) -> Self {
        Untouched {
            log: h.log(id).await,
            record: h.manager.get(&h.alice, id).await.unwrap(),
            blobs: stored(h, id).await,
        }
    }

    async fn check(&self, h: &Harness, id: &str) {
        let log = h.log(id).await;
        assert_eq!(log.len(), self.log.len(), "the source's log did not grow");
        for (a, b) in log.iter().zip(&self.log) {
            assert_eq!((a.seq, a.kind, a.data.get()), (b.seq, b.kind, b.data.get()));
        }
        let record = h.manager.get(&h.alice, id).await.unwrap();
        assert_eq!(record, self.record, "the source's record is as it was");
        assert_eq!(stored(h, id).await, self.blobs, "the source's stored files");
    }
}

/// Every blob stored for a session, by key relative to the session.
async fn stored(h: &Harness, id: &str) -> Vec<(String, Vec<u8>)> {
    let prefix = BlobKey::session(&RelPath::new(id).unwrap());
    let mut blobs = Vec::new();
    for meta in h.blobs.list(&prefix).await.unwrap() {
        let bytes = h.blobs.get(&meta.key).await.unwrap().unwrap();
        let name = meta.key.strip_prefix(&prefix).unwrap().to_owned();
        blobs.push((name, bytes.to_vec()));
    }
    blobs.sort();
    blobs
}

/// Checks what every fork is: the source's owner, profile and metadata, its origin,
/// a log of its own from seq 1, and the source's conversation and files.
async fn check_fork(h: &Harness, source: &SessionRecord, fork: &SessionRecord, seq: u64) {
    assert_ne!(fork.id, source.id);
    assert_eq!(fork.status, SessionStatus::Idle);
    assert_eq!(fork.owner, source.owner);
    assert_eq!(fork.agent_type, source.agent_type);
    assert_eq!(fork.metadata, source.metadata);
    let from = fork.forked_from.as_ref().expect("forked_from");
    assert_eq!(
        (from.session_id.as_str(), from.seq),
        (source.id.as_str(), seq)
    );
    assert_eq!(
        from.agent_session_id, source.agent_session_id,
        "continues the source's conversation"
    );
    let (own, theirs) = (
        fork.agent_session_id.as_deref(),
        source.agent_session_id.as_deref(),
    );
    assert!(
        own.is_some() && own != theirs,
        "a conversation id of its own"
    );
    assert_eq!(fork.usage, Default::default(), "no turn of its own yet");

    let log = h.log(&fork.id).await;
    assert_eq!(log[0].seq, 1, "the fork's log starts at 1");
    assert_gap_free(&log);
    assert_eq!(statuses(&log), ["starting", "idle"]);

    assert_eq!(h.file(&fork.id, "notes/a.txt").await, b"from the source");
    let result = h.turn(&fork.id, "history").await;
    let history = result["result"].as_str().unwrap();
    assert!(
        history.contains("remember the blue door"),
        "the fork's agent has the source's conversation: {history}"
    );
    let got = h.manager.get(&h.alice, &fork.id).await.unwrap();
    assert_eq!(got.agent_session_id, fork.agent_session_id);
    assert_eq!(
        got.usage.turns, 1,
        "the fork's turn counted in its own usage"
    );
}

/// A source with a file and a conversation, idle.
async fn source(h: &Harness) -> SessionRecord {
    let source = h.create().await;
    h.turn(&source.id, "write notes/a.txt from the source")
        .await;
    h.turn(&source.id, "remember the blue door").await;
    h.manager.get(&h.alice, &source.id).await.unwrap()
}

#[tokio::test]
async fn a_live_idle_session_forks_and_stays_as_it_was() {
    let h = Harness::start().await;
    let source = source(&h).await;
    let before = Untouched::of(&h, &source.id).await;

    let fork = h.manager.fork(&h.alice, &source.id, None).await.unwrap();
    check_fork(&h, &source, &fork, before.log.last().unwrap().seq).await;
    before.check(&h, &source.id).await;

    // The two go their own ways.
    h.turn(&source.id, "reply only the source").await;
    let result = h.turn(&fork.id, "history").await;
    assert!(
        !result["result"]
            .as_str()
            .unwrap()
            .contains("only the source")
    );

    // A fork of the fork, stopped before it spoke, continues the same conversation.
    let second = h.manager.fork(&h.alice, &fork.id, None).await.unwrap();
    h.manager.stop(&h.alice, &second.id).await.unwrap();
    let again = h.manager.fork(&h.alice, &second.id, None).await.unwrap();
    let result = h.turn(&again.id, "history").await;
    assert!(
        result["result"]
            .as_str()
            .unwrap()
            .contains("remember the blue door"),
        "{result}"
    );
}

#[tokio::test]
async fn a_stopped_session_forks_from_storage_and_stays_stopped() {
    let h = Harness::start().await;
    let source = source(&h).await;
    let stopped = h.manager.stop(&h.alice, &source.id).await.unwrap();
    let before = Untouched::of(&h, &source.id).await;
    assert!(
        before
            .blobs
            .iter()
            .any(|(name, _)| name.ends_with(".jsonl")),
        "the transcript is stored: {:?}",
        before.blobs.iter().map(|b| &b.0).collect::<Vec<_>>()
    );

    let fork = h.manager.fork(&h.alice, &source.id, None).await.unwrap();
    check_fork(&h, &stopped, &fork, before.log.last().unwrap().seq).await;
    before.check(&h, &source.id).await;
    assert_eq!(
        h.manager.get(&h.alice, &source.id).await.unwrap().status,
        SessionStatus::Stopped
    );

    // Stopped and resumed after its own turns, the fork keeps its own conversation.
    h.turn(&fork.id, "remember the green gate").await;
    h.manager.stop(&h.alice, &fork.id).await.unwrap();
    h.manager.resume(&h.alice, &fork.id).await.unwrap();
    let result = h.turn(&fork.id, "history").await;
    let history = result["result"].as_str().unwrap();
    assert!(
        history.contains("blue door") && history.contains("green gate"),
        "{history}"
    );
}

#[tokio::test]
async fn a_fork_of_a_session_without_a_conversation_starts_a_new_one() {
    let h = Harness::start().await;
    let source = h.create().await;
    let fork = h.manager.fork(&h.alice, &source.id, None).await.unwrap();
    assert_eq!(fork.status, SessionStatus::Idle);
    let from = fork.forked_from.clone().unwrap();
    assert_eq!((from.seq, from.agent_session_id), (2, None));
    let result = h.turn(&fork.id, "reply fresh").await;
    assert_eq!(result["result"], "fresh");
}

#[tokio::test]
async fn a_session_mid_turn_is_not_forked() {
    let h = Harness::start().await;
    let source = h.create().await;
    let mut watch = h.watch();
    h.say(&source.id, "sleep 60000").await;
    watch.status(&source.id, "running").await;
    // The agent began the turn (its `system/init`): the interrupt below ends it.
    watch.next_of(&source.id, EventKind::Agent).await;
    let err = h
        .manager
        .fork(&h.alice, &source.id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "session_busy", "{err}");
    h.manager.interrupt(&h.alice, &source.id).await.unwrap();
    watch.status(&source.id, "idle").await;
    let listed = h.manager.list(&h.alice, Default::default()).await.unwrap();
    assert_eq!(listed.sessions.len(), 1, "no fork was stored");
    h.manager.fork(&h.alice, &source.id, None).await.unwrap();

    // A turn that waits for a person's answer is running too.
    let asking = h.create_asking().await;
    h.say(
        &asking.id,
        r#"ask Write {"file_path":"x.txt","content":"y"}"#,
    )
    .await;
    watch.status(&asking.id, "waiting").await;
    let err = h
        .manager
        .fork(&h.alice, &asking.id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "session_busy", "{err}");
}

#[tokio::test]
async fn forks_of_unknown_or_foreign_sessions_are_not_found() {
    let h = Harness::start().await;
    let source = source(&h).await;
    for (principal, id) in [(&h.bob, source.id.as_str()), (&h.alice, "no-such-session")] {
        let err = h.manager.fork(principal, id, None).await.unwrap_err();
        assert_eq!(err.code.as_str(), "not_found", "{err}");
        let missing = h.manager.get(principal, id).await.unwrap_err();
        assert_eq!(err.message, missing.message, "as for any other request");
    }
    let err = h.manager.fork(&h.alice, "../x", None).await.unwrap_err();
    assert_eq!(err.code.as_str(), "invalid_request", "{err}");
    let bobs = h.manager.list(&h.bob, Default::default()).await.unwrap();
    assert!(bobs.sessions.is_empty());

    // An admin forks anyone's session, for its owner.
    let admin = agent_runtime::auth::Principal {
        admin: true,
        ..agent_runtime::auth::Principal::new("ops")
    };
    let fork = h.manager.fork(&admin, &source.id, None).await.unwrap();
    assert_eq!(fork.owner, "alice");
    let value: Value = h.turn(&fork.id, "history").await;
    assert!(value["result"].as_str().unwrap().contains("blue door"));
}

fn quotas(max_live: u32, max_stored: u32) -> agent_runtime::runtime::QuotaLimits {
    agent_runtime::runtime::QuotaLimits {
        max_live_sessions: max_live,
        max_stored_sessions: max_stored,
        creates_per_minute: 0,
        messages_per_minute: 0,
    }
}

#[tokio::test]
async fn a_fork_is_held_to_the_owners_quotas_and_leaves_nothing_when_refused() {
    // One stored session at most: the fork would be the second.
    let mut settings = crate::harness::settings();
    settings.quotas = quotas(0, 1);
    let h = Harness::with_settings(settings).await;
    let first = source(&h).await;
    let before = stored(&h, &first.id).await;
    let err = h.manager.fork(&h.alice, &first.id, None).await.unwrap_err();
    assert_eq!(err.code.as_str(), "quota_exceeded", "{err}");
    let everything = h
        .blobs
        .list(&BlobKey::parse("sessions/").unwrap())
        .await
        .unwrap();
    assert!(
        everything.iter().all(|meta| meta
            .key
            .as_str()
            .starts_with(&format!("sessions/{}/", first.id))),
        "the refused fork's copies are gone: {:?}",
        everything
            .iter()
            .map(|m| m.key.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(stored(&h, &first.id).await, before);
    let listed = h.manager.list(&h.alice, Default::default()).await.unwrap();
    assert_eq!(listed.sessions.len(), 1);

    // One live session at most: the source is live, so its fork may not start.
    let mut settings = crate::harness::settings();
    settings.quotas = quotas(1, 0);
    let h = Harness::with_settings(settings).await;
    let first = source(&h).await;
    let err = h.manager.fork(&h.alice, &first.id, None).await.unwrap_err();
    assert_eq!(err.code.as_str(), "quota_exceeded", "{err}");
    // Stopped, it may.
    h.manager.stop(&h.alice, &first.id).await.unwrap();
    h.manager.fork(&h.alice, &first.id, None).await.unwrap();
}

#[tokio::test]
async fn a_fork_gets_the_profiles_budget_and_a_usage_of_its_own() {
    let h = Harness::start().await;
    let source = h
        .manager
        .create(
            &h.alice,
            agent_runtime::runtime::CreateSession {
                agent_type: "budgeted".into(),
                budget: Some(agent_runtime_api::Budget {
                    max_turns: Some(1),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.turn(&source.id, "remember the blue door").await;
    let spent = h.manager.get(&h.alice, &source.id).await.unwrap();
    assert_eq!(spent.usage.turns, 1);
    let fork = h.manager.fork(&h.alice, &source.id, None).await.unwrap();
    assert_eq!(
        fork.budget.max_turns,
        Some(2),
        "the profile's, not the source's"
    );
    assert_eq!(fork.usage, Default::default());
    let result = h.turn(&fork.id, "history").await;
    assert!(result["result"].as_str().unwrap().contains("blue door"));
}

#[tokio::test]
async fn a_live_session_whose_transcript_is_over_the_limit_is_refused_at_once() {
    let mut settings = crate::harness::settings();
    settings.limits.workspace_bytes = 4 * 1024;
    let h = Harness::with_settings(settings).await;
    let source = h.create().await;
    let long = "x".repeat(8 * 1024);
    h.turn(&source.id, &format!("reply {long}")).await;
    let before = Untouched::of(&h, &source.id).await;

    let started = std::time::Instant::now();
    let err = h
        .manager
        .fork(&h.alice, &source.id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "file_too_large", "{err}");
    assert!(err.message.contains("transcript"), "{err}");
    // Not after the wait for the transcript's last message: a larger file will not fit.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    before.check(&h, &source.id).await;
    let listed = h.manager.list(&h.alice, Default::default()).await.unwrap();
    assert_eq!(listed.sessions.len(), 1, "no fork was stored");
}
