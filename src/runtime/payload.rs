//! The data of the events the runtime writes itself: `status`, `input`, `file` and
//! `error`. `agent` events are the agent's lines as it printed them and have no type here.
//!
//! The fields of each payload are declared in alphabetical order on purpose: that is the
//! order these objects were always written in (serde_json's maps sort their keys), so
//! logs written before and after are byte for byte alike, and so is the wire.

use agent_runtime_api::{EventKind, RelPath, SessionStatus};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Serialize, Serializer};

use crate::error::ErrorCode;
use crate::transport::schema;

/// One event's data, as the runtime writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Payload<'a> {
    /// `{ status, reason? }`
    Status(StatusData<'a>),
    /// `{ messageId, content }`
    Input(InputData<'a>),
    /// `{ path, change, size? }`
    File(FileChange),
    /// `{ code, message, fatal, path? }`
    Error(ErrorData),
    /// `{ requestId, tool, input, toolUseId?, suggestions?, description? }`
    Permission(PermissionData<'a>),
    /// `{ requestId, toolUseId?, questions }`
    Question(QuestionData<'a>),
    /// `{ requestId, outcome, by?, message?, input?, always?, answers? }`
    Answer(AnswerData<'a>),
}

impl Payload<'_> {
    /// The event type this data goes with.
    pub(crate) fn kind(&self) -> EventKind {
        match self {
            Payload::Status(_) => EventKind::Status,
            Payload::Input(_) => EventKind::Input,
            Payload::File(_) => EventKind::File,
            Payload::Error(_) => EventKind::Error,
            Payload::Permission(_) => EventKind::Permission,
            Payload::Question(_) => EventKind::Question,
            Payload::Answer(_) => EventKind::Answer,
        }
    }
}

/// A status change: the new status, and why when it is not the ordinary course.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub(crate) struct StatusData<'a> {
    /// Why (`agent_crashed`, a request error code for `failed`, `idle`, `shutdown`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
    #[schemars(with = "schema::Status")]
    pub(crate) status: SessionStatus,
}

/// A user message as it was accepted for the agent.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub(crate) struct InputData<'a> {
    #[schemars(with = "schema::Content")]
    pub(crate) content: &'a serde_json::Value,
    #[serde(rename = "messageId")]
    pub(crate) message_id: &'a str,
}

/// The agent asks whether it may make a tool call (a `can_use_tool` request). `requestId`
/// is the runtime's own id of the request, never the agent's.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub(crate) struct PermissionData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<&'a str>,
    /// When the request is denied unanswered (the profile's `answer_timeout`).
    #[serde(rename = "expiresAt", serialize_with = "millis")]
    #[schemars(with = "schema::Timestamp")]
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) input: &'a serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "requestId")]
    pub(crate) request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) suggestions: Option<&'a serde_json::Value>,
    pub(crate) tool: &'a str,
    #[serde(rename = "toolUseId", skip_serializing_if = "Option::is_none")]
    pub(crate) tool_use_id: Option<&'a str>,
}

/// The agent asks the person questions (its `AskUserQuestion` tool): each with its
/// `question`, `header`, `options` (`label`, `description`) and `multiSelect`, as the
/// agent wrote them.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub(crate) struct QuestionData<'a> {
    /// When the request is denied unanswered (the profile's `answer_timeout`).
    #[serde(rename = "expiresAt", serialize_with = "millis")]
    #[schemars(with = "schema::Timestamp")]
    pub(crate) expires_at: DateTime<Utc>,
    #[schemars(with = "Vec<serde_json::Map<String, serde_json::Value>>")]
    pub(crate) questions: &'a serde_json::Value,
    #[serde(rename = "requestId")]
    pub(crate) request_id: &'a str,
    #[serde(rename = "toolUseId", skip_serializing_if = "Option::is_none")]
    pub(crate) tool_use_id: Option<&'a str>,
}

/// A time as the envelope's `at` is written: RFC 3339, UTC, milliseconds.
fn millis<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// How a request was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = schema::plain_enum)]
pub(crate) enum Outcome {
    /// A client allowed the call (or answered the questions).
    Allow,
    /// A client denied the call (or declined to answer).
    Deny,
    /// The agent stopped waiting (its turn ended or was interrupted).
    Withdrawn,
    /// No one answered: the deadline passed, or the session ended first (`reason`).
    Expired,
}

/// Why a request expired unanswered (the `reason` of an `expired` answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(transform = schema::plain_enum)]
pub(crate) enum ExpiryReason {
    /// Its `answer_timeout` passed; the agent was told and its turn went on.
    Timeout,
    /// The session was stopped (by a client, as idle, for a delete).
    Stopped,
    /// The runtime shut down.
    Shutdown,
    /// The agent exited on its own.
    AgentCrashed,
    /// The runtime died with the session live; found by startup recovery.
    RuntimeRestarted,
}

impl ExpiryReason {
    /// The reason as it appears in the event.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ExpiryReason::Timeout => "timeout",
            ExpiryReason::Stopped => "stopped",
            ExpiryReason::Shutdown => "shutdown",
            ExpiryReason::AgentCrashed => "agent_crashed",
            ExpiryReason::RuntimeRestarted => "runtime_restarted",
        }
    }

    /// The reason of a stop: shutdown is told apart, every other stop (a client's, the
    /// idle sweeper's, a delete's) is `stopped`.
    pub(crate) fn of_stop(reason: &str) -> Self {
        if reason == "shutdown" {
            ExpiryReason::Shutdown
        } else {
            ExpiryReason::Stopped
        }
    }

    /// The reason in the words of the note a resumed agent gets.
    pub(crate) fn in_note(self) -> &'static str {
        match self {
            ExpiryReason::Timeout => "no one answered in time",
            ExpiryReason::Stopped => "the session was stopped",
            ExpiryReason::Shutdown => "the host shut down",
            ExpiryReason::AgentCrashed => "the agent process exited",
            ExpiryReason::RuntimeRestarted => "the host stopped unexpectedly",
        }
    }

    /// What the agent and the clients are told.
    pub(crate) fn message(self) -> &'static str {
        match self {
            ExpiryReason::Timeout => "No one answered this request in time; it was denied.",
            ExpiryReason::Stopped => "The session was stopped before anyone answered.",
            ExpiryReason::Shutdown => "The runtime shut down before anyone answered.",
            ExpiryReason::AgentCrashed => "The agent exited before anyone answered.",
            ExpiryReason::RuntimeRestarted => {
                "The runtime stopped unexpectedly before anyone answered."
            }
        }
    }
}

impl Serialize for ExpiryReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The end of a request: a client's answer, naming the principal who gave it, the
/// agent's withdrawal, or its expiry with the reason.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub(crate) struct AnswerData<'a> {
    /// Allowed for the rest of the agent's process.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) always: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) answers: Option<&'a std::collections::BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) by: Option<&'a str>,
    /// The input the client edited the call to, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) input: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<&'a str>,
    pub(crate) outcome: Outcome,
    /// Why an `expired` request expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<ExpiryReason>,
    #[serde(rename = "requestId")]
    pub(crate) request_id: &'a str,
}

/// How a workspace file changed during a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = schema::plain_enum)]
pub(crate) enum Change {
    Created,
    Modified,
    Deleted,
}

/// One workspace file that changed during a turn; `size` is absent for a deleted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(rename = "FileData")]
pub(crate) struct FileChange {
    pub(crate) change: Change,
    /// Relative to the workspace, `/`-separated.
    #[schemars(with = "String")]
    pub(crate) path: RelPath,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) size: Option<u64>,
}

/// Something that went wrong in a session; `fatal` when the session ends because of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct ErrorData {
    #[schemars(with = "schema::EventErrorCodeSchema")]
    pub(crate) code: EventErrorCode,
    pub(crate) fatal: bool,
    pub(crate) message: String,
    /// The workspace file it is about (`file_skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub(crate) path: Option<RelPath>,
}

impl ErrorData {
    /// An error that is about no particular file.
    pub(crate) fn new(code: EventErrorCode, message: impl Into<String>, fatal: bool) -> Self {
        Self {
            code,
            fatal,
            message: message.into(),
            path: None,
        }
    }
}

/// The codes of `error` events (docs/protocol.md lists them). They are a wider set than
/// the request error codes: most say what happened inside a session that goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventErrorCode {
    /// An agent line over `limits.line_bytes` was dropped.
    LineTooLong,
    /// The agent printed a line that is not a JSON object (or not UTF-8).
    AgentFailed,
    /// A tool (of an MCP server or the runtime's own) failed.
    ToolFailed,
    /// A turn's `result` said `is_error`.
    TurnFailed,
    /// Workspace files were not listed or stored because of the limits.
    FileSkipped,
    /// Moving files or the transcript to storage failed.
    SyncFailed,
    /// Queued messages never reached the agent because the session ended.
    MessagesDropped,
    /// The session's usage reached a limit of its budget; it takes no more messages.
    BudgetExceeded,
    /// The agent exited on its own; fatal.
    AgentCrashed,
    /// The session could not be started; fatal, with the code the request failed with
    /// (`sandbox_failed`, `agent_failed`, `storage_unavailable`, ...).
    StartFailed(ErrorCode),
}

impl EventErrorCode {
    /// Every code but [`EventErrorCode::StartFailed`]'s, in the order docs/protocol.md
    /// lists them.
    pub(crate) const OWN: [EventErrorCode; 9] = [
        EventErrorCode::LineTooLong,
        EventErrorCode::AgentFailed,
        EventErrorCode::ToolFailed,
        EventErrorCode::TurnFailed,
        EventErrorCode::FileSkipped,
        EventErrorCode::SyncFailed,
        EventErrorCode::MessagesDropped,
        EventErrorCode::BudgetExceeded,
        EventErrorCode::AgentCrashed,
    ];

    /// The code as it appears in the event and in the record's `error`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventErrorCode::LineTooLong => "line_too_long",
            EventErrorCode::AgentFailed => "agent_failed",
            EventErrorCode::ToolFailed => "tool_failed",
            EventErrorCode::TurnFailed => "turn_failed",
            EventErrorCode::FileSkipped => "file_skipped",
            EventErrorCode::SyncFailed => "sync_failed",
            EventErrorCode::MessagesDropped => "messages_dropped",
            EventErrorCode::BudgetExceeded => "budget_exceeded",
            EventErrorCode::AgentCrashed => "agent_crashed",
            EventErrorCode::StartFailed(code) => code.as_str(),
        }
    }
}

impl Serialize for EventErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bytes(payload: &Payload<'_>) -> String {
        serde_json::to_string(payload).unwrap()
    }

    /// The bytes `json!` wrote before the payloads had types: the log and the wire must
    /// not change.
    #[test]
    fn payloads_serialize_as_the_untyped_objects_did() {
        let path = RelPath::new("src/a b.rs").unwrap();
        let content = json!([{ "type": "text", "text": "hi \"there\"" }]);
        let cases = [
            (
                Payload::Status(StatusData {
                    status: SessionStatus::Failed,
                    reason: Some("agent_crashed"),
                }),
                json!({ "status": "failed", "reason": "agent_crashed" }),
            ),
            (
                Payload::Status(StatusData {
                    status: SessionStatus::Idle,
                    reason: None,
                }),
                json!({ "status": "idle" }),
            ),
            (
                Payload::Input(InputData {
                    message_id: "m-1",
                    content: &content,
                }),
                json!({ "messageId": "m-1", "content": content }),
            ),
            (
                Payload::File(FileChange {
                    path: path.clone(),
                    change: Change::Modified,
                    size: Some(12),
                }),
                json!({ "path": path, "change": "modified", "size": 12 }),
            ),
            (
                Payload::File(FileChange {
                    path: path.clone(),
                    change: Change::Deleted,
                    size: None,
                }),
                json!({ "path": path, "change": "deleted" }),
            ),
            (
                Payload::Error(ErrorData::new(
                    EventErrorCode::StartFailed(ErrorCode::SandboxFailed),
                    "no sandbox",
                    true,
                )),
                json!({ "code": "sandbox_failed", "message": "no sandbox", "fatal": true }),
            ),
            (
                Payload::Error(ErrorData {
                    path: Some(path.clone()),
                    ..ErrorData::new(EventErrorCode::FileSkipped, "too big", false)
                }),
                json!({ "code": "file_skipped", "message": "too big", "fatal": false, "path": path }),
            ),
        ];
        for (payload, untyped) in cases {
            assert_eq!(bytes(&payload), untyped.to_string());
        }
    }

    #[test]
    fn request_and_answer_payloads_carry_their_deadline_and_expiry() {
        let input = json!({ "command": "ls" });
        let at: DateTime<Utc> = "2026-01-01T00:00:00.123456Z".parse().unwrap();
        let permission = Payload::Permission(PermissionData {
            description: None,
            expires_at: at,
            input: input.as_object().unwrap(),
            request_id: "r-1",
            suggestions: None,
            tool: "Bash",
            tool_use_id: Some("toolu_1"),
        });
        assert_eq!(
            bytes(&permission),
            r#"{"expiresAt":"2026-01-01T00:00:00.123Z","input":{"command":"ls"},"requestId":"r-1","tool":"Bash","toolUseId":"toolu_1"}"#
        );
        let expired = Payload::Answer(AnswerData {
            always: false,
            answers: None,
            by: None,
            input: None,
            message: Some(ExpiryReason::RuntimeRestarted.message()),
            outcome: Outcome::Expired,
            reason: Some(ExpiryReason::RuntimeRestarted),
            request_id: "r-1",
        });
        assert_eq!(
            bytes(&expired),
            json!({ "message": "The runtime stopped unexpectedly before anyone answered.",
                    "outcome": "expired", "reason": "runtime_restarted", "requestId": "r-1" })
            .to_string()
        );
        assert_eq!(
            serde_json::from_str::<ExpiryReason>(r#""runtime_restarted""#).unwrap(),
            ExpiryReason::RuntimeRestarted,
            "read back as written"
        );
        assert_eq!(ExpiryReason::of_stop("shutdown"), ExpiryReason::Shutdown);
        for stop in ["stopped", "idle", "deleted"] {
            assert_eq!(ExpiryReason::of_stop(stop), ExpiryReason::Stopped);
        }
    }

    #[test]
    fn every_expiry_reason_is_documented() {
        let protocol = include_str!("../../docs/protocol.md");
        for reason in [
            ExpiryReason::Timeout,
            ExpiryReason::Stopped,
            ExpiryReason::Shutdown,
            ExpiryReason::AgentCrashed,
            ExpiryReason::RuntimeRestarted,
        ] {
            assert!(
                protocol.contains(&format!("| `{}` |", reason.as_str())),
                "the expiry reason {} is missing from docs/protocol.md",
                reason.as_str()
            );
        }
    }

    #[test]
    fn every_event_error_code_is_documented() {
        let protocol = include_str!("../../docs/protocol.md");
        for code in [
            EventErrorCode::LineTooLong,
            EventErrorCode::AgentFailed,
            EventErrorCode::ToolFailed,
            EventErrorCode::TurnFailed,
            EventErrorCode::FileSkipped,
            EventErrorCode::SyncFailed,
            EventErrorCode::MessagesDropped,
            EventErrorCode::BudgetExceeded,
            EventErrorCode::AgentCrashed,
        ] {
            assert!(
                protocol.contains(&format!("| `{}` |", code.as_str())),
                "{} is missing from the event error codes of docs/protocol.md",
                code.as_str()
            );
        }
    }
}
