//! How fast a store takes the event writer's batches: `per-session` appends each
//! session's events of a batch with its own `append_events`, up to 16 at a time (what the
//! writer did before `append_batch`); `batch` makes one `append_batch` per batch.
//!
//! ```text
//! cargo run --release -p agent-runtime-sql --example append_batch -- \
//!     [per-session|batch] [sessions] [events per session per batch] [batches] [store URL]
//! ```
//!
//! Without a URL it uses a SQLite file in a temporary directory. It prints the wall time
//! per batch (mean and p99) and the process's CPU time per event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_runtime_api::contract::{sample_event, sample_record, unique_prefix};
use agent_runtime_api::{Event, SessionEvents, SessionStore};
use agent_runtime_sql::{SqlStoreConfig, build};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Sessions whose events the per-session mode writes at the same time.
const CONCURRENT_APPENDS: usize = 16;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("batch", String::as_str).to_owned();
    let number = |i: usize, default: u64| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (sessions, per_batch, batches) = (number(1, 100), number(2, 1), number(3, 200));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = args
        .get(4)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = build(&SqlStoreConfig::new(url)).await.expect("the store");

    let prefix = unique_prefix("bench");
    let ids: Vec<Arc<str>> = (0..sessions)
        .map(|i| format!("{prefix}-{i}").into())
        .collect();
    for id in &ids {
        store
            .create(&sample_record(id, "bench"))
            .await
            .expect("create");
    }

    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(batches as usize);
    for b in 0..batches {
        let groups: Vec<(Arc<str>, Vec<Event>)> = ids
            .iter()
            .map(|id| {
                let first = b * per_batch + 1;
                (
                    id.clone(),
                    (first..first + per_batch).map(sample_event).collect(),
                )
            })
            .collect();
        let at = Instant::now();
        match mode.as_str() {
            "per-session" => per_session(&store, groups).await,
            "batch" => batch(store.as_ref(), &groups).await,
            other => panic!("unknown mode {other}: per-session or batch"),
        }
        latencies.push(at.elapsed());
    }
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;

    latencies.sort();
    let events = sessions * per_batch * batches;
    let mean = wall / batches as u32;
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    println!(
        "{mode}: {sessions} sessions x {per_batch} events x {batches} batches: \
         {:.0} events/s, batch mean {:.2} ms, p99 {:.2} ms, CPU {:.1} us/event",
        events as f64 / wall.as_secs_f64(),
        mean.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / events as f64,
    );
}

async fn per_session(store: &Arc<dyn SessionStore>, groups: Vec<(Arc<str>, Vec<Event>)>) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_APPENDS));
    let mut tasks = JoinSet::new();
    for (id, events) in groups {
        let (store, permits) = (store.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await.expect("open");
            store.append_events(&id, &events).await.expect("append");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
}

async fn batch(store: &dyn SessionStore, groups: &[(Arc<str>, Vec<Event>)]) {
    let entries: Vec<SessionEvents<'_>> = groups
        .iter()
        .map(|(id, events)| SessionEvents {
            session_id: id,
            events,
        })
        .collect();
    for outcome in store.append_batch(&entries).await {
        outcome.expect("append");
    }
}

/// User and system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are the 12th
    // and 13th of them, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
