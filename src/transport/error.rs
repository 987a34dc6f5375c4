//! How a [`RuntimeError`] looks on each transport: an HTTP status plus
//! `{ "error": { code, message } }`, or a Socket.IO ack `{ ok: false, error }`.
//!
//! axum's own rejections (bad JSON, bad query strings, unknown routes) are mapped to the
//! same shape, so a client never has to parse axum's plain-text defaults.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::{ErrorCode, RuntimeError};

/// The HTTP status for each error code. Fixed: a client may branch on either.
///
/// `invalid_request` is 400: the request could not be understood (bad JSON, a missing or
/// mistyped field, a bad query parameter). `profile_not_found`, `profile_invalid` and
/// `metadata_invalid` are 422: the request was understood, but the agent type it names or
/// the metadata it carries cannot be used. `file_too_large` is 422 too: the file exists,
/// but this runtime does not serve files that large. `budget_exceeded` is 409 like
/// `request_closed`: the session's state refuses the message, and sending it again does not
/// help until an admin raised the budget (not 402: nothing is paid here, and not 429:
/// waiting does not help).
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::OriginForbidden | ErrorCode::HostForbidden | ErrorCode::Forbidden => {
            StatusCode::FORBIDDEN
        }
        ErrorCode::NotFound | ErrorCode::RequestNotFound => StatusCode::NOT_FOUND,
        ErrorCode::RequestClosed | ErrorCode::BudgetExceeded | ErrorCode::SessionBusy => {
            StatusCode::CONFLICT
        }
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::ProfileNotFound
        | ErrorCode::ProfileInvalid
        | ErrorCode::MetadataInvalid
        | ErrorCode::FileTooLarge => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::CapacityExceeded | ErrorCode::QuotaExceeded | ErrorCode::RateLimited => {
            StatusCode::TOO_MANY_REQUESTS
        }
        ErrorCode::SandboxFailed | ErrorCode::AgentFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `{ code, message, retryAfter? }`: the error object shared by REST bodies, acks and
/// Socket.IO `error` events.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Error")]
pub struct ErrorObject<'a> {
    /// What kind of failure this is; clients branch on it.
    code: ErrorCode,
    /// What happened, for a person.
    message: &'a str,
    /// Whole seconds to wait before trying again; only when waiting helps
    /// (`rate_limited`, some `quota_exceeded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

/// `{ error }`: the body of every REST error.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "ErrorResponse")]
pub struct ErrorBody<'a> {
    /// The error.
    error: ErrorObject<'a>,
}

/// `{ ok: false, error }`: a failed Socket.IO ack.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "ErrorAck")]
pub struct ErrorAck<'a> {
    /// The error.
    error: ErrorObject<'a>,
    /// Always `false`.
    #[schemars(schema_with = "crate::transport::schema::always_false")]
    ok: bool,
}

/// `{ event, error }`: the Socket.IO `error` event of a request sent without an ack.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "SocketError")]
pub struct SocketError<'a> {
    /// The error.
    pub error: ErrorObject<'a>,
    /// The request event that failed (`session:message`, ...).
    pub event: &'a str,
}

/// The error object of `error`, its fields in the order they were always written; `retryAfter` (whole seconds) is there only when waiting
/// helps.
pub fn error_object(error: &RuntimeError) -> ErrorObject<'_> {
    ErrorObject {
        code: error.code,
        message: &error.message,
        retry_after: error.retry_after,
    }
}

/// The failed Socket.IO ack: `{ ok: false, error: { code, message } }`.
pub fn error_ack(error: &RuntimeError) -> ErrorAck<'_> {
    ErrorAck {
        ok: false,
        error: error_object(error),
    }
}

/// A [`RuntimeError`] as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub RuntimeError);

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: error_object(&self.0),
        };
        let mut response = (status_for(self.0.code), Json(body)).into_response();
        if let Some(seconds) = self.0.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON with `Content-Type: application/json`".to_owned()
            }
            JsonRejection::JsonSyntaxError(_) => {
                format!("the body is not valid JSON: {}", rejection.body_text())
            }
            _ => format!("the body could not be read: {}", rejection.body_text()),
        };
        Self(RuntimeError::invalid(message))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self(RuntimeError::invalid(format!(
            "invalid query string: {}",
            rejection.body_text()
        )))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self(RuntimeError::invalid(format!(
            "invalid path: {}",
            rejection.body_text()
        )))
    }
}

/// The answer for a path no route matches.
pub async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError(RuntimeError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    ))
}

/// The answer for a known path with the wrong method: 405, with the usual error body.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let error = RuntimeError::invalid(format!("{method} is not allowed on {}", uri.path()));
    let body = ErrorBody {
        error: error_object(&error),
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status() {
        let table = [
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::OriginForbidden, 403),
            (ErrorCode::HostForbidden, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::InvalidRequest, 400),
            (ErrorCode::ProfileNotFound, 422),
            (ErrorCode::ProfileInvalid, 422),
            (ErrorCode::MetadataInvalid, 422),
            (ErrorCode::CapacityExceeded, 429),
            (ErrorCode::QuotaExceeded, 429),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::FileTooLarge, 422),
            (ErrorCode::SandboxFailed, 502),
            (ErrorCode::AgentFailed, 502),
            (ErrorCode::StorageUnavailable, 503),
            (ErrorCode::Internal, 500),
        ];
        for (code, status) in table {
            assert_eq!(status_for(code).as_u16(), status, "{code}");
        }
    }

    #[test]
    fn ack_shape() {
        let error = RuntimeError::invalid("`sessionId` is required");
        assert_eq!(
            serde_json::to_string(&error_ack(&error)).unwrap(),
            r#"{"error":{"code":"invalid_request","message":"`sessionId` is required"},"ok":false}"#
        );
    }

    #[tokio::test]
    async fn response_shape() {
        let response = ApiError(RuntimeError::session_not_found("abc")).into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"error":{"code":"not_found","message":"no session abc"}}"#
        );
    }

    #[tokio::test]
    async fn a_wait_goes_in_the_body_and_the_retry_after_header() {
        let error = RuntimeError::new(ErrorCode::RateLimited, "slow down").with_retry_after(7);
        assert_eq!(
            serde_json::to_string(&error_ack(&error)).unwrap(),
            r#"{"error":{"code":"rate_limited","message":"slow down","retryAfter":7},"ok":false}"#
        );
        let response = ApiError(error).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
    }
}
