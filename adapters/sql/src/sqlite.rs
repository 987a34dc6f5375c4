use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, Event, SessionFilter, SessionPage, SessionRecord,
    SessionStore, async_trait, check_seqs_increase,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use crate::codec::{
    SESSION_COLUMNS, data_from_db, from_db_int, from_json_text, json_text, kind_from_db,
    list_query, page_from, status_from_db, timestamp_from_text, timestamp_to_text, to_db_int,
};
use crate::config::{SqlDialect, SqlStoreConfig};
use crate::error::{from_connect, from_migrate, from_sqlx, is_foreign_key_violation};
use crate::{migrations, pool_options, shared};

const DIALECT: SqlDialect = SqlDialect::Sqlite;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Events per `INSERT`: SQLite allows 32766 bound values per statement and each row
/// binds 5.
const EVENTS_PER_STATEMENT: usize = 32766 / 5;

/// A [`SessionStore`] in a SQLite database file.
///
/// The file and its directory are created when missing. The database runs in WAL mode
/// (readers do not block the writer), with foreign keys on and a busy timeout so that
/// concurrent writers wait for each other instead of failing.
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    pool: SqlitePool,
}

impl SqliteSessionStore {
    /// Opens (creating if needed) the database at `config.url` and applies migrations.
    pub async fn connect(config: &SqlStoreConfig) -> AdapterResult<Self> {
        if SqlDialect::from_url(&config.url)? != DIALECT {
            return Err(AdapterError::InvalidInput(format!(
                "{} is not a sqlite: URL",
                config.redacted_url()
            )));
        }
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| from_connect(DIALECT, e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL loses no data on an application crash, only possibly the
            // last commits on a power loss, and saves an fsync per commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut pool = pool_options::<sqlx::Sqlite>(config)?;
        if is_in_memory(&config.url) {
            // An in-memory database lives as long as one connection to it stays open, and
            // its connections share a cache with table-level locks: one connection, kept.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            create_parent_dir(options.get_filename()).await?;
        }
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| from_connect(DIALECT, e))?;
        migrations::migrator(DIALECT)
            .run(&pool)
            .await
            .map_err(|e| from_migrate(DIALECT, e))?;
        Ok(Self { pool })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn insert_events(&self, id: &str, chunk: &[Event]) -> AdapterResult<()> {
        let mut query = sqlx::query(AssertSqlSafe(insert_events_sql(chunk.len())))
            // Batch sizes vary; caching a prepared statement per size would only churn.
            .persistent(false);
        for event in chunk {
            query = query
                .bind(id)
                .bind(to_db_int(event.seq, "seq")?)
                .bind(timestamp_to_text(&event.at))
                .bind(event.kind.as_str())
                .bind(event.data.get());
        }
        match query.execute(&self.pool).await {
            Ok(_) => Ok(()),
            // The foreign key is the existence check: no extra round trip per batch.
            Err(e) if is_foreign_key_violation(&e) => Err(shared::no_session(id)),
            Err(e) => Err(from_sqlx(DIALECT, &format!("append events to {id}"), e)),
        }
    }
}

shared::session_store!(SqliteSessionStore);

impl SqliteSessionStore {
    /// Stores a non-empty batch whose seqs increase.
    async fn insert_batch(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
        // Chunks past the first are rare (thousands of events); each is idempotent on
        // its own, so a retry after a partial failure is safe.
        for chunk in events.chunks(EVENTS_PER_STATEMENT) {
            self.insert_events(id, chunk).await?;
        }
        Ok(())
    }

    /// `NotFound` unless a record with this id exists.
    async fn require_session(&self, id: &str) -> AdapterResult<()> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| from_sqlx(DIALECT, &format!("get session {id}"), e))?;
        found.map(|_| ()).ok_or_else(|| shared::no_session(id))
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds `$1`..`$12`: every column but `version`, in [`SESSION_COLUMNS`] order.
fn bind_record<'q>(query: SqliteQuery<'q>, r: &SessionRecord) -> AdapterResult<SqliteQuery<'q>> {
    Ok(query
        .bind(r.id.clone())
        .bind(r.owner.clone())
        .bind(r.agent_type.clone())
        .bind(r.status.as_str())
        .bind(json_text(&r.metadata, "metadata")?)
        .bind(timestamp_to_text(&r.created_at))
        .bind(timestamp_to_text(&r.updated_at))
        .bind(timestamp_to_text(&r.last_activity_at))
        .bind(to_db_int(r.last_seq, "last_seq")?)
        .bind(r.agent_session_id.clone())
        .bind(json_text(&r.usage, "usage")?)
        .bind(
            r.error
                .as_ref()
                .map(|e| json_text(e, "error"))
                .transpose()?,
        ))
}

fn record_from_row(row: &SqliteRow) -> AdapterResult<SessionRecord> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(decode_error);
    let int = |name: &str| row.try_get::<i64, _>(name).map_err(decode_error);
    let error: Option<String> = row.try_get("error").map_err(decode_error)?;
    Ok(SessionRecord {
        id: text("id")?,
        owner: text("owner")?,
        agent_type: text("agent_type")?,
        status: status_from_db(&text("status")?)?,
        metadata: from_json_text(&text("metadata")?, "metadata")?,
        created_at: timestamp_from_text(&text("created_at")?, "created_at")?,
        updated_at: timestamp_from_text(&text("updated_at")?, "updated_at")?,
        last_activity_at: timestamp_from_text(&text("last_activity_at")?, "last_activity_at")?,
        last_seq: from_db_int(int("last_seq")?, "last_seq")?,
        agent_session_id: row.try_get("agent_session_id").map_err(decode_error)?,
        usage: from_json_text(&text("usage")?, "usage")?,
        error: error.map(|e| from_json_text(&e, "error")).transpose()?,
        version: from_db_int(int("version")?, "version")?,
    })
}

fn bind_key<'q>(query: SqliteQuery<'q>, key: &ApiKeyRecord) -> AdapterResult<SqliteQuery<'q>> {
    Ok(query
        .bind(key.name.clone())
        .bind(key.key_hash.clone())
        .bind(key.admin)
        .bind(json_text(&key.quotas, "quotas")?)
        .bind(timestamp_to_text(&key.created_at)))
}

fn key_from_row(row: &SqliteRow) -> AdapterResult<ApiKeyRecord> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(decode_error);
    Ok(ApiKeyRecord {
        name: text("name")?,
        key_hash: text("key_hash")?,
        admin: row.try_get("admin").map_err(decode_error)?,
        quotas: from_json_text(&text("quotas")?, "quotas")?,
        created_at: timestamp_from_text(&text("created_at")?, "created_at")?,
    })
}

fn event_from_row(row: &SqliteRow) -> AdapterResult<Event> {
    Ok(Event {
        seq: from_db_int(row.try_get("seq").map_err(decode_error)?, "seq")?,
        at: timestamp_from_text(row.try_get("at").map_err(decode_error)?, "at")?,
        kind: kind_from_db(row.try_get("kind").map_err(decode_error)?)?,
        data: data_from_db(row.try_get("data").map_err(decode_error)?)?,
    })
}

fn decode_error(error: sqlx::Error) -> AdapterError {
    from_sqlx(DIALECT, "read row", error)
}

/// `INSERT` of `rows` events; a stored seq is skipped.
///
/// Placeholders are anonymous `?`: SQLite resolves every numbered or named one (`$n`,
/// `?n`) through a list it scans linearly, which makes a statement with thousands of
/// them take seconds to prepare and bind.
fn insert_events_sql(rows: usize) -> String {
    const ROW: &str = "(?, ?, ?, ?, ?)";
    let mut values = String::with_capacity(rows * (ROW.len() + 2));
    for i in 0..rows {
        if i > 0 {
            values.push_str(", ");
        }
        values.push_str(ROW);
    }
    format!(
        "INSERT INTO events (session_id, seq, at, kind, data) VALUES {values} \
         ON CONFLICT (session_id, seq) DO NOTHING"
    )
}

/// Whether the URL names an in-memory database rather than a file.
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Creates the directory that will hold the database file.
async fn create_parent_dir(file: &Path) -> AdapterResult<()> {
    // A `file:` URI names the path after its prefix.
    let file = file
        .to_str()
        .and_then(|f| f.strip_prefix("file:"))
        .map_or(file, Path::new);
    let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        AdapterError::Other(format!(
            "sqlite: cannot create the directory {}: {e}",
            dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_has_one_row_of_placeholders_per_event() {
        assert_eq!(
            insert_events_sql(2),
            "INSERT INTO events (session_id, seq, at, kind, data) VALUES \
             (?, ?, ?, ?, ?), (?, ?, ?, ?, ?) \
             ON CONFLICT (session_id, seq) DO NOTHING"
        );
    }
}
