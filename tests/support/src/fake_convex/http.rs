//! The fake's HTTP side: routing, auth, the documented request and answer shapes.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::codec;
use super::{FakeCall, FunctionError, FunctionKind, State, lock};

type HttpResponse = Response<Full<Bytes>>;

pub(super) async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    crate::http_server::serve(listener, state, handle).await
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let path = req.uri().path().to_owned();
    let endpoint = match (req.method(), path.as_str()) {
        (&Method::POST, "/api/query") => Some("query"),
        (&Method::POST, "/api/mutation") => Some("mutation"),
        (&Method::POST, "/api/action") => Some("action"),
        (&Method::POST, p) if p.starts_with("/api/run/") => Some("run"),
        _ => None,
    };
    if let Some(endpoint) = endpoint {
        return Ok(function_call(&state, endpoint, req).await);
    }
    if let Some(status) = injected_failure(&state) {
        return Ok(failure(status));
    }
    let response = match (req.method(), path.as_str()) {
        (&Method::POST, "/api/storage/upload") => upload(&state, req).await,
        (&Method::GET, p) if p.starts_with("/api/storage/") => download(&state, p),
        (method, p) => request_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the fake Convex deployment does not serve {method} {p}"),
        ),
    };
    Ok(response)
}

fn injected_failure(state: &State) -> Option<u16> {
    let mut failures = lock(&state.failures);
    if failures.is_empty() {
        None
    } else {
        Some(failures.remove(0))
    }
}

fn failure(status: u16) -> HttpResponse {
    if status == 560 {
        let body = json!({"status": "error", "errorMessage": "injected function failure"});
        return json_response(StatusCode::from_u16(560).unwrap_or(StatusCode::OK), &body);
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    request_error(code, "InjectedFailure", "a failure injected by the test")
}

async fn function_call(state: &State, endpoint: &str, req: Request<Incoming>) -> HttpResponse {
    let run_path = req.uri().path().strip_prefix("/api/run/").map(run_path);
    let auth = check_auth(state, req.headers());
    let body = match read_json(req).await {
        Ok(body) => body,
        Err(message) => return request_error(StatusCode::BAD_REQUEST, "BadJsonBody", &message),
    };
    let Some(path) = run_path.or_else(|| body["path"].as_str().map(str::to_owned)) else {
        return request_error(StatusCode::BAD_REQUEST, "BadJsonBody", "missing `path`");
    };
    if let Some(status) = injected_failure(state) {
        record(state, endpoint, &path, Value::Null, status);
        return failure(status);
    }
    if let Err((code, message)) = auth {
        record(state, endpoint, &path, Value::Null, 401);
        return request_error(StatusCode::UNAUTHORIZED, code, message);
    }
    let format = body["format"].as_str().unwrap_or("json").to_owned();
    if !matches!(
        format.as_str(),
        "json" | "convex_clean_json" | "convex_encoded_json" | "convex_json" | "export_json"
    ) {
        return request_error(
            StatusCode::BAD_REQUEST,
            "BadFormat",
            &format!("unknown format {format}"),
        );
    }
    // The official clients send a one-element array; named arguments arrive as an object.
    let raw_args = match &body["args"] {
        Value::Array(items) if items.len() == 1 => items[0].clone(),
        Value::Null => json!({}),
        other => other.clone(),
    };
    let args = match codec::decode(raw_args) {
        Ok(args) => args,
        Err(message) => return request_error(StatusCode::BAD_REQUEST, "BadJsonBody", &message),
    };
    let delay = *lock(&state.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let outcome = run(state, endpoint, &path, args.clone());
    record(state, endpoint, &path, args, 200);
    let body = match outcome {
        Ok(value) => {
            json!({"status": "success", "value": codec::encode(value, &format), "logLines": []})
        }
        Err(error) => {
            let mut body =
                json!({"status": "error", "errorMessage": error_message(&error), "logLines": []});
            if let Some(data) = error.data {
                body["errorData"] = codec::encode(data, &format);
            }
            body
        }
    };
    json_response(StatusCode::OK, &body)
}

/// Runs the handler at `path` as Convex would: a mutation's writes are kept only if it
/// succeeds; a function called through the wrong endpoint fails.
fn run(state: &State, endpoint: &str, path: &str, args: Value) -> Result<Value, FunctionError> {
    let found = lock(&state.handlers).get(path).cloned();
    let Some((kind, handler)) = found else {
        return Err(FunctionError::message(format!(
            "Could not find public function for '{path}'. Did you forget to run `npx convex dev`?"
        )));
    };
    if endpoint != "run" && endpoint != kind.as_str() {
        return Err(FunctionError::message(format!(
            "Trying to execute {path} as {endpoint}, but it is defined as {}.",
            kind.as_str()
        )));
    }
    if args.as_object().is_none() {
        return Err(FunctionError::message(
            "ArgumentValidationError: arguments must be an object",
        ));
    }
    let mut db = lock(&state.db);
    if kind == FunctionKind::Mutation {
        let mut draft = db.clone();
        let value = handler(&mut draft, args)?;
        *db = draft;
        Ok(value)
    } else {
        handler(&mut db, args)
    }
}

fn error_message(error: &FunctionError) -> String {
    match &error.data {
        Some(data) => format!("Uncaught ConvexError: {data}"),
        None => format!("Uncaught Error: {}", error.message),
    }
}

/// Checks `Authorization: Convex <deploy key>`; the error is the 401 body's code and message.
fn check_auth(
    state: &State,
    headers: &hyper::HeaderMap,
) -> Result<(), (&'static str, &'static str)> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err((
            "MissingAccessToken",
            "this fake deployment needs `Authorization: Convex <deploy key>`",
        ));
    };
    let key = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("convex"))
        .map(|(_, key)| key.trim());
    if key != Some(state.deploy_key.as_str()) {
        // Never echo what was sent: it may be a real key sent to the wrong place.
        return Err((
            "BadDeployKey",
            "The provided deploy key was invalid for this deployment.",
        ));
    }
    Ok(())
}

async fn upload(state: &State, req: Request<Incoming>) -> HttpResponse {
    let token = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")))
        .unwrap_or("")
        .to_owned();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    if !lock(&state.db).take_upload_token(&token) {
        return request_error(
            StatusCode::BAD_REQUEST,
            "StorageUploadFailed",
            "invalid or used upload token",
        );
    }
    let bytes = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return request_error(StatusCode::BAD_REQUEST, "BadBody", &err.to_string()),
    };
    let storage_id = lock(&state.db).store_file(bytes, &content_type);
    json_response(StatusCode::OK, &json!({"storageId": storage_id}))
}

fn download(state: &State, path: &str) -> HttpResponse {
    let uuid = path.trim_start_matches("/api/storage/");
    let db = lock(&state.db);
    let Some(file) = db.file_by_uuid(uuid) else {
        return request_error(StatusCode::NOT_FOUND, "FileNotFound", "no such file");
    };
    let mut response = Response::new(Full::new(file.bytes.clone()));
    let headers = response.headers_mut();
    if let Ok(value) = header::HeaderValue::from_str(&file.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(file.bytes.len()),
    );
    response
}

/// `/api/run/a/b/fn` → `a/b:fn`.
fn run_path(rest: &str) -> String {
    match rest.rsplit_once('/') {
        Some((module, function)) => format!("{module}:{function}"),
        None => rest.to_owned(),
    }
}

fn record(state: &State, endpoint: &str, path: &str, args: Value, status: u16) {
    lock(&state.calls).push(FakeCall {
        endpoint: endpoint.to_owned(),
        path: path.to_owned(),
        args,
        status,
    });
}

async fn read_json(req: Request<Incoming>) -> Result<Value, String> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|err| format!("cannot read the body: {err}"))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|err| format!("the body is not JSON: {err}"))
}

fn request_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    json_response(status, &json!({"code": code, "message": message}))
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
