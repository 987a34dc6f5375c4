//! The behaviours of [`crate::SessionStore`], one function each.
use chrono::{TimeZone, Utc};
use serde_json::json;
use serde_json::value::RawValue;

use super::{Behaviour, unique_prefix};
use crate::{
    AdapterError, ApiKeyRecord, Budget, ErrorKind, Event, EventKind, ForkedFrom, QuotaOverrides,
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

/// Runs every behaviour of [`SessionStore`] against `store`, one after the other; the
/// first broken one panics. Tests should rather use
/// [`session_store_contract!`](crate::session_store_contract), a test per behaviour.
pub async fn session_store(store: &dyn SessionStore) {
    for behaviour in BEHAVIOURS {
        behaviour.check(store).await;
    }
}

/// Every behaviour of [`SessionStore`], in the order of its `# Behavior` section.
pub const BEHAVIOURS: &[Behaviour<dyn SessionStore>] = crate::session_store_contract!(@list);

/// One test per behaviour of [`SessionStore`] (see [`crate::contract`]): a module name
/// (optional, attributes before it), then a factory (`async { store }`, giving the store,
/// an `Arc` or a `Box` of it) or `with runner` (an `async fn(Behaviour<dyn SessionStore>)`
/// that sets up a store and checks the behaviour against it).
#[macro_export]
macro_rules! session_store_contract {
    ($($input:tt)*) => {
        $crate::__contract! {
            [$crate::contract::session_store] [dyn $crate::SessionStore]
            [
                create_stores_version_1_and_refuses_an_existing_id,
                get_of_a_missing_id_is_none,
                every_status_and_event_kind_round_trips,
                update_is_optimistic,
                forked_from_round_trips,
                list_filters_orders_and_pages,
                delete_removes_the_record_and_its_log,
                append_events_is_ordered_and_idempotent,
                append_batch_has_one_outcome_per_entry,
                append_batch_keeps_each_log_whole,
                events_after_returns_a_page_oldest_first,
                ping_succeeds,
                create_key_refuses_an_existing_name_or_hash,
                key_by_hash_finds_exactly_its_key,
                list_keys_is_ordered_by_name,
                revoke_key_removes_the_key,
            ]
            $($input)*
        }
    };
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

/// A key hash unique to `p`: hex of the prefix, so runs sharing a database never collide.
fn hash(p: &str, label: &str) -> String {
    format!("{p}-{label}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Asserts that `result` failed with the error `expected` names.
fn assert_error<T: std::fmt::Debug>(
    result: Result<T, AdapterError>,
    expected: fn(&AdapterError) -> bool,
    what: &str,
) {
    match result {
        Err(e) if expected(&e) => {}
        other => panic!("{what}, got {other:?}"),
    }
}

fn conflict(e: &AdapterError) -> bool {
    e.kind() == ErrorKind::Conflict
}

fn not_found(e: &AdapterError) -> bool {
    e.kind() == ErrorKind::NotFound
}

fn invalid_input(e: &AdapterError) -> bool {
    e.kind() == ErrorKind::InvalidInput
}

/// `create` stores a record with `version` 1; creating an id that exists fails with
/// `Conflict` and changes nothing.
pub async fn create_stores_version_1_and_refuses_an_existing_id(store: &dyn SessionStore) {
    let id = unique_prefix("ss-create");
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
    assert_error(
        store.create(&other).await,
        conflict,
        "creating an existing id is a conflict",
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap(),
        record,
        "a failed create changes nothing"
    );
}

/// `get` of a missing id returns `Ok(None)`.
pub async fn get_of_a_missing_id_is_none(store: &dyn SessionStore) {
    let id = unique_prefix("ss-missing");
    assert_eq!(
        store.get(&id).await.unwrap(),
        None,
        "get of a missing id is None"
    );
    store.create(&sample_record(&id, "alice")).await.unwrap();
    store.delete(&id).await.unwrap();
    assert_eq!(
        store.get(&id).await.unwrap(),
        None,
        "get of a deleted id is None"
    );
}

/// Every [`crate::SessionStatus`] and every [`EventKind`] is stored and read back as it
/// was written.
pub async fn every_status_and_event_kind_round_trips(store: &dyn SessionStore) {
    let id = unique_prefix("ss-every-status");
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
    let events: Vec<Event> = EventKind::ALL
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

/// `update` succeeds only when the stored version equals `record.version`; it stores the
/// record with `version + 1` and returns the new version. A stale version fails with
/// `Conflict`, a missing record with `NotFound`; neither changes anything.
pub async fn update_is_optimistic(store: &dyn SessionStore) {
    let p = unique_prefix("ss-update");
    let id = format!("{p}-record");
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
    assert_error(
        store.update(&record).await,
        conflict,
        "a stale version is a conflict",
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap(),
        expected,
        "a stale update changes nothing"
    );

    let missing = sample_record(&format!("{p}-missing"), "alice");
    assert_error(
        store.update(&missing).await,
        not_found,
        "updating a missing record is not found",
    );
    assert_eq!(
        store.get(&missing.id).await.unwrap(),
        None,
        "update does not create"
    );
}

/// A fork's record keeps where it came from (`forked_from`: the source session, the seq
/// it was forked at, the source's conversation if it had one) through `create`, `update`,
/// `get` and `list`; a record that is not a fork has none.
pub async fn forked_from_round_trips(store: &dyn SessionStore) {
    let p = unique_prefix("ss-fork");
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

/// `list` returns records matching the filter ordered by id ascending, at most `limit` per
/// page (`limit` 0 is treated as 1); `next_cursor` is `Some` exactly when more records
/// follow; passing it back continues after the last record returned.
pub async fn list_filters_orders_and_pages(store: &dyn SessionStore) {
    let p = unique_prefix("ss-list");
    // Owners unique to this run keep other runs' records out of the results.
    let owner = format!("{p}-owner");
    let other_owner = format!("{p}-other");
    let mut ids = Vec::new();
    // Created out of order: the list orders by id, not by time of creation.
    for i in [3, 0, 4, 1, 2] {
        let mut record = sample_record(&format!("{p}-{i}"), &owner);
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
    ids.sort();
    store
        .create(&sample_record(&format!("{p}-x"), &other_owner))
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
    assert_eq!(
        got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [ids[1].as_str(), ids[3].as_str()],
        "list filters by agent type"
    );
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

/// `delete` removes the record and its whole event log; deleting a missing session
/// succeeds.
pub async fn delete_removes_the_record_and_its_log(store: &dyn SessionStore) {
    let id = unique_prefix("ss-delete");
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

/// `append_events` stores events whose seq is strictly increasing within the call;
/// re-appending an event whose seq is already stored is ignored (idempotent), so a retry
/// after a lost answer is safe. Appending to a session without a record fails with
/// `NotFound`.
pub async fn append_events_is_ordered_and_idempotent(store: &dyn SessionStore) {
    let id = unique_prefix("ss-append");
    store.create(&sample_record(&id, "alice")).await.unwrap();
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
    let expected: Vec<Event> = (1..=6).map(sample_event).collect();
    assert_eq!(
        store.events_after(&id, 0, 100).await.unwrap(),
        expected,
        "events come back verbatim, once each, oldest first"
    );

    let unordered = [sample_event(8), sample_event(7)];
    assert_error(
        store.append_events(&id, &unordered).await,
        invalid_input,
        "an unordered batch is invalid input",
    );
    let repeated = [sample_event(8), sample_event(8)];
    assert_error(
        store.append_events(&id, &repeated).await,
        invalid_input,
        "a repeated seq is invalid input",
    );
    assert_eq!(
        store.events_after(&id, 0, 100).await.unwrap(),
        expected,
        "a refused batch stores nothing"
    );

    let missing = format!("{id}-no-such-session");
    assert_error(
        store.append_events(&missing, &[sample_event(1)]).await,
        not_found,
        "appending to a missing session is not found",
    );
}

/// `append_batch` appends the events of many sessions at once and returns one outcome per
/// entry, in the order of the entries: each entry succeeds or fails exactly as
/// `append_events` of that entry alone would, and one entry's failure leaves the other
/// entries' events stored; a retried batch stores each event once.
pub async fn append_batch_has_one_outcome_per_entry(store: &dyn SessionStore) {
    let p = unique_prefix("ss-batch");
    let [a, b, gone, unordered, quiet, gone_quiet] =
        ["a", "b", "gone", "unordered", "quiet", "gone-quiet"].map(|s| format!("{p}-{s}"));
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
    assert!(
        outcomes[0].is_ok(),
        "a stored session's events are taken: {:?}",
        outcomes[0]
    );
    assert!(
        matches!(&outcomes[1], Err(e) if e.kind() == ErrorKind::NotFound),
        "a missing session is not found, got {:?}",
        outcomes[1]
    );
    assert!(
        outcomes[2].is_ok(),
        "an entry after a failed one is taken: {:?}",
        outcomes[2]
    );
    assert!(
        matches!(&outcomes[3], Err(e) if e.kind() == ErrorKind::InvalidInput),
        "unordered seqs are invalid input, got {:?}",
        outcomes[3]
    );
    assert!(
        outcomes[4].is_ok(),
        "an empty entry of a stored session succeeds: {:?}",
        outcomes[4]
    );
    assert!(
        matches!(&outcomes[5], Err(e) if e.kind() == ErrorKind::NotFound),
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
    assert!(
        outcomes.len() == 2 && outcomes.iter().all(Result::is_ok),
        "re-appending stored seqs succeeds: {outcomes:?}"
    );
    let expected: Vec<Event> = (1..=4).map(sample_event).collect();
    assert_eq!(
        store.events_after(&a, 0, 10).await.unwrap(),
        expected,
        "each event once, in order"
    );
    assert_eq!(store.events_after(&b, 0, 10).await.unwrap(), b_events);
}

/// A batch of many sessions, at different points of their logs as a running writer sees
/// them, leaves every session's log whole, in order, and only its own.
pub async fn append_batch_keeps_each_log_whole(store: &dyn SessionStore) {
    let p = unique_prefix("ss-many");
    let ids: Vec<String> = (0..12).map(|i| format!("{p}-{i:02}")).collect();
    for id in &ids {
        store.create(&sample_record(id, "alice")).await.unwrap();
    }
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

/// `events_after(id, seq, limit)` returns the events with seq greater than `seq`, oldest
/// first, at most `limit`; a missing session gives an empty list.
pub async fn events_after_returns_a_page_oldest_first(store: &dyn SessionStore) {
    let id = unique_prefix("ss-events");
    store.create(&sample_record(&id, "alice")).await.unwrap();
    assert!(
        store.events_after(&id, 0, 10).await.unwrap().is_empty(),
        "a new log is empty"
    );
    let expected: Vec<Event> = (1..=6).map(sample_event).collect();
    store.append_events(&id, &expected).await.unwrap();
    assert_eq!(
        store.events_after(&id, 0, 100).await.unwrap(),
        expected,
        "every event, oldest first"
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
    assert!(
        store
            .events_after(&format!("{id}-no-such-session"), 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "a missing session has no events"
    );
}

/// `ping` succeeds when the backend answers.
pub async fn ping_succeeds(store: &dyn SessionStore) {
    store.ping().await.expect("ping succeeds");
}

/// `create_key` stores a key; a name or hash that exists fails with `Conflict` and
/// changes nothing.
pub async fn create_key_refuses_an_existing_name_or_hash(store: &dyn SessionStore) {
    let p = unique_prefix("ss-key-create");
    let alice = sample_key(&format!("{p}-alice"), &hash(&p, "alice"));
    store.create_key(&alice).await.expect("create_key");
    assert_eq!(
        store.key_by_hash(&alice.key_hash).await.unwrap().as_ref(),
        Some(&alice),
        "create_key stores the key"
    );
    let same_name = sample_key(&alice.name, &hash(&p, "other"));
    assert_error(
        store.create_key(&same_name).await,
        conflict,
        "a name that exists is a conflict",
    );
    let same_hash = sample_key(&format!("{p}-carol"), &alice.key_hash);
    assert_error(
        store.create_key(&same_hash).await,
        conflict,
        "a hash that exists is a conflict",
    );
    assert_eq!(
        store.key_by_hash(&hash(&p, "other")).await.unwrap(),
        None,
        "a refused create stores nothing"
    );
    assert_eq!(
        store.key_by_hash(&alice.key_hash).await.unwrap().as_ref(),
        Some(&alice),
        "a refused create changes nothing"
    );
    store.revoke_key(&alice.name).await.unwrap();
}

/// `key_by_hash` returns the key stored with exactly this hash, or `Ok(None)`.
pub async fn key_by_hash_finds_exactly_its_key(store: &dyn SessionStore) {
    let p = unique_prefix("ss-key-hash");
    let alice = sample_key(&format!("{p}-alice"), &hash(&p, "alice"));
    let mut bob = sample_key(&format!("{p}-bob"), &hash(&p, "bob"));
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
    assert_eq!(
        store.key_by_hash(&alice.key_hash).await.unwrap().as_ref(),
        Some(&alice),
        "each hash finds its own key"
    );
    let prefix: String = alice.key_hash.chars().take(8).collect();
    assert_eq!(
        store.key_by_hash(&prefix).await.unwrap(),
        None,
        "a part of a hash finds nothing"
    );
    for key in [&alice, &bob] {
        store.revoke_key(&key.name).await.unwrap();
    }
}

/// `list_keys` returns every key, ordered by name ascending.
pub async fn list_keys_is_ordered_by_name(store: &dyn SessionStore) {
    let p = unique_prefix("ss-key-list");
    let keys: Vec<ApiKeyRecord> = ["carol", "alice", "bob"]
        .iter()
        .map(|name| sample_key(&format!("{p}-{name}"), &hash(&p, name)))
        .collect();
    for key in &keys {
        store.create_key(key).await.expect("create_key");
    }
    let mine: Vec<ApiKeyRecord> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.name.starts_with(&p))
        .collect();
    let mut expected = keys.clone();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(mine, expected, "list_keys is every key, ordered by name");
    for key in &keys {
        store.revoke_key(&key.name).await.unwrap();
    }
}

/// `revoke_key` removes the key with this name and returns `true`; a missing name returns
/// `false`. A revoked key is no longer found by `key_by_hash`.
pub async fn revoke_key_removes_the_key(store: &dyn SessionStore) {
    let p = unique_prefix("ss-key-revoke");
    let alice = sample_key(&format!("{p}-alice"), &hash(&p, "alice"));
    let bob = sample_key(&format!("{p}-bob"), &hash(&p, "bob"));
    store.create_key(&alice).await.unwrap();
    store.create_key(&bob).await.unwrap();
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
        !store.list_keys().await.unwrap().contains(&alice),
        "a revoked key is not listed"
    );
    assert!(
        !store.revoke_key(&alice.name).await.unwrap(),
        "revoking a missing name returns false"
    );
    assert_eq!(
        store.key_by_hash(&bob.key_hash).await.unwrap().as_ref(),
        Some(&bob),
        "revoke removes only its own key"
    );
    store.revoke_key(&bob.name).await.unwrap();
}
