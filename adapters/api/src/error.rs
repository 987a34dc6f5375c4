use std::fmt;

/// The result of every adapter call.
pub type AdapterResult<T> = Result<T, AdapterError>;

/// What went wrong in an adapter, in the terms the runtime branches on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The write lost a race or would overwrite something that must not be overwritten
    /// (an existing session id, a stale record version).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller passed something the adapter refuses (a bad path, an out-of-order seq).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The thing asked for is larger than the caller allows (a file over a size limit).
    #[error("too large: {0}")]
    TooLarge(String),
    /// The backend cannot be reached or answered with a transient failure; retrying later
    /// may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Any other failure; not worth retrying.
    #[error("{0}")]
    Other(String),
}

impl AdapterError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AdapterError::Unavailable(_))
    }

    /// Wraps any error as [`AdapterError::Other`], keeping its message and its sources.
    pub fn other(error: impl fmt::Display) -> Self {
        AdapterError::Other(error.to_string())
    }

    /// Wraps any error as [`AdapterError::Unavailable`].
    pub fn unavailable(error: impl fmt::Display) -> Self {
        AdapterError::Unavailable(error.to_string())
    }
}
