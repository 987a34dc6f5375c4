//! Routes for operators: liveness, readiness and metrics. They need no token, since
//! probes and scrapers carry none; they reveal no session data.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::Shared;

/// `/healthz`, `/readyz`, `/metrics`.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process answers: 200 `{ status: "ok" }`.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Serialize)]
struct Failure {
    adapter: String,
    error: String,
}

/// 200 `{ status: "ready" }` when every adapter answers, else 503
/// `{ status: "unavailable", failed: [{ adapter, error }] }`.
async fn readyz(State(ctx): State<Shared>) -> Response {
    match ctx.manager.readiness().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(failed) => {
            let failed: Vec<Failure> = failed
                .into_iter()
                .map(|(adapter, error)| Failure { adapter, error })
                .collect();
            let body = json!({ "status": "unavailable", "failed": failed });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// The Prometheus text format.
async fn metrics(State(ctx): State<Shared>) -> Response {
    (
        [(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        ctx.metrics.render(),
    )
        .into_response()
}
