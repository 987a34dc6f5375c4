//! The EventBus: how what happens to sessions reaches the transports, which the session
//! manager publishes to and knows nothing about.
//!
//! Persisted events take the short way. The writer hands each one to the [`LiveSink`]
//! (the transports' fan-out to connected clients) in its own task, and to the channel of
//! its session, which only that session's followers (SSE streams) hear: no task wakes for
//! another session's events, and no event crosses a task it does not need to. Each event
//! is rendered for the wire once, by whichever transport asks first, and the same bytes
//! go to every client. Rarer news (a session started, a session deleted) is broadcast.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use agent_runtime_api::{Event, async_trait};
use futures::FutureExt;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

/// Live events buffered per follower of a session; a follower further behind gets
/// `Lagged` and catches up from the persisted log.
const FOLLOWER_BUFFER: usize = 1024;
/// Lifecycle news buffered per subscriber.
const LIFECYCLE_BUFFER: usize = 1024;

/// News of a session's lifecycle, broadcast to every subscriber.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    /// A session's agent became ready (created or resumed), with the time each phase
    /// took, so a slow sandbox provider shows.
    Started {
        /// The session's id.
        session_id: Arc<str>,
        /// How long each phase took.
        timings: StartTimings,
    },
    /// A session and everything stored for it were deleted.
    Deleted {
        /// The session's id.
        session_id: Arc<str>,
    },
}

/// How long bringing a session to life took, by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartTimings {
    /// Loading and rendering the profile, restoring stored files.
    pub prepare: std::time::Duration,
    /// Creating the sandbox (for remote providers: image and sandbox).
    pub sandbox: std::time::Duration,
    /// Starting the agent until it answered `initialize`.
    pub agent: std::time::Duration,
}

impl StartTimings {
    /// The phases by name, in order.
    pub fn phases(&self) -> [(&'static str, std::time::Duration); 3] {
        [
            ("prepare", self.prepare),
            ("sandbox", self.sandbox),
            ("agent", self.agent),
        ]
    }
}

/// An event of a session's log, persisted, on its way to clients.
#[derive(Debug)]
pub struct Published {
    session_id: Arc<str>,
    event: Event,
    /// When the event was made (for an agent event, when its line was read).
    made: Instant,
    /// The event as clients receive it, made once by the first transport that sends it.
    rendered: OnceLock<Option<Box<RawValue>>>,
}

impl Published {
    /// The session the event belongs to.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// When the event was made (for an agent event, when its line was read), for the
    /// latency metrics.
    pub fn made(&self) -> Instant {
        self.made
    }

    /// The event in the transports' wire form: made by `render` the first time it is
    /// asked for, then the same bytes for every client of every transport. `None` when
    /// it could not be rendered (`render` logs why).
    pub fn rendered(
        &self,
        render: impl FnOnce(&str, &Event) -> Option<Box<RawValue>>,
    ) -> Option<&RawValue> {
        self.rendered
            .get_or_init(|| render(&self.session_id, &self.event))
            .as_deref()
    }
}

/// Where the writer hands every persisted event, in order per session, from its own
/// task: the transports' fan-out to their connected clients. It must not wait on a
/// client; a client that cannot take an event now misses it live and fills the gap from
/// the log.
#[async_trait]
pub trait LiveSink: Send + Sync {
    /// An event was persisted.
    async fn appended(&self, event: &Published);
}

/// The channels through which the runtime tells transports what happened.
#[derive(Clone)]
pub struct EventBus(Arc<Channels>);

/// A session's channel to its followers.
struct Channel {
    number: u64,
    sender: broadcast::Sender<Arc<Published>>,
}

struct Channels {
    lifecycle: broadcast::Sender<DomainEvent>,
    /// One channel per session that has followers; dropped when its last follower left
    /// or the session was deleted.
    followers: Mutex<HashMap<Arc<str>, Channel>>,
    /// Numbers channels, so a follower tells its channel from a later one of the same
    /// session.
    channels_opened: AtomicU64,
    sink: OnceLock<Arc<dyn LiveSink>>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").finish_non_exhaustive()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscriber, no follower and no sink yet.
    pub fn new() -> Self {
        let (lifecycle, _) = broadcast::channel(LIFECYCLE_BUFFER);
        Self(Arc::new(Channels {
            lifecycle,
            followers: Mutex::default(),
            channels_opened: AtomicU64::new(0),
            sink: OnceLock::new(),
        }))
    }

    /// Sets the sink every persisted event is handed to. There is one per runtime; a
    /// second call is refused and returns `false`.
    pub fn set_sink(&self, sink: Arc<dyn LiveSink>) -> bool {
        self.0.sink.set(sink).is_ok()
    }

    /// Broadcasts lifecycle news; having no subscriber is fine. A deleted session's
    /// followers hear their channel close.
    pub fn publish(&self, event: DomainEvent) {
        if let DomainEvent::Deleted { session_id } = &event {
            self.0.followers.lock().unwrap().remove(session_id);
        }
        let _ = self.0.lifecycle.send(event);
    }

    /// A subscription to lifecycle news from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.0.lifecycle.subscribe()
    }

    /// Follows one session's persisted events from now on.
    pub fn follow(&self, session_id: &str) -> Follower {
        let mut followers = self.0.followers.lock().unwrap();
        let (channel, receiver) = match followers.get(session_id) {
            Some(channel) => (channel.number, channel.sender.subscribe()),
            None => {
                let (sender, receiver) = broadcast::channel(FOLLOWER_BUFFER);
                let number = self.0.channels_opened.fetch_add(1, Ordering::Relaxed);
                followers.insert(session_id.into(), Channel { number, sender });
                (number, receiver)
            }
        };
        Follower {
            bus: self.clone(),
            session_id: session_id.into(),
            channel,
            receiver,
        }
    }

    /// Hands a session's persisted events, in order, to the sink and to the session's
    /// followers; `made` says when each was made, index for index.
    pub(crate) async fn publish_events(
        &self,
        session_id: &Arc<str>,
        events: Vec<Event>,
        made: Vec<Instant>,
    ) {
        let followers = (self.0.followers.lock().unwrap())
            .get(session_id)
            .map(|channel| channel.sender.clone());
        let sink = self.0.sink.get();
        for (event, made) in events.into_iter().zip(made) {
            let published = Arc::new(Published {
                session_id: session_id.clone(),
                event,
                made,
                rendered: OnceLock::new(),
            });
            if let Some(sink) = sink {
                // The writer must outlive a faulty sink: a panic here would end the
                // persistence of every session.
                let handed = AssertUnwindSafe(sink.appended(&published)).catch_unwind();
                if handed.await.is_err() {
                    tracing::error!(%session_id, seq = published.event.seq, "the live sink panicked; clients missed this event live");
                }
            }
            if let Some(followers) = &followers {
                // Fails only when the last follower left meanwhile.
                let _ = followers.send(published);
            }
        }
    }
}

/// A subscription to one session's persisted events. The session's channel lives as long
/// as it has followers.
pub struct Follower {
    bus: EventBus,
    session_id: Arc<str>,
    /// The number of its channel.
    channel: u64,
    receiver: broadcast::Receiver<Arc<Published>>,
}

impl Follower {
    /// The next event; `Lagged` when events were missed (they are in the log), `Closed`
    /// once the session was deleted.
    pub async fn recv(&mut self) -> Result<Arc<Published>, broadcast::error::RecvError> {
        self.receiver.recv().await
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut followers = self.bus.0.followers.lock().unwrap();
        // Under the lock no one subscribes meanwhile; this follower is still counted.
        // The channel may be a newer one (the session was deleted and followed again).
        if let Some(channel) = followers.get(&self.session_id)
            && channel.number == self.channel
            && channel.sender.receiver_count() <= 1
        {
            followers.remove(&self.session_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use agent_runtime_api::EventKind;
    use chrono::Utc;

    use super::*;

    fn event(seq: u64) -> Event {
        Event {
            seq,
            at: Utc::now(),
            kind: EventKind::Status,
            data: RawValue::from_string(r#"{"status":"idle"}"#.into()).unwrap(),
        }
    }

    /// Notes what it was handed, and renders each event by counting.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<(String, u64)>>,
        renders: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl LiveSink for Recorder {
        async fn appended(&self, event: &Published) {
            event.rendered(|_, _| {
                self.renders
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                RawValue::from_string("{}".into()).ok()
            });
            self.seen
                .lock()
                .unwrap()
                .push((event.session_id().into(), event.event().seq));
        }
    }

    #[tokio::test]
    async fn followers_hear_only_their_session_and_share_the_rendering() {
        let bus = EventBus::new();
        let sink = Arc::new(Recorder::default());
        assert!(bus.set_sink(sink.clone()));
        assert!(!bus.set_sink(sink.clone()), "one sink per runtime");
        let mut a = bus.follow("a");
        let mut also_a = bus.follow("a");
        bus.publish_events(
            &"a".into(),
            vec![event(1), event(2)],
            vec![Instant::now(); 2],
        )
        .await;
        bus.publish_events(&"b".into(), vec![event(1)], vec![Instant::now(); 1])
            .await;
        assert_eq!(
            *sink.seen.lock().unwrap(),
            [("a".into(), 1), ("a".into(), 2), ("b".into(), 1)]
        );
        for receiver in [&mut a, &mut also_a] {
            for seq in [1, 2] {
                let published = receiver.recv().await.unwrap();
                assert_eq!((published.session_id(), published.event().seq), ("a", seq));
                // Rendered by the sink already: the follower gets the same bytes.
                let rendered = published.rendered(|_, _| unreachable!("rendered twice"));
                assert_eq!(rendered.map(RawValue::get), Some("{}"));
            }
            assert!(
                receiver.receiver.try_recv().is_err(),
                "nothing of session b"
            );
        }
        assert_eq!(sink.renders.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    struct Panicking;

    #[async_trait]
    impl LiveSink for Panicking {
        async fn appended(&self, _: &Published) {
            panic!("a faulty sink");
        }
    }

    #[tokio::test]
    async fn a_panicking_sink_neither_stops_publishing_nor_the_followers() {
        let bus = EventBus::new();
        assert!(bus.set_sink(Arc::new(Panicking)));
        let mut follower = bus.follow("a");
        bus.publish_events(
            &"a".into(),
            vec![event(1), event(2)],
            vec![Instant::now(); 2],
        )
        .await;
        for seq in [1, 2] {
            assert_eq!(follower.recv().await.unwrap().event().seq, seq);
        }
    }

    #[tokio::test]
    async fn deleting_closes_the_followers_and_a_channel_goes_with_its_last_follower() {
        let bus = EventBus::new();
        let mut follower = bus.follow("a");
        bus.publish(DomainEvent::Deleted {
            session_id: "a".into(),
        });
        assert!(matches!(
            follower.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ));

        let (b, also_b) = (bus.follow("b"), bus.follow("b"));
        drop(b);
        assert_eq!(bus.0.followers.lock().unwrap().len(), 1);
        drop(also_b);
        drop(follower);
        assert!(bus.0.followers.lock().unwrap().is_empty());
    }
}
