//! What a Convex call can fail with, and how that maps to [`AdapterError`].

use agent_runtime_api::AdapterError;
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
    /// become those kinds; transient failures become `Unavailable`; the rest `Other`.
    fn from(error: ConvexError) -> Self {
        match (&error, error.code()) {
            (ConvexError::Function { message, .. }, Some("NOT_FOUND")) => {
                AdapterError::NotFound(message.clone())
            }
            (ConvexError::Function { message, .. }, Some("CONFLICT")) => {
                AdapterError::Conflict(message.clone())
            }
            (ConvexError::Function { message, .. }, Some("INVALID_INPUT")) => {
                AdapterError::InvalidInput(message.clone())
            }
            (ConvexError::Unavailable { .. }, _) => AdapterError::Unavailable(error.to_string()),
            (ConvexError::InvalidArgs(_), _) => AdapterError::InvalidInput(error.to_string()),
            _ => AdapterError::Other(error.to_string()),
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
                AdapterError::NotFound("nope".into()),
            ),
            (
                json!({"code": "CONFLICT"}),
                AdapterError::Conflict("nope".into()),
            ),
            (
                json!({"code": "INVALID_INPUT"}),
                AdapterError::InvalidInput("nope".into()),
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(AdapterError::from(function_error(Some(data))), expected);
        }
        let other = AdapterError::from(function_error(Some(json!({"code": "TEAPOT"}))));
        assert!(matches!(other, AdapterError::Other(m) if m.contains("m:f")));
        let plain = AdapterError::from(function_error(None));
        assert!(matches!(plain, AdapterError::Other(_)));
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
