//! Property tests of every request a client can send: the Socket.IO payload parsers and
//! the whole REST router, fed arbitrary JSON, strings, paths, queries, bodies and
//! `Origin`/`Host`/`Last-Event-ID` headers. None may panic; every refusal carries a code
//! of the protocol with its documented status.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Map, Value};
use tower::ServiceExt;

use super::error::status_for;
use super::payload;
use crate::error::{ErrorCode, RuntimeError};

/// Every code the protocol documents (docs/protocol.md, "Error codes").
const DOCUMENTED_CODES: [ErrorCode; 20] = [
    ErrorCode::Unauthorized,
    ErrorCode::OriginForbidden,
    ErrorCode::HostForbidden,
    ErrorCode::NotFound,
    ErrorCode::InvalidRequest,
    ErrorCode::ProfileNotFound,
    ErrorCode::ProfileInvalid,
    ErrorCode::MetadataInvalid,
    ErrorCode::CapacityExceeded,
    ErrorCode::QuotaExceeded,
    ErrorCode::RateLimited,
    ErrorCode::SandboxFailed,
    ErrorCode::AgentFailed,
    ErrorCode::StorageUnavailable,
    ErrorCode::RequestNotFound,
    ErrorCode::RequestClosed,
    ErrorCode::BudgetExceeded,
    ErrorCode::Forbidden,
    ErrorCode::SessionBusy,
    ErrorCode::Internal,
];

/// Field names the parsers look for, so that generated objects reach past "missing
/// field" into each field's own checks; content-block names too.
const FIELDS: [&str; 25] = [
    "agentType",
    "metadata",
    "sessionId",
    "message",
    "content",
    "messageId",
    "afterSeq",
    "status",
    "limit",
    "cursor",
    "wait",
    "type",
    "text",
    "source",
    "data",
    "media_type",
    "requestId",
    "behavior",
    "input",
    "always",
    "answers",
    "budget",
    "maxCostUsd",
    "maxTokens",
    "maxTurns",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&FIELDS[..]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::sample::select(&["", "text", "image", "idle", "running", "base64", "."][..])
            .prop_map(str::to_owned),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        json_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn assert_parser_refusal(error: RuntimeError) -> Result<(), TestCaseError> {
    prop_assert_eq!(error.code, ErrorCode::InvalidRequest);
    prop_assert!(!error.message.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every Socket.IO request payload either parses or is `invalid_request`.
    #[test]
    fn socketio_payloads_parse_or_are_invalid_requests(payload in json_value()) {
        let refusals = [
            payload::create(&payload).err(),
            payload::session_id(&payload).err(),
            payload::send_message(&payload).err(),
            payload::join(&payload).err(),
            payload::list(&payload).err(),
            payload::optional_object(&payload).err(),
            payload::set_budget(&payload).err(),
            payload::budget(&payload).err(),
            payload::answer(&payload).err(),
            payload::post_message(&payload).err(),
            payload::post_answer(&payload).err(),
        ];
        for error in refusals.into_iter().flatten() {
            assert_parser_refusal(error)?;
        }
    }

    /// Strings where the protocol expects names: parsed or `invalid_request`.
    #[test]
    fn names_parse_or_are_invalid_requests(name in any::<String>(), n in any::<u64>()) {
        if let Err(error) = payload::status(&name) {
            assert_parser_refusal(error)?;
        }
        if let Err(error) = payload::limit_value(n, &name) {
            assert_parser_refusal(error)?;
        }
    }
}

/// The OpenAPI document, made once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(super::openapi::document);

/// The REST router of a runtime with no profiles (so no agent ever starts), served in
/// process on a runtime of its own.
pub(super) struct Served {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) router: Router,
    _dir: tempfile::TempDir,
}

pub(super) static SERVED: LazyLock<Served> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir(dir.path().join("profiles")).expect("the profiles dir");
    let toml = "[store]\nkind = \"memory\"\n[storage]\nkind = \"memory\"\n\
                [profiles]\nkind = \"directory\"\npath = \"profiles\"\n\
                [sandbox]\nkind = \"local\"\nroot = \"sandboxes\"\n";
    let config = crate::config::Config::from_toml_str(toml, dir.path()).expect("the config");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let router = runtime.block_on(async {
        let adapters = crate::catalog::build_adapters(&config, None, &Default::default())
            .await
            .unwrap_or_else(|_| panic!("memory adapters build"));
        let store = adapters.store.clone();
        let settings = crate::catalog::runtime_settings(&config);
        let manager = crate::runtime::SessionManager::new(adapters, settings);
        let auth = crate::catalog::authenticator(&config.auth, store).expect("no JWT settings");
        super::router(super::AppState::new(manager, auth))
    });
    Served {
        runtime,
        router,
        _dir: dir,
    }
});

/// A path segment (or a run of them) made of any characters, percent-encoded.
fn path_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|text| percent_encode(&text, b"/")),
        prop::sample::select(&["", ".", "..", "%2e%2e", "a/b", "%2F", "%00", "x?y"][..])
            .prop_map(str::to_owned),
    ]
}

fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn rest_path() -> impl Strategy<Value = String> {
    const TEMPLATES: [&str; 18] = [
        "/v1/profiles",
        "/v1/sessions",
        "/v1/sessions/{}",
        "/v1/sessions/{}/messages",
        "/v1/sessions/{}/interrupt",
        "/v1/sessions/{}/answers",
        "/v1/sessions/{}/budget",
        "/v1/sessions/{}/stop",
        "/v1/sessions/{}/resume",
        "/v1/sessions/{}/fork",
        "/v1/sessions/{}/events",
        "/v1/sessions/{}/files",
        "/v1/sessions/{}/files/{}",
        "/v1/sessions/{}/transcript",
        "/healthz",
        "/readyz",
        "/{}",
        "/v1/{}",
    ];
    (
        prop::sample::select(&TEMPLATES[..]),
        path_text(),
        path_text(),
    )
        .prop_map(|(template, a, b)| template.replacen("{}", &a, 1).replacen("{}", &b, 1))
}

fn query() -> impl Strategy<Value = String> {
    const NAMES: [&str; 5] = ["after", "limit", "status", "agentType", "cursor"];
    let pair = (
        prop_oneof![
            prop::sample::select(&NAMES[..]).prop_map(str::to_owned),
            any::<String>()
        ],
        prop_oneof![
            any::<String>(),
            any::<i64>().prop_map(|n| n.to_string()),
            Just(String::new())
        ],
    );
    prop::collection::vec(pair, 0..4).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k, b""), percent_encode(v, b"")))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[derive(Debug, Clone)]
enum BodyKind {
    None,
    Json(Value),
    Bytes(Vec<u8>),
}

fn body() -> impl Strategy<Value = (BodyKind, Option<&'static str>)> {
    let content_type = prop_oneof![
        3 => Just(Some("application/json")),
        1 => prop::option::of(prop::sample::select(
            &["text/plain", "application/json; charset=utf-8"][..],
        )),
    ];
    // Bodies shaped like the protocol's reach past "not an object" into each field.
    let shaped = (json_string(), json_value(), json_value(), any::<bool>()).prop_map(
        |(agent_type, metadata, content, wait)| {
            serde_json::json!({ "agentType": agent_type, "metadata": metadata,
                                "content": content, "message": content, "wait": wait })
        },
    );
    let kind = prop_oneof![
        Just(BodyKind::None),
        json_value().prop_map(BodyKind::Json),
        shaped.prop_map(BodyKind::Json),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(BodyKind::Bytes),
    ];
    (kind, content_type)
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(
        &[
            Method::GET,
            Method::POST,
            Method::DELETE,
            Method::PUT,
            Method::PATCH,
            Method::HEAD,
            Method::OPTIONS,
        ][..],
    )
}

/// Sends one request and checks the answer: a success, or an error body with a
/// documented code whose status is the documented one.
fn check_request(
    method: Method,
    target: String,
    (body, content_type): (BodyKind, Option<&'static str>),
    headers: Vec<(&'static str, String)>,
) -> Result<(), TestCaseError> {
    let mut request = Request::builder().method(method.clone()).uri(&target);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let body = match body {
        BodyKind::None => Body::empty(),
        BodyKind::Json(value) => Body::from(value.to_string()),
        BodyKind::Bytes(bytes) => Body::from(bytes),
    };
    // A target the HTTP layer would never deliver is not a request the router can get.
    let Ok(request) = request.body(body) else {
        return Ok(());
    };
    let served = &*SERVED;
    let (status, bytes) = served.runtime.block_on(async {
        let response = served.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        // Only error bodies are read: a 200 SSE stream would never end.
        let bytes = if status.is_client_error() || status.is_server_error() {
            axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap_or_default()
        } else {
            Default::default()
        };
        (status, bytes)
    });
    prop_assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{} {}",
        method,
        target
    );
    // A request the OpenAPI document has an operation for gets a status it documents.
    let path = target.split('?').next().unwrap_or_default();
    let method_name = method.as_str().to_lowercase();
    if let Some((template, operation)) =
        super::openapi::find_operation(&DOCUMENT, &method_name, path)
    {
        prop_assert!(
            operation["responses"].get(status.as_str()).is_some(),
            "{} {}: {} is not documented for {}",
            method,
            target,
            status,
            template
        );
    }
    if status.is_success() {
        return Ok(());
    }
    prop_assert!(
        status.is_client_error() || status.is_server_error(),
        "{}",
        status
    );
    if method == Method::HEAD {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{method} {target}: {status}, not JSON: {e}")))?;
    let code = body["error"]["code"].as_str().unwrap_or_default();
    let documented = DOCUMENTED_CODES.iter().find(|c| c.as_str() == code);
    prop_assert!(
        documented.is_some(),
        "{} {}: code {:?}",
        method,
        target,
        body
    );
    prop_assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let expected = match documented {
        // A known route with a method it does not take.
        Some(ErrorCode::InvalidRequest) if status == StatusCode::METHOD_NOT_ALLOWED => status,
        Some(code) => status_for(*code),
        None => unreachable!(),
    };
    prop_assert_eq!(status, expected, "{} {}: {}", method, target, body);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// Any method, path, query, body and content type on the REST surface.
    #[test]
    fn rest_requests_get_a_documented_answer(
        method in method(),
        path in rest_path(),
        query in query(),
        body in body(),
        event_stream in any::<bool>(),
        last_event_id in prop::option::of("[ -~]{0,12}"),
        origin in prop::option::of(prop_oneof!["[ -~]{0,24}", Just("http://localhost:3000".to_owned())]),
        host in prop::option::of(prop_oneof!["[ -~]{0,24}", Just("127.0.0.1:4000".to_owned())]),
    ) {
        let target = if query.is_empty() { path } else { format!("{path}?{query}") };
        let mut headers = Vec::new();
        if event_stream {
            headers.push(("accept", "text/event-stream".to_owned()));
        }
        let optional = [("last-event-id", last_event_id), ("origin", origin), ("host", host)];
        headers.extend(optional.into_iter().filter_map(|(name, value)| Some((name, value?))));
        check_request(method, target, body, headers)?;
    }
}

/// Bodies for the requests that take one, shaped closely enough to pass the first checks.
fn session_body() -> impl Strategy<Value = Value> {
    let metadata = prop_oneof![Just(Value::Null), json_value()];
    let content = prop_oneof![json_string().prop_map(Value::from), json_value()];
    (
        json_string(),
        metadata,
        content,
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(agent_type, metadata, content, wait)| {
            serde_json::json!({ "agentType": agent_type, "metadata": metadata,
                                "message": content, "content": content, "wait": wait })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Creating a session and sending a message, with arbitrary field values.
    #[test]
    fn session_requests_get_a_documented_answer(
        create in any::<bool>(),
        id in path_text(),
        body in session_body(),
    ) {
        let target = if create {
            "/v1/sessions".to_owned()
        } else {
            format!("/v1/sessions/{id}/messages")
        };
        let body = (BodyKind::Json(body), Some("application/json"));
        check_request(Method::POST, target, body, Vec::new())?;
    }
}
