//! The JSON shapes of the wire protocol, kept apart from the domain types so that a
//! change to a stored record never changes what clients see by accident.
//!
//! **Invariant:** a session's `owner` and `version` never go on the wire.

use agent_runtime_api::{Event, SessionRecord};
use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::RuntimeError;
use crate::runtime::{FileInfo, ProfileInfo};
use crate::transport::schema;

/// A time as the protocol writes it: RFC 3339, UTC, milliseconds, `Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The protocol's session object.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Session")]
pub struct WireSession<'a> {
    /// The session's id.
    id: &'a str,
    /// The profile the session runs.
    agent_type: &'a str,
    /// Where the session is in its life.
    #[schemars(with = "schema::Status")]
    status: &'static str,
    /// The metadata it was created with (null when none).
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    metadata: &'a serde_json::Value,
    #[schemars(with = "schema::Timestamp")]
    created_at: String,
    #[schemars(with = "schema::Timestamp")]
    updated_at: String,
    #[schemars(with = "schema::Timestamp")]
    last_activity_at: String,
    /// The seq of the session's last event (0 before the first).
    last_seq: u64,
    /// The agent's own conversation id, once it has one.
    agent_session_id: Option<&'a str>,
    /// What the session's turns used.
    usage: WireUsage,
    /// The session's limits, each `null` when unlimited.
    budget: WireBudget,
    /// The session this one was forked from and the source's last seq then; `null` for
    /// a session that was created.
    forked_from: Option<WireForkedFrom<'a>>,
    /// Why the session failed, while it is `failed`.
    error: Option<WireError<'a>>,
    /// The envelopes of the `permission` and `question` events that wait for an answer.
    #[schemars(with = "Vec<schema::EventSchema>")]
    pending: Vec<Box<RawValue>>,
}

/// What a session's turns used.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Usage")]
struct WireUsage {
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
    turns: u64,
}

/// A session's limits, each `null` when unlimited.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "SessionBudget")]
struct WireBudget {
    max_cost_usd: Option<f64>,
    max_tokens: Option<u64>,
    max_turns: Option<u64>,
}

/// Why a session failed: a request error code, or `agent_crashed`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "SessionError")]
struct WireError<'a> {
    #[schemars(with = "schema::EventErrorCodeSchema")]
    code: &'a str,
    message: &'a str,
}

/// Where a fork came from: the session and the seq of the last event it copied.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ForkedFrom")]
struct WireForkedFrom<'a> {
    session_id: &'a str,
    seq: u64,
}

impl<'a> WireSession<'a> {
    /// The session object of `record`, with its pending requests.
    pub fn new(record: &'a SessionRecord, pending: &[Event]) -> Self {
        Self {
            id: &record.id,
            agent_type: &record.agent_type,
            status: record.status.as_str(),
            metadata: &record.metadata,
            created_at: timestamp(record.created_at),
            updated_at: timestamp(record.updated_at),
            last_activity_at: timestamp(record.last_activity_at),
            last_seq: record.last_seq,
            agent_session_id: record.agent_session_id.as_deref(),
            usage: WireUsage {
                input_tokens: record.usage.input_tokens,
                output_tokens: record.usage.output_tokens,
                cost_usd: record.usage.cost_usd,
                turns: record.usage.turns,
            },
            budget: WireBudget {
                max_cost_usd: record.budget.max_cost_usd,
                max_tokens: record.budget.max_tokens,
                max_turns: record.budget.max_turns,
            },
            forked_from: record.forked_from.as_ref().map(|from| WireForkedFrom {
                session_id: &from.session_id,
                seq: from.seq,
            }),
            error: record.error.as_ref().map(|e| WireError {
                code: &e.code,
                message: &e.message,
            }),
            pending: pending
                .iter()
                .filter_map(|event| rendered_envelope(&record.id, event))
                .collect(),
        }
    }
}

/// Many sessions, for list answers; `pending` gives each its pending requests.
pub fn sessions<'a>(
    records: &'a [SessionRecord],
    pending: impl Fn(&str) -> Vec<Event>,
) -> Vec<WireSession<'a>> {
    records
        .iter()
        .map(|record| WireSession::new(record, &pending(&record.id)))
        .collect()
}

/// The `session:event` envelope `{ sessionId, seq, at, type, data }`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    session_id: &'a str,
    seq: u64,
    at: String,
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a RawValue,
}

/// Serializes an event's envelope once, to be sent as is to every client.
///
/// `data` is the event's raw JSON verbatim, except that line breaks between its tokens
/// (the only place valid JSON can hold a raw line break) become spaces: an envelope is
/// always one line, as NDJSON and SSE need.
pub fn envelope(session_id: &str, event: &Event) -> Result<Box<RawValue>, RuntimeError> {
    let one_line;
    let mut data: &RawValue = &event.data;
    let text = data.get();
    if text.contains(['\n', '\r']) {
        one_line = RawValue::from_string(text.replace(['\n', '\r'], " "))
            .map_err(|e| RuntimeError::internal("reformatting event data", e))?;
        data = &one_line;
    }
    let envelope = Envelope {
        session_id,
        seq: event.seq,
        at: timestamp(event.at),
        kind: event.kind.as_str(),
        data,
    };
    serde_json::value::to_raw_value(&envelope)
        .map_err(|e| RuntimeError::internal("serializing an event", e))
}

/// [`envelope`] for [`crate::runtime::Published::rendered`]: `None` when it failed
/// (which `RuntimeError::internal` logged).
pub fn rendered_envelope(session_id: &str, event: &Event) -> Option<Box<RawValue>> {
    envelope(session_id, event).ok()
}

/// Envelopes for a page of one session's events.
pub fn envelopes(session_id: &str, events: &[Event]) -> Result<Vec<Box<RawValue>>, RuntimeError> {
    events.iter().map(|e| envelope(session_id, e)).collect()
}

/// A workspace file: `{ path, size, modifiedAt }`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "WorkspaceFile")]
pub struct WireFile<'a> {
    /// Relative to the workspace, `/`-separated.
    path: &'a str,
    /// In bytes.
    size: u64,
    #[schemars(with = "schema::Timestamp")]
    modified_at: String,
}

/// The files of a session, for `files` answers.
pub fn files(files: &[FileInfo]) -> Vec<WireFile<'_>> {
    files
        .iter()
        .map(|f| WireFile {
            path: &f.path,
            size: f.size,
            modified_at: timestamp(f.modified_at),
        })
        .collect()
}

/// A profile: `{ name, description, metadataSchema }` (the schema is null when absent).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Profile")]
pub struct WireProfile<'a> {
    /// The agent type that names the profile on create.
    name: &'a str,
    description: &'a str,
    /// The JSON Schema a session's `metadata` must satisfy; null when there is none.
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    metadata_schema: Option<&'a serde_json::Value>,
}

/// The profiles, for `profiles` answers.
pub fn profiles(profiles: &[ProfileInfo]) -> Vec<WireProfile<'_>> {
    profiles
        .iter()
        .map(|p| WireProfile {
            name: &p.name,
            description: &p.description,
            metadata_schema: p.metadata_schema.as_ref(),
        })
        .collect()
}

/// `{ session }`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "SessionResponse")]
pub struct SessionBody<'a> {
    /// The session.
    pub session: WireSession<'a>,
}

impl<'a> SessionBody<'a> {
    /// The body for one record and its pending requests.
    pub fn new(record: &'a SessionRecord, pending: &[Event]) -> Self {
        Self {
            session: WireSession::new(record, pending),
        }
    }
}

/// `{ seq }`: an answer was accepted; `seq` is its `answer` event's.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "AnswerAccepted")]
pub struct AnswerBody {
    /// The seq of the `answer` event.
    pub seq: u64,
}

/// `{ sessions, nextCursor }`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "SessionList")]
#[serde(rename_all = "camelCase")]
pub struct SessionsBody<'a> {
    /// One page of sessions.
    pub sessions: Vec<WireSession<'a>>,
    /// Where the next page starts; null on the last page.
    pub next_cursor: Option<&'a str>,
}

/// `{ events, hasMore }`, or `{ session, events, hasMore }` for `session:join`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "EventPage")]
#[serde(rename_all = "camelCase")]
pub struct EventsBody<'a> {
    /// The session, for `session:join` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<WireSession<'a>>,
    /// Envelopes, oldest first.
    #[schemars(with = "Vec<schema::EventSchema>")]
    pub events: Vec<Box<RawValue>>,
    /// Whether more events follow the last one.
    pub has_more: bool,
}

/// `{ files }`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "FileList")]
pub struct FilesBody<'a> {
    /// The session's workspace files.
    pub files: Vec<WireFile<'a>>,
}

/// `{ profiles }`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "ProfileList")]
pub struct ProfilesBody<'a> {
    /// Every profile a session can be created for.
    pub profiles: Vec<WireProfile<'a>>,
}

/// `{ messageId, seq }`: a message was accepted.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "MessageAccepted")]
#[serde(rename_all = "camelCase")]
pub struct MessageBody<'a> {
    /// The message's id.
    pub message_id: &'a str,
    /// The seq of its `input` event.
    pub seq: u64,
}

/// `{ messageId, result }`: a message's turn finished; `result` is the agent's verbatim
/// `result` line.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "MessageResult")]
#[serde(rename_all = "camelCase")]
pub struct ResultBody<'a> {
    /// The message's id.
    pub message_id: &'a str,
    /// The data of the turn's `result` event.
    #[schemars(with = "schema::AgentData")]
    pub result: &'a RawValue,
}

/// `{}`: success with nothing to say.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Empty")]
pub struct EmptyBody {}

#[cfg(test)]
mod tests {
    use agent_runtime_api::{Budget, EventKind, ForkedFrom, SessionError, SessionStatus, Usage};
    use chrono::TimeZone;

    use super::*;

    fn at(seconds: i64, millis: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(1_767_225_600 + seconds, millis * 1_000_000)
            .unwrap()
    }

    fn record() -> SessionRecord {
        SessionRecord {
            id: "s-1".into(),
            owner: "alice".into(),
            agent_type: "helper".into(),
            status: SessionStatus::Failed,
            metadata: serde_json::json!({ "regionCode": "m1" }),
            created_at: at(0, 0),
            updated_at: at(1, 5),
            last_activity_at: at(2, 120),
            last_seq: 17,
            agent_session_id: Some("agent-9".into()),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 20,
                cost_usd: 0.5,
                turns: 2,
            },
            budget: Budget {
                max_cost_usd: Some(1.0),
                max_tokens: None,
                max_turns: Some(5),
            },
            forked_from: Some(ForkedFrom {
                session_id: "s-0".into(),
                seq: 12,
                agent_session_id: Some("agent-8".into()),
            }),
            error: Some(SessionError {
                code: "agent_failed".into(),
                message: "exited".into(),
            }),
            version: 4,
        }
    }

    #[test]
    fn session_object_is_exact() {
        let json = serde_json::to_string(&WireSession::new(&record(), &[])).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"id":"s-1","agentType":"helper","status":"failed","metadata":{"regionCode":"m1"},"#,
                r#""createdAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:00:01.005Z","#,
                r#""lastActivityAt":"2026-01-01T00:00:02.120Z","lastSeq":17,"agentSessionId":"agent-9","#,
                r#""usage":{"inputTokens":10,"outputTokens":20,"costUsd":0.5,"turns":2},"#,
                r#""budget":{"maxCostUsd":1.0,"maxTokens":null,"maxTurns":5},"#,
                r#""forkedFrom":{"sessionId":"s-0","seq":12},"#,
                r#""error":{"code":"agent_failed","message":"exited"},"pending":[]}"#
            )
        );
        assert!(!json.contains("owner") && !json.contains("version"));
        assert!(
            !json.contains("agent-8"),
            "the source's conversation id stays inside"
        );
    }

    #[test]
    fn session_without_error_sends_null() {
        let mut record = record();
        record.error = None;
        record.agent_session_id = None;
        record.forked_from = None;
        let json = serde_json::to_value(WireSession::new(&record, &[])).unwrap();
        assert!(json["forkedFrom"].is_null() && json.get("forkedFrom").is_some());
        assert!(json["error"].is_null() && json.get("error").is_some());
        assert!(json["agentSessionId"].is_null());
    }

    #[test]
    fn pending_requests_are_envelopes_of_their_events() {
        let request = Event {
            seq: 9,
            at: at(3, 0),
            kind: EventKind::Permission,
            data: RawValue::from_string(r#"{"requestId":"r-1","tool":"Bash","input":{}}"#.into())
                .unwrap(),
        };
        let json = serde_json::to_value(WireSession::new(&record(), &[request])).unwrap();
        assert_eq!(
            json["pending"],
            serde_json::json!([{ "sessionId": "s-1", "seq": 9, "at": "2026-01-01T00:00:03.000Z",
                "type": "permission", "data": { "requestId": "r-1", "tool": "Bash", "input": {} } }])
        );
    }

    fn event(data: &str) -> Event {
        Event {
            seq: 3,
            at: at(0, 7),
            kind: EventKind::Agent,
            data: RawValue::from_string(data.into()).unwrap(),
        }
    }

    #[test]
    fn envelope_is_exact_and_keeps_data_verbatim() {
        let raw = envelope("s-1", &event(r#"{"type":"result","z":1.50,"a":[]}"#)).unwrap();
        assert_eq!(
            raw.get(),
            r#"{"sessionId":"s-1","seq":3,"at":"2026-01-01T00:00:00.007Z","type":"agent","data":{"type":"result","z":1.50,"a":[]}}"#
        );
    }

    #[test]
    fn envelope_is_one_line() {
        let raw = envelope("s-1", &event("{\n  \"text\": \"a\\nb\"\r\n}")).unwrap();
        assert!(!raw.get().contains(['\n', '\r']));
        let parsed: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(parsed["data"]["text"], "a\nb");
    }

    #[test]
    fn files_and_profiles() {
        let list = [FileInfo {
            path: "src/a.txt".into(),
            size: 3,
            modified_at: at(0, 0),
        }];
        assert_eq!(
            serde_json::to_string(&files(&list)).unwrap(),
            r#"[{"path":"src/a.txt","size":3,"modifiedAt":"2026-01-01T00:00:00.000Z"}]"#
        );
        let list = [ProfileInfo {
            name: "helper".into(),
            description: "helps".into(),
            metadata_schema: None,
        }];
        assert_eq!(
            serde_json::to_string(&profiles(&list)).unwrap(),
            r#"[{"name":"helper","description":"helps","metadataSchema":null}]"#
        );
    }
}
