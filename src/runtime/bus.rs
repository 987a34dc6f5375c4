//! The EventBus: a typed broadcast of what happens to sessions. Transports and metrics
//! subscribe; the session manager publishes and knows nothing about them.

use std::sync::Arc;

use agent_runtime_api::Event;
use tokio::sync::broadcast;

/// Something that happened to a session.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    /// An event was appended to a session's log. Published only after it was persisted.
    Appended {
        /// The session's id.
        session_id: Arc<str>,
        /// The persisted event.
        event: Arc<Event>,
    },
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

/// A broadcast channel of [`DomainEvent`]s.
///
/// A subscriber that falls more than `capacity` events behind gets `Lagged` and must
/// catch up from the persisted log; nothing is lost for the other subscribers.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<DomainEvent>,
}

impl EventBus {
    /// A bus that buffers up to `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }

    /// Publishes an event; having no subscriber is fine.
    pub fn publish(&self, event: DomainEvent) {
        let _ = self.sender.send(event);
    }

    /// A new subscription that sees every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.sender.subscribe()
    }
}
