//! The session manager: one actor per live session, owning its sandbox, agent process and
//! sequence counter. Everything else talks to a session through its actor's channel.
//!
//! Adapters are seen only as `Arc<dyn Trait>`; transports only through [`SessionManager`]
//! and the [`EventBus`].

mod bus;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{
    BlobStore, Event, ProfileSource, SandboxProvider, SessionRecord, SessionStatus, SessionStore,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use bus::{DomainEvent, EventBus};

use crate::auth::Principal;
use crate::error::RuntimeError;

/// The adapters a runtime works with.
#[derive(Clone)]
pub struct Adapters {
    /// Session records and event logs.
    pub store: Arc<dyn SessionStore>,
    /// Workspace files and transcripts.
    pub blobs: Arc<dyn BlobStore>,
    /// Agent profiles.
    pub profiles: Arc<dyn ProfileSource>,
    /// Sandboxes.
    pub sandboxes: Arc<dyn SandboxProvider>,
}

/// How the agent process is started.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The program (a name on the sandbox's PATH, or a path).
    pub command: String,
    /// Extra arguments, appended after the runtime's own.
    pub args: Vec<String>,
    /// Extra environment for the agent process (API endpoint and key).
    pub env: BTreeMap<String, String>,
    /// Whether to ask for partial messages (`stream_event` lines).
    pub include_partial_messages: bool,
}

/// The runtime's settings, as the config file gives them.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// How the agent is started.
    pub agent: AgentSettings,
    /// Environment variables every sandbox gets (PATH, LANG, ...).
    pub sandbox_env: BTreeMap<String, String>,
    /// Variables for profile templates.
    pub vars: BTreeMap<String, String>,
    /// Live sessions idle longer than this are stopped.
    pub idle_timeout: Duration,
    /// How often live sessions sync their files and transcript.
    pub sync_interval: Duration,
    /// The most live sessions at once.
    pub max_sessions: usize,
    /// Tags this runtime's sandboxes, so a restarted runtime finds its orphans.
    pub instance_tag: String,
    /// How long to wait for the agent to answer `initialize`.
    pub agent_ready_timeout: Duration,
}

/// What a client asks for when it creates a session.
#[derive(Debug, Clone, Default)]
pub struct CreateSession {
    /// The agent profile to run.
    pub agent_type: String,
    /// Application data for templates; a JSON object or null.
    pub metadata: serde_json::Value,
    /// An id proposed by the client; generated when absent.
    pub session_id: Option<String>,
    /// A first message, sent once the agent is ready.
    pub message: Option<MessageContent>,
}

/// A user message: a string or an array of Anthropic content blocks, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageContent(serde_json::Value);

impl MessageContent {
    /// Validates message content: a non-empty string, or a non-empty array of objects that
    /// each have a string `type`.
    pub fn new(content: serde_json::Value) -> Result<Self, RuntimeError> {
        todo!("{content}")
    }

    /// The content as JSON.
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }
}

/// A message accepted into a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAccepted {
    /// The message's id (the client's, or generated).
    pub message_id: String,
    /// The seq of the `input` event that records it.
    pub seq: u64,
}

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct ListSessions {
    /// Only this agent type.
    pub agent_type: Option<String>,
    /// Only this status.
    pub status: Option<SessionStatus>,
    /// Page size (default 50, at most 500).
    pub limit: Option<usize>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// One page of sessions.
#[derive(Debug, Clone)]
pub struct SessionList {
    /// The sessions.
    pub sessions: Vec<SessionRecord>,
    /// Pass back as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// A page of a session's event log.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// Events, oldest first.
    pub events: Vec<Event>,
    /// Whether more events follow the last one.
    pub has_more: bool,
}

/// A workspace file of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Relative to the workspace.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub modified_at: DateTime<Utc>,
}

/// What a client sees of a profile.
#[derive(Debug, Clone)]
pub struct ProfileInfo {
    /// The profile's name (the agent type).
    pub name: String,
    /// What the agent does.
    pub description: String,
    /// The JSON Schema of the metadata it takes.
    pub metadata_schema: Option<serde_json::Value>,
}

/// The most events one call returns.
pub const MAX_EVENT_PAGE: usize = 1000;

/// The session manager. Cheap to clone; every clone drives the same sessions.
#[derive(Clone)]
pub struct SessionManager {
    bus: EventBus,
}

impl SessionManager {
    /// The bus on which every persisted event is published.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Creates a session and starts its agent; returns once the agent is ready (`idle`).
    pub async fn create(
        &self,
        principal: &Principal,
        request: CreateSession,
    ) -> Result<SessionRecord, RuntimeError> {
        todo!("{principal:?} {request:?}")
    }

    /// Sends a message; queued while a turn runs. A stopped session is resumed first.
    pub async fn send_message(
        &self,
        principal: &Principal,
        session_id: &str,
        content: MessageContent,
        message_id: Option<String>,
    ) -> Result<MessageAccepted, RuntimeError> {
        todo!("{principal:?} {session_id} {content:?} {message_id:?}")
    }

    /// Interrupts the running turn; the agent stays alive.
    pub async fn interrupt(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        todo!("{principal:?} {session_id}")
    }

    /// Final sync, then the sandbox goes away; the session can be resumed.
    pub async fn stop(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        todo!("{principal:?} {session_id}")
    }

    /// Starts a stopped or failed session again on a new sandbox, with its files and
    /// conversation restored.
    pub async fn resume(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        todo!("{principal:?} {session_id}")
    }

    /// Stops the session if live and removes its record, log, files and transcripts.
    pub async fn delete(&self, principal: &Principal, session_id: &str) -> Result<(), RuntimeError> {
        todo!("{principal:?} {session_id}")
    }

    /// The session's record.
    pub async fn get(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        todo!("{principal:?} {session_id}")
    }

    /// The principal's sessions.
    pub async fn list(
        &self,
        principal: &Principal,
        request: ListSessions,
    ) -> Result<SessionList, RuntimeError> {
        todo!("{principal:?} {request:?}")
    }

    /// Events with seq greater than `after`, oldest first, at most `limit`
    /// (capped at [`MAX_EVENT_PAGE`]).
    pub async fn events(
        &self,
        principal: &Principal,
        session_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<EventPage, RuntimeError> {
        todo!("{principal:?} {session_id} {after} {limit}")
    }

    /// The session's workspace files: live from the sandbox, else as last synced.
    pub async fn files(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<Vec<FileInfo>, RuntimeError> {
        todo!("{principal:?} {session_id}")
    }

    /// One workspace file's bytes.
    pub async fn file(
        &self,
        principal: &Principal,
        session_id: &str,
        path: &str,
    ) -> Result<Bytes, RuntimeError> {
        todo!("{principal:?} {session_id} {path}")
    }

    /// Every profile a client can create a session for.
    pub async fn profiles(&self) -> Result<Vec<ProfileInfo>, RuntimeError> {
        todo!()
    }

    /// Checks every adapter; returns the names and errors of those that failed.
    pub async fn readiness(&self) -> Result<(), Vec<(String, String)>> {
        todo!()
    }
}
