//! The errors the runtime reports to clients: a stable code and a human message.

use std::fmt;

use agent_runtime_api::{AdapterError, ErrorKind};

/// The stable error codes of the wire protocol (a request's error, `code` of an error
/// object).
// Its serde and schema names are `as_str`'s; a test checks they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(transform = crate::transport::schema::plain_enum)]
pub enum ErrorCode {
    /// No or wrong credentials.
    Unauthorized,
    /// A web page whose origin is not in `server.allowed_origins` sent the request.
    OriginForbidden,
    /// The request's `Host` is not a name of this runtime (DNS rebinding).
    HostForbidden,
    /// No such session (also for sessions of another principal), file or route.
    NotFound,
    /// The request is malformed or misses a field.
    InvalidRequest,
    /// The agent type names no profile.
    ProfileNotFound,
    /// The profile exists but cannot be loaded or rendered.
    ProfileInvalid,
    /// The metadata does not satisfy the profile's schema.
    MetadataInvalid,
    /// Too many live sessions.
    CapacityExceeded,
    /// The principal is at one of its session limits (live or stored sessions).
    QuotaExceeded,
    /// The principal sends creates or messages faster than its per-minute limit.
    RateLimited,
    /// A file is over the size a download may have (`limits.file_bytes`).
    FileTooLarge,
    /// The sandbox could not be created or used.
    SandboxFailed,
    /// The agent could not be started or stopped working.
    AgentFailed,
    /// A storage adapter cannot be reached.
    StorageUnavailable,
    /// No request of the agent's with this id waits for an answer in this session.
    RequestNotFound,
    /// The request was answered already (the first valid answer won), or the agent
    /// stopped waiting for it.
    RequestClosed,
    /// The session used up one of its budget's limits; it takes no more messages until
    /// an admin raises the budget.
    BudgetExceeded,
    /// The principal may see the session but not do this to it (only an admin may).
    Forbidden,
    /// The session is in the middle of something that the request must not cut into: a
    /// fork of a session whose turn runs or waits for an answer.
    SessionBusy,
    /// Anything else; details are logged, not sent.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order docs/protocol.md lists them.
    pub const ALL: [ErrorCode; 21] = [
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
        ErrorCode::FileTooLarge,
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

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::OriginForbidden => "origin_forbidden",
            ErrorCode::HostForbidden => "host_forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::ProfileNotFound => "profile_not_found",
            ErrorCode::ProfileInvalid => "profile_invalid",
            ErrorCode::MetadataInvalid => "metadata_invalid",
            ErrorCode::CapacityExceeded => "capacity_exceeded",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::SandboxFailed => "sandbox_failed",
            ErrorCode::AgentFailed => "agent_failed",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::RequestNotFound => "request_not_found",
            ErrorCode::RequestClosed => "request_closed",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::SessionBusy => "session_busy",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable code, safe to show to the client that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RuntimeError {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// What happened, for a person.
    pub message: String,
    /// For `quota_exceeded` and `rate_limited`: whole seconds to wait before trying again,
    /// when waiting helps.
    pub retry_after: Option<u64>,
}

impl RuntimeError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// This error with the seconds a client should wait before trying again.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// `invalid_request` naming what is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// `file_too_large` for a download over `limit` bytes.
    pub fn file_too_large(path: &agent_runtime_api::RelPath, limit: u64) -> Self {
        Self::new(
            ErrorCode::FileTooLarge,
            format!("{path} is over the limit of {limit} bytes per file"),
        )
    }

    /// `not_found` for a session id.
    pub fn session_not_found(id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no session {id}"))
    }

    /// An internal error: the details are logged, the client gets a generic message.
    pub fn internal(context: &str, error: impl fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            ErrorCode::Internal,
            format!("{context} failed; see the runtime log"),
        )
    }

    /// Maps a storage adapter's failure: unreachable storage is `storage_unavailable`,
    /// anything else is internal.
    pub fn storage(context: &str, error: AdapterError) -> Self {
        match error.kind() {
            ErrorKind::Unavailable => {
                tracing::warn!(%error, "{context}: storage unavailable");
                Self::new(
                    ErrorCode::StorageUnavailable,
                    format!("{context}: storage is unavailable, try again later"),
                )
            }
            _ => Self::internal(context, error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// `ErrorCode::ALL` is the list docs/protocol.md gives under "Error codes", in its
    /// order: a code added to the enum but not to the list (or the doc) fails here.
    #[test]
    fn every_code_is_listed_as_the_protocol_doc_lists_it() {
        let doc = include_str!("../docs/protocol.md");
        let section = doc
            .split("### Error codes\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("docs/protocol.md has its list of error codes");
        let listed: Vec<&str> = section.split('`').skip(1).step_by(2).collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, all);
    }
}
