//! Every REST exchange the suite makes through [`crate::support::Http`], checked against
//! the runtime's OpenAPI document: the route and method must be an operation, the status
//! one of its responses, the content type one it documents, and a JSON body valid for
//! that response's schema; a request body that succeeded must be valid for the
//! operation's. So the document cannot fall behind the API the tests exercise.

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
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static SPEC: LazyLock<Spec> = LazyLock::new(|| Spec {
    document: agent_runtime::transport::openapi::document(),
    validators: Mutex::new(HashMap::new()),
});

/// A validator for `schema` (which may `$ref` the document's components).
fn validator(key: String, schema: &Value) -> Arc<jsonschema::Validator> {
    let mut validators = SPEC.validators.lock().unwrap();
    validators
        .entry(key)
        .or_insert_with(|| {
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": SPEC.document["components"],
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
        "{what} does not follow docs/openapi.json: {errors:?}\n{instance:#}"
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
