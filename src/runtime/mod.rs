//! The session manager: one actor per live session, owning its sandbox, agent process and
//! sequence counter. Everything else talks to a session through its actor's channel.
//!
//! Adapters are seen only as `Arc<dyn Trait>`; transports only through [`SessionManager`]
//! and the [`EventBus`].

mod actor;
mod budget;
mod bus;
mod deadline;
mod expiry;
mod launch;
mod log;
mod manager;
pub(crate) mod payload;
mod policy;
mod quotas;
mod recovery;
mod sweeper;
mod workspace;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{
    BlobStore, Event, ProfileSource, SandboxProvider, SessionRecord, SessionStatus, SessionStore,
};
use chrono::{DateTime, Utc};

pub use crate::agent::AgentSettings;
pub use bus::{DomainEvent, EventBus, Follower, LiveSink, Published, StartTimings};
pub use deadline::STORE_PATIENCE;
pub(crate) use manager::Inner;
pub use manager::SessionManager;
pub use quotas::QuotaLimits;
pub use recovery::Recovered;

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

/// Where sandboxes reach the runtime's own MCP tools, and the tokens that let them in.
#[derive(Clone)]
pub struct ToolHost {
    /// The per-session tokens of the `/mcp` endpoint.
    pub sessions: Arc<crate::tools::ToolSessions>,
    /// The runtime's base URL as sandboxes see it (no trailing slash).
    pub base_url: String,
}

impl std::fmt::Debug for ToolHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolHost")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Caps on what a sandbox's output can make the runtime read, hold or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest workspace file synced or downloaded; larger ones are skipped.
    pub file_bytes: u64,
    /// The most bytes of one session's workspace kept in storage.
    pub workspace_bytes: u64,
    /// The most files and directories of a workspace the runtime lists; beyond it,
    /// nothing of the workspace is listed or synced.
    pub workspace_files: usize,
    /// The longest agent output line; a longer one becomes an `error` event.
    pub line_bytes: usize,
    /// The most event bytes in one page of replay; a page holds at least one event.
    pub replay_page_bytes: usize,
}

impl Default for Limits {
    /// The defaults of the reference config.
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Limits {
            file_bytes: 10 * MIB,
            workspace_bytes: 1024 * MIB,
            workspace_files: 100_000,
            line_bytes: 8 * MIB as usize,
            replay_page_bytes: 8 * MIB as usize,
        }
    }
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
    /// The default limits of every principal; an API key may replace them.
    pub quotas: QuotaLimits,
    /// Caps on what an agent can make the runtime read, hold or store.
    pub limits: Limits,
    /// Tags this runtime's sandboxes, so a restarted runtime finds its orphans.
    pub instance_tag: String,
    /// How long to wait for the agent to answer `initialize`.
    pub agent_ready_timeout: Duration,
    /// The runtime-served tools; without it, profiles' `[[tools]]` are not offered.
    pub tools: Option<ToolHost>,
    /// How long a request waits for work held up by the session store before it answers
    /// `storage_unavailable` (the work goes on); [`STORE_PATIENCE`] by default.
    pub store_patience: Duration,
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
    /// The principal the session is created for; only an admin may name another than
    /// itself. `None`: the caller.
    pub owner: Option<String>,
    /// Limits tighter than the profile's `[budget]`; `None`: the profile's.
    pub budget: Option<agent_runtime_api::Budget>,
}

/// A user message: a string or an array of Anthropic content blocks, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageContent(serde_json::Value);

impl MessageContent {
    /// Validates message content: a non-empty string, or a non-empty array of objects that
    /// each have a string `type`.
    pub fn new(content: serde_json::Value) -> Result<Self, RuntimeError> {
        match &content {
            serde_json::Value::String(text) if !text.is_empty() => Ok(Self(content)),
            serde_json::Value::String(_) => {
                Err(RuntimeError::invalid("content: must not be empty"))
            }
            serde_json::Value::Array(blocks) if blocks.is_empty() => {
                Err(RuntimeError::invalid("content: must not be an empty array"))
            }
            serde_json::Value::Array(blocks) => {
                for (index, block) in blocks.iter().enumerate() {
                    if !block.get("type").is_some_and(serde_json::Value::is_string) {
                        return Err(RuntimeError::invalid(format!(
                            "content[{index}]: must be an object with a string `type`"
                        )));
                    }
                }
                Ok(Self(content))
            }
            _ => Err(RuntimeError::invalid(
                "content: must be a string or an array of content blocks",
            )),
        }
    }

    /// The content as JSON.
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }
}

/// A client's answer to a request of the agent's (a `permission` or `question` event).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The tool call goes ahead.
    Allow {
        /// The input the call runs with instead of the agent's (permissions only).
        input: Option<serde_json::Map<String, serde_json::Value>>,
        /// Also allow every later call of this tool for the rest of the agent's process
        /// (permissions only).
        always: bool,
        /// The answers to a question request: question text → the chosen option's label
        /// (several labels joined by `, ` for a multi-select question) or the person's
        /// own text (questions only; every question needs one).
        answers: Option<BTreeMap<String, String>>,
    },
    /// The tool call does not run; the agent gets `message` as the tool's error.
    Deny {
        /// What the agent is told; a default sentence when absent.
        message: Option<String>,
    },
}

/// A message accepted into a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAccepted {
    /// The message's id (the client's, or generated).
    pub message_id: String,
    /// The seq of the `input` event that records it.
    pub seq: u64,
}

/// Resolves with the `result` line of the turn a message started.
pub struct TurnWaiter {
    pub(crate) result: tokio::sync::oneshot::Receiver<Box<serde_json::value::RawValue>>,
    pub(crate) deadline: deadline::StoreDeadline,
}

impl std::fmt::Debug for TurnWaiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnWaiter").finish_non_exhaustive()
    }
}

impl TurnWaiter {
    /// The turn's `result` line; `agent_failed` if the session stopped or failed before
    /// the turn ended (its events are in the log either way); `storage_unavailable` if
    /// the session store is away meanwhile (the turn goes on).
    pub async fn result(self) -> Result<Box<serde_json::value::RawValue>, RuntimeError> {
        let result = async {
            self.result.await.map_err(|_| {
                RuntimeError::new(
                    crate::error::ErrorCode::AgentFailed,
                    "the session ended before the turn finished; its events are in the log",
                )
            })
        };
        self.deadline.bound(result).await
    }
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

/// A workspace file being downloaded: read as it is sent, never held whole.
pub struct FileDownload {
    /// The file's size when it was opened; the body gives at most this many bytes.
    pub size: u64,
    /// The file's bytes.
    pub body: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
}

impl std::fmt::Debug for FileDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDownload")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_content_is_a_string_or_typed_blocks() {
        assert!(MessageContent::new(json!("hi")).is_ok());
        assert!(MessageContent::new(json!([{ "type": "text", "text": "hi" }])).is_ok());
        for (bad, field) in [
            (json!(""), "content:"),
            (json!([]), "content:"),
            (json!(3), "content:"),
            (json!(null), "content:"),
            (json!([{ "text": "no type" }]), "content[0]:"),
            (json!(["text"]), "content[0]:"),
        ] {
            let error = MessageContent::new(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(error.code, crate::error::ErrorCode::InvalidRequest);
            assert!(error.message.starts_with(field), "{}", error.message);
        }
    }
}
