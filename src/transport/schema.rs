//! The protocol as a JSON Schema (2020-12), generated from the wire types: the request
//! payloads of [`super::requests`], the bodies and acks of [`super::wire`], the error
//! objects of [`super::error`] and the event data of the runtime. `docs/protocol.schema.json`
//! is its output, checked in for client generators; a test fails when it differs.
//!
//! The schema's `x-socketio` section maps each Socket.IO event to its definitions:
//! `requests` (client → server, each with `request`, `ack` and `errorAck`) and `events`
//! (server → client).
//!
//! The types here exist only to describe what the wire types write as plain strings or
//! raw JSON (times, statuses, codes, event envelopes).

use std::borrow::Cow;

use agent_runtime_api::{EventKind, SessionStatus};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

pub(crate) use super::fields::Content;
use crate::error::ErrorCode;
use crate::runtime::payload::{
    AnswerData, ErrorData, EventErrorCode, FileChange, InputData, PermissionData, QuestionData,
    StatusData,
};

/// Where the checked-in schema lives, relative to the repository.
pub const PROTOCOL_SCHEMA_PATH: &str = "docs/protocol.schema.json";

/// A time: RFC 3339, UTC, milliseconds (`2026-01-01T00:00:00.000Z`).
pub(crate) struct Timestamp;

impl JsonSchema for Timestamp {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date-time" })
    }
}

/// A session status by its wire name.
pub(crate) struct Status;

impl JsonSchema for Status {
    fn schema_name() -> Cow<'static, str> {
        "SessionStatus".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = SessionStatus::ALL.iter().map(|s| s.as_str()).collect();
        json_schema!({
            "description": "Where a session is in its life (`waiting`: the running turn waits for an answer to a `permission` or `question`).",
            "type": "string",
            "enum": names,
        })
    }
}

/// The code of an `error` event or of a failed session: the event's own codes, or the
/// request error code a session could not be started with.
pub(crate) struct EventErrorCodeSchema;

impl JsonSchema for EventErrorCodeSchema {
    fn schema_name() -> Cow<'static, str> {
        "EventErrorCode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut names: Vec<&str> = EventErrorCode::OWN.iter().map(|c| c.as_str()).collect();
        for code in ErrorCode::ALL {
            if !names.contains(&code.as_str()) {
                names.push(code.as_str());
            }
        }
        json_schema!({
            "description": "The code of an `error` event (or of a failed session's `error`): one of the event error codes, or the request error code a session could not be started with (then the error is fatal).",
            "type": "string",
            "enum": names,
        })
    }
}

/// The data of an `agent` event: one line of the agent's stdout (Claude Code's
/// stream-json), verbatim.
pub(crate) struct AgentData;

impl JsonSchema for AgentData {
    fn schema_name() -> Cow<'static, str> {
        "AgentData".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One JSON object the agent printed, verbatim (Claude Code stream-json: `system`, `assistant`, `user`, `result`, `stream_event`, ...). Open: its fields are the agent's.",
            "type": "object",
            "required": ["type"],
            "properties": { "type": { "type": "string" } },
            "additionalProperties": true,
        })
    }
}

/// The `session:event` envelope `{ sessionId, seq, at, type, data }`: one of the
/// `<Type>Event` definitions, told apart by `type`.
pub(crate) struct EventSchema;

impl JsonSchema for EventSchema {
    fn schema_name() -> Cow<'static, str> {
        "Event".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let variants: Vec<Value> = EventKind::ALL
            .iter()
            .map(|&kind| {
                let name = event_definition(kind);
                let data = data_schema(kind, generator);
                let definition = json!({
                    "description": format!("An envelope of type `{}`.", kind.as_str()),
                    "type": "object",
                    "required": ["sessionId", "seq", "at", "type", "data"],
                    "properties": {
                        "sessionId": { "type": "string" },
                        "seq": {
                            "description": "1 for a session's first event, then one more per event, across all types.",
                            "type": "integer",
                            "minimum": 1,
                        },
                        "at": generator.subschema_for::<Timestamp>(),
                        "type": { "const": kind.as_str() },
                        "data": data,
                    },
                });
                generator.definitions_mut().insert(name.clone(), definition);
                json!({ "$ref": format!("#/$defs/{name}") })
            })
            .collect();
        json_schema!({
            "description": "A session event, as `session:event` sends it and the event log keeps it. `seq` increases by exactly 1 per session, so a gap means a missed event.",
            "oneOf": variants,
        })
    }
}

/// `status` → `StatusEvent`.
fn event_definition(kind: EventKind) -> String {
    let name = kind.as_str();
    let mut chars = name.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    format!(
        "{}{}Event",
        first.into_iter().collect::<String>(),
        chars.as_str()
    )
}

/// The schema of the data of an event of `kind`.
fn data_schema(kind: EventKind, generator: &mut SchemaGenerator) -> Schema {
    match kind {
        EventKind::Status => generator.subschema_for::<StatusData<'_>>(),
        EventKind::Input => generator.subschema_for::<InputData<'_>>(),
        EventKind::Agent => generator.subschema_for::<AgentData>(),
        EventKind::File => generator.subschema_for::<FileChange>(),
        EventKind::Error => generator.subschema_for::<ErrorData>(),
        EventKind::Permission => generator.subschema_for::<PermissionData<'_>>(),
        EventKind::Question => generator.subschema_for::<QuestionData<'_>>(),
        EventKind::Answer => generator.subschema_for::<AnswerData<'_>>(),
    }
}

/// Turns a derived enum's `oneOf` of `const`s into an `enum`, which client generators
/// read best, keeping each value's description in `x-enumDescriptions`.
pub(crate) fn plain_enum(schema: &mut Schema) {
    let Some(Value::Array(variants)) = schema.remove("oneOf") else {
        return;
    };
    let mut names = Vec::new();
    let mut descriptions = Map::new();
    for variant in variants {
        let Some(name) = variant.get("const").cloned() else {
            continue;
        };
        if let (Some(key), Some(text)) = (name.as_str(), variant.get("description")) {
            descriptions.insert(key.to_owned(), text.clone());
        }
        names.push(name);
    }
    schema.insert("type".into(), json!("string"));
    schema.insert("enum".into(), Value::Array(names));
    if !descriptions.is_empty() {
        schema.insert("x-enumDescriptions".into(), Value::Object(descriptions));
    }
}

/// `{ "const": false }`, for `ok` of a failed ack.
pub(crate) fn always_false(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "const": false })
}

/// `{ "const": true }`, for `ok` of a success ack.
pub(crate) fn always_true(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "const": true })
}

/// The two generators: request payloads are described as they are read, answers as they
/// are written (a field the runtime leaves out when empty is not required).
struct Generators {
    requests: SchemaGenerator,
    answers: SchemaGenerator,
}

impl Generators {
    fn new() -> Self {
        Self {
            requests: SchemaSettings::draft2020_12()
                .for_deserialize()
                .into_generator(),
            answers: SchemaSettings::draft2020_12()
                .for_serialize()
                .into_generator(),
        }
    }

    /// A `$ref` to a request type's definition.
    fn request<T: JsonSchema>(&mut self) -> Value {
        self.requests.subschema_for::<T>().to_value()
    }

    /// A `$ref` to an answer type's definition.
    fn answer<T: JsonSchema>(&mut self) -> Value {
        self.answers.subschema_for::<T>().to_value()
    }

    /// Every definition of both, by name. A name both describe must mean the same.
    fn definitions(mut self) -> Map<String, Value> {
        let mut all = self.requests.take_definitions(true);
        for (name, schema) in self.answers.take_definitions(true) {
            match all.get(&name) {
                Some(existing) if *existing != schema => {
                    panic!("two types describe the definition {name} differently")
                }
                _ => {
                    all.insert(name, schema);
                }
            }
        }
        all
    }
}

/// The protocol's JSON Schema, keys sorted, as `docs/protocol.schema.json` holds it.
pub fn protocol() -> Value {
    use super::error::{ErrorAck, ErrorBody, SocketError};
    use super::requests::*;
    use super::socketio::Ack;
    use super::wire::{
        AnswerBody, EmptyBody, EventsBody, FilesBody, MessageBody, ProfilesBody, ResultBody,
        SessionBody, SessionsBody,
    };

    let mut generators = Generators::new();
    let error_ack = generators.answer::<ErrorAck<'_>>();
    let session_ack = generators.answer::<Ack<SessionBody<'_>>>();
    let empty_ack = generators.answer::<Ack<EmptyBody>>();
    let g = &mut generators;
    let session_id = g.request::<SessionIdRequest>();
    // Socket.IO request events, in the order of docs/protocol.md's table.
    let requests: Vec<(&str, Value, Value)> = vec![
        (
            "session:create",
            g.request::<CreateSessionRequest>(),
            session_ack.clone(),
        ),
        (
            "session:message",
            g.request::<SendMessageRequest>(),
            g.answer::<Ack<MessageBody<'_>>>(),
        ),
        (
            "session:join",
            g.request::<JoinRequest>(),
            g.answer::<Ack<EventsBody<'_>>>(),
        ),
        ("session:leave", session_id.clone(), empty_ack.clone()),
        (
            "session:answer",
            g.request::<AnswerRequest>(),
            g.answer::<Ack<AnswerBody>>(),
        ),
        (
            "session:budget",
            g.request::<SetBudgetRequest>(),
            session_ack.clone(),
        ),
        ("session:interrupt", session_id.clone(), empty_ack.clone()),
        ("session:stop", session_id.clone(), session_ack.clone()),
        ("session:resume", session_id.clone(), session_ack.clone()),
        ("session:fork", session_id.clone(), session_ack.clone()),
        ("session:delete", session_id.clone(), empty_ack.clone()),
        ("session:get", session_id.clone(), session_ack.clone()),
        (
            "session:list",
            g.request::<ListSessionsRequest>(),
            g.answer::<Ack<SessionsBody<'_>>>(),
        ),
        (
            "session:files",
            session_id.clone(),
            g.answer::<Ack<FilesBody<'_>>>(),
        ),
        (
            "profile:list",
            g.request::<ListProfilesRequest>(),
            g.answer::<Ack<ProfilesBody<'_>>>(),
        ),
    ];
    let mut request_map = Map::new();
    for (event, request, ack) in requests {
        let mut entry = json!({ "request": request, "ack": ack, "errorAck": error_ack });
        if matches!(event, "session:list" | "profile:list") {
            entry["payloadOptional"] = json!(true);
        }
        request_map.insert(event.to_owned(), entry);
    }
    let auth = g.request::<HandshakeAuth>();
    let events = json!({
        "session:event": g.answer::<EventSchema>(),
        "error": g.answer::<SocketError<'_>>(),
    });
    // REST bodies that no Socket.IO request shares, so that every definition the
    // OpenAPI document needs is here too.
    g.request::<PostMessageRequest>();
    g.request::<PostAnswerRequest>();
    g.request::<BudgetLimits>();
    g.answer::<ErrorBody<'_>>();
    g.answer::<ResultBody<'_>>();
    g.answer::<SessionBody<'_>>();
    g.answer::<SessionsBody<'_>>();
    g.answer::<EventsBody<'_>>();
    g.answer::<FilesBody<'_>>();
    g.answer::<ProfilesBody<'_>>();
    g.answer::<MessageBody<'_>>();
    g.answer::<AnswerBody>();
    g.answer::<super::ops::Health>();
    g.answer::<super::ops::Readiness>();
    g.answer::<ErrorCode>();
    let definitions = generators.definitions();
    sorted(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "agent-runtime wire protocol, v1",
        "description": "Every request payload, ack, REST body, session object and event of the protocol (docs/protocol.md), generated from the runtime's wire types. `x-socketio` maps Socket.IO events to definitions: each request event has a `request` payload, a success `ack` and an `errorAck`; `payloadOptional` requests may be sent without a payload. Optional fields that are null count as absent.",
        "x-socketio": {
            "path": "/socket.io",
            "namespace": "/",
            "auth": auth,
            "requests": request_map,
            "events": events,
        },
        "$defs": definitions,
    }))
}

/// The schema as the checked-in file holds it: pretty, keys sorted, one final newline.
pub fn protocol_text() -> String {
    let mut text = serde_json::to_string_pretty(&protocol()).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// `value` with the keys of every object in sorted order, whatever order serde_json's
/// maps keep, so the output is the same in every build.
pub(crate) fn sorted(value: Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut pairs: Vec<(String, Value)> = fields.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod conformance;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The checked-in schema is what the code generates. To update it:
    /// `AGENT_RUNTIME_UPDATE_SCHEMA=1 cargo test -p agent-runtime --lib schema`, or
    /// `cargo run -- schema > docs/protocol.schema.json`.
    #[test]
    fn the_checked_in_protocol_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PROTOCOL_SCHEMA_PATH);
        let generated = protocol_text();
        if std::env::var_os("AGENT_RUNTIME_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{PROTOCOL_SCHEMA_PATH} is not what the wire types generate; regenerate it with \
             `AGENT_RUNTIME_UPDATE_SCHEMA=1 cargo test -p agent-runtime --lib schema` \
             (or `agent-runtime schema > {PROTOCOL_SCHEMA_PATH}`) and commit it"
        );
    }

    #[test]
    fn every_error_code_is_named_as_on_the_wire() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        let schema = protocol();
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let described: Vec<&str> = schema["$defs"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(described, names);
    }

    /// Every request event a socket serves has its definitions, and the map names only
    /// those.
    #[test]
    fn the_socketio_map_matches_the_registered_events() {
        let source = include_str!("socketio/requests.rs");
        let registered: BTreeSet<&str> = source
            .split("(socket, \"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        let schema = protocol();
        let mapped: BTreeSet<&str> = schema["x-socketio"]["requests"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(registered, mapped);
    }

    #[test]
    fn every_event_type_has_its_definition() {
        let schema = protocol();
        for kind in EventKind::ALL {
            let definition = &schema["$defs"][event_definition(kind)];
            assert_eq!(definition["properties"]["type"]["const"], kind.as_str());
        }
    }
}
