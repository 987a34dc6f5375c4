//! The REST API as an OpenAPI 3.1 document, served at `GET /openapi.json` and checked in
//! as `docs/openapi.json`.
//!
//! Its schemas are the protocol schema's definitions ([`super::schema::protocol`]), made
//! by the same `schemars` derives on the wire types, so REST and Socket.IO are described
//! once. The operations are the table below, next to nothing else: a test sends each to
//! the real router (it must be routed), and the e2e suite checks every request it makes
//! against the document (an undocumented route, status or body fails it).

use serde_json::{Map, Value, json};

use super::error::status_for;
use super::schema::{self, sorted};
use crate::error::ErrorCode;

/// Where the checked-in document lives, relative to the repository.
pub const OPENAPI_PATH: &str = "docs/openapi.json";

/// What an operation answers with a given status.
enum Body {
    /// JSON of a definition of the protocol schema.
    Json(&'static str),
    /// Another media type, with the schema of its text.
    Media(&'static str, &'static str),
    /// JSON from the runtime or the event stream, by `Accept`.
    EventsOrStream,
    /// Nothing (204).
    Empty,
}

/// One REST operation.
struct Operation {
    method: &'static str,
    /// The path as the router has it; a `{path}` parameter may hold `/`.
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    /// Whether it needs `Authorization: Bearer`.
    authenticated: bool,
    /// `(name, schema, description)` of each query parameter.
    query: &'static [(&'static str, &'static str, &'static str)],
    /// The definition of the JSON body, if it takes one.
    body: Option<&'static str>,
    /// Its successes.
    ok: &'static [(u16, Body)],
    /// The error codes it answers beyond those every `/v1` operation may (see
    /// [`COMMON_ERRORS`]); their statuses come from [`status_for`].
    errors: &'static [ErrorCode],
}

/// What any `/v1` operation may answer: a bad path, query or body, no token, a page of a
/// forbidden origin or host, no such session (or route), a failure of the runtime, the
/// session store away.
const COMMON_ERRORS: [ErrorCode; 7] = [
    ErrorCode::InvalidRequest,
    ErrorCode::Unauthorized,
    ErrorCode::OriginForbidden,
    ErrorCode::HostForbidden,
    ErrorCode::NotFound,
    ErrorCode::Internal,
    ErrorCode::StorageUnavailable,
];

/// What an unauthenticated route may answer besides its own statuses.
const OPS_ERRORS: [ErrorCode; 2] = [ErrorCode::OriginForbidden, ErrorCode::HostForbidden];

const SESSION: &[(u16, Body)] = &[(200, Body::Json("SessionResponse"))];

/// Every REST operation, in the order of docs/protocol.md's table.
const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/healthz",
        id: "health",
        summary: "Liveness: the process answers.",
        authenticated: false,
        query: &[],
        body: None,
        ok: &[(200, Body::Json("Health"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/readyz",
        id: "readiness",
        summary: "Readiness: 200 when every adapter answers, else 503 naming those that do not.",
        authenticated: false,
        query: &[],
        body: None,
        ok: &[
            (200, Body::Json("Readiness")),
            (503, Body::Json("Readiness")),
        ],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/metrics",
        id: "metrics",
        summary: "Prometheus metrics (text format 0.0.4).",
        authenticated: false,
        query: &[],
        body: None,
        ok: &[(200, Body::Media("text/plain", "string"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/openapi.json",
        id: "openapi",
        summary: "This document.",
        authenticated: false,
        query: &[],
        body: None,
        ok: &[(200, Body::Media("application/json", "object"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/v1/profiles",
        id: "listProfiles",
        summary: "Every profile a session can be created for.",
        authenticated: true,
        query: &[],
        body: None,
        ok: &[(200, Body::Json("ProfileList"))],
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/v1/sessions",
        id: "createSession",
        summary: "Create a session (and send it a first message).",
        authenticated: true,
        query: &[],
        body: Some("CreateSessionRequest"),
        ok: &[(201, Body::Json("SessionResponse"))],
        errors: &[
            ErrorCode::ProfileNotFound,
            ErrorCode::ProfileInvalid,
            ErrorCode::MetadataInvalid,
            ErrorCode::CapacityExceeded,
            ErrorCode::QuotaExceeded,
            ErrorCode::RateLimited,
            ErrorCode::SandboxFailed,
            ErrorCode::AgentFailed,
        ],
    },
    Operation {
        method: "get",
        path: "/v1/sessions",
        id: "listSessions",
        summary: "The caller's sessions (every session for an admin), a page at a time.",
        authenticated: true,
        query: &[
            ("agentType", "string", "Only sessions of this profile."),
            ("status", "SessionStatus", "Only sessions in this status."),
            (
                "limit",
                "integer",
                "Page size, at least 1 (default 50, at most 500).",
            ),
            ("cursor", "string", "A previous page's `nextCursor`."),
        ],
        body: None,
        ok: &[(200, Body::Json("SessionList"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/v1/sessions/{id}",
        id: "getSession",
        summary: "One session.",
        authenticated: true,
        query: &[],
        body: None,
        ok: SESSION,
        errors: &[],
    },
    Operation {
        method: "delete",
        path: "/v1/sessions/{id}",
        id: "deleteSession",
        summary: "Stop a session and delete its record, event log, files and transcripts.",
        authenticated: true,
        query: &[],
        body: None,
        ok: &[(204, Body::Empty)],
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/v1/sessions/{id}/messages",
        id: "sendMessage",
        summary: "Send a message: 202 once accepted, or with `wait: true` 200 with the turn's `result`.",
        authenticated: true,
        query: &[],
        body: Some("PostMessageRequest"),
        ok: &[
            (202, Body::Json("MessageAccepted")),
            (200, Body::Json("MessageResult")),
        ],
        errors: &[
            ErrorCode::BudgetExceeded,
            ErrorCode::CapacityExceeded,
            ErrorCode::QuotaExceeded,
            ErrorCode::RateLimited,
            ErrorCode::SandboxFailed,
            ErrorCode::AgentFailed,
            ErrorCode::ProfileNotFound,
            ErrorCode::ProfileInvalid,
        ],
    },
    Operation {
        method: "post",
        path: "/v1/sessions/{id}/answers",
        id: "answerRequest",
        summary: "Answer a pending `permission` or `question`.",
        authenticated: true,
        query: &[],
        body: Some("PostAnswerRequest"),
        ok: &[(200, Body::Json("AnswerAccepted"))],
        errors: &[ErrorCode::RequestNotFound, ErrorCode::RequestClosed],
    },
    Operation {
        method: "put",
        path: "/v1/sessions/{id}/budget",
        id: "setBudget",
        summary: "Replace a session's budget (admins only).",
        authenticated: true,
        query: &[],
        body: Some("Budget"),
        ok: SESSION,
        errors: &[ErrorCode::Forbidden],
    },
    Operation {
        method: "post",
        path: "/v1/sessions/{id}/interrupt",
        id: "interruptSession",
        summary: "End the running turn; the agent stays alive.",
        authenticated: true,
        query: &[],
        body: None,
        ok: SESSION,
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/v1/sessions/{id}/stop",
        id: "stopSession",
        summary: "Stop a session after the final sync of its files and transcript.",
        authenticated: true,
        query: &[],
        body: None,
        ok: SESSION,
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/v1/sessions/{id}/resume",
        id: "resumeSession",
        summary: "Resume a stopped or failed session.",
        authenticated: true,
        query: &[],
        body: None,
        ok: SESSION,
        errors: &[
            ErrorCode::CapacityExceeded,
            ErrorCode::QuotaExceeded,
            ErrorCode::SandboxFailed,
            ErrorCode::AgentFailed,
            ErrorCode::ProfileNotFound,
            ErrorCode::ProfileInvalid,
        ],
    },
    Operation {
        method: "post",
        path: "/v1/sessions/{id}/fork",
        id: "forkSession",
        summary: "Fork a session: a new session with its conversation and files so far (its `forkedFrom` names the original).",
        authenticated: true,
        query: &[],
        body: None,
        ok: &[(201, Body::Json("SessionResponse"))],
        errors: &[
            ErrorCode::SessionBusy,
            ErrorCode::CapacityExceeded,
            ErrorCode::QuotaExceeded,
            ErrorCode::RateLimited,
            ErrorCode::SandboxFailed,
            ErrorCode::AgentFailed,
            ErrorCode::ProfileNotFound,
            ErrorCode::ProfileInvalid,
            ErrorCode::MetadataInvalid,
        ],
    },
    Operation {
        method: "get",
        path: "/v1/sessions/{id}/events",
        id: "listEvents",
        summary: "The event log a page at a time, or with `Accept: text/event-stream` as Server-Sent Events that stay open for live events.",
        authenticated: true,
        query: &[
            ("after", "integer", "Only events with a greater seq."),
            (
                "limit",
                "integer",
                "Page size, at least 1 (JSON pages only).",
            ),
        ],
        body: None,
        ok: &[(200, Body::EventsOrStream)],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/v1/sessions/{id}/files",
        id: "listFiles",
        summary: "The session's workspace files.",
        authenticated: true,
        query: &[],
        body: None,
        ok: &[(200, Body::Json("FileList"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/v1/sessions/{id}/files/{path}",
        id: "downloadFile",
        summary: "One workspace file's bytes, streamed; `path` is relative to the workspace and may hold `/`.",
        authenticated: true,
        query: &[],
        body: None,
        ok: &[(200, Body::Media("application/octet-stream", "string"))],
        errors: &[ErrorCode::FileTooLarge],
    },
    Operation {
        method: "get",
        path: "/v1/sessions/{id}/transcript",
        id: "transcript",
        summary: "The event log as NDJSON, one envelope per line.",
        authenticated: true,
        query: &[],
        body: None,
        ok: &[(200, Body::Media("application/x-ndjson", "string"))],
        errors: &[],
    },
];

/// A schema: a definition by its name, or a JSON type.
fn schema_of(name: &str) -> Value {
    match name {
        "string" | "integer" | "object" => json!({ "type": name }),
        _ => json!({ "$ref": format!("#/components/schemas/{name}") }),
    }
}

fn json_content(definition: &str) -> Value {
    json!({ "application/json": { "schema": schema_of(definition) } })
}

/// The responses of one operation.
fn responses(operation: &Operation) -> Map<String, Value> {
    let mut responses = Map::new();
    for (status, body) in operation.ok {
        let response = match body {
            Body::Json(definition) => {
                json!({ "description": definition, "content": json_content(definition) })
            }
            Body::Media(media, schema) => json!({
                "description": media,
                "content": { *media: { "schema": schema_of(schema) } },
            }),
            Body::EventsOrStream => json!({
                "description": "An event page (JSON), or an event stream (SSE: `id:` is the seq, `data:` the envelope).",
                "content": {
                    "application/json": { "schema": schema_of("EventPage") },
                    "text/event-stream": { "schema": { "type": "string" } },
                },
            }),
            Body::Empty => json!({ "description": "Done; no body." }),
        };
        responses.insert(status.to_string(), response);
    }
    let mut errors: Vec<ErrorCode> = if operation.authenticated {
        COMMON_ERRORS.to_vec()
    } else {
        OPS_ERRORS.to_vec()
    };
    errors.extend(operation.errors);
    for code in errors {
        let status = status_for(code).as_u16().to_string();
        let entry = responses.entry(status).or_insert_with(
            || json!({ "description": "", "content": json_content("ErrorResponse") }),
        );
        let description = entry["description"].as_str().unwrap_or_default();
        entry["description"] = json!(if description.is_empty() {
            format!("`{code}`")
        } else {
            format!("{description}, `{code}`")
        });
        if code == ErrorCode::RateLimited {
            entry["headers"] = json!({ "Retry-After": {
                "description": "Whole seconds to wait (`rate_limited`).",
                "schema": { "type": "integer" },
            } });
        }
    }
    responses
}

/// The parameters of one operation: its path's, then its query's.
fn parameters(operation: &Operation) -> Vec<Value> {
    let mut parameters = Vec::new();
    for segment in operation.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let description = match name {
                "id" => "The session's id.",
                _ => "A workspace path, relative, `/`-separated.",
            };
            parameters.push(json!({
                "name": name, "in": "path", "required": true,
                "description": description, "schema": { "type": "string" },
            }));
        }
    }
    for (name, schema, description) in operation.query {
        parameters.push(json!({
            "name": name, "in": "query", "required": false,
            "description": description, "schema": schema_of(schema),
        }));
    }
    if operation.id == "listEvents" {
        parameters.push(json!({
            "name": "Last-Event-ID", "in": "header", "required": false,
            "description": "For an event stream: the last seq the client has; events after it are sent.",
            "schema": { "type": "string" },
        }));
    }
    parameters
}

/// `$ref`s into `#/$defs/` pointed at `#/components/schemas/`.
fn to_components(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| match (key.as_str(), &value) {
                    ("$ref", Value::String(target)) => {
                        let target = target.replace("#/$defs/", "#/components/schemas/");
                        (key, Value::String(target))
                    }
                    _ => (key, to_components(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(to_components).collect()),
        other => other,
    }
}

/// The OpenAPI 3.1 document of the REST API, keys sorted.
pub fn document() -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let mut entry = json!({
            "operationId": operation.id,
            "summary": operation.summary,
            "parameters": parameters(operation),
            "responses": responses(operation),
        });
        if !operation.authenticated {
            entry["security"] = json!([]);
        }
        if let Some(body) = operation.body {
            entry["requestBody"] = json!({ "required": true, "content": json_content(body) });
        }
        let item = paths.entry(operation.path).or_insert_with(|| json!({}));
        item[operation.method] = entry;
    }
    let schemas = to_components(schema::protocol()["$defs"].clone());
    sorted(json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "agent-runtime REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST and SSE half of the agent-runtime wire protocol (docs/protocol.md); the Socket.IO half is in docs/protocol.schema.json, with the same definitions. Errors are `{ error: { code, message } }` with the status of their code.",
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The shared secret, an API key (`ark_...`) or a JWT, as the runtime's `[auth]` says.",
                },
            },
        },
    }))
}

/// The operation of `document` that a request of `method` (lowercase) to `path` (without
/// its query) reaches, with its path template. A final `{path}` parameter takes the rest
/// of the path, `/` included, as the router's `{*path}` does.
pub fn find_operation<'a>(
    document: &'a Value,
    method: &str,
    path: &str,
) -> Option<(&'a str, &'a Value)> {
    document["paths"]
        .as_object()?
        .iter()
        .filter(|(template, _)| template_matches(template, path))
        .find_map(|(template, item)| Some((template.as_str(), item.get(method)?)))
}

/// Whether `path` is an instance of `template`: literal segments equal, each parameter
/// one non-empty segment (a final `{path}` one or more).
pub fn template_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let actual: Vec<&str> = path.split('/').collect();
    for (index, part) in template.iter().enumerate() {
        let Some(segment) = actual.get(index) else {
            return false;
        };
        if *part == "{path}" && index == template.len() - 1 {
            return !actual[index..].join("/").is_empty();
        }
        let matched = if part.starts_with('{') {
            !segment.is_empty()
        } else {
            part == segment
        };
        if !matched {
            return false;
        }
    }
    template.len() == actual.len()
}

/// The document as served and checked in: pretty, keys sorted, one final newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("a JSON value serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use axum::body::Body as HttpBody;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use super::*;

    /// The checked-in document is what the code generates. To update it:
    /// `AGENT_RUNTIME_UPDATE_SCHEMA=1 cargo test -p agent-runtime --lib schema`.
    #[test]
    fn the_checked_in_openapi_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(OPENAPI_PATH);
        let generated = document_text();
        if std::env::var_os("AGENT_RUNTIME_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{OPENAPI_PATH} is not what the code generates; regenerate it with \
             `AGENT_RUNTIME_UPDATE_SCHEMA=1 cargo test -p agent-runtime --lib schema` \
             (or `agent-runtime schema openapi > {OPENAPI_PATH}`) and commit it"
        );
    }

    /// Every documented operation reaches a handler of the real router: not "no route"
    /// (404 with that message) and not 405.
    #[test]
    fn every_operation_is_routed() {
        let served = &*super::super::proptests::SERVED;
        let mut unrouted = Vec::new();
        for operation in OPERATIONS {
            let target = operation
                .path
                .replace("{id}", "no-such-session")
                .replace("{path}", "a/b.txt");
            let method = Method::from_bytes(operation.method.to_uppercase().as_bytes()).unwrap();
            let request = Request::builder()
                .method(method)
                .uri(&target)
                .body(HttpBody::empty())
                .unwrap();
            let (status, text) = served.runtime.block_on(async {
                let response = served.router.clone().oneshot(request).await.unwrap();
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
                    .await
                    .unwrap_or_default();
                (status, String::from_utf8_lossy(&bytes).into_owned())
            });
            if status == 405 || (status == 404 && text.contains("no route for")) {
                unrouted.push(operation.id);
            }
        }
        assert!(unrouted.is_empty(), "{unrouted:?}");
    }

    #[test]
    fn path_templates_match_whole_segments() {
        assert!(template_matches("/v1/sessions/{id}", "/v1/sessions/abc"));
        assert!(!template_matches(
            "/v1/sessions/{id}",
            "/v1/sessions/abc/stop"
        ));
        assert!(!template_matches("/v1/sessions/{id}", "/v1/sessions/"));
        let file = "/v1/sessions/{id}/files/{path}";
        assert!(template_matches(file, "/v1/sessions/a/files/b/c.txt"));
        assert!(!template_matches(file, "/v1/sessions/a/files"));
        assert!(template_matches("/healthz", "/healthz"));
        let document = document();
        let (template, _) = find_operation(&document, "post", "/v1/sessions/s/stop").unwrap();
        assert_eq!(template, "/v1/sessions/{id}/stop");
        assert!(find_operation(&document, "patch", "/v1/sessions/s").is_none());
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target} is not a component"));
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{target} is not defined"
            );
        }
    }
}
