//! A [`SessionStore`] over SQL: SQLite (a local file, the embedded default) and
//! PostgreSQL (shared by several runtime instances).
//!
//! # Layout
//! - [`build`]: picks the dialect from the URL scheme, connects, applies migrations.
//! - [`SqliteSessionStore`] (feature `sqlite`) and [`PostgresSessionStore`] (feature
//!   `postgres`): the two stores, also usable directly.
//! - `migrations/<dialect>/*.sql`: each dialect's schema, embedded in the binary.
//! - `codec` and `shared`: column conversions, and the statements and `SessionStore`
//!   operations both dialects share, written once over the private `shared::Dialect`
//!   trait that each store implements with its own driver, binds and batch write.
//!
//! # Schema
//! `sessions` holds one row per record (JSON columns for metadata, usage and error; a
//! `version` column for optimistic updates). `events` holds each session's log keyed by
//! `(session_id, seq)`, with `ON DELETE CASCADE` from `sessions`; an event's payload is
//! stored as text, byte for byte.
//!
//! **Invariant:** every statement is a runtime query with bound values; no SQL is checked
//! at build time, so building needs no database. Every error message passes through a
//! filter that hides URL passwords.
#![deny(missing_docs)]
// With one dialect left out, helpers only the other uses go unused.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_imports)
)]

use std::sync::Arc;

use agent_runtime_api::{AdapterError, AdapterResult, SessionStore};
use sqlx::pool::PoolOptions;

mod codec;
mod config;
mod error;
mod migrations;
#[cfg(feature = "postgres")]
mod postgres;
mod shared;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use config::{SqlDialect, SqlStoreConfig};
#[cfg(feature = "postgres")]
pub use postgres::PostgresSessionStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteSessionStore;

/// Connects to the store at `config.url` and applies its migrations.
///
/// The scheme picks the dialect: `sqlite:` (the file and its directory are created when
/// missing) or `postgres:` / `postgresql:`. An unknown scheme, a dialect left out of this
/// build or a malformed URL is `InvalidInput`; an unreachable server is `Unavailable`.
pub async fn build(config: &SqlStoreConfig) -> AdapterResult<Arc<dyn SessionStore>> {
    let dialect = SqlDialect::from_url(&config.url)?;
    let store = match dialect {
        SqlDialect::Sqlite => connect_sqlite(config).await?,
        SqlDialect::Postgres => connect_postgres(config).await?,
    };
    tracing::info!(
        dialect = dialect.name(),
        url = %config.redacted_url(),
        "session store ready"
    );
    Ok(store)
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(config: &SqlStoreConfig) -> AdapterResult<Arc<dyn SessionStore>> {
    Ok(Arc::new(SqliteSessionStore::connect(config).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(_: &SqlStoreConfig) -> AdapterResult<Arc<dyn SessionStore>> {
    Err(left_out(SqlDialect::Sqlite))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(config: &SqlStoreConfig) -> AdapterResult<Arc<dyn SessionStore>> {
    Ok(Arc::new(PostgresSessionStore::connect(config).await?))
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(_: &SqlStoreConfig) -> AdapterResult<Arc<dyn SessionStore>> {
    Err(left_out(SqlDialect::Postgres))
}

/// The error for a dialect whose cargo feature is off.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn left_out(dialect: SqlDialect) -> AdapterError {
    let enabled: Vec<&str> = [
        (cfg!(feature = "sqlite"), "sqlite"),
        (cfg!(feature = "postgres"), "postgres"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    AdapterError::invalid_input(format!(
        "this build has no {} store (cargo feature `{}` of agent-runtime-sql); available: {}",
        dialect.name(),
        dialect.name(),
        if enabled.is_empty() {
            "none".to_owned()
        } else {
            enabled.join(", ")
        }
    ))
}

/// The pool settings of `config`; sqlx's defaults where it says nothing.
pub(crate) fn pool_options<DB: sqlx::Database>(
    config: &SqlStoreConfig,
) -> AdapterResult<PoolOptions<DB>> {
    let mut options = PoolOptions::<DB>::new();
    if let Some(max) = config.max_connections {
        if max == 0 {
            return Err(AdapterError::invalid_input(
                "max_connections must be at least 1",
            ));
        }
        options = options.max_connections(max);
    }
    if let Some(min) = config.min_connections {
        let max = options.get_max_connections();
        if min > max {
            return Err(AdapterError::invalid_input(format!(
                "min_connections {min} exceeds max_connections {max}"
            )));
        }
        options = options.min_connections(min);
    }
    if let Some(timeout) = config.acquire_timeout {
        options = options.acquire_timeout(timeout);
    }
    Ok(options)
}
