use chrono::{TimeZone, Utc};
use serde_json::json;
use serde_json::value::RawValue;

use super::unique_prefix;
use crate::{
    AdapterError, ApiKeyRecord, Budget, Event, EventKind, ForkedFrom, QuotaOverrides,
    SessionEvents, SessionFilter, SessionRecord, SessionStatus, SessionStore, Usage,
};

/// A record as the runtime would create it.
pub fn sample_record(id: &str, owner: &str) -> SessionRecord {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    SessionRecord {
        id: id.to_owned(),
        owner: owner.to_owned(),
        agent_type: "assistant".to_owned(),
        status: SessionStatus::Starting,
        metadata: json!({ "topic": "contract", "nested": { "n": 1 } }),
        created_at: at,
        updated_at: at,
        last_activity_at: at,
        last_seq: 0,
        agent_session_id: None,
        usage: Usage::default(),
        budget: Budget {
            max_cost_usd: Some(1.5),
            max_tokens: None,
            max_turns: Some(10),
        },
        forked_from: None,
        error: None,
        version: 1,
    }
}

/// An agent event with the given seq.
pub fn sample_event(seq: u64) -> Event {
    Event {
        seq,
        at: Utc
            .timestamp_millis_opt(1_700_000_000_000 + seq as i64)
            .unwrap(),
        kind: EventKind::Agent,
        data: RawValue::from_string(format!(r#"{{"type":"assistant","n":{seq},"text":"é\n"}}"#))
            .unwrap(),
    }
}

/// Runs every behaviour of [`SessionStore`] against `store`.
pub async fn session_store(store: &dyn SessionStore) {
    let p = unique_prefix("ss");
    create_get_and_conflict(store, &p).await;
    update_is_optimistic(store, &p).await;
    forked_from_round_trips(store, &p).await;
    every_status_and_kind(store, &p).await;
    list_filters_and_pages(store, &p).await;
    events_append_and_read(store, &p).await;
    batch_append_isolates_sessions(store, &p).await;
    batch_append_of_many_sessions(store, &p).await;
    delete_cascades(store, &p).await;
    api_keys(store, &p).await;
    store.ping().await.expect("ping succeeds");
}

/// An API key record as `keys create` would store it.
pub fn sample_key(name: &str, key_hash: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        name: name.to_owned(),
        key_hash: key_hash.to_owned(),
        admin: false,
        quotas: QuotaOverrides::default(),
        created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

async fn api_keys(store: &dyn SessionStore, p: &str) {
    // Hashes are hex of the prefix, so runs sharing a database never collide.
    let hash = |label: &str| {
        let text: String = format!("{p}-{label}")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        text
    };
    let alice = sample_key(&format!("{p}-alice"), &hash("alice"));
    let mut bob = sample_key(&format!("{p}-bob"), &hash("bob"));
    bob.admin = true;
    bob.quotas = QuotaOverrides {
        max_live_sessions: Some(5),
        max_stored_sessions: Some(0),
        creates_per_minute: None,
        messages_per_minute: Some(120),
    };
    assert_eq!(
        store.key_by_hash(&alice.key_hash).await.unwrap(),
        None,
        "key_by_hash of a missing hash is None"
    );
    store.create_key(&bob).await.expect("create_key");
    store.create_key(&alice).await.expect("create_key");
    assert_eq!(
        store.key_by_hash(&bob.key_hash).await.unwrap().as_ref(),
        Some(&bob),
        "key_by_hash returns what create_key stored, quotas and admin included"
    );

    let same_name = sample_key(&alice.name, &hash("other"));
    let err = store
        .create_key(&same_name)
        .await
        .expect_err("a name that exists fails");
    assert!(
        matches!(err, AdapterError::Conflict(_)),
        "conflict, got {err:?}"
    );
    let same_hash = sample_key(&format!("{p}-carol"), &alice.key_hash);
    let err = store
        .create_key(&same_hash)
        .await
        .expect_err("a hash that exists fails");
    assert!(
        matches!(err, AdapterError::Conflict(_)),
        "conflict, got {err:?}"
    );
    assert_eq!(
        store.key_by_hash(&hash("other")).await.unwrap(),
        None,
        "a refused create stores nothing"
    );

    let mine: Vec<ApiKeyRecord> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.name.starts_with(p))
        .collect();
    assert_eq!(
        mine,
        vec![alice.clone(), bob.clone()],
        "list_keys is ordered by name"
    );

    assert!(
        store.revoke_key(&alice.name).await.unwrap(),
        "revoke finds the key"
    );
    assert_eq!(
        store.key_by_hash(&alice.key_hash).await.unwrap(),
        None,
        "a revoked key is not found"
    );
    assert!(
        !store.revoke_key(&alice.name).await.unwrap(),
        "revoking a missing name returns false"
    );
    store.revoke_key(&bob.name).await.unwrap();
}

async fn create_get_and_conflict(store: &dyn SessionStore, p: &str) {
    let id = format!("{p}-create");
    assert_eq!(
        store.get(&id).await.unwrap(),
        None,
        "get of a missing id is None"
    );
    let record = sample_record(&id, "alice");
    store.create(&record).await.expect("create");
    let got = store
        .get(&id)
        .await
        .unwrap()
        .expect("created record is found");
    assert_eq!(got, record, "get returns what create stored, version 1");

    let mut other = sample_record(&id, "mallory");
    other.agent_type = "other".into();
    let err = store
        .create(&other)
        .await
        .expect_err("creating an existing id fails");
    assert!(
        matches!(err, AdapterError::Conflict(_)),
        "conflict, got {err:?}"
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap(),
        record,
        "a failed create changes nothing"
    );
}

/// A fork's record keeps where it came from through create, update, get and list; a
/// record that is not a fork has none.
async fn forked_from_round_trips(store: &dyn SessionStore, p: &str) {
    let owner = format!("{p}-fork-owner");
    let source = sample_record(&format!("{p}-fork-source"), &owner);
    store.create(&source).await.unwrap();
    let mut fork = sample_record(&format!("{p}-fork"), &owner);
    fork.agent_session_id = Some("agent-fork".into());
    fork.forked_from = Some(ForkedFrom {
        session_id: source.id.clone(),
        seq: u64::from(u32::MAX) + 7,
        agent_session_id: Some("agent-source".into()),
    });
    store.create(&fork).await.unwrap();
    assert_eq!(
        store.get(&fork.id).await.unwrap().unwrap(),
        fork,
        "get returns the fork's origin as create stored it"
    );
    assert_eq!(
        store.get(&source.id).await.unwrap().unwrap().forked_from,
        None,
        "a created session was forked from nothing"
    );

    fork.status = SessionStatus::Idle;
    fork.last_seq = 3;
    fork.updated_at = Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap();
    fork.version = store.update(&fork).await.unwrap();
    assert_eq!(
        store.get(&fork.id).await.unwrap().unwrap(),
        fork,
        "an update keeps the origin"
    );
    let filter = SessionFilter {
        owner: Some(owner.clone()),
        ..Default::default()
    };
    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(&filter, 100, cursor.as_deref()).await.unwrap();
        listed.extend(page.sessions);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let found = listed.iter().find(|r| r.id == fork.id).expect("listed");
    assert_eq!(found, &fork, "list returns the origin too");

    // A source without a conversation yet: the fork continues none.
    let bare = ForkedFrom {
        session_id: source.id.clone(),
        seq: 1,
        agent_session_id: None,
    };
    let mut second = sample_record(&format!("{p}-fork-bare"), &owner);
    second.forked_from = Some(bare);
    store.create(&second).await.unwrap();
    assert_eq!(store.get(&second.id).await.unwrap().unwrap(), second);
    for id in [&source.id, &fork.id, &second.id] {
        store.delete(id).await.unwrap();
    }
}

async fn update_is_optimistic(store: &dyn SessionStore, p: &str) {
    let id = format!("{p}-update");
    let mut record = sample_record(&id, "alice");
    store.create(&record).await.unwrap();

    record.status = SessionStatus::Idle;
    record.agent_session_id = Some("agent-1".into());
    record.last_seq = 7;
    record.usage = Usage {
        input_tokens: 10,
        output_tokens: 20,
        cost_usd: 0.25,
        turns: 1,
    };
    // An admin raised the budget: every limit changes, one to unlimited.
    record.budget = Budget {
        max_cost_usd: None,
        max_tokens: Some(5_000_000),
        max_turns: Some(20),
    };
    record.error = Some(crate::SessionError {
        code: "agent_crashed".into(),
        message: "x".into(),
    });
    record.updated_at = Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap();
    let version = store
        .update(&record)
        .await
        .expect("update at the current version");
    assert_eq!(version, 2, "update returns version + 1");
    let mut expected = record.clone();
    expected.version = 2;
    assert_eq!(
        store.get(&id).await.unwrap().unwrap(),
        expected,
        "update stores every field"
    );

    record.status = SessionStatus::Failed;
    let err = store
        .update(&record)
        .await
        .expect_err("a stale version fails");
    assert!(
        matches!(err, AdapterError::Conflict(_)),
        "conflict, got {err:?}"
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap(),
        expected,
        "a stale update changes nothing"
    );

    let missing = sample_record(&format!("{p}-update-missing"), "alice");
    let err = store
        .update(&missing)
        .await
        .expect_err("updating a missing record fails");
    assert!(
        matches!(err, AdapterError::NotFound(_)),
        "not found, got {err:?}"
    );
    assert_eq!(
        store.get(&missing.id).await.unwrap(),
        None,
        "update does not create"
    );
}

async fn list_filters_and_pages(store: &dyn SessionStore, p: &str) {
    // Owners unique to this run keep other runs' records out of the results.
    let owner = format!("{p}-owner");
    let other_owner = format!("{p}-other");
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut record = sample_record(&format!("{p}-list-{i}"), &owner);
        if i % 2 == 1 {
            record.agent_type = "researcher".into();
        }
        store.create(&record).await.unwrap();
        if i == 4 {
            record.status = SessionStatus::Stopped;
            store.update(&record).await.unwrap();
        }
        ids.push(record.id);
    }
    store
        .create(&sample_record(&format!("{p}-list-x"), &other_owner))
        .await
        .unwrap();

    let by_owner = SessionFilter {
        owner: Some(owner.clone()),
        ..Default::default()
    };
    let all = store.list(&by_owner, 100, None).await.unwrap();
    let got: Vec<_> = all.sessions.iter().map(|r| r.id.clone()).collect();
    assert_eq!(got, ids, "list filters by owner and orders by id");
    assert_eq!(all.next_cursor, None, "no cursor on the last page");

    let by_type = SessionFilter {
        agent_type: Some("researcher".into()),
        ..by_owner.clone()
    };
    let got: Vec<_> = store.list(&by_type, 100, None).await.unwrap().sessions;
    assert_eq!(got.len(), 2, "list filters by agent type");
    let by_status = SessionFilter {
        statuses: vec![SessionStatus::Stopped],
        ..by_owner.clone()
    };
    let got: Vec<_> = store.list(&by_status, 100, None).await.unwrap().sessions;
    assert_eq!(
        got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [ids[4].as_str()],
        "list filters by status"
    );

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(&by_owner, 2, cursor.as_deref()).await.unwrap();
        assert!(
            page.sessions.len() <= 2,
            "a page holds at most limit records"
        );
        seen.extend(page.sessions.iter().map(|r| r.id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "paging with the cursor visits every record once, in order"
    );
    let one = store.list(&by_owner, 0, None).await.unwrap();
    assert_eq!(one.sessions.len(), 1, "limit 0 is treated as 1");
}

async fn every_status_and_kind(store: &dyn SessionStore, p: &str) {
    let id = format!("{p}-every-status");
    let mut record = sample_record(&id, "alice");
    store.create(&record).await.unwrap();
    for status in SessionStatus::ALL {
        record.status = status;
        record.version = store.update(&record).await.expect("update");
        let stored = store.get(&id).await.unwrap().unwrap();
        assert_eq!(
            stored.status,
            status,
            "status {} round-trips",
            status.as_str()
        );
    }
    let kinds = EventKind::ALL;
    let events: Vec<Event> = kinds
        .iter()
        .zip(1..)
        .map(|(kind, seq)| Event {
            kind: *kind,
            ..sample_event(seq)
        })
        .collect();
    store.append_events(&id, &events).await.expect("append");
    assert_eq!(
        store.events_after(&id, 0, 100).await.unwrap(),
        events,
        "every event kind round-trips"
    );
}

async fn events_append_and_read(store: &dyn SessionStore, p: &str) {
    let id = format!("{p}-events");
    store.create(&sample_record(&id, "alice")).await.unwrap();
    assert!(
        store.events_after(&id, 0, 10).await.unwrap().is_empty(),
        "a new log is empty"
    );

    let first: Vec<Event> = (1..=3).map(sample_event).collect();
    store.append_events(&id, &first).await.expect("append");
    store
        .append_events(&id, &first[1..])
        .await
        .expect("re-append of stored seqs succeeds");
    let more: Vec<Event> = (4..=6).map(sample_event).collect();
    store.append_events(&id, &more).await.unwrap();
    store
        .append_events(&id, &[])
        .await
        .expect("an empty batch succeeds");

    let all = store.events_after(&id, 0, 100).await.unwrap();
    let expected: Vec<Event> = (1..=6).map(sample_event).collect();
    assert_eq!(
        all, expected,
        "events come back verbatim, once each, oldest first"
    );
    assert_eq!(
        store.events_after(&id, 2, 2).await.unwrap(),
        expected[2..4],
        "after and limit"
    );
    assert!(
        store.events_after(&id, 6, 10).await.unwrap().is_empty(),
        "nothing after the last"
    );

    let unordered = [sample_event(8), sample_event(7)];
    let err = store
        .append_events(&id, &unordered)
        .await
        .expect_err("unordered batch fails");
    assert!(
        matches!(err, AdapterError::InvalidInput(_)),
        "invalid input, got {err:?}"
    );

    let err = store
        .append_events(&format!("{p}-no-such-session"), &[sample_event(1)])
        .await
        .expect_err("appending to a missing session fails");
    assert!(
        matches!(err, AdapterError::NotFound(_)),
        "not found, got {err:?}"
    );
    assert!(
        store
            .events_after(&format!("{p}-no-such-session"), 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "a missing session has no events"
    );
}

async fn batch_append_isolates_sessions(store: &dyn SessionStore, p: &str) {
    let [a, b, gone, unordered, quiet, gone_quiet] =
        ["a", "b", "gone", "unordered", "quiet", "gone-quiet"].map(|s| format!("{p}-batch-{s}"));
    for id in [&a, &b, &unordered, &quiet] {
        store.create(&sample_record(id, "alice")).await.unwrap();
    }
    assert!(
        store.append_batch(&[]).await.is_empty(),
        "an empty batch has no outcomes"
    );

    let a_events: Vec<Event> = (1..=3).map(sample_event).collect();
    let b_events: Vec<Event> = (1..=2).map(sample_event).collect();
    let bad = [sample_event(8), sample_event(7)];
    let one = [sample_event(1)];
    let batch = [
        SessionEvents {
            session_id: &a,
            events: &a_events,
        },
        SessionEvents {
            session_id: &gone,
            events: &one,
        },
        SessionEvents {
            session_id: &b,
            events: &b_events,
        },
        SessionEvents {
            session_id: &unordered,
            events: &bad,
        },
        SessionEvents {
            session_id: &quiet,
            events: &[],
        },
        SessionEvents {
            session_id: &gone_quiet,
            events: &[],
        },
    ];
    let outcomes = store.append_batch(&batch).await;
    assert_eq!(outcomes.len(), batch.len(), "one outcome per entry");
    assert_eq!(outcomes[0], Ok(()), "a stored session's events are taken");
    assert!(
        matches!(outcomes[1], Err(AdapterError::NotFound(_))),
        "a missing session is not found, got {:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2], Ok(()), "an entry after a failed one is taken");
    assert!(
        matches!(outcomes[3], Err(AdapterError::InvalidInput(_))),
        "unordered seqs are invalid input, got {:?}",
        outcomes[3]
    );
    assert_eq!(
        outcomes[4],
        Ok(()),
        "an empty entry of a stored session succeeds"
    );
    assert!(
        matches!(outcomes[5], Err(AdapterError::NotFound(_))),
        "an empty entry of a missing session is not found, got {:?}",
        outcomes[5]
    );
    assert_eq!(store.events_after(&a, 0, 10).await.unwrap(), a_events);
    assert_eq!(store.events_after(&b, 0, 10).await.unwrap(), b_events);
    assert!(
        store
            .events_after(&unordered, 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "a refused entry stores nothing"
    );
    assert!(
        store.events_after(&gone, 0, 10).await.unwrap().is_empty(),
        "a missing session gets no events"
    );

    // A retry of a batch whose answer was lost: stored seqs are skipped, new ones added.
    let retry: Vec<Event> = (2..=4).map(sample_event).collect();
    let outcomes = store
        .append_batch(&[
            SessionEvents {
                session_id: &a,
                events: &retry,
            },
            SessionEvents {
                session_id: &b,
                events: &b_events,
            },
        ])
        .await;
    assert_eq!(
        outcomes,
        [Ok(()), Ok(())],
        "re-appending stored seqs succeeds"
    );
    let expected: Vec<Event> = (1..=4).map(sample_event).collect();
    assert_eq!(
        store.events_after(&a, 0, 10).await.unwrap(),
        expected,
        "each event once, in order"
    );
    assert_eq!(store.events_after(&b, 0, 10).await.unwrap(), b_events);
}

async fn batch_append_of_many_sessions(store: &dyn SessionStore, p: &str) {
    let ids: Vec<String> = (0..12).map(|i| format!("{p}-many-{i:02}")).collect();
    for id in &ids {
        store.create(&sample_record(id, "alice")).await.unwrap();
    }
    // Sessions at different points of their logs, as a running writer sees them.
    let logs: Vec<Vec<Event>> = (0..ids.len() as u64)
        .map(|i| (1..=5 + i).map(sample_event).collect())
        .collect();
    let first: Vec<SessionEvents<'_>> = ids
        .iter()
        .zip(&logs)
        .map(|(id, log)| SessionEvents {
            session_id: id,
            events: &log[..2],
        })
        .collect();
    let outcomes = store.append_batch(&first).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let rest: Vec<SessionEvents<'_>> = ids
        .iter()
        .zip(&logs)
        .rev()
        .map(|(id, log)| SessionEvents {
            session_id: id,
            events: &log[2..],
        })
        .collect();
    let outcomes = store.append_batch(&rest).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for (id, log) in ids.iter().zip(&logs) {
        assert_eq!(
            &store.events_after(id, 0, 100).await.unwrap(),
            log,
            "every session's log is whole, in order, and only its own"
        );
    }
}

async fn delete_cascades(store: &dyn SessionStore, p: &str) {
    let id = format!("{p}-delete");
    store.create(&sample_record(&id, "alice")).await.unwrap();
    store
        .append_events(&id, &[sample_event(1), sample_event(2)])
        .await
        .unwrap();
    store.delete(&id).await.expect("delete");
    assert_eq!(
        store.get(&id).await.unwrap(),
        None,
        "a deleted record is gone"
    );
    assert!(
        store.events_after(&id, 0, 10).await.unwrap().is_empty(),
        "its log is gone too"
    );
    store
        .delete(&id)
        .await
        .expect("deleting a missing session succeeds");

    store
        .create(&sample_record(&id, "alice"))
        .await
        .expect("the id can be used again");
    assert!(
        store.events_after(&id, 0, 10).await.unwrap().is_empty(),
        "with an empty log"
    );
}
