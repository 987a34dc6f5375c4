//! The `SessionStore` contract and the SQL store's own promises, against SQLite files and
//! a PostgreSQL server (its own fresh database per test).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::contract::{Behaviour, sample_event, sample_record, unique_prefix};
use agent_runtime_api::{Budget, ErrorKind, Event, SessionRecord, SessionStore};
use agent_runtime_sql::{SqlStoreConfig, SqliteSessionStore, build};
use chrono::{TimeZone, Utc};

mod pg;

fn sqlite_config(dir: &Path) -> SqlStoreConfig {
    // A directory that does not exist yet: the store creates it.
    let file = dir.join("nested").join("store.db");
    SqlStoreConfig::new(format!("sqlite://{}", file.display()))
}

/// Runs `behaviour` against a store in a SQLite file of its own.
async fn on_sqlite_file(behaviour: Behaviour<dyn SessionStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = build(&sqlite_config(dir.path())).await.expect("build");
    behaviour.check(&*store).await;
}

agent_runtime_api::session_store_contract!(sqlite_file, with on_sqlite_file);

agent_runtime_api::session_store_contract!(sqlite_in_memory, async {
    build(&SqlStoreConfig::new("sqlite::memory:"))
        .await
        .expect("build")
});

/// Runs `behaviour` against a store on a fresh PostgreSQL database of its own, dropped
/// afterwards; skipped (outside CI) without a server.
async fn on_postgres(behaviour: Behaviour<dyn SessionStore>) {
    let Some(db) = pg::TestDatabase::create().await else {
        return;
    };
    let config = db.config();
    db.run(async move {
        let store = build(&config).await.expect("build");
        behaviour.check(&*store).await;
    })
    .await;
}

agent_runtime_api::session_store_contract!(postgres, with on_postgres);

#[tokio::test]
async fn sqlite_file_keeps_the_stores_own_promises() {
    let dir = tempfile::tempdir().unwrap();
    let store = build(&sqlite_config(dir.path())).await.expect("build");
    store_specific_checks(store).await;
}

#[tokio::test]
async fn postgres_keeps_the_stores_own_promises() {
    let Some(db) = pg::TestDatabase::create().await else {
        return;
    };
    let config = db.config();
    db.run(async move {
        let store = build(&config).await.expect("build");
        store_specific_checks(store).await;
        // A second start applies nothing and keeps the data.
        build(&config).await.expect("build again");
    })
    .await;
}

#[tokio::test]
async fn sqlite_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    let first = build(&config).await.expect("first build");
    let record = sample_record("idempotent", "alice");
    first.create(&record).await.unwrap();
    let second = build(&config).await.expect("second build on the same file");
    assert_eq!(second.get("idempotent").await.unwrap(), Some(record));
}

/// A session stored before budgets existed reads, once the migration that adds them has
/// run, as unlimited: the record is as it was, with the default budget.
#[tokio::test]
async fn sqlite_records_from_before_budgets_are_unlimited() {
    use sqlx::Executor;
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    let record = sample_record("older", "alice");
    assert_ne!(record.budget, Budget::default(), "the sample has limits");
    {
        let store = SqliteSessionStore::connect(&config).await.unwrap();
        store.create(&record).await.unwrap();
        store.close().await;
    }
    // Back to the schema before budgets, the row kept: the column and the record of its
    // migration are gone, as in a database the previous release left.
    let file = dir.path().join("nested").join("store.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    pool.execute("ALTER TABLE sessions DROP COLUMN budget")
        .await
        .unwrap();
    pool.execute("DELETE FROM _sqlx_migrations WHERE version = 3")
        .await
        .unwrap();
    pool.close().await;

    let store = SqliteSessionStore::connect(&config).await.unwrap();
    let read = store.get("older").await.unwrap().expect("the record");
    assert_eq!(read.budget, Budget::default());
    assert_eq!(
        SessionRecord {
            budget: record.budget,
            ..read
        },
        record
    );
}

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    let mut record = sample_record("durable", "alice");
    // Nanoseconds survive: SQLite keeps timestamps as text with nine digits.
    record.last_activity_at = Utc.timestamp_nanos(1_767_323_045_123_456_789);
    let events: Vec<Event> = (1..=3).map(sample_event).collect();
    {
        let store = SqliteSessionStore::connect(&config).await.unwrap();
        store.create(&record).await.unwrap();
        store.append_events("durable", &events).await.unwrap();
        store.close().await;
    }
    let store = SqliteSessionStore::connect(&config).await.unwrap();
    assert_eq!(store.get("durable").await.unwrap(), Some(record));
    assert_eq!(store.events_after("durable", 0, 10).await.unwrap(), events);
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_and_hides_the_password() {
    let config = SqlStoreConfig {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        url: "postgres://app:hunter2@127.0.0.1:1/db".into(),
        acquire_timeout: Some(Duration::from_secs(2)),
        ..SqlStoreConfig::default()
    };
    let err = build(&config).await.err().expect("no server");
    assert!(err.kind() == ErrorKind::Unavailable, "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn bad_configs_are_invalid_input() {
    let cases = [
        SqlStoreConfig::new("mysql://root@db/x"),
        SqlStoreConfig::new("sqlite://x.db?mode=bogus"),
        SqlStoreConfig {
            max_connections: Some(0),
            ..SqlStoreConfig::new("sqlite::memory:")
        },
        SqlStoreConfig {
            max_connections: Some(2),
            min_connections: Some(3),
            ..SqlStoreConfig::new("sqlite::memory:")
        },
    ];
    for config in cases {
        let err = build(&config).await.err().expect("refused");
        assert!(err.kind() == ErrorKind::InvalidInput, "{config:?}: {err:?}");
    }
}

/// Promises of this store beyond the shared contract.
async fn store_specific_checks(store: Arc<dyn SessionStore>) {
    large_batch_is_appended_whole(&*store).await;
    concurrent_updates_have_one_winner(store).await;
}

/// A batch past SQLite's bind limit per statement still lands whole, once.
async fn large_batch_is_appended_whole(store: &dyn SessionStore) {
    let id = unique_prefix("large");
    store.create(&sample_record(&id, "alice")).await.unwrap();
    let events: Vec<Event> = (1..=20_000).map(sample_event).collect();
    store.append_events(&id, &events).await.expect("append");
    store
        .append_events(&id, &events[19_000..])
        .await
        .expect("re-append");
    let stored = store.events_after(&id, 0, 50_000).await.unwrap();
    assert_eq!(stored.len(), events.len(), "every event once");
    assert!(stored == events, "verbatim and in order");
}

/// Several writers holding the same version: exactly one update succeeds.
async fn concurrent_updates_have_one_winner(store: Arc<dyn SessionStore>) {
    let id = unique_prefix("race");
    let record = sample_record(&id, "alice");
    store.create(&record).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let mut record = record.clone();
            record.last_seq = i;
            tokio::spawn(async move { store.update(&record).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(version) => {
                assert_eq!(version, 2);
                wins += 1;
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {}
            Err(other) => panic!("a lost race is a conflict, got {other:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one writer wins");
}
