//! The `/v1` REST routes. Every one needs `Authorization: Bearer <token>` (as the
//! configured authenticator decides) and answers errors as `{ error: { code, message } }`.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{StatusCode, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use super::wire::{
    self, AnswerBody, FilesBody, MessageBody, ProfilesBody, ResultBody, SessionBody, SessionsBody,
};
use super::{Shared, bearer_token, payload, sse};
use crate::auth::Principal;
use crate::error::{ErrorCode, RuntimeError};
use crate::runtime::ListSessions;

/// The `/v1` routes, behind the bearer-token check.
pub(crate) fn routes(ctx: &Shared) -> Router<Shared> {
    Router::new()
        .route("/v1/profiles", get(profiles))
        .route("/v1/sessions", post(create).get(list))
        .route("/v1/sessions/{id}", get(get_session).delete(delete))
        .route("/v1/sessions/{id}/messages", post(send_message))
        .route("/v1/sessions/{id}/answers", post(answer))
        .route("/v1/sessions/{id}/budget", put(set_budget))
        .route("/v1/sessions/{id}/interrupt", post(interrupt))
        .route("/v1/sessions/{id}/stop", post(stop))
        .route("/v1/sessions/{id}/resume", post(resume))
        .route("/v1/sessions/{id}/fork", post(fork))
        .route("/v1/sessions/{id}/events", get(sse::events))
        .route("/v1/sessions/{id}/files", get(files))
        .route("/v1/sessions/{id}/files/{*path}", get(file))
        .route("/v1/sessions/{id}/transcript", get(sse::transcript))
        .route_layer(middleware::from_fn_with_state(
            ctx.clone(),
            require_principal,
        ))
}

/// Authenticates the request and hands its [`Principal`] to the handler.
async fn require_principal(
    State(ctx): State<Shared>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = ctx
        .auth
        .authenticate(bearer_token(request.headers()))
        .await?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// A JSON body; a missing content type or bad JSON is `invalid_request`.
pub(crate) struct JsonBody(pub(crate) Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<Value>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// Path parameters; a malformed one is `invalid_request`.
pub(crate) struct PathParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The query string as name → value; a malformed one is `invalid_request`. Values are
/// parsed by hand so that a refusal names the parameter.
pub(crate) struct QueryParams(pub(crate) HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        Ok(Self(map))
    }
}

impl QueryParams {
    /// A parameter's value; an empty one counts as absent.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A non-negative integer parameter.
    pub(crate) fn u64(&self, name: &str) -> Result<Option<u64>, RuntimeError> {
        self.text(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    RuntimeError::invalid(format!("`{name}` must be a non-negative integer"))
                })
            })
            .transpose()
    }

    /// A page-size parameter: a positive integer.
    pub(crate) fn limit(&self, name: &str) -> Result<Option<usize>, RuntimeError> {
        self.u64(name)?
            .map(|n| payload::limit_value(n, name))
            .transpose()
    }
}

async fn profiles(State(ctx): State<Shared>) -> Result<Response, ApiError> {
    let profiles = ctx.manager.profiles().await?;
    let body = ProfilesBody {
        profiles: wire::profiles(&profiles),
    };
    Ok(Json(body).into_response())
}

async fn create(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = payload::create(&body)?;
    let record = ctx.manager.create(&principal, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionBody::new(&record, &ctx.manager.pending(&record.id))),
    )
        .into_response())
}

async fn list(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let filter = ListSessions {
        agent_type: query.text("agentType").map(str::to_owned),
        status: query.text("status").map(payload::status).transpose()?,
        limit: query.limit("limit")?,
        cursor: query.text("cursor").map(str::to_owned),
    };
    let page = ctx.manager.list(&principal, filter).await?;
    let body = SessionsBody {
        sessions: wire::sessions(&page.sessions, |id| ctx.manager.pending(id)),
        next_cursor: page.next_cursor.as_deref(),
    };
    Ok(Json(body).into_response())
}

async fn get_session(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let record = ctx.manager.get(&principal, &id).await?;
    Ok(Json(SessionBody::new(&record, &ctx.manager.pending(&record.id))).into_response())
}

async fn delete(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    ctx.manager.delete(&principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{ content, messageId?, wait? }` → 202 `{ messageId, seq }`, or with `wait: true`
/// 200 `{ messageId, result }` once the turn's `result` event is persisted.
async fn send_message(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let payload::PostMessage {
        content,
        message_id,
        wait,
    } = payload::post_message(&body)?;
    if !wait {
        let accepted = ctx
            .manager
            .send_message(&principal, &id, content, message_id)
            .await?;
        let body = MessageBody {
            message_id: &accepted.message_id,
            seq: accepted.seq,
        };
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    let (accepted, waiter) = ctx
        .manager
        .send_message_and_wait(&principal, &id, content, message_id)
        .await?;
    let result = tokio::select! {
        result = waiter.result() => result?,
        () = ctx.shutting_down() => {
            return Err(RuntimeError::new(
                ErrorCode::Internal,
                "the runtime is shutting down; the turn's result will be in the event log",
            )
            .into());
        }
    };
    let body = ResultBody {
        message_id: &accepted.message_id,
        result: &result,
    };
    Ok(Json(body).into_response())
}

/// `{ requestId, behavior, message?, input?, always?, answers? }` → `{ seq }`.
async fn answer(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (request_id, answer) = payload::post_answer(&body)?;
    let seq = ctx
        .manager
        .answer(&principal, &id, &request_id, answer)
        .await?;
    Ok(Json(AnswerBody { seq }).into_response())
}

/// `{ maxCostUsd?, maxTokens?, maxTurns? }` → `{ session }`: the session's new budget
/// (admins only).
async fn set_budget(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let budget = payload::budget(&body)?;
    let record = ctx.manager.set_budget(&principal, &id, budget).await?;
    Ok(Json(SessionBody::new(&record, &ctx.manager.pending(&record.id))).into_response())
}

async fn interrupt(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let record = ctx.manager.interrupt(&principal, &id).await?;
    Ok(Json(SessionBody::new(&record, &ctx.manager.pending(&record.id))).into_response())
}

async fn stop(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let record = ctx.manager.stop(&principal, &id).await?;
    Ok(Json(SessionBody::new(&record, &ctx.manager.pending(&record.id))).into_response())
}

async fn resume(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let record = ctx.manager.resume(&principal, &id).await?;
    Ok(Json(SessionBody::new(&record, &ctx.manager.pending(&record.id))).into_response())
}

/// 201 `{ session }`: a new session forked from this one, live and `idle`.
async fn fork(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let record = ctx.manager.fork(&principal, &id, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionBody::new(&record, &ctx.manager.pending(&record.id))),
    )
        .into_response())
}

async fn files(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let files = ctx.manager.files(&principal, &id).await?;
    let body = FilesBody {
        files: wire::files(&files),
    };
    Ok(Json(body).into_response())
}

/// One workspace file's bytes, streamed as they are read; the manager checks the path.
async fn file(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams((id, path)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let file = ctx.manager.file(&principal, &id, &path).await?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file.body));
    Ok(([(CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn query(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn query_numbers_name_the_parameter() {
        let q = query(&[("after", "x"), ("limit", "0"), ("empty", "")]);
        let error = q.u64("after").unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert_eq!(error.message, "`after` must be a non-negative integer");
        assert_eq!(
            q.limit("limit").unwrap_err().message,
            "`limit` must be a positive integer"
        );
        assert_eq!(q.u64("empty").unwrap(), None);
        assert_eq!(q.u64("missing").unwrap(), None);
        assert_eq!(query(&[("after", "12")]).u64("after").unwrap(), Some(12));
    }
}
