//! Maps driver errors to [`AdapterError`], the terms the runtime branches on.

use agent_runtime_api::{AdapterError, ErrorKind};
use sqlx::migrate::MigrateError;

use crate::config::{SqlDialect, redact_secrets};

/// A driver error as the source of an [`AdapterError`]: its text with any password or
/// user info taken out. The driver's error itself is not kept, since its text (a
/// connection error naming the URL) may carry them.
#[derive(Debug)]
pub(crate) struct DriverError(String);

impl DriverError {
    pub(crate) fn new(error: &dyn std::error::Error) -> Self {
        DriverError(redact_secrets(&error.to_string()))
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DriverError {}

/// Wraps a driver error: transient failures become `Unavailable`, the rest `Other`.
/// `doing` says what was attempted, e.g. "get session abc"; the driver error, redacted,
/// is the source.
pub(crate) fn from_sqlx(dialect: SqlDialect, doing: &str, error: sqlx::Error) -> AdapterError {
    let message = format!("{} {doing}", dialect.name());
    let kind = if is_transient(dialect, &error) {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Other
    };
    AdapterError::new(kind, message).with_source(DriverError::new(&error))
}

/// Wraps an error of connecting: a malformed URL or option is the caller's to fix.
pub(crate) fn from_connect(dialect: SqlDialect, error: sqlx::Error) -> AdapterError {
    match error {
        sqlx::Error::Configuration(e) => {
            AdapterError::invalid_input(format!("{} store URL", dialect.name()))
                .with_source(DriverError::new(&*e))
        }
        other => from_sqlx(dialect, "connect", other),
    }
}

/// Wraps an error of applying migrations.
pub(crate) fn from_migrate(dialect: SqlDialect, error: MigrateError) -> AdapterError {
    match error {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => {
            from_sqlx(dialect, "apply migrations", e)
        }
        // The database holds migrations this build does not know or has changed: a newer
        // or different release wrote it, and retrying cannot help.
        other => AdapterError::other(format!("{} apply migrations", dialect.name()))
            .with_source(DriverError::new(&other)),
    }
}

/// Whether the driver error is a unique or primary-key violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether the driver error is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Whether retrying the same call later may succeed.
fn is_transient(dialect: SqlDialect, error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        // A connection cut during its handshake reads as garbage from the server (e.g.
        // "unexpected response from SSLRequest: 0x00"): the network, not the request.
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| is_transient_code(dialect, &code)),
        _ => false,
    }
}

/// Database error codes that describe a passing condition rather than a bad request.
fn is_transient_code(dialect: SqlDialect, code: &str) -> bool {
    match dialect {
        // SQLSTATE class 08: connection exceptions; 57P01-57P03: the server is shutting
        // down or starting; 53300: too many connections; 40001 and 40P01: the
        // transaction lost a serialization race or a deadlock.
        SqlDialect::Postgres => {
            code.starts_with("08")
                || matches!(
                    code,
                    "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
                )
        }
        // SQLite result codes: 5 BUSY and 6 LOCKED; extended codes keep the primary code
        // in their low byte (517 is BUSY_SNAPSHOT).
        SqlDialect::Sqlite => code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        let cases = [
            (SqlDialect::Postgres, "08006", true),
            (SqlDialect::Postgres, "57P01", true),
            (SqlDialect::Postgres, "40001", true),
            (SqlDialect::Postgres, "23505", false),
            (SqlDialect::Postgres, "42P01", false),
            (SqlDialect::Sqlite, "5", true),
            (SqlDialect::Sqlite, "517", true),
            (SqlDialect::Sqlite, "6", true),
            (SqlDialect::Sqlite, "2067", false),
            (SqlDialect::Sqlite, "787", false),
        ];
        for (dialect, code, expected) in cases {
            assert_eq!(is_transient_code(dialect, code), expected, "{code}");
        }
    }

    #[test]
    fn pool_timeouts_and_io_are_unavailable() {
        let err = from_sqlx(SqlDialect::Postgres, "get", sqlx::Error::PoolTimedOut);
        assert!(err.is_transient(), "{err:?}");
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = from_sqlx(SqlDialect::Postgres, "get", sqlx::Error::Io(io));
        assert!(err.is_transient(), "{err:?}");
        let err = from_sqlx(SqlDialect::Sqlite, "get", sqlx::Error::RowNotFound);
        assert!(err.kind() == ErrorKind::Other, "{err:?}");
    }

    /// The driver's words are the source, with the password taken out.
    #[test]
    fn the_source_is_the_redacted_driver_error() {
        let io = std::io::Error::other("cannot reach postgres://app:hunter2@db:5432/app");
        let err = from_sqlx(SqlDialect::Postgres, "ping", sqlx::Error::Io(io));
        let text = err.to_string();
        assert!(text.starts_with("unavailable: postgres ping: "), "{text}");
        assert!(text.contains("db:5432"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
