//! Group commit of session events: actors hand events to one writer task, which persists
//! everything that queued up while the previous batch was being written, then publishes
//! each event on the bus. So a client never sees an event that a crash could lose, and
//! the store sees one write per batch and session, not one per line.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{AdapterError, Event, SessionStore};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::bus::{DomainEvent, EventBus};

/// The most events persisted in one batch.
const MAX_BATCH: usize = 2048;
/// Attempts at a failure that is not an outage before the events are given up on.
pub(crate) const MAX_ATTEMPTS_ON_ERROR: u32 = 20;
/// Sessions whose events are written at the same time.
const CONCURRENT_APPENDS: usize = 16;
/// Queued events before actors wait: the bound that turns a slow store into
/// backpressure on the agents instead of unbounded memory.
const QUEUE_CAPACITY: usize = 16 * 1024;

enum Request {
    Append { session_id: Arc<str>, event: Event },
    Flush(oneshot::Sender<()>),
}

/// The handle actors use to persist and publish their events.
#[derive(Clone)]
pub(crate) struct EventWriter {
    requests: mpsc::Sender<Request>,
}

impl EventWriter {
    /// Starts the writer task.
    pub(crate) fn start(store: Arc<dyn SessionStore>, bus: EventBus) -> Self {
        let (requests, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(store, bus, receiver));
        Self { requests }
    }

    /// Queues an event; waits only when the queue is full.
    pub(crate) async fn append(&self, session_id: Arc<str>, event: Event) {
        if self
            .requests
            .send(Request::Append { session_id, event })
            .await
            .is_err()
        {
            tracing::error!("event writer has stopped; an event was not persisted");
        }
    }

    /// Resolves once every event queued before this call is persisted and published.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.requests.send(Request::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(store: Arc<dyn SessionStore>, bus: EventBus, mut receiver: mpsc::Receiver<Request>) {
    let mut batch: Vec<(Arc<str>, Event)> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(request) = next {
            match request {
                Request::Append { session_id, event } => batch.push((session_id, event)),
                Request::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < MAX_BATCH {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        // Sessions are written side by side: a store with a connection pool commits them
        // in parallel instead of paying one commit's latency per session in turn. Each
        // session's events stay in order: one append per session per batch.
        let (store, bus) = (store.as_ref(), &bus);
        futures::stream::iter(group_by_session(batch.drain(..)))
            .for_each_concurrent(CONCURRENT_APPENDS, |(session_id, events)| async move {
                append_with_retry(store, &session_id, &events).await;
                for event in events {
                    bus.publish(DomainEvent::Appended {
                        session_id: session_id.clone(),
                        event: Arc::new(event),
                    });
                }
            })
            .await;
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Splits a batch into one run of events per session, keeping each session's order, so
/// that each session costs one `append_events` per batch.
fn group_by_session(batch: impl Iterator<Item = (Arc<str>, Event)>) -> Vec<(Arc<str>, Vec<Event>)> {
    let mut groups: Vec<(Arc<str>, Vec<Event>)> = Vec::new();
    let mut index: HashMap<Arc<str>, usize> = HashMap::new();
    for (session_id, event) in batch {
        match index.get(&session_id) {
            Some(&at) => groups[at].1.push(event),
            None => {
                index.insert(session_id.clone(), groups.len());
                groups.push((session_id, vec![event]));
            }
        }
    }
    groups
}

/// Appends until the store takes the events. An outage (`Unavailable`) is waited out with
/// backoff, however long, holding the writer and so slowing the agents. Other failures
/// get [`MAX_ATTEMPTS_ON_ERROR`] attempts, so that one session's unwritable batch cannot
/// stall every session's log; a refusal no retry can change (the session is gone, the
/// events are invalid) ends the attempts at once. Events given up on are logged loudly.
async fn append_with_retry(store: &dyn SessionStore, session_id: &str, events: &[Event]) {
    let mut delay = Duration::from_millis(50);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match store.append_events(session_id, events).await {
            Ok(()) => {
                if attempts > 1 {
                    tracing::info!(session_id, attempts, "events persisted after retries");
                }
                return;
            }
            Err(AdapterError::NotFound(_)) => {
                // The session was deleted while its last events were queued.
                tracing::debug!(session_id, "dropping events of a deleted session");
                return;
            }
            Err(AdapterError::InvalidInput(reason)) => {
                tracing::error!(
                    session_id,
                    reason,
                    count = events.len(),
                    "the store refused these events as invalid; they are not in the log"
                );
                return;
            }
            Err(error) if error.is_transient() || attempts < MAX_ATTEMPTS_ON_ERROR => {
                tracing::warn!(session_id, %error, attempts, "persisting events failed; retrying");
            }
            Err(error) => {
                tracing::error!(
                    session_id, %error, attempts, count = events.len(),
                    "persisting events failed again and again; they are not in the log"
                );
                return;
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
