//! Routes for operators and client generators: liveness, readiness, metrics and the
//! OpenAPI document. They need no token, since probes, scrapers and generators carry
//! none; they reveal no session data.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use schemars::JsonSchema;
use serde::Serialize;

use super::Shared;

/// `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// `{ status: "ok" }`: the process answers.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Health {
    #[schemars(schema_with = "ok_status")]
    status: &'static str,
}

fn ok_status(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "const": "ok" })
}

/// `{ status: "ready" }`, or `{ status: "unavailable", failed }` naming the adapters that
/// do not answer.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Readiness {
    /// The adapters that did not answer (only when `unavailable`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed: Vec<Failure>,
    #[schemars(schema_with = "readiness_status")]
    status: &'static str,
}

fn readiness_status(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["ready", "unavailable"] })
}

/// An adapter that did not answer, and its error.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "AdapterFailure")]
struct Failure {
    adapter: String,
    error: String,
}

/// The process answers: 200 `{ status: "ok" }`.
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// 200 `{ status: "ready" }` when every adapter answers, else 503
/// `{ status: "unavailable", failed: [{ adapter, error }] }`.
async fn readyz(State(ctx): State<Shared>) -> Response {
    match ctx.manager.readiness().await {
        Ok(()) => Json(Readiness {
            status: "ready",
            failed: Vec::new(),
        })
        .into_response(),
        Err(failed) => {
            let failed: Vec<Failure> = failed
                .into_iter()
                .map(|(adapter, error)| Failure { adapter, error })
                .collect();
            let body = Readiness {
                status: "unavailable",
                failed,
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// The REST API's OpenAPI 3.1 document, made once.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(super::openapi::document_text);
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

/// The Prometheus text format.
async fn metrics(State(ctx): State<Shared>) -> Response {
    (
        [(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        ctx.metrics.render(),
    )
        .into_response()
}
