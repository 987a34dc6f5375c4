use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{AdapterError, AdapterResult};

/// One entry of a session's event log, as persisted and as sent to clients.
///
/// `data` is kept as raw JSON so that an agent's stdout line is stored and forwarded
/// verbatim, without being parsed into a tree and serialized again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Position in the session's log: 1 for the first event, then +1 per event.
    pub seq: u64,
    /// When the runtime recorded the event.
    pub at: DateTime<Utc>,
    /// What kind of event this is; decides the shape of `data`.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The payload, a JSON object.
    pub data: Box<RawValue>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
            && self.at == other.at
            && self.kind == other.kind
            && self.data.get() == other.data.get()
    }
}

/// The kinds of event in a session's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The session's status changed: `{ status, reason? }`.
    Status,
    /// A user message as it was sent to the agent: `{ messageId, content }`.
    Input,
    /// One line of the agent's output, verbatim.
    Agent,
    /// A workspace file changed: `{ path, change, size? }`.
    File,
    /// Something failed: `{ code, message, fatal }`.
    Error,
    /// The agent asks whether it may use a tool:
    /// `{ requestId, tool, input, toolUseId, suggestions, description? }`.
    Permission,
    /// The agent asks the person questions with options: `{ requestId, toolUseId, questions }`.
    Question,
    /// A `permission` or `question` request was closed: `{ requestId, outcome, by?, ... }`.
    /// Every request event is followed by at most one answer event; a request without one
    /// is pending.
    Answer,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 8] = [
        EventKind::Status,
        EventKind::Input,
        EventKind::Agent,
        EventKind::File,
        EventKind::Error,
        EventKind::Permission,
        EventKind::Question,
        EventKind::Answer,
    ];

    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "status",
            EventKind::Input => "input",
            EventKind::Agent => "agent",
            EventKind::File => "file",
            EventKind::Error => "error",
            EventKind::Permission => "permission",
            EventKind::Question => "question",
            EventKind::Answer => "answer",
        }
    }

    /// Parses the name used on the wire and in storage.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Refuses a batch whose seqs do not strictly increase, as [`crate::SessionStore`]
/// implementations must.
pub fn check_seqs_increase(events: &[Event]) -> AdapterResult<()> {
    if events.windows(2).any(|w| w[1].seq <= w[0].seq) {
        return Err(AdapterError::invalid_input(
            "event seqs must strictly increase",
        ));
    }
    Ok(())
}
