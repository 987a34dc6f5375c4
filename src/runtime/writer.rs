//! Group commit of session events: actors hand events to one writer task, which persists
//! everything that queued up while the previous batch was being written, then publishes
//! each event on the bus. So a client never sees an event that a crash could lose, and
//! the store sees one `append_batch` per batch, across all sessions, not one write per
//! line or per session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use agent_runtime_api::{
    AdapterError, AdapterResult, ErrorKind, Event, SessionEvents, SessionStore,
};
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{mpsc, oneshot};

use super::bus::EventBus;
use super::policy;
use crate::metrics::Metrics;

/// The most events persisted in one batch.
const MAX_BATCH: usize = 2048;
/// Queued events before actors wait: the bound that turns a slow store into
/// backpressure on the agents instead of unbounded memory.
const QUEUE_CAPACITY: usize = 16 * 1024;

/// How the writer retries the sessions of a batch the store did not take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retries {
    /// The delays between attempts; they must not run out, since an outage is waited
    /// out however long it lasts.
    pub(crate) delays: ExponentialBuilder,
    /// Attempts at a failure that is not an outage before the events are given up on.
    pub(crate) attempts_on_error: u32,
}

impl Retries {
    /// The retries of a running server.
    pub(crate) const SERVER: Retries = Retries {
        delays: policy::STORE_OUTAGE,
        attempts_on_error: policy::ATTEMPTS_ON_ERROR as u32,
    };
}

enum Request {
    /// `made`: when the event was made (for an agent event, when its line was read), for
    /// the latency metrics; it travels beside the event, which is the adapters' type.
    Append {
        session_id: Arc<str>,
        event: Event,
        made: Instant,
    },
    Flush(oneshot::Sender<()>),
}

/// The handle actors use to persist and publish their events.
#[derive(Clone)]
pub(crate) struct EventWriter {
    requests: mpsc::Sender<Request>,
    metrics: Arc<Metrics>,
}

impl EventWriter {
    /// Starts the writer task.
    pub(crate) fn start(
        store: Arc<dyn SessionStore>,
        bus: EventBus,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self::start_with(store, bus, metrics, Retries::SERVER)
    }

    /// Starts the writer task with its own retry timing.
    pub(crate) fn start_with(
        store: Arc<dyn SessionStore>,
        bus: EventBus,
        metrics: Arc<Metrics>,
        retries: Retries,
    ) -> Self {
        let (requests, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(store, bus, metrics.clone(), receiver, retries));
        Self { requests, metrics }
    }

    /// Queues an event made at `made`; waits only when the queue is full.
    pub(crate) async fn append(&self, session_id: Arc<str>, event: Event, made: Instant) {
        let request = Request::Append {
            session_id,
            event,
            made,
        };
        if self.requests.send(request).await.is_err() {
            tracing::error!("event writer has stopped; an event was not persisted");
        }
        self.metrics
            .writer_queue(QUEUE_CAPACITY - self.requests.capacity());
    }

    /// Resolves once every event queued before this call is persisted and published.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.requests.send(Request::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(
    store: Arc<dyn SessionStore>,
    bus: EventBus,
    metrics: Arc<Metrics>,
    mut receiver: mpsc::Receiver<Request>,
    retries: Retries,
) {
    let mut batch: Vec<(Arc<str>, Event, Instant)> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(request) = next {
            match request {
                Request::Append {
                    session_id,
                    event,
                    made,
                } => batch.push((session_id, event, made)),
                Request::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < MAX_BATCH {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        // Set here as well as by the actors, so the gauge falls when they stop adding.
        metrics.writer_queue(receiver.len());
        let groups = group_by_session(batch.drain(..));
        persist_and_publish(store.as_ref(), &bus, &metrics, groups, retries).await;
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// One session's events of a batch, and how often the store was asked to take them.
struct Pending {
    session_id: Arc<str>,
    events: Vec<Event>,
    /// When each event was made, index for index.
    made: Vec<Instant>,
    attempts: u32,
}

/// Persists the sessions of a batch with one `append_batch` per attempt, and publishes
/// each session's events as soon as the store took them, so a session the store refuses
/// or fails does not hold back the others. The sessions it did not take are retried
/// together until they are taken or given up on; events given up on are never published.
///
/// An outage (`Unavailable`) is waited out with backoff, however long, holding the
/// writer and so slowing the agents. Other failures get `attempts_on_error` attempts,
/// so that one session's unwritable events cannot stall every session's log; a refusal
/// no retry can change (the session is gone, the events are invalid) ends the attempts
/// at once. Events given up on are logged loudly.
async fn persist_and_publish(
    store: &dyn SessionStore,
    bus: &EventBus,
    metrics: &Metrics,
    groups: Vec<Group>,
    retries: Retries,
) {
    let mut pending: Vec<Pending> = groups
        .into_iter()
        .map(|(session_id, events, made)| Pending {
            session_id,
            events,
            made,
            attempts: 0,
        })
        .collect();
    let mut delays = retries.delays.build();
    while !pending.is_empty() {
        let asked = std::time::Instant::now();
        let outcomes = {
            let entries: Vec<SessionEvents<'_>> = pending
                .iter()
                .map(|p| SessionEvents {
                    session_id: &p.session_id,
                    events: &p.events,
                })
                .collect();
            store.append_batch(&entries).await
        };
        // A store that answers fewer outcomes than entries has not confirmed the rest.
        let stored = asked.elapsed();
        let (sessions, events) = (
            pending.len(),
            pending.iter().map(|p| p.events.len()).sum::<usize>(),
        );
        metrics.writer_batch(events);
        let outcomes = outcomes.into_iter().chain(std::iter::repeat_with(|| {
            Err(AdapterError::other(
                "the store gave no outcome for these events",
            ))
        }));
        let mut unavailable = None;
        let mut retry = Vec::new();
        for (mut group, outcome) in pending.into_iter().zip(outcomes) {
            group.attempts += 1;
            match settle(&group, outcome, retries, &mut unavailable) {
                Settled::Persisted => {
                    for (event, made) in group.events.iter().zip(&group.made) {
                        metrics.event_persisted(event.kind, *made);
                    }
                    (bus.publish_events(&group.session_id, group.events, group.made)).await
                }
                Settled::Retry => retry.push(group),
                Settled::GivenUp => {}
            }
        }
        tracing::debug!(
            sessions,
            events,
            store_us = stored.as_micros() as u64,
            publish_us = (asked.elapsed() - stored).as_micros() as u64,
            "batch written"
        );
        if let Some(error) = unavailable {
            tracing::warn!(%error, sessions = retry.len(), "the store is unavailable; retrying");
        }
        pending = retry;
        if !pending.is_empty()
            && let Some(delay) = delays.next()
        {
            tokio::time::sleep(delay).await;
        }
    }
}

/// What becomes of one session's events after an attempt.
enum Settled {
    /// The store took them: they are published.
    Persisted,
    /// They are to be tried again.
    Retry,
    /// They are not in the log and never will be: they are dropped, unpublished.
    GivenUp,
}

/// Judges one session's outcome and logs it. Outage errors are not logged here but kept
/// in `unavailable`, so an outage logs one line per attempt, not one per session.
fn settle(
    group: &Pending,
    outcome: AdapterResult<()>,
    retries: Retries,
    unavailable: &mut Option<AdapterError>,
) -> Settled {
    let session = &*group.session_id;
    let (attempts, count) = (group.attempts, group.events.len());
    match outcome {
        Ok(()) => {
            if attempts > 1 {
                tracing::info!(
                    session_id = session,
                    attempts,
                    "events persisted after retries"
                );
            }
            Settled::Persisted
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // The session was deleted while its last events were queued.
            tracing::debug!(session_id = session, "dropping events of a deleted session");
            Settled::GivenUp
        }
        Err(error) if error.kind() == ErrorKind::InvalidInput => {
            tracing::error!(
                session_id = session,
                %error,
                count,
                "the store refused these events as invalid; they are not in the log"
            );
            Settled::GivenUp
        }
        Err(error) if error.is_transient() => {
            *unavailable = Some(error);
            Settled::Retry
        }
        Err(error) if attempts < retries.attempts_on_error => {
            tracing::warn!(session_id = session, %error, attempts, "persisting events failed; retrying");
            Settled::Retry
        }
        Err(error) => {
            tracing::error!(
                session_id = session, %error, attempts, count,
                "persisting events failed again and again; they are not in the log"
            );
            Settled::GivenUp
        }
    }
}

/// One session's events of a batch, and when each was made.
type Group = (Arc<str>, Vec<Event>, Vec<Instant>);

/// Splits a batch into one run of events per session, keeping each session's order, so
/// that each session is one entry of the batch append.
fn group_by_session(batch: impl Iterator<Item = (Arc<str>, Event, Instant)>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Arc<str>, usize> = HashMap::new();
    for (session_id, event, made) in batch {
        match index.get(&session_id) {
            Some(&at) => {
                groups[at].1.push(event);
                groups[at].2.push(made);
            }
            None => {
                index.insert(session_id.clone(), groups.len());
                groups.push((session_id, vec![event], vec![made]));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use super::super::bus::{LiveSink, Published};
    use super::*;
    use agent_runtime_api::contract::{sample_event, sample_record};
    use agent_runtime_api::memory::MemorySessionStore;
    use agent_runtime_api::{
        AdapterResult, ApiKeyRecord, SessionFilter, SessionPage, SessionRecord, async_trait,
    };

    /// Retries fast enough for a test to see a session given up on.
    const FAST: Retries = Retries {
        delays: policy::STORE_OUTAGE
            .with_min_delay(std::time::Duration::from_millis(1))
            .with_max_delay(std::time::Duration::from_millis(4)),
        attempts_on_error: 3,
    };

    /// A store in memory that fails as told: some sessions always (`broken`), some for
    /// their first attempts (`flaky`), every session for the first calls (`outage_calls`).
    /// At every call it notes what the writer had published by then.
    struct FailingStore {
        inner: MemorySessionStore,
        broken: HashSet<String>,
        flaky: Mutex<HashMap<String, u32>>,
        outage_calls: Mutex<u32>,
        published: Arc<Seen>,
        calls: Mutex<Vec<Call>>,
    }

    /// The sink of the tests' bus: notes every (session, seq) handed to it, in order.
    #[derive(Default)]
    struct Seen(Mutex<Vec<(String, u64)>>);

    #[async_trait]
    impl LiveSink for Seen {
        async fn appended(&self, published: &Published) {
            let seen = (published.session_id().to_owned(), published.event().seq);
            self.0.lock().unwrap().push(seen);
        }
    }

    impl Seen {
        fn published(&self) -> Vec<(String, u64)> {
            self.0.lock().unwrap().clone()
        }
    }

    /// One call of `append_batch`: its sessions, and the (session, seq) published before.
    #[derive(Debug)]
    struct Call {
        sessions: Vec<String>,
        published_before: HashSet<(String, u64)>,
    }

    impl FailingStore {
        /// A store, and the bus the writer publishes on, whose sink it watches.
        fn new() -> (Self, EventBus) {
            let bus = EventBus::new();
            let published = Arc::new(Seen::default());
            assert!(bus.set_sink(published.clone()));
            let store = Self {
                inner: MemorySessionStore::new(),
                broken: HashSet::new(),
                flaky: Mutex::new(HashMap::new()),
                outage_calls: Mutex::new(0),
                published,
                calls: Mutex::new(Vec::new()),
            };
            (store, bus)
        }

        fn note_published(&self) -> HashSet<(String, u64)> {
            self.published.published().into_iter().collect()
        }

        /// Every event of the session's log, as persisted.
        async fn stored(&self, id: &str) -> Vec<u64> {
            let events = self.inner.events_after(id, 0, usize::MAX).await.unwrap();
            events.iter().map(|e| e.seq).collect()
        }
    }

    #[async_trait]
    impl SessionStore for FailingStore {
        async fn append_batch(&self, batch: &[SessionEvents<'_>]) -> Vec<AdapterResult<()>> {
            let seen = self.note_published();
            let sessions = batch.iter().map(|e| e.session_id.to_owned()).collect();
            self.calls.lock().unwrap().push(Call {
                sessions,
                published_before: seen,
            });
            {
                let mut outage = self.outage_calls.lock().unwrap();
                if *outage > 0 {
                    *outage -= 1;
                    let down = AdapterError::unavailable("connection refused");
                    return batch.iter().map(|_| Err(down.clone())).collect();
                }
            }
            let mut outcomes = Vec::new();
            for entry in batch {
                let id = entry.session_id;
                let flaky = self.flaky.lock().unwrap().get_mut(id).map(|left| {
                    let failing = *left > 0;
                    *left = left.saturating_sub(1);
                    failing
                });
                outcomes.push(if self.broken.contains(id) {
                    Err(AdapterError::other("disk I/O error"))
                } else if flaky == Some(true) {
                    Err(AdapterError::unavailable("timed out"))
                } else {
                    self.inner.append_events(id, entry.events).await
                });
            }
            outcomes
        }

        async fn create(&self, record: &SessionRecord) -> AdapterResult<()> {
            self.inner.create(record).await
        }
        async fn get(&self, id: &str) -> AdapterResult<Option<SessionRecord>> {
            self.inner.get(id).await
        }
        async fn update(&self, record: &SessionRecord) -> AdapterResult<u64> {
            self.inner.update(record).await
        }
        async fn list(
            &self,
            filter: &SessionFilter,
            limit: usize,
            cursor: Option<&str>,
        ) -> AdapterResult<SessionPage> {
            self.inner.list(filter, limit, cursor).await
        }
        async fn delete(&self, id: &str) -> AdapterResult<()> {
            self.inner.delete(id).await
        }
        async fn append_events(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
            let entry = SessionEvents {
                session_id: id,
                events,
            };
            self.append_batch(&[entry]).await.pop().unwrap_or(Ok(()))
        }
        async fn events_after(
            &self,
            id: &str,
            after: u64,
            limit: usize,
        ) -> AdapterResult<Vec<Event>> {
            self.inner.events_after(id, after, limit).await
        }
        async fn ping(&self) -> AdapterResult<()> {
            self.inner.ping().await
        }
        async fn create_key(&self, key: &ApiKeyRecord) -> AdapterResult<()> {
            self.inner.create_key(key).await
        }
        async fn key_by_hash(&self, key_hash: &str) -> AdapterResult<Option<ApiKeyRecord>> {
            self.inner.key_by_hash(key_hash).await
        }
        async fn list_keys(&self) -> AdapterResult<Vec<ApiKeyRecord>> {
            self.inner.list_keys().await
        }
        async fn revoke_key(&self, name: &str) -> AdapterResult<bool> {
            self.inner.revoke_key(name).await
        }
    }

    /// Queues `seqs` of each session, in turns, as actors running side by side would.
    async fn queue(writer: &EventWriter, sessions: &[(&str, std::ops::RangeInclusive<u64>)]) {
        let mut turns: Vec<_> = sessions
            .iter()
            .map(|(id, seqs)| (Arc::<str>::from(*id), seqs.clone()))
            .collect();
        loop {
            let mut queued = false;
            for (id, seqs) in &mut turns {
                if let Some(seq) = seqs.next() {
                    writer
                        .append(id.clone(), sample_event(seq), Instant::now())
                        .await;
                    queued = true;
                }
            }
            if !queued {
                break;
            }
        }
    }

    fn of(published: &[(String, u64)], id: &str) -> Vec<u64> {
        published
            .iter()
            .filter(|(s, _)| s == id)
            .map(|(_, seq)| *seq)
            .collect()
    }

    #[tokio::test]
    async fn failing_sessions_neither_hold_back_nor_fail_the_others() {
        let (mut store, bus) = FailingStore::new();
        store.broken.insert("broken".into());
        store.flaky.lock().unwrap().insert("flaky".into(), 2);
        for id in ["a", "b", "broken", "flaky"] {
            store.create(&sample_record(id, "alice")).await.unwrap();
        }
        let store = Arc::new(store);
        let writer = EventWriter::start_with(store.clone(), bus.clone(), Arc::default(), FAST);

        // "gone" has no record: a session deleted while its events were queued.
        queue(
            &writer,
            &[
                ("a", 1..=3),
                ("gone", 1..=2),
                ("broken", 1..=2),
                ("flaky", 1..=2),
                ("b", 1..=4),
            ],
        )
        .await;
        writer.flush().await;

        let published = store.published.published();
        assert_eq!(of(&published, "a"), [1, 2, 3]);
        assert_eq!(of(&published, "b"), [1, 2, 3, 4]);
        assert_eq!(
            of(&published, "flaky"),
            [1, 2],
            "a passing failure is retried"
        );
        assert!(
            of(&published, "broken").is_empty(),
            "nothing unpersisted is published"
        );
        assert!(
            of(&published, "gone").is_empty(),
            "nothing unpersisted is published"
        );
        for id in ["a", "b", "flaky", "broken", "gone"] {
            assert_eq!(
                store.stored(id).await,
                of(&published, id),
                "{id}: exactly the persisted events are published"
            );
        }

        let calls = store.calls.lock().unwrap();
        assert_eq!(
            calls[0].sessions.len(),
            5,
            "one batch append for all sessions: {calls:?}"
        );
        assert_eq!(
            calls[1].sessions,
            ["broken", "flaky"],
            "only failed sessions are retried"
        );
        for id in ["a", "b"] {
            assert!(
                calls[1].published_before.iter().any(|(s, _)| s == id),
                "{id}'s events are published before the failed sessions' retry"
            );
        }
        let broken_attempts = calls
            .iter()
            .filter(|call| call.sessions.iter().any(|id| id == "broken"))
            .count();
        assert_eq!(
            broken_attempts, 3,
            "a failure that is not an outage is given up on"
        );
    }

    #[tokio::test]
    async fn an_outage_is_waited_out_and_nothing_is_published_before_it_ends() {
        let (store, bus) = FailingStore::new();
        *store.outage_calls.lock().unwrap() = 6;
        for id in ["a", "b"] {
            store.create(&sample_record(id, "alice")).await.unwrap();
        }
        let store = Arc::new(store);
        // Attempts on error are few, but an outage is waited out beyond them.
        let writer = EventWriter::start_with(store.clone(), bus.clone(), Arc::default(), FAST);

        queue(&writer, &[("a", 1..=5), ("b", 1..=3)]).await;
        writer.flush().await;
        queue(&writer, &[("b", 4..=6)]).await;
        writer.flush().await;

        {
            let calls = store.calls.lock().unwrap();
            assert_eq!(
                calls.len(),
                8,
                "six calls in the outage, then one per flush: {calls:?}"
            );
            for call in &calls[..7] {
                assert!(
                    call.published_before.is_empty(),
                    "nothing is published during the outage ({call:?})"
                );
            }
        }
        let published = store.published.published();
        assert_eq!(of(&published, "a"), [1, 2, 3, 4, 5]);
        assert_eq!(of(&published, "b"), [1, 2, 3, 4, 5, 6], "in order, no gap");
        assert_eq!(store.stored("a").await, [1, 2, 3, 4, 5]);
        assert_eq!(store.stored("b").await, [1, 2, 3, 4, 5, 6]);
    }
}
