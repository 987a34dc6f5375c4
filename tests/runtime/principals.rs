//! Admins and per-principal limits, through the manager.

use std::sync::Arc;
use std::time::Duration;

use agent_runtime::auth::Principal;
use agent_runtime::runtime::{CreateSession, MessageContent, QuotaLimits};
use agent_runtime_api::{QuotaOverrides, SessionStatus};
use serde_json::json;

use crate::controlled_store::ControlledStore;
use crate::harness::{Harness, settings};

fn request(owner: Option<&str>) -> CreateSession {
    CreateSession {
        agent_type: "tester".into(),
        owner: owner.map(String::from),
        ..Default::default()
    }
}

fn hello() -> MessageContent {
    MessageContent::new(json!("hello")).unwrap()
}

async fn with_quotas(quotas: QuotaLimits) -> Harness {
    let mut settings = settings();
    settings.quotas = quotas;
    Harness::with_settings(settings).await
}

#[tokio::test]
async fn an_admin_sees_and_acts_on_every_session_and_creates_for_others() {
    let h = Harness::start().await;
    let admin = Principal::admin("ops");
    let alices = h.create().await;
    let for_bob = h
        .manager
        .create(&admin, request(Some("bob")))
        .await
        .unwrap();
    assert_eq!(for_bob.owner, "bob");
    // Bob owns it: he sees it, Alice does not.
    h.manager.get(&h.bob, &for_bob.id).await.unwrap();
    let err = h.manager.get(&h.alice, &for_bob.id).await.unwrap_err();
    assert_eq!(err.code.as_str(), "not_found");

    let all = h.manager.list(&admin, Default::default()).await.unwrap();
    let mut owners: Vec<String> = all.sessions.into_iter().map(|s| s.owner).collect();
    owners.sort();
    assert_eq!(owners, ["alice", "bob"]);
    h.manager.get(&admin, &alices.id).await.unwrap();
    h.manager
        .send_message(&admin, &alices.id, hello(), None)
        .await
        .unwrap();
    let stopped = h.manager.stop(&admin, &alices.id).await.unwrap();
    assert_eq!(stopped.status, SessionStatus::Stopped);
    h.manager.delete(&admin, &for_bob.id).await.unwrap();
    let err = h.manager.get(&h.bob, &for_bob.id).await.unwrap_err();
    assert_eq!(err.code.as_str(), "not_found");
}

#[tokio::test]
async fn only_an_admin_may_name_another_owner() {
    let h = Harness::start().await;
    let err = h
        .manager
        .create(&h.alice, request(Some("bob")))
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "invalid_request");
    assert!(err.message.contains("owner"), "{}", err.message);
    // Naming oneself is fine.
    let own = h
        .manager
        .create(&h.alice, request(Some("alice")))
        .await
        .unwrap();
    assert_eq!(own.owner, "alice");
    let listed = h.manager.list(&h.bob, Default::default()).await.unwrap();
    assert!(listed.sessions.is_empty());
}

#[tokio::test]
async fn live_sessions_are_limited_per_principal() {
    let h = with_quotas(QuotaLimits {
        max_live_sessions: 1,
        ..Default::default()
    })
    .await;
    let first = h.create().await;
    let err = h.try_create().await.unwrap_err();
    assert_eq!(err.code.as_str(), "quota_exceeded");
    assert_eq!(err.retry_after, None);
    // Another principal has its own count.
    h.manager.create(&h.bob, request(None)).await.unwrap();
    // A stopped session is not live: a new one fits, and resuming the old one does not.
    h.manager.stop(&h.alice, &first.id).await.unwrap();
    let second = h.create().await;
    let err = h.manager.resume(&h.alice, &first.id).await.unwrap_err();
    assert_eq!(err.code.as_str(), "quota_exceeded");
    h.manager.delete(&h.alice, &second.id).await.unwrap();
    h.manager.resume(&h.alice, &first.id).await.unwrap();
}

#[tokio::test]
async fn stored_sessions_are_limited_per_principal() {
    let h = with_quotas(QuotaLimits {
        max_stored_sessions: 1,
        ..Default::default()
    })
    .await;
    let first = h.create().await;
    h.manager.stop(&h.alice, &first.id).await.unwrap();
    let err = h.try_create().await.unwrap_err();
    assert_eq!(err.code.as_str(), "quota_exceeded");
    h.manager.delete(&h.alice, &first.id).await.unwrap();
    h.create().await;
}

#[tokio::test]
async fn creates_and_messages_are_rate_limited_with_a_wait() {
    let h = with_quotas(QuotaLimits {
        creates_per_minute: 1,
        messages_per_minute: 2,
        ..Default::default()
    })
    .await;
    let session = h.create().await;
    let err = h.try_create().await.unwrap_err();
    assert_eq!(err.code.as_str(), "rate_limited");
    let wait = err.retry_after.expect("a wait");
    assert!((1..=60).contains(&wait), "{wait}");
    for _ in 0..2 {
        h.manager
            .send_message(&h.alice, &session.id, hello(), None)
            .await
            .unwrap();
    }
    let err = h
        .manager
        .send_message(&h.alice, &session.id, hello(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "rate_limited");
    assert!(err.retry_after.is_some_and(|s| (1..=30).contains(&s)));
    // Bob's bucket is his own.
    h.manager.create(&h.bob, request(None)).await.unwrap();
}

#[tokio::test]
async fn a_principal_s_own_limits_replace_the_defaults() {
    let h = with_quotas(QuotaLimits {
        max_live_sessions: 1,
        ..Default::default()
    })
    .await;
    let roomy = Principal {
        quotas: QuotaOverrides {
            max_live_sessions: Some(0),
            ..Default::default()
        },
        ..Principal::new("roomy")
    };
    for _ in 0..3 {
        h.manager.create(&roomy, request(None)).await.unwrap();
    }
    let tight = Principal {
        quotas: QuotaOverrides {
            creates_per_minute: Some(1),
            ..Default::default()
        },
        ..Principal::new("tight")
    };
    h.manager.create(&tight, request(None)).await.unwrap();
    let err = h.manager.create(&tight, request(None)).await.unwrap_err();
    assert_eq!(err.code.as_str(), "rate_limited");
}

#[tokio::test]
async fn concurrent_creates_cannot_pass_the_stored_limit_together() {
    let store = Arc::new(ControlledStore::default());
    *store.list_delay.lock().unwrap() = Duration::from_millis(100);
    let mut settings = settings();
    settings.quotas.max_stored_sessions = 2;
    let h = Harness::with_store(settings, store).await;
    let results = futures::future::join_all((0..5).map(|_| h.try_create())).await;
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(refused.len(), 3, "{results:?}");
    for err in refused {
        assert_eq!(err.code.as_str(), "quota_exceeded");
    }
    let listed = h.manager.list(&h.alice, Default::default()).await.unwrap();
    assert_eq!(listed.sessions.len(), 2);
}

#[tokio::test]
async fn a_stop_never_reaches_another_principal_s_session_under_the_same_id() {
    let store = Arc::new(ControlledStore::default());
    let h = Harness::with_store(settings(), store.clone()).await;
    let id = "reused-id";
    let with_id = || CreateSession {
        session_id: Some(id.into()),
        ..request(None)
    };
    h.manager.create(&h.alice, with_id()).await.unwrap();
    h.manager.stop(&h.alice, id).await.unwrap();

    // Alice's stop has read that the session is hers, and is held there.
    let (held, release) = store.hold_next_get();
    let stop = tokio::spawn({
        let (manager, alice) = (h.manager.clone(), h.alice.clone());
        async move { manager.stop(&alice, id).await }
    });
    held.await.unwrap();
    // Meanwhile she deletes it (or tries: the stop holds the session), and Bob takes the
    // id for a session of his own.
    let mut delete = tokio::spawn({
        let (manager, alice) = (h.manager.clone(), h.alice.clone());
        async move { manager.delete(&alice, id).await }
    });
    let _ = tokio::time::timeout(Duration::from_millis(500), &mut delete).await;
    let create = tokio::spawn({
        let (manager, bob) = (h.manager.clone(), h.bob.clone());
        async move { manager.create(&bob, with_id()).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.send(()).unwrap();

    let stopped = stop.await.unwrap().unwrap();
    assert_eq!(stopped.owner, "alice");
    delete.await.unwrap().unwrap();
    assert_eq!(create.await.unwrap().unwrap().owner, "bob");
    let bobs = h.manager.get(&h.bob, id).await.unwrap();
    assert_eq!(
        bobs.status,
        SessionStatus::Idle,
        "Alice's stop reached Bob's session"
    );
}
