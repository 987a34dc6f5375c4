//! The adapter contract suites, and the paging and batching behind them.

use agent_runtime_api::contract::{Behaviour, sample_bundles, sample_event, sample_record};
use agent_runtime_api::{
    BlobStore, ErrorKind, Event, FileEntry, FileTree, ProfileBundle, ProfileSource, RelPath,
    SessionStore,
};
use agent_runtime_convex::{
    ConvexClient, ConvexProfileSource, ConvexSessionStore, build_blob_store, build_profile_source,
    build_session_store,
};
use bytes::Bytes;
use serde_json::json;
use serde_json::value::RawValue;

use crate::fake;

agent_runtime_api::session_store_contract!(session_store, with on_session_store);

/// Runs `behaviour` against the session store on a fake deployment of its own.
async fn on_session_store(behaviour: Behaviour<dyn SessionStore>) {
    let (_fake, config) = fake().await;
    let store = build_session_store(&config).expect("build");
    behaviour.check(store.as_ref()).await;
}

agent_runtime_api::blob_store_contract!(blob_store, with on_blob_store);

/// Runs `behaviour` against the blob store on a fake deployment of its own; what the
/// behaviour deleted is gone from file storage too.
async fn on_blob_store(behaviour: Behaviour<dyn BlobStore>) {
    let (fake, config) = fake().await;
    let store = build_blob_store(&config).expect("build");
    behaviour.check(store.as_ref()).await;
    assert_eq!(
        fake.with_db(|db| db.files().count()),
        0,
        "deleting blobs deletes their files from storage"
    );
}

agent_runtime_api::profile_source_contract!(profile_source, with on_profile_source);

/// Runs `behaviour` against the profile source on a fake deployment holding the sample
/// bundles, published through the adapter's own `put`.
async fn on_profile_source(behaviour: Behaviour<dyn ProfileSource>) {
    let (_fake, config) = fake().await;
    let client = ConvexClient::new(&config).unwrap();
    let publisher = ConvexProfileSource::new(client, config.functions.clone());
    for bundle in sample_bundles() {
        publisher.put(&bundle).await.expect("put");
    }
    let source = build_profile_source(&config).expect("build");
    behaviour.check(source.as_ref()).await;
}

#[tokio::test]
async fn records_are_stored_in_the_documented_shape() {
    let (fake, config) = fake().await;
    let store = build_session_store(&config).unwrap();
    store
        .create(&sample_record("shape", "alice"))
        .await
        .unwrap();
    let docs = fake.table("agentRuntimeSessions");
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!(doc["sessionId"], "shape");
    assert_eq!(doc["version"], 1, "create stores version 1");
    assert_eq!(
        doc["createdAt"], "2026-01-02T03:04:05Z",
        "times are RFC 3339 text"
    );
    let metadata: serde_json::Value =
        serde_json::from_str(doc["metadata"].as_str().expect("metadata is JSON text")).unwrap();
    assert_eq!(metadata, json!({"topic": "contract", "nested": {"n": 1}}));
}

#[tokio::test]
async fn long_logs_are_appended_in_batches_and_read_in_pages() {
    let (fake, config) = fake().await;
    let client = ConvexClient::new(&config).unwrap();
    let store = ConvexSessionStore::new(client, config.functions.clone());
    store.create(&sample_record("long", "alice")).await.unwrap();
    let events: Vec<Event> = (1..=1200).map(sample_event).collect();
    store.append_events("long", &events).await.unwrap();
    assert_eq!(
        fake.calls_to(&config.functions.events_append).len(),
        3,
        "one mutation per batch of at most 500 events"
    );
    let read = store.events_after("long", 0, 5000).await.unwrap();
    assert_eq!(read, events, "every event comes back once, in order");
    assert_eq!(
        fake.calls_to(&config.functions.events_after).len(),
        2,
        "pages of 1000"
    );
    let some = store.events_after("long", 10, 1500).await.unwrap();
    assert_eq!(some.len(), 1190);
    assert_eq!(some[0].seq, 11);

    store.delete("long").await.unwrap();
    assert_eq!(
        fake.calls_to(&config.functions.sessions_remove).len(),
        2,
        "the log is deleted in steps of 1000 events"
    );
    assert!(fake.table("agentRuntimeEvents").is_empty());
    assert!(fake.table("agentRuntimeSessions").is_empty());
}

#[tokio::test]
async fn an_oversized_event_is_refused_before_any_call() {
    let (fake, config) = fake().await;
    let store = build_session_store(&config).unwrap();
    store.create(&sample_record("big", "alice")).await.unwrap();
    let mut event = sample_event(1);
    event.data = RawValue::from_string(format!("\"{}\"", "x".repeat(1024 * 1024))).unwrap();
    let err = store.append_events("big", &[event]).await.unwrap_err();
    assert!(
        err.kind() == ErrorKind::InvalidInput && err.to_string().contains("1 MiB"),
        "{err:?}"
    );
    assert!(fake.calls_to(&config.functions.events_append).is_empty());
}

fn bundle(name: &str) -> ProfileBundle {
    let mut files = FileTree::default();
    files.insert(RelPath::new("CLAUDE.md").unwrap(), "# {{ SESSION_ID }}\n");
    files.files.push(FileEntry {
        path: RelPath::new("tools/run.sh").unwrap(),
        contents: Bytes::from_static(b"#!/bin/sh\n\x00\xff"),
        executable: true,
    });
    ProfileBundle {
        name: name.to_owned(),
        manifest: format!("description = \"{name}\"\n"),
        files,
    }
}

#[tokio::test]
async fn profile_source_lists_and_loads_profiles() {
    let (fake, config) = fake().await;
    let client = ConvexClient::new(&config).unwrap();
    let publisher = ConvexProfileSource::new(client, config.functions.clone());
    let source = build_profile_source(&config).unwrap();
    assert!(source.list().await.unwrap().is_empty(), "no profiles yet");

    publisher.put(&bundle("researcher")).await.unwrap();
    publisher.put(&bundle("assistant")).await.unwrap();
    publisher
        .put(&bundle("assistant"))
        .await
        .expect("put replaces");
    assert_eq!(
        source.list().await.unwrap(),
        ["assistant", "researcher"],
        "sorted, once each"
    );
    assert_eq!(
        source.load("assistant").await.unwrap(),
        bundle("assistant"),
        "manifest, files, bytes and executable bits come back"
    );
    let err = source.load("nobody").await.unwrap_err();
    assert!(err.kind() == ErrorKind::NotFound, "{err:?}");
    for bad in ["", "..", "a/b", "/etc"] {
        let err = source.load(bad).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound),
            "{bad:?}: {err:?}"
        );
    }
    assert_eq!(
        fake.calls_to(&config.functions.profiles_get).len(),
        2,
        "unsafe names never reach the deployment"
    );

    fake.with_db(|db| {
        db.insert(
            "agentRuntimeProfiles",
            json!({"name": "evil", "manifest": "", "files": [
                {"path": "../escape", "contentBase64": "", "executable": false}]}),
        );
    });
    let err = source.load("evil").await.unwrap_err();
    assert!(
        err.kind() == ErrorKind::Other && err.to_string().contains("path"),
        "{err:?}"
    );

    publisher.remove("researcher").await.unwrap();
    assert_eq!(source.list().await.unwrap(), ["assistant", "evil"]);
}
