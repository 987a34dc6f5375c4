//! Request payloads, parsed by hand from JSON so that every refusal is `invalid_request`
//! naming the field, the same on Socket.IO and REST.
//!
//! Optional fields that are `null` count as absent: JavaScript clients send either.

use agent_runtime_api::{Budget, SessionStatus};
use serde_json::{Map, Value};

use crate::error::RuntimeError;
use crate::runtime::{Answer, CreateSession, ListSessions, MessageContent};

/// A payload's fields; refuses anything but a JSON object.
pub fn object(payload: &Value) -> Result<&Map<String, Value>, RuntimeError> {
    payload
        .as_object()
        .ok_or_else(|| RuntimeError::invalid("the payload must be a JSON object"))
}

/// A payload that may be absent altogether (`profile:list`): null counts as `{}`.
pub fn optional_object(payload: &Value) -> Result<(), RuntimeError> {
    if payload.is_null() {
        return Ok(());
    }
    object(payload).map(|_| ())
}

fn present<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

/// A required, non-empty string field.
pub fn required_str<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, RuntimeError> {
    match present(fields, name) {
        None => Err(RuntimeError::invalid(format!("`{name}` is required"))),
        Some(value) => non_empty_str(value, name),
    }
}

/// An optional string field; when present it must be a non-empty string.
pub fn optional_str<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, RuntimeError> {
    present(fields, name)
        .map(|v| non_empty_str(v, name))
        .transpose()
}

fn non_empty_str<'a>(value: &'a Value, name: &str) -> Result<&'a str, RuntimeError> {
    match value.as_str() {
        Some("") => Err(RuntimeError::invalid(format!("`{name}` must not be empty"))),
        Some(text) => Ok(text),
        None => Err(RuntimeError::invalid(format!("`{name}` must be a string"))),
    }
}

/// An optional non-negative integer field.
pub fn optional_u64(fields: &Map<String, Value>, name: &str) -> Result<Option<u64>, RuntimeError> {
    present(fields, name)
        .map(|v| {
            v.as_u64().ok_or_else(|| {
                RuntimeError::invalid(format!("`{name}` must be a non-negative integer"))
            })
        })
        .transpose()
}

/// An optional boolean field.
pub fn optional_bool(
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Option<bool>, RuntimeError> {
    present(fields, name)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| RuntimeError::invalid(format!("`{name}` must be true or false")))
        })
        .transpose()
}

/// Message content from a field: required, then checked by [`MessageContent::new`]; a
/// refusal names the field.
pub fn content(fields: &Map<String, Value>, name: &str) -> Result<MessageContent, RuntimeError> {
    let value = present(fields, name)
        .ok_or_else(|| RuntimeError::invalid(format!("`{name}` is required")))?;
    MessageContent::new(value.clone()).map_err(|e| name_field(e, name))
}

/// Makes a content refusal name the field it came from: [`MessageContent::new`] says
/// `content: ...` or `content[i]: ...`, which is right for `content` but not for
/// `message`; a refusal that names no field gets the field as a prefix.
fn name_field(mut error: RuntimeError, name: &str) -> RuntimeError {
    let renamed = error
        .message
        .strip_prefix("content")
        .filter(|rest| rest.starts_with([':', '[']))
        .map(|rest| format!("{name}{rest}"));
    error.message = match renamed {
        Some(message) => message,
        None if error.message.contains(name) => error.message,
        None => format!("{name}: {}", error.message),
    };
    error
}

/// `{ agentType, metadata?, sessionId?, message?, owner? }`.
pub fn create(payload: &Value) -> Result<CreateSession, RuntimeError> {
    let fields = object(payload)?;
    let agent_type = required_str(fields, "agentType")?.to_owned();
    let metadata = match present(fields, "metadata") {
        None => Value::Null,
        Some(value @ Value::Object(_)) => value.clone(),
        Some(_) => return Err(RuntimeError::invalid("`metadata` must be a JSON object")),
    };
    let session_id = optional_str(fields, "sessionId")?.map(str::to_owned);
    let message = match present(fields, "message") {
        None => None,
        Some(_) => Some(content(fields, "message")?),
    };
    let owner = optional_str(fields, "owner")?.map(str::to_owned);
    let budget = present(fields, "budget")
        .map(|v| budget(v, "budget"))
        .transpose()?;
    Ok(CreateSession {
        agent_type,
        metadata,
        session_id,
        message,
        owner,
        budget,
    })
}

/// Parses `session:budget`: `{ sessionId, budget }`.
pub fn set_budget(payload: &Value) -> Result<(&str, Budget), RuntimeError> {
    let fields = object(payload)?;
    let session_id = required_str(fields, "sessionId")?;
    let value =
        present(fields, "budget").ok_or_else(|| RuntimeError::invalid("`budget` is required"))?;
    Ok((session_id, budget(value, "budget")?))
}

/// `{ maxCostUsd?, maxTokens?, maxTurns? }`: a budget's limits, each absent (or `null`)
/// when unlimited. `name` is the field it came in (`budget`), or empty when it is the
/// whole body (`PUT .../budget`), so that a refusal names the limit as the client sent it.
pub fn budget(value: &Value, name: &str) -> Result<Budget, RuntimeError> {
    let field = |limit: &str| match name {
        "" => limit.to_owned(),
        _ => format!("{name}.{limit}"),
    };
    let fields = value.as_object().ok_or_else(|| match name {
        "" => RuntimeError::invalid("the budget must be a JSON object"),
        _ => RuntimeError::invalid(format!("`{name}` must be a JSON object")),
    })?;
    const LIMITS: [&str; 3] = ["maxCostUsd", "maxTokens", "maxTurns"];
    if let Some(unknown) = fields.keys().find(|k| !LIMITS.contains(&k.as_str())) {
        return Err(RuntimeError::invalid(format!(
            "`{}` is not a limit; a budget has {}",
            field(unknown),
            LIMITS.join(", ")
        )));
    }
    let max_cost_usd = present(fields, "maxCostUsd")
        .map(|v| match v.as_f64() {
            Some(cost) if cost >= 0.0 => Ok(cost),
            _ => Err(RuntimeError::invalid(format!(
                "`{}` must be a non-negative number",
                field("maxCostUsd")
            ))),
        })
        .transpose()?;
    let count = |limit: &str| {
        present(fields, limit)
            .map(|v| {
                v.as_u64().ok_or_else(|| {
                    RuntimeError::invalid(format!(
                        "`{}` must be a non-negative integer",
                        field(limit)
                    ))
                })
            })
            .transpose()
    };
    Ok(Budget {
        max_cost_usd,
        max_tokens: count("maxTokens")?,
        max_turns: count("maxTurns")?,
    })
}

/// `{ sessionId }`: the id of the session a request is about.
pub fn session_id(payload: &Value) -> Result<&str, RuntimeError> {
    required_str(object(payload)?, "sessionId")
}

/// `{ sessionId, content, messageId? }`.
#[derive(Debug)]
pub struct SendMessage<'a> {
    /// The session.
    pub session_id: &'a str,
    /// The validated content.
    pub content: MessageContent,
    /// The client's id for the message, if it chose one.
    pub message_id: Option<String>,
}

/// Parses `session:message`.
pub fn send_message(payload: &Value) -> Result<SendMessage<'_>, RuntimeError> {
    let fields = object(payload)?;
    let session_id = required_str(fields, "sessionId")?;
    let content = content(fields, "content")?;
    let message_id = optional_str(fields, "messageId")?.map(str::to_owned);
    Ok(SendMessage {
        session_id,
        content,
        message_id,
    })
}

/// `{ sessionId, requestId, behavior, message?, input?, always?, answers? }`.
#[derive(Debug, PartialEq)]
pub struct AnswerRequest<'a> {
    /// The session.
    pub session_id: &'a str,
    /// The `requestId` of the `permission` or `question` event answered.
    pub request_id: &'a str,
    /// The answer.
    pub answer: Answer,
}

/// Parses `session:answer`.
pub fn answer(payload: &Value) -> Result<AnswerRequest<'_>, RuntimeError> {
    let fields = object(payload)?;
    let session_id = required_str(fields, "sessionId")?;
    let (request_id, answer) = answer_fields(fields)?;
    Ok(AnswerRequest {
        session_id,
        request_id,
        answer,
    })
}

/// The fields of an answer, also the body of `POST .../answers`: `requestId`,
/// `behavior` (`allow` or `deny`), and for `deny` an optional `message`; for `allow` an
/// optional `input` (an object), `always` (a boolean) or `answers` (question text →
/// answer text).
pub fn answer_fields(fields: &Map<String, Value>) -> Result<(&str, Answer), RuntimeError> {
    let request_id = required_str(fields, "requestId")?;
    let only = |allowed: &[&str], behavior: &str| match fields
        .iter()
        .find(|(name, value)| !value.is_null() && !allowed.contains(&name.as_str()))
    {
        Some((name, _)) => Err(RuntimeError::invalid(format!(
            "`{name}` does not go with behavior `{behavior}`"
        ))),
        None => Ok(()),
    };
    let answer = match required_str(fields, "behavior")? {
        "deny" => {
            only(&["sessionId", "requestId", "behavior", "message"], "deny")?;
            Answer::Deny {
                message: optional_str(fields, "message")?.map(str::to_owned),
            }
        }
        "allow" => {
            only(
                &[
                    "sessionId",
                    "requestId",
                    "behavior",
                    "input",
                    "always",
                    "answers",
                ],
                "allow",
            )?;
            let input = match present(fields, "input") {
                None => None,
                Some(Value::Object(input)) => Some(input.clone()),
                Some(_) => return Err(RuntimeError::invalid("`input` must be a JSON object")),
            };
            let answers = match present(fields, "answers") {
                None => None,
                Some(Value::Object(answers)) => Some(
                    answers
                        .iter()
                        .map(|(question, answer)| match answer.as_str() {
                            Some(text) => Ok((question.clone(), text.to_owned())),
                            None => Err(RuntimeError::invalid(format!(
                                "`answers`: the answer to {question:?} must be a string"
                            ))),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Some(_) => {
                    return Err(RuntimeError::invalid(
                        "`answers` must be an object of question text to answer text",
                    ));
                }
            };
            Answer::Allow {
                input,
                always: optional_bool(fields, "always")?.unwrap_or(false),
                answers,
            }
        }
        _ => {
            return Err(RuntimeError::invalid(
                "`behavior` must be \"allow\" or \"deny\"",
            ));
        }
    };
    Ok((request_id, answer))
}

/// `{ sessionId, afterSeq? }`; `after` is `None` when the client wants no events.
#[derive(Debug, PartialEq, Eq)]
pub struct Join<'a> {
    /// The session.
    pub session_id: &'a str,
    /// Events with a greater seq are sent.
    pub after: Option<u64>,
}

/// Parses `session:join`.
pub fn join(payload: &Value) -> Result<Join<'_>, RuntimeError> {
    let fields = object(payload)?;
    Ok(Join {
        session_id: required_str(fields, "sessionId")?,
        after: optional_u64(fields, "afterSeq")?,
    })
}

/// `{ agentType?, status?, limit?, cursor? }`.
pub fn list(payload: &Value) -> Result<ListSessions, RuntimeError> {
    if payload.is_null() {
        return Ok(ListSessions::default());
    }
    let fields = object(payload)?;
    let limit = optional_u64(fields, "limit")?
        .map(|n| limit_value(n, "limit"))
        .transpose()?;
    Ok(ListSessions {
        agent_type: optional_str(fields, "agentType")?.map(str::to_owned),
        status: optional_str(fields, "status")?.map(status).transpose()?,
        limit,
        cursor: optional_str(fields, "cursor")?.map(str::to_owned),
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
        let message = message_of(budget(&json!({"maxTurns": "2"}), ""));
        assert!(message.starts_with("`maxTurns` must be"), "{message}");
        let request = json!({"sessionId": "s", "budget": {"maxTurns": 4}});
        let (id, set) = set_budget(&request).unwrap();
        assert_eq!((id, set.max_turns), ("s", Some(4)));
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
                session_id: "s",
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
    fn optional_bool_and_object() {
        let fields = json!({ "wait": "yes" });
        assert_eq!(
            message_of(optional_bool(fields.as_object().unwrap(), "wait")),
            "`wait` must be true or false"
        );
        assert!(optional_object(&Value::Null).is_ok());
        assert!(optional_object(&json!({})).is_ok());
        assert!(optional_object(&json!([])).is_err());
    }

    #[test]
    fn content_refusals_name_their_field() {
        let table = [
            (
                "content: must not be empty",
                "content",
                "content: must not be empty",
            ),
            (
                "content: must not be empty",
                "message",
                "message: must not be empty",
            ),
            (
                "content[1]: must be an object",
                "message",
                "message[1]: must be an object",
            ),
            ("must not be empty", "message", "message: must not be empty"),
            ("`message` is odd", "message", "`message` is odd"),
        ];
        for (given, field, expected) in table {
            let named = name_field(RuntimeError::invalid(given), field);
            assert_eq!(named.message, expected);
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
