//! Statements and outcomes that both dialects share.

use agent_runtime_api::{AdapterError, AdapterResult, SessionRecord};

use crate::config::SqlDialect;
use crate::error::{from_sqlx, is_unique_violation};

/// The optimistic update: `$1` is the id, `$2`..`$12` the other columns in
/// [`crate::codec::SESSION_COLUMNS`] order, `$13` the version the caller read. It changes
/// nothing unless that version is still stored, and returns the new version.
pub(crate) const UPDATE_SQL: &str = "UPDATE sessions SET owner = $2, agent_type = $3, \
     status = $4, metadata = $5, created_at = $6, updated_at = $7, last_activity_at = $8, \
     last_seq = $9, agent_session_id = $10, usage = $11, error = $12, version = version + 1 \
     WHERE id = $1 AND version = $13 RETURNING version";

/// The outcome of inserting a new record: an existing id is a `Conflict`.
pub(crate) fn created<T>(
    dialect: SqlDialect,
    id: &str,
    result: Result<T, sqlx::Error>,
) -> AdapterResult<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(AdapterError::Conflict(format!(
            "session {id} already exists"
        ))),
        Err(e) => Err(from_sqlx(dialect, &format!("create session {id}"), e)),
    }
}

/// Why an update changed no row, given the version stored for the id (if any).
pub(crate) fn update_refused(record: &SessionRecord, stored: Option<i64>) -> AdapterError {
    match stored {
        None => no_session(&record.id),
        Some(stored) => AdapterError::Conflict(format!(
            "session {} is at version {stored}, not {}",
            record.id, record.version
        )),
    }
}

/// The error for a session id without a record.
pub(crate) fn no_session(id: &str) -> AdapterError {
    AdapterError::NotFound(format!("session {id}"))
}
