//! What the runtime writes, validated against the schema it publishes: session objects,
//! every event type's envelope, acks and error objects, made by the same code that
//! answers clients.

use agent_runtime_api::{Budget, Event, EventKind, RelPath, SessionError, SessionRecord, Usage};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::*;
use crate::error::RuntimeError;
use crate::runtime::payload::{
    AnswerData, Change, ExpiryReason, InputData, Outcome, Payload, PermissionData,
};
use crate::transport::error::error_ack;
use crate::transport::socketio::ok;
use crate::transport::wire::{self, EmptyBody, SessionBody, WireSession};

/// Checks `instance` against the definition `name` of the published schema.
fn check(name: &str, instance: &Value) -> Result<(), Vec<String>> {
    let schema = protocol();
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": schema["$defs"],
        "$ref": format!("#/$defs/{name}"),
    });
    let validator = jsonschema::validator_for(&root).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn assert_valid(name: &str, instance: &Value) {
    if let Err(errors) = check(name, instance) {
        panic!("not a valid {name}: {errors:?}\n{instance:#}");
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 7_000_000)
        .unwrap()
}

fn record() -> SessionRecord {
    SessionRecord {
        id: "s-1".into(),
        owner: "alice".into(),
        agent_type: "helper".into(),
        status: agent_runtime_api::SessionStatus::Failed,
        metadata: json!({ "region": "m1" }),
        created_at: at(0),
        updated_at: at(1),
        last_activity_at: at(2),
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
        error: Some(SessionError {
            code: "sandbox_failed".into(),
            message: "no sandbox".into(),
        }),
        forked_from: Some(agent_runtime_api::ForkedFrom {
            session_id: "s-0".into(),
            seq: 9,
            agent_session_id: Some("agent-8".into()),
        }),
        version: 4,
    }
}

fn event(seq: u64, kind: EventKind, data: &impl serde::Serialize) -> Event {
    Event {
        seq,
        at: at(3),
        kind,
        data: RawValue::from_string(serde_json::to_string(data).unwrap()).unwrap(),
    }
}

/// One event of every type, as the runtime makes them (and an agent line).
fn events() -> Vec<Event> {
    let path = RelPath::new("src/main.rs").unwrap();
    let text = json!("hello");
    let blocks = json!([{ "type": "text", "text": "hi" }]);
    let input = json!({ "command": "ls" });
    let questions = json!([{ "question": "Which?", "header": "Pick",
        "options": [{ "label": "A", "description": "a" }], "multiSelect": false }]);
    let answers = [("Which?".to_owned(), "A".to_owned())]
        .into_iter()
        .collect();
    let payloads = [
        Payload::Status(StatusData {
            status: SessionStatus::Failed,
            reason: Some("agent_crashed"),
        }),
        Payload::Status(StatusData {
            status: SessionStatus::Idle,
            reason: None,
        }),
        Payload::Input(InputData {
            content: &text,
            message_id: "m-1",
        }),
        Payload::Input(InputData {
            content: &blocks,
            message_id: "m-2",
        }),
        Payload::File(FileChange {
            change: Change::Created,
            path: path.clone(),
            size: Some(3),
        }),
        Payload::File(FileChange {
            change: Change::Deleted,
            path: path.clone(),
            size: None,
        }),
        Payload::Error(ErrorData::new(EventErrorCode::LineTooLong, "long", false)),
        Payload::Error(ErrorData::new(
            EventErrorCode::StartFailed(ErrorCode::StorageUnavailable),
            "no store",
            true,
        )),
        Payload::Error(ErrorData {
            path: Some(path),
            ..ErrorData::new(EventErrorCode::FileSkipped, "too big", false)
        }),
        Payload::Permission(PermissionData {
            description: Some("List files"),
            expires_at: at(60),
            input: input.as_object().unwrap(),
            request_id: "r-1",
            suggestions: Some(&json!([{ "type": "addRules" }])),
            tool: "Bash",
            tool_use_id: Some("toolu_1"),
        }),
        Payload::Question(QuestionData {
            expires_at: at(60),
            questions: &questions,
            request_id: "r-2",
            tool_use_id: None,
        }),
        Payload::Answer(AnswerData {
            always: true,
            answers: None,
            by: Some("alice"),
            input: Some(input.as_object().unwrap()),
            message: None,
            outcome: Outcome::Allow,
            reason: None,
            request_id: "r-1",
        }),
        Payload::Answer(AnswerData {
            always: false,
            answers: Some(&answers),
            by: Some("alice"),
            input: None,
            message: None,
            outcome: Outcome::Allow,
            reason: None,
            request_id: "r-2",
        }),
        Payload::Answer(AnswerData {
            always: false,
            answers: None,
            by: None,
            input: None,
            message: Some(ExpiryReason::Timeout.message()),
            outcome: Outcome::Expired,
            reason: Some(ExpiryReason::Timeout),
            request_id: "r-3",
        }),
    ];
    let mut events: Vec<Event> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| event(i as u64 + 1, payload.kind(), payload))
        .collect();
    let line = json!({ "type": "assistant", "message": { "content": [] } });
    events.push(event(events.len() as u64 + 1, EventKind::Agent, &line));
    events
}

fn envelope(event: &Event) -> Value {
    serde_json::from_str(wire::envelope("s-1", event).unwrap().get()).unwrap()
}

#[test]
fn every_event_the_runtime_makes_is_a_valid_event() {
    let events = events();
    for kind in EventKind::ALL {
        assert!(
            events.iter().any(|e| e.kind == kind),
            "no sample of {kind:?}"
        );
    }
    for event in &events {
        assert_valid("Event", &envelope(event));
    }
}

#[test]
fn session_objects_and_acks_are_valid() {
    let events = events();
    let pending: Vec<Event> = events
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Permission | EventKind::Question))
        .collect();
    let mut record = record();
    let session = serde_json::to_value(WireSession::new(&record, &pending)).unwrap();
    assert_valid("Session", &session);
    record.error = None;
    record.agent_session_id = None;
    record.metadata = Value::Null;
    let body = SessionBody::new(&record, &[]);
    let ack: Value = serde_json::from_str(ok(body).unwrap().get()).unwrap();
    assert_valid("SessionResponseAck", &ack);
    let ack: Value = serde_json::from_str(ok(EmptyBody {}).unwrap().get()).unwrap();
    assert_valid("EmptyAck", &ack);
    for code in ErrorCode::ALL {
        let error = RuntimeError::new(code, "no").with_retry_after(3);
        assert_valid(
            "ErrorAck",
            &serde_json::to_value(error_ack(&error)).unwrap(),
        );
    }
}

/// The schema refuses what the protocol does not allow, so the checks above can fail.
#[test]
fn the_schema_refuses_what_the_protocol_does_not_write() {
    let events = events();
    let mut status = envelope(&events[0]);
    status["data"] = json!({ "status": "sleeping" });
    assert!(check("Event", &status).is_err());
    let mut unknown = envelope(&events[0]);
    unknown["type"] = json!("gossip");
    assert!(check("Event", &unknown).is_err());
    let mut agent = envelope(events.last().unwrap());
    agent["data"] = json!({ "no": "type" });
    assert!(check("Event", &agent).is_err());
    let error = json!({ "ok": false, "error": { "code": "oops", "message": "x" } });
    assert!(check("ErrorAck", &error).is_err());
    let success = json!({ "ok": true, "session": { "id": "s-1" } });
    assert!(check("SessionResponseAck", &success).is_err());
}

/// Request payloads the parser accepts are valid requests, and the schema refuses the
/// field types the parser refuses.
#[test]
fn request_payloads_follow_the_schema() {
    let valid = [
        (
            "CreateSessionRequest",
            json!({ "agentType": "a", "metadata": { "k": 1 }, "message": [{ "type": "text", "text": "hi" }],
                "budget": { "maxTurns": 2, "maxCostUsd": 0.5, "maxTokens": null }, "sessionId": null }),
        ),
        (
            "SendMessageRequest",
            json!({ "sessionId": "s", "content": "hi", "messageId": "m" }),
        ),
        ("JoinRequest", json!({ "sessionId": "s", "afterSeq": 0 })),
        (
            "AnswerRequest",
            json!({ "sessionId": "s", "requestId": "r", "behavior": "allow", "answers": { "Q": "A" } }),
        ),
        (
            "SetBudgetRequest",
            json!({ "sessionId": "s", "budget": {} }),
        ),
        (
            "ListSessionsRequest",
            json!({ "status": "idle", "limit": 5 }),
        ),
        ("ListProfilesRequest", json!({})),
        ("SessionIdRequest", json!({ "sessionId": "s" })),
    ];
    for (name, payload) in valid {
        assert_valid(name, &payload);
    }
    let invalid = [
        ("CreateSessionRequest", json!({})),
        ("CreateSessionRequest", json!({ "agentType": "" })),
        (
            "CreateSessionRequest",
            json!({ "agentType": "a", "metadata": [1] }),
        ),
        (
            "CreateSessionRequest",
            json!({ "agentType": "a", "message": [] }),
        ),
        (
            "CreateSessionRequest",
            json!({ "agentType": "a", "budget": { "maxTurn": 1 } }),
        ),
        (
            "CreateSessionRequest",
            json!({ "agentType": "a", "budget": { "maxCostUsd": -1 } }),
        ),
        ("JoinRequest", json!({ "sessionId": "s", "afterSeq": -1 })),
        (
            "AnswerRequest",
            json!({ "sessionId": "s", "requestId": "r", "behavior": "maybe" }),
        ),
        ("ListSessionsRequest", json!({ "status": "sleeping" })),
        ("SessionIdRequest", json!({ "sessionId": 5 })),
    ];
    for (name, payload) in invalid {
        assert!(check(name, &payload).is_err(), "{name} {payload}");
    }
}
