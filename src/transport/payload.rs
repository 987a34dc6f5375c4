//! Request payloads, parsed through the types of [`super::requests`] with serde, so that
//! every refusal is `invalid_request` naming the field by its path (`budget.maxTurns`),
//! the same on Socket.IO and REST.
//!
//! Optional fields that are `null` count as absent: JavaScript clients send either. Fields
//! the protocol does not know are ignored, except in a budget (a limit misspelt must not
//! pass for unlimited) and in an answer (a field that does not go with its `behavior`).

use std::collections::BTreeMap;

use agent_runtime_api::{Budget, SessionStatus};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::fields::{Behavior, REQUIRED};
use super::requests::{
    AnswerRequest, BudgetLimits, CreateSessionRequest, JoinRequest, ListProfilesRequest,
    ListSessionsRequest, PostAnswerRequest, PostMessageRequest, SendMessageRequest,
    SessionIdRequest, SetBudgetRequest,
};
use crate::error::RuntimeError;
use crate::runtime::{Answer, CreateSession, ListSessions, MessageContent};

/// The limits a budget has, in the words of a refusal.
const LIMITS: &str = "maxCostUsd, maxTokens, maxTurns";

/// Parses a whole payload: anything but a JSON object is refused as such.
fn parse<T: DeserializeOwned>(payload: &Value) -> Result<T, RuntimeError> {
    if !payload.is_object() {
        return Err(RuntimeError::invalid("the payload must be a JSON object"));
    }
    parse_at(payload, "")
}

/// Parses `value`, found at `prefix` (empty for a whole payload), naming the field of a
/// refusal by its path.
fn parse_at<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, RuntimeError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut path = prefix.to_owned();
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key } => push_field(&mut path, key),
                serde_path_to_error::Segment::Enum { variant } => push_field(&mut path, variant),
                serde_path_to_error::Segment::Unknown => push_field(&mut path, "?"),
            }
        }
        RuntimeError::invalid(refusal(&path, &error.into_inner().to_string()))
    })
}

fn push_field(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

/// The field named in serde's `missing field `x`` or `unknown field `x`, ...`.
fn quoted_field(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// A refusal's words: the field's path, then what is wrong with it. The field types of
/// [`super::fields`] say the latter (`must be a string`); serde's own errors are put in
/// the protocol's words; message content names its field itself (`content[1]: ...`).
fn refusal(path: &str, message: &str) -> String {
    // serde_path_to_error's path ends at the struct for a missing field, and at the
    // field itself for an unknown one.
    let child = |name: &str| {
        if path == name || path.ends_with(&format!(".{name}")) {
            return path.to_owned();
        }
        let mut child = path.to_owned();
        push_field(&mut child, name);
        child
    };
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("`{}` {REQUIRED}", child(quoted_field(rest).unwrap_or("?")));
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        // Only a budget refuses fields it does not know.
        let name = child(quoted_field(rest).unwrap_or("?"));
        return format!("`{name}` is not a limit; a budget has {LIMITS}");
    }
    if message.starts_with("invalid type: null") {
        return format!("`{path}` {REQUIRED}");
    }
    if message.starts_with("invalid type: ") && message.contains("expected struct") {
        return format!("`{path}` must be a JSON object");
    }
    if let Some(rest) = message
        .strip_prefix("content")
        .filter(|rest| rest.starts_with([':', '[']))
    {
        return format!("{path}{rest}");
    }
    format!("`{path}` {message}")
}

/// A payload that may be absent altogether (`profile:list`): null counts as `{}`.
pub fn optional_object(payload: &Value) -> Result<(), RuntimeError> {
    if payload.is_null() {
        return Ok(());
    }
    parse::<ListProfilesRequest>(payload).map(|_| ())
}

/// `session:create` and `POST /v1/sessions`: `{ agentType, metadata?, sessionId?,
/// message?, owner?, budget? }`.
pub fn create(payload: &Value) -> Result<CreateSession, RuntimeError> {
    let request: CreateSessionRequest = parse(payload)?;
    Ok(CreateSession {
        agent_type: request.agent_type.0,
        metadata: request.metadata.map_or(Value::Null, |m| Value::Object(m.0)),
        session_id: request.session_id.map(|id| id.0),
        message: request.message.map(|content| content.0),
        owner: request.owner.map(|owner| owner.0),
        budget: request.budget.map(budget_of),
    })
}

/// Parses `session:budget`: `{ sessionId, budget }`.
pub fn set_budget(payload: &Value) -> Result<(String, Budget), RuntimeError> {
    let request: SetBudgetRequest = parse(payload)?;
    Ok((request.session_id.0, budget_of(request.budget)))
}

/// `PUT /v1/sessions/{id}/budget`: `{ maxCostUsd?, maxTokens?, maxTurns? }` as the whole
/// body, each limit absent (or `null`) when unlimited; a refusal names the limit as the
/// client sent it.
pub fn budget(body: &Value) -> Result<Budget, RuntimeError> {
    if !body.is_object() {
        return Err(RuntimeError::invalid("the budget must be a JSON object"));
    }
    parse_at(body, "").map(budget_of)
}

fn budget_of(limits: BudgetLimits) -> Budget {
    Budget {
        max_cost_usd: limits.max_cost_usd.map(|cost| cost.0),
        max_tokens: limits.max_tokens.map(|count| count.0),
        max_turns: limits.max_turns.map(|count| count.0),
    }
}

/// `{ sessionId }`: the id of the session a request is about.
pub fn session_id(payload: &Value) -> Result<String, RuntimeError> {
    parse::<SessionIdRequest>(payload).map(|request| request.session_id.0)
}

/// `{ sessionId, content, messageId? }`.
#[derive(Debug)]
pub struct SendMessage {
    /// The session.
    pub session_id: String,
    /// The validated content.
    pub content: MessageContent,
    /// The client's id for the message, if it chose one.
    pub message_id: Option<String>,
}

/// Parses `session:message`.
pub fn send_message(payload: &Value) -> Result<SendMessage, RuntimeError> {
    let request: SendMessageRequest = parse(payload)?;
    Ok(SendMessage {
        session_id: request.session_id.0,
        content: request.content.0,
        message_id: request.message_id.map(|id| id.0),
    })
}

/// `POST /v1/sessions/{id}/messages`: `{ content, messageId?, wait? }`.
#[derive(Debug)]
pub struct PostMessage {
    /// The validated content.
    pub content: MessageContent,
    /// The client's id for the message, if it chose one.
    pub message_id: Option<String>,
    /// Whether to answer once the turn's `result` is there.
    pub wait: bool,
}

/// Parses the body of `POST /v1/sessions/{id}/messages`.
pub fn post_message(body: &Value) -> Result<PostMessage, RuntimeError> {
    let request: PostMessageRequest = parse(body)?;
    Ok(PostMessage {
        content: request.content.0,
        message_id: request.message_id.map(|id| id.0),
        wait: request.wait.is_some_and(|wait| wait.0),
    })
}

/// `{ sessionId, requestId, behavior, message?, input?, always?, answers? }`.
#[derive(Debug, PartialEq)]
pub struct AnswerFor {
    /// The session.
    pub session_id: String,
    /// The `requestId` of the `permission` or `question` event answered.
    pub request_id: String,
    /// The answer.
    pub answer: Answer,
}

/// Parses `session:answer`.
pub fn answer(payload: &Value) -> Result<AnswerFor, RuntimeError> {
    let request: AnswerRequest = parse(payload)?;
    let fields = Fields {
        behavior: request.behavior,
        message: request.message.map(|m| m.0),
        input: request.input.map(|i| i.0),
        always: request.always.is_some_and(|a| a.0),
        answers: request.answers.map(|a| a.0),
    };
    Ok(AnswerFor {
        session_id: request.session_id.0,
        request_id: request.request_id.0,
        answer: fields.answer(payload)?,
    })
}

/// Parses the body of `POST /v1/sessions/{id}/answers`: `requestId` and the answer.
pub fn post_answer(body: &Value) -> Result<(String, Answer), RuntimeError> {
    let request: PostAnswerRequest = parse(body)?;
    let fields = Fields {
        behavior: request.behavior,
        message: request.message.map(|m| m.0),
        input: request.input.map(|i| i.0),
        always: request.always.is_some_and(|a| a.0),
        answers: request.answers.map(|a| a.0),
    };
    Ok((request.request_id.0, fields.answer(body)?))
}

/// An answer's fields once each has its type.
struct Fields {
    behavior: Behavior,
    message: Option<String>,
    input: Option<Map<String, Value>>,
    always: bool,
    answers: Option<Map<String, Value>>,
}

impl Fields {
    /// The answer, once no field of `payload` is one that does not go with its
    /// `behavior`: `deny` takes `message`; `allow` takes `input`, `always` and `answers`.
    fn answer(self, payload: &Value) -> Result<Answer, RuntimeError> {
        let (behavior, allowed): (&str, &[&str]) = match self.behavior {
            Behavior::Deny => ("deny", &["message"]),
            Behavior::Allow => ("allow", &["input", "always", "answers"]),
        };
        const ALWAYS: [&str; 3] = ["sessionId", "requestId", "behavior"];
        let stray = payload.as_object().and_then(|fields| {
            fields.iter().find(|(name, value)| {
                !value.is_null()
                    && !ALWAYS.contains(&name.as_str())
                    && !allowed.contains(&name.as_str())
            })
        });
        if let Some((name, _)) = stray {
            return Err(RuntimeError::invalid(format!(
                "`{name}` does not go with behavior `{behavior}`"
            )));
        }
        Ok(match self.behavior {
            Behavior::Deny => Answer::Deny {
                message: self.message,
            },
            Behavior::Allow => Answer::Allow {
                input: self.input,
                always: self.always,
                answers: self.answers.map(answer_texts).transpose()?,
            },
        })
    }
}

/// `answers`: question text → answer text.
fn answer_texts(answers: Map<String, Value>) -> Result<BTreeMap<String, String>, RuntimeError> {
    answers
        .into_iter()
        .map(|(question, answer)| match answer {
            Value::String(text) => Ok((question, text)),
            _ => Err(RuntimeError::invalid(format!(
                "`answers`: the answer to {question:?} must be a string"
            ))),
        })
        .collect()
}

/// `{ sessionId, afterSeq? }`; `after` is `None` when the client wants no events.
#[derive(Debug, PartialEq, Eq)]
pub struct Join {
    /// The session.
    pub session_id: String,
    /// Events with a greater seq are sent.
    pub after: Option<u64>,
}

/// Parses `session:join`.
pub fn join(payload: &Value) -> Result<Join, RuntimeError> {
    let request: JoinRequest = parse(payload)?;
    Ok(Join {
        session_id: request.session_id.0,
        after: request.after_seq.map(|seq| seq.0),
    })
}

/// `{ agentType?, status?, limit?, cursor? }`; no payload at all lists everything.
pub fn list(payload: &Value) -> Result<ListSessions, RuntimeError> {
    if payload.is_null() {
        return Ok(ListSessions::default());
    }
    let request: ListSessionsRequest = parse(payload)?;
    Ok(ListSessions {
        agent_type: request.agent_type.map(|t| t.0),
        status: request.status.map(|s| status(&s.0)).transpose()?,
        limit: request
            .limit
            .map(|n| limit_value(n.0, "limit"))
            .transpose()?,
        cursor: request.cursor.map(|c| c.0),
    })
}

/// A session status by its wire name; a refusal lists the valid ones.
pub fn status(name: &str) -> Result<SessionStatus, RuntimeError> {
    SessionStatus::parse(name).ok_or_else(|| {
        let valid: Vec<&str> = SessionStatus::ALL.iter().map(|s| s.as_str()).collect();
        RuntimeError::invalid(format!(
            "`status` must be one of {}, not {name:?}",
            valid.join(", ")
        ))
    })
}

/// A page size: at least 1.
pub fn limit_value(n: u64, name: &str) -> Result<usize, RuntimeError> {
    match usize::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(RuntimeError::invalid(format!(
            "`{name}` must be a positive integer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    fn message_of(result: Result<impl std::fmt::Debug, RuntimeError>) -> String {
        let error = result.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        error.message
    }

    #[test]
    fn a_budget_is_parsed_and_checked_limit_by_limit() {
        let created = create(&json!({"agentType": "a", "budget": {"maxTurns": 2, "maxCostUsd": 0.5, "maxTokens": null}})).unwrap();
        assert_eq!(
            created.budget,
            Some(Budget {
                max_cost_usd: Some(0.5),
                max_tokens: None,
                max_turns: Some(2)
            })
        );
        assert_eq!(create(&json!({"agentType": "a"})).unwrap().budget, None);
        for (bad, expected) in [
            (json!(3), "`budget` must be a JSON object"),
            (json!({"maxTurn": 1}), "`budget.maxTurn` is not a limit"),
            (
                json!({"maxTurns": -1}),
                "`budget.maxTurns` must be a non-negative integer",
            ),
            (
                json!({"maxTokens": 1.5}),
                "`budget.maxTokens` must be a non-negative integer",
            ),
            (
                json!({"maxCostUsd": -0.1}),
                "`budget.maxCostUsd` must be a non-negative number",
            ),
            (
                json!({"maxCostUsd": "1"}),
                "`budget.maxCostUsd` must be a non-negative number",
            ),
        ] {
            let message = message_of(create(&json!({"agentType": "a", "budget": bad})));
            assert!(message.starts_with(expected), "{message}");
        }
        // As a whole body, the limits are named as they are sent.
        let message = message_of(budget(&json!({"maxTurns": "2"})));
        assert!(message.starts_with("`maxTurns` must be"), "{message}");
        let message = message_of(budget(&json!({"maxTurn": 2})));
        assert!(message.starts_with("`maxTurn` is not a limit"), "{message}");
        assert_eq!(
            message_of(budget(&json!([]))),
            "the budget must be a JSON object"
        );
        let request = json!({"sessionId": "s", "budget": {"maxTurns": 4}});
        let (id, set) = set_budget(&request).unwrap();
        assert_eq!((id.as_str(), set.max_turns), ("s", Some(4)));
        let message = message_of(set_budget(&json!({"sessionId": "s", "budget": null})));
        assert_eq!(message, "`budget` is required");
        let message = message_of(set_budget(&json!({"sessionId": "s"})));
        assert!(message.starts_with("`budget` is required"), "{message}");
    }

    #[test]
    fn answers_are_parsed_and_checked_field_by_field() {
        let payload = json!({"sessionId": "s", "requestId": "r", "behavior": "deny",
            "message": "not now", "input": null});
        let parsed = answer(&payload).unwrap();
        assert_eq!(parsed.session_id, "s");
        assert_eq!(parsed.request_id, "r");
        assert_eq!(
            parsed.answer,
            Answer::Deny {
                message: Some("not now".into())
            }
        );
        let payload = json!({"sessionId": "s", "requestId": "r", "behavior": "allow",
            "input": {"command": "ls"}, "always": true});
        let parsed = answer(&payload).unwrap();
        assert_eq!(
            parsed.answer,
            Answer::Allow {
                input: json!({"command": "ls"}).as_object().cloned(),
                always: true,
                answers: None
            }
        );
        let payload = json!({"sessionId": "s", "requestId": "r", "behavior": "allow",
            "answers": {"Which color?": "Blue"}});
        let parsed = answer(&payload).unwrap();
        let Answer::Allow {
            answers: Some(answers),
            ..
        } = parsed.answer
        else {
            panic!("not answers");
        };
        assert_eq!(answers["Which color?"], "Blue");

        for (payload, message) in [
            (
                json!({"sessionId": "s", "behavior": "allow"}),
                "`requestId` is required",
            ),
            (
                json!({"sessionId": "s", "requestId": "r"}),
                "`behavior` is required",
            ),
            (
                json!({"sessionId": "s", "requestId": "r", "behavior": "maybe"}),
                "`behavior` must be \"allow\" or \"deny\"",
            ),
            (
                json!({"sessionId": "s", "requestId": "r", "behavior": "deny", "always": true}),
                "`always` does not go with behavior `deny`",
            ),
            (
                json!({"sessionId": "s", "requestId": "r", "behavior": "allow", "message": "x"}),
                "`message` does not go with behavior `allow`",
            ),
            (
                json!({"sessionId": "s", "requestId": "r", "behavior": "allow", "input": [1]}),
                "`input` must be a JSON object",
            ),
            (
                json!({"sessionId": "s", "requestId": "r", "behavior": "allow", "answers": {"q": 1}}),
                "`answers`: the answer to \"q\" must be a string",
            ),
            (
                json!({"sessionId": "s", "requestId": "r", "behavior": "allow", "always": "yes"}),
                "`always` must be true or false",
            ),
        ] {
            assert_eq!(message_of(answer(&payload)), message, "{payload}");
        }
    }

    #[test]
    fn non_objects_are_refused() {
        for payload in [json!("s-1"), json!(7), json!([1]), json!(null), json!(true)] {
            assert_eq!(
                message_of(session_id(&payload)),
                "the payload must be a JSON object"
            );
        }
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let table = [
            (json!({}), "`sessionId` is required"),
            (json!({ "sessionId": null }), "`sessionId` is required"),
            (json!({ "sessionId": 5 }), "`sessionId` must be a string"),
            (json!({ "sessionId": "" }), "`sessionId` must not be empty"),
        ];
        for (payload, expected) in table {
            assert_eq!(message_of(session_id(&payload)), expected, "{payload}");
        }
        assert_eq!(session_id(&json!({ "sessionId": "s-1" })).unwrap(), "s-1");
    }

    #[test]
    fn create_fields() {
        assert_eq!(message_of(create(&json!({}))), "`agentType` is required");
        assert_eq!(
            message_of(create(&json!({ "agentType": "a", "metadata": [1] }))),
            "`metadata` must be a JSON object"
        );
        assert_eq!(
            message_of(create(&json!({ "agentType": "a", "sessionId": 1 }))),
            "`sessionId` must be a string"
        );
        let request = create(&json!({ "agentType": "a", "metadata": { "k": 1 } })).unwrap();
        assert_eq!(request.agent_type, "a");
        assert_eq!(request.metadata, json!({ "k": 1 }));
        assert!(request.session_id.is_none() && request.message.is_none());
    }

    #[test]
    fn message_requires_content_before_validating_it() {
        assert_eq!(
            message_of(send_message(&json!({ "content": "hi" }))),
            "`sessionId` is required"
        );
        assert_eq!(
            message_of(send_message(&json!({ "sessionId": "s" }))),
            "`content` is required"
        );
    }

    #[test]
    fn join_after_seq() {
        let plain = json!({ "sessionId": "s" });
        assert_eq!(
            join(&plain).unwrap(),
            Join {
                session_id: "s".into(),
                after: None
            }
        );
        let after = json!({ "sessionId": "s", "afterSeq": 4 });
        assert_eq!(join(&after).unwrap().after, Some(4));
        for bad in [json!(-1), json!(1.5), json!("4")] {
            let payload = json!({ "sessionId": "s", "afterSeq": bad });
            assert_eq!(
                message_of(join(&payload)),
                "`afterSeq` must be a non-negative integer"
            );
        }
    }

    #[test]
    fn list_filters() {
        let request = list(&json!({ "status": "idle", "limit": 5, "cursor": "c" })).unwrap();
        assert_eq!(request.status, Some(SessionStatus::Idle));
        assert_eq!(request.limit, Some(5));
        assert_eq!(request.cursor.as_deref(), Some("c"));
        assert!(list(&Value::Null).unwrap().agent_type.is_none());
        assert_eq!(
            message_of(list(&json!({ "limit": 0 }))),
            "`limit` must be a positive integer"
        );
        assert!(message_of(list(&json!({ "status": "sleeping" }))).contains("starting, idle"));
    }

    #[test]
    fn profile_list_takes_null_or_an_object() {
        assert!(optional_object(&Value::Null).is_ok());
        assert!(optional_object(&json!({})).is_ok());
        assert!(optional_object(&json!({ "any": 1 })).is_ok());
        assert!(optional_object(&json!([])).is_err());
    }

    #[test]
    fn rest_message_bodies() {
        let body = post_message(&json!({ "content": "hi", "wait": true })).unwrap();
        assert!(body.wait && body.message_id.is_none());
        assert!(
            !post_message(&json!({ "content": "hi", "wait": null }))
                .unwrap()
                .wait
        );
        assert_eq!(
            message_of(post_message(&json!({ "content": "hi", "wait": "yes" }))),
            "`wait` must be true or false"
        );
        assert_eq!(
            message_of(post_message(&json!({ "content": "", "messageId": "m" }))),
            "content: must not be empty"
        );
        let (request_id, answer) =
            post_answer(&json!({ "requestId": "r", "behavior": "deny", "sessionId": "x" }))
                .unwrap();
        assert_eq!(request_id, "r");
        assert_eq!(answer, Answer::Deny { message: None });
        assert_eq!(
            message_of(post_answer(
                &json!({ "requestId": "r", "behavior": "deny", "odd": 1 })
            )),
            "`odd` does not go with behavior `deny`"
        );
    }

    #[test]
    fn refusals_put_the_path_before_the_words() {
        let table = [
            ("", "missing field `sessionId`", "`sessionId` is required"),
            ("budget", "missing field `x`", "`budget.x` is required"),
            (
                "budget.maxTurn",
                "unknown field `maxTurn`, expected one of `maxCostUsd`",
                "`budget.maxTurn` is not a limit; a budget has maxCostUsd, maxTokens, maxTurns",
            ),
            (
                "budget",
                "invalid type: null, expected struct Budget",
                "`budget` is required",
            ),
            (
                "budget",
                "invalid type: integer `3`, expected struct Budget",
                "`budget` must be a JSON object",
            ),
            (
                "content",
                "content: must not be empty",
                "content: must not be empty",
            ),
            (
                "message",
                "content: must not be empty",
                "message: must not be empty",
            ),
            (
                "message",
                "content[1]: must be an object",
                "message[1]: must be an object",
            ),
            (
                "afterSeq",
                "must be a non-negative integer",
                "`afterSeq` must be a non-negative integer",
            ),
        ];
        for (path, message, expected) in table {
            assert_eq!(refusal(path, message), expected);
        }
    }

    #[test]
    fn invalid_content_is_refused_by_field() {
        let payload = json!({ "sessionId": "s", "content": [] });
        assert!(message_of(send_message(&payload)).starts_with("content"));
        let payload = json!({ "agentType": "a", "message": 7 });
        assert!(message_of(create(&payload)).starts_with("message: "));
        let payload = json!({ "agentType": "a", "message": [{ "type": "text", "text": "hi" }] });
        assert!(create(&payload).unwrap().message.is_some());
    }
}
