//! The request payloads of the protocol as types: what a client sends on Socket.IO and as
//! REST bodies and query strings. [`super::payload`] parses through them, and the
//! protocol's JSON Schema and OpenAPI document ([`super::schema`]) describe them, so the
//! two cannot drift.
//!
//! Field types are the wrappers of `transport::fields`: each refuses a wrong value with the
//! words the protocol promises (`must be a string`, `must not be empty`, ...). Optional
//! fields that are `null` count as absent.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::fields::{Behavior, Content, Cost, Count, Flag, Object, Text};
use super::schema;

/// `session:create` and `POST /v1/sessions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    /// The profile to run.
    pub agent_type: Text,
    /// Checked against the profile's metadata schema.
    #[serde(default)]
    pub metadata: Option<Object>,
    /// A proposed session id; generated when absent.
    #[serde(default)]
    pub session_id: Option<Text>,
    /// A first message, sent once the session is idle.
    #[serde(default)]
    pub message: Option<Content>,
    /// Admins only: the principal the session is created for.
    #[serde(default)]
    pub owner: Option<Text>,
    /// Limits within the profile's.
    #[serde(default)]
    pub budget: Option<BudgetLimits>,
}

/// A budget's limits, each absent (or null) when unlimited.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(rename = "Budget")]
pub struct BudgetLimits {
    /// The most cost, in USD, as the turns' `result` lines report it.
    #[serde(default)]
    pub max_cost_usd: Option<Cost>,
    /// The most tokens, input and output together.
    #[serde(default)]
    pub max_tokens: Option<Count>,
    /// The most turns.
    #[serde(default)]
    pub max_turns: Option<Count>,
}

/// `session:message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageRequest {
    pub session_id: Text,
    pub content: Content,
    /// The client's id for the message; generated when absent.
    #[serde(default)]
    pub message_id: Option<Text>,
}

/// `POST /v1/sessions/{id}/messages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostMessageRequest {
    pub content: Content,
    /// The client's id for the message; generated when absent.
    #[serde(default)]
    pub message_id: Option<Text>,
    /// Answer once the turn this message started has its `result` (200 with
    /// `MessageResult`) instead of at once (202 with `MessageAccepted`).
    #[serde(default)]
    pub wait: Option<Flag>,
}

/// `session:join`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    pub session_id: Text,
    /// Events with a greater seq are returned; without it, none (the socket only joins).
    #[serde(default)]
    pub after_seq: Option<Count>,
}

/// The requests about one session that carry nothing else: `session:leave`,
/// `session:interrupt`, `session:stop`, `session:resume`, `session:delete`,
/// `session:get`, `session:files`, `session:fork`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionIdRequest {
    pub session_id: Text,
}

/// `session:answer`: answers a pending `permission` or `question`. `message` goes with
/// `deny` only; `input`, `always` and `answers` with `allow` only; `answers` answers a
/// `question`, `input` and `always` a `permission`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswerRequest {
    pub session_id: Text,
    /// The `requestId` of the `permission` or `question` event.
    pub request_id: Text,
    pub behavior: Behavior,
    /// For `deny`: what the agent is told.
    #[serde(default)]
    pub message: Option<Text>,
    /// For `allow` of a permission: the input the tool runs with instead of the agent's.
    #[serde(default)]
    pub input: Option<Object>,
    /// For `allow` of a permission: also allow every later call of the tool.
    #[serde(default)]
    pub always: Option<Flag>,
    /// For `allow` of a question: question text → answer text.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub answers: Option<Object>,
}

// A copy of `AnswerRequest`'s fields, not a `#[serde(flatten)]` inside it: a flattened
// field's error loses its path, and the error messages name the field.
/// `POST /v1/sessions/{id}/answers`: [`AnswerRequest`] without `sessionId`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostAnswerRequest {
    /// The `requestId` of the `permission` or `question` event.
    pub request_id: Text,
    pub behavior: Behavior,
    /// For `deny`: what the agent is told.
    #[serde(default)]
    pub message: Option<Text>,
    /// For `allow` of a permission: the input the tool runs with instead of the agent's.
    #[serde(default)]
    pub input: Option<Object>,
    /// For `allow` of a permission: also allow every later call of the tool.
    #[serde(default)]
    pub always: Option<Flag>,
    /// For `allow` of a question: question text → answer text.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub answers: Option<Object>,
}

/// `session:budget` (admins only): the session's new limits, replacing the old whole.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetBudgetRequest {
    pub session_id: Text,
    pub budget: BudgetLimits,
}

/// `session:list` (the payload may be left out); `GET /v1/sessions` takes the same as
/// its query string.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListSessionsRequest {
    /// Only sessions of this profile.
    #[serde(default)]
    pub agent_type: Option<Text>,
    /// Only sessions in this status.
    #[serde(default)]
    #[schemars(with = "Option<schema::Status>")]
    pub status: Option<Text>,
    /// Page size, at least 1 (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<Count>,
    /// From a previous page's `nextCursor`.
    #[serde(default)]
    pub cursor: Option<Text>,
}

/// `profile:list`: no fields (the payload may be left out).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListProfilesRequest {}

/// The Socket.IO handshake's `auth`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct HandshakeAuth {
    /// The shared secret, an API key or a JWT; an `Authorization: Bearer` header works
    /// too. Anything (or nothing) with `auth.mode = "none"`.
    #[serde(default)]
    pub token: Option<String>,
}
