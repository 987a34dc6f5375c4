//! What a Convex call can fail with, and how that maps to [`AdapterError`].

use agent_runtime_api::{AdapterError, ErrorKind};
use serde_json::Value;

/// Why a call to Convex failed.
///
/// No variant ever holds the deploy key: messages taken from responses are scrubbed of it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvexError {
    /// The function ran and threw. `data` is the `errorData` of a `ConvexError` thrown by
    /// the function (an application error), absent for other exceptions. Never retried.
    #[error("convex function {path} failed: {message}")]
    Function {
        /// The function path called.
        path: String,
        /// The `errorMessage`, or the `message` field of `errorData` when it has one.
        message: String,
        /// The `errorData`, if the function threw a `ConvexError`.
        data: Option<Value>,
    },
    /// The deployment refused the deploy key (HTTP 401 or 403). Never retried.
    #[error(
        "convex refused the deploy key (HTTP {status}, {code}: {message}); check that \
         `deploy_key` is a deploy key of this deployment"
    )]
    Auth {
        /// The HTTP status.
        status: u16,
        /// The `code` of the error body.
        code: String,
        /// The `message` of the error body.
        message: String,
    },
    /// The deployment refused the request itself (another 4xx), e.g. a malformed body.
    #[error("convex refused the request (HTTP {status}, {code}): {message}")]
    Request {
        /// The HTTP status.
        status: u16,
        /// The `code` of the error body.
        code: String,
        /// The `message` of the error body.
        message: String,
    },
    /// The deployment could not be reached or kept failing transiently; retrying later
    /// may succeed.
    #[error("convex is unavailable: {what} failed after {attempts} attempt(s): {reason}")]
    Unavailable {
        /// What was attempted (`query agentRuntime/sessions:get`, `file upload`, ...).
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The arguments cannot be sent to Convex as they are.
    #[error("invalid arguments for convex: {0}")]
    InvalidArgs(String),
    /// Convex answered with something this client does not understand.
    #[error("unexpected answer from convex: {0}")]
    InvalidResponse(String),
    /// The client configuration is unusable.
    #[error("invalid convex configuration: {0}")]
    Config(String),
}

impl ConvexError {
    /// The `code` field of a function's `errorData`, e.g. `NOT_FOUND`.
    pub fn code(&self) -> Option<&str> {
        match self {
            ConvexError::Function {
                data: Some(data), ..
            } => data.get("code").and_then(Value::as_str),
            _ => None,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ConvexError::Unavailable { .. })
    }
}

impl From<ConvexError> for AdapterError {
    /// Function errors with `errorData.code` `NOT_FOUND`, `CONFLICT` or `INVALID_INPUT`
    /// become those kinds, saying the function's message and naming it as the context
    /// `function`; transient failures become `Unavailable`; the rest `Other`. Those keep
    /// the Convex error as their source (its text is already scrubbed of the deploy key).
    fn from(error: ConvexError) -> Self {
        let kind = match error.code() {
            Some("NOT_FOUND") => Some(ErrorKind::NotFound),
            Some("CONFLICT") => Some(ErrorKind::Conflict),
            Some("INVALID_INPUT") => Some(ErrorKind::InvalidInput),
            _ => None,
        };
        match (error, kind) {
            (ConvexError::Function { path, message, .. }, Some(kind)) => {
                AdapterError::new(kind, message).with_context("function", path)
            }
            (error @ ConvexError::Unavailable { .. }, _) => {
                AdapterError::unavailable("").with_source(error)
            }
            (error @ ConvexError::InvalidArgs(_), _) => {
                AdapterError::invalid_input("").with_source(error)
            }
            (error, _) => AdapterError::other("").with_source(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn function_error(data: Option<Value>) -> ConvexError {
        ConvexError::Function {
            path: "m:f".into(),
            message: "nope".into(),
            data,
        }
    }

    #[test]
    fn codes_map_to_adapter_kinds() {
        let cases = [
            (
                json!({"code": "NOT_FOUND"}),
                AdapterError::not_found("nope"),
            ),
            (json!({"code": "CONFLICT"}), AdapterError::conflict("nope")),
            (
                json!({"code": "INVALID_INPUT"}),
                AdapterError::invalid_input("nope"),
            ),
        ];
        for (data, expected) in cases {
            let error = AdapterError::from(function_error(Some(data)));
            assert_eq!(error.kind(), expected.kind());
            assert_eq!(error.message(), expected.message());
            assert_eq!(error.context().collect::<Vec<_>>(), [("function", "m:f")]);
        }
        let other = AdapterError::from(function_error(Some(json!({"code": "TEAPOT"}))));
        assert_eq!(other.kind(), ErrorKind::Other);
        assert!(other.to_string().contains("m:f"), "{other}");
        let plain = AdapterError::from(function_error(None));
        assert!(plain.kind() == ErrorKind::Other);
    }

    #[test]
    fn unavailable_is_transient() {
        let error = ConvexError::Unavailable {
            what: "query m:f".into(),
            attempts: 4,
            reason: "HTTP 503".into(),
        };
        assert!(error.is_transient());
        assert!(AdapterError::from(error).is_transient());
    }
}
