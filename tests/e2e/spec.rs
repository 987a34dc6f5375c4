//! Every REST exchange the suite makes through [`crate::support::Http`], checked against
//! the runtime's OpenAPI document: the route and method must be an operation, the status
//! one of its responses, the content type one it documents, and a JSON body valid for
//! that response's schema; a request body that succeeded must be valid for the
//! operation's. So the document cannot fall behind the API the tests exercise.
//!
//! Likewise every Socket.IO ack and event the `socket.io-client` scripts get
//! ([`check_socketio`]), against the protocol schema's `x-socketio` map.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use agent_runtime::transport::openapi::find_operation;
use serde_json::{Value, json};

/// One request and its answer, as [`check`] sees them.
pub struct Exchange<'a> {
    pub method: &'a str,
    /// The path, with its query string if any.
    pub target: &'a str,
    pub request: Option<&'a Value>,
    pub status: u16,
    /// The `Content-Type` of the answer, if any.
    pub content_type: Option<&'a str>,
    /// The answer's body: JSON, or the text as a string.
    pub body: &'a Value,
}

struct Spec {
    document: Value,
    protocol: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static SPEC: LazyLock<Spec> = LazyLock::new(|| Spec {
    document: agent_runtime::transport::openapi::document(),
    protocol: agent_runtime::transport::schema::protocol(),
    validators: Mutex::new(HashMap::new()),
});

/// A validator for `schema`, which may `$ref` the OpenAPI document's components or the
/// protocol schema's `$defs`.
fn validator(key: String, schema: &Value) -> Arc<jsonschema::Validator> {
    let mut validators = SPEC.validators.lock().unwrap();
    validators
        .entry(key)
        .or_insert_with(|| {
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": SPEC.document["components"],
                "$defs": SPEC.protocol["$defs"],
                "allOf": [schema],
            });
            Arc::new(jsonschema::validator_for(&root).expect("the document's schemas compile"))
        })
        .clone()
}

fn assert_valid(what: &str, key: String, schema: &Value, instance: &Value) {
    let validator = validator(key, schema);
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not follow the published schema: {errors:?}\n{instance:#}"
    );
}

/// Panics, naming what is undocumented, unless `exchange` follows the document.
pub fn check(exchange: &Exchange<'_>) {
    let path = exchange.target.split('?').next().unwrap_or_default();
    let method = exchange.method.to_lowercase();
    let what = format!(
        "{} {} → {}",
        exchange.method, exchange.target, exchange.status
    );
    let Some((template, operation)) = find_operation(&SPEC.document, &method, path) else {
        panic!("{what}: no operation of docs/openapi.json is this route");
    };
    let status = exchange.status.to_string();
    let Some(response) = operation["responses"].get(&status) else {
        panic!("{what}: status {status} is not documented for {method} {template}");
    };
    let content_type = exchange
        .content_type
        .map(|t| t.split(';').next().unwrap_or_default().trim());
    match (response.get("content"), content_type) {
        (None, None) => {}
        (None, Some(_)) if exchange.body.as_str() == Some("") => {}
        (None, Some(media)) => panic!("{what}: a body ({media}) where none is documented"),
        (Some(_), None) => panic!("{what}: no Content-Type"),
        (Some(content), Some(media)) => {
            let Some(documented) = content.get(media) else {
                panic!("{what}: {media} is not a documented content type");
            };
            if media == "application/json" {
                let key = format!("{method} {template} {status}");
                assert_valid(&what, key, &documented["schema"], exchange.body);
            }
        }
    }
    // A body sent to an operation that takes none is ignored by the runtime (the
    // helpers send `{}` with every POST).
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    if let (Some(request), true, false) =
        (exchange.request, exchange.status < 300, schema.is_null())
    {
        let key = format!("{method} {template} request");
        assert_valid(&format!("{what} (request)"), key, schema, request);
    }
}

/// Checks what a `socket.io-client` script recorded (`PROTOCOL_LOG`, one JSON line per
/// ack or envelope) against the protocol schema: an ack for an event the `x-socketio` map
/// does not have, or one unlike its `ack` (or, with `ok: false`, its `errorAck`), fails;
/// so does a payload that succeeded but is not a valid request, and an envelope that is
/// not a valid `Event`.
pub fn check_socketio(script: &str, recorded: &str) {
    let requests = &SPEC.protocol["x-socketio"]["requests"];
    let event_schema = json!({ "$ref": "#/$defs/Event" });
    for line in recorded.lines().filter(|l| !l.is_empty()) {
        let line: Value = serde_json::from_str(line).expect("the script records JSON");
        if line["kind"] == "event" {
            let what = format!("{script}: a session:event");
            assert_valid(&what, "event".into(), &event_schema, &line["envelope"]);
            continue;
        }
        let event = line["event"].as_str().unwrap_or_default();
        let what = format!("{script}: the ack of {event}");
        let Some(entry) = requests.get(event) else {
            panic!("{what}: {event} is not in the schema's x-socketio requests");
        };
        let ack = &line["ack"];
        if ack["ok"] == true {
            assert_valid(&what, format!("{event} ack"), &entry["ack"], ack);
            let payload = &line["payload"];
            if !(payload.is_null() && entry["payloadOptional"] == true) {
                let what = format!("{script}: the accepted payload of {event}");
                assert_valid(
                    &what,
                    format!("{event} request"),
                    &entry["request"],
                    payload,
                );
            }
        } else {
            assert_valid(&what, "error ack".into(), &entry["errorAck"], ack);
        }
    }
}

/// The check fails on what the document does not say, so passing it means something.
#[test]
fn undocumented_routes_statuses_and_bodies_fail() {
    let ok = json!({ "status": "ok" });
    let run = |method: &'static str, target: &'static str, status: u16, body: Value| {
        std::panic::catch_unwind(move || {
            check(&Exchange {
                method,
                target,
                request: None,
                status,
                content_type: Some("application/json"),
                body: &body,
            })
        })
        .is_ok()
    };
    assert!(run("GET", "/healthz", 200, ok.clone()));
    assert!(!run("GET", "/nowhere", 404, ok.clone()));
    assert!(!run("POST", "/healthz", 200, ok.clone()));
    assert!(!run("GET", "/healthz", 201, ok));
    assert!(!run("GET", "/healthz", 200, json!({ "status": 1 })));
    let error = json!({ "error": { "code": "not_found", "message": "no session x" } });
    assert!(run("GET", "/v1/sessions/x", 404, error.clone()));
    assert!(!run("GET", "/v1/sessions/x", 404, json!({ "error": "x" })));
}

/// The Socket.IO check fails on acks and envelopes the schema does not describe.
#[test]
fn undescribed_acks_and_events_fail() {
    let run = |line: Value| {
        std::panic::catch_unwind(move || check_socketio("test", &line.to_string())).is_ok()
    };
    let error = json!({ "ok": false, "error": { "code": "not_found", "message": "no" } });
    assert!(run(
        json!({ "kind": "ack", "event": "session:get", "payload": {}, "ack": error })
    ));
    assert!(!run(
        json!({ "kind": "ack", "event": "session:gossip", "payload": {}, "ack": error })
    ));
    let odd = json!({ "ok": false, "error": { "code": "oops", "message": "no" } });
    assert!(!run(
        json!({ "kind": "ack", "event": "session:get", "payload": {}, "ack": odd })
    ));
    let ok = json!({ "ok": true });
    let payload = json!({ "sessionId": "s" });
    assert!(run(
        json!({ "kind": "ack", "event": "session:leave", "payload": payload, "ack": ok })
    ));
    assert!(!run(
        json!({ "kind": "ack", "event": "session:get", "payload": payload, "ack": ok })
    ));
    assert!(!run(
        json!({ "kind": "ack", "event": "session:leave", "payload": {}, "ack": ok })
    ));
    let envelope = json!({ "sessionId": "s", "seq": 1, "at": "2026-01-01T00:00:00.000Z",
        "type": "status", "data": { "status": "idle" } });
    assert!(run(json!({ "kind": "event", "envelope": envelope })));
    let mut odd = envelope;
    odd["data"]["status"] = json!("sleeping");
    assert!(!run(json!({ "kind": "event", "envelope": odd })));
}
