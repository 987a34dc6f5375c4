use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, Event, SessionEvents, SessionFilter, SessionPage,
    SessionRecord, SessionStore, async_trait,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Pool, Row};

use crate::codec::{
    data_from_db, from_db_int, from_json_text, json_text, kind_from_db, status_from_db,
    timestamp_from_text, timestamp_to_text, to_db_int,
};
use crate::config::{SqlDialect, SqlStoreConfig};
use crate::error::{from_connect, from_migrate, from_sqlx};
use crate::shared::{self, Dialect};
use crate::{migrations, pool_options};

const DIALECT: SqlDialect = SqlDialect::Sqlite;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most events one `INSERT` carries (5 bound values each; SQLite allows 32766).
/// A batch is cut into statements of power-of-two sizes up to this, so a connection
/// prepares at most a handful of statement shapes and reuses them from its cache.
const MAX_EVENTS_PER_STATEMENT: usize = 256;

/// The `INSERT` of 1, 2, 4 .. [`MAX_EVENTS_PER_STATEMENT`] events, by the size's log2.
static INSERT_EVENTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..=MAX_EVENTS_PER_STATEMENT.ilog2())
        .map(|bits| insert_events_sql(1 << bits))
        .collect()
});

/// The ids of a JSON array of session ids that have no record.
const MISSING_SESSIONS_SQL: &str = "SELECT j.value FROM json_each(?) AS j \
     WHERE NOT EXISTS (SELECT 1 FROM sessions WHERE id = j.value)";

/// A [`SessionStore`] in a SQLite database file.
///
/// The file and its directory are created when missing. The database runs in WAL mode
/// (readers do not block the writer), with foreign keys on and a busy timeout so that
/// writers of other processes wait for each other instead of failing.
///
/// Reads use a pool of connections; every write goes through one dedicated connection,
/// since SQLite has one write lock per database: connections of a pool that write at
/// the same time only take turns through the busy handler, which sleeps. A batch of
/// events of many sessions is one transaction.
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    pool: SqlitePool,
    writes: SqlitePool,
}

impl SqliteSessionStore {
    /// Opens (creating if needed) the database at `config.url` and applies migrations.
    pub async fn connect(config: &SqlStoreConfig) -> AdapterResult<Self> {
        if SqlDialect::from_url(&config.url)? != DIALECT {
            return Err(AdapterError::invalid_input(format!(
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
        let in_memory = is_in_memory(&config.url);
        if in_memory {
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
            .connect_with(options.clone())
            .await
            .map_err(|e| from_connect(DIALECT, e))?;
        migrations::migrator(DIALECT)
            .run(&pool)
            .await
            .map_err(|e| from_migrate(DIALECT, e))?;
        let writes = if in_memory {
            // The one connection that holds the database is the writer too.
            pool.clone()
        } else {
            pool_options::<sqlx::Sqlite>(config)?
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(|e| from_connect(DIALECT, e))?
        };
        Ok(Self { pool, writes })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.writes.close().await;
        self.pool.close().await;
    }
}

/// The dialect's own parts of the shared `SessionStore` code.
impl Dialect for SqliteSessionStore {
    type Db = sqlx::Sqlite;
    const DIALECT: SqlDialect = DIALECT;

    fn reads(&self) -> &Pool<sqlx::Sqlite> {
        &self.pool
    }

    fn writes(&self) -> &Pool<sqlx::Sqlite> {
        &self.writes
    }

    fn bind_record<'q>(
        query: SqliteQuery<'q>,
        record: &SessionRecord,
    ) -> AdapterResult<SqliteQuery<'q>> {
        bind_record(query, record)
    }

    fn record_from_row(
        row: &<sqlx::Sqlite as sqlx::Database>::Row,
    ) -> AdapterResult<SessionRecord> {
        record_from_row(row)
    }

    fn bind_key<'q>(query: SqliteQuery<'q>, key: &ApiKeyRecord) -> AdapterResult<SqliteQuery<'q>> {
        bind_key(query, key)
    }

    fn key_from_row(row: &<sqlx::Sqlite as sqlx::Database>::Row) -> AdapterResult<ApiKeyRecord> {
        key_from_row(row)
    }

    fn event_from_row(row: &<sqlx::Sqlite as sqlx::Database>::Row) -> AdapterResult<Event> {
        event_from_row(row)
    }

    async fn write_batch(
        &self,
        entries: &[SessionEvents<'_>],
    ) -> Result<HashSet<String>, sqlx::Error> {
        if let [entry] = entries
            && entry.events.len().is_power_of_two()
            && entry.events.len() <= MAX_EVENTS_PER_STATEMENT
        {
            // One session and one statement (the common single append): the statement is
            // its own transaction, and the foreign key tells a missing session.
            let mut conn = self.writes.acquire().await?;
            let rows: Vec<(&str, &Event)> =
                entry.events.iter().map(|e| (entry.session_id, e)).collect();
            insert_rows(&mut conn, &rows).await?;
            return Ok(HashSet::new());
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.session_id).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        // IMMEDIATE takes the write lock at once, waiting for it through the busy
        // timeout; a plain BEGIN would read first and then fail at once (BUSY_SNAPSHOT)
        // if another process wrote meanwhile.
        let mut tx = self.writes.begin_with("BEGIN IMMEDIATE").await?;
        // Checked up front rather than through the foreign key: a violation would abort
        // the statement, and with it the other sessions' rows of the same statement.
        let missing: HashSet<String> = sqlx::query_scalar(MISSING_SESSIONS_SQL)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        // Collected rather than chained: a borrowing iterator held across an await makes
        // the future's lifetimes too general for `Send`.
        let rows: Vec<(&str, &Event)> = entries
            .iter()
            .filter(|e| !missing.contains(e.session_id))
            .flat_map(|e| e.events.iter().map(move |event| (e.session_id, event)))
            .collect();
        insert_rows(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(missing)
    }
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create(&self, record: &SessionRecord) -> AdapterResult<()> {
        shared::create(self, record).await
    }
    async fn get(&self, id: &str) -> AdapterResult<Option<SessionRecord>> {
        shared::get(self, id).await
    }
    async fn update(&self, record: &SessionRecord) -> AdapterResult<u64> {
        shared::update(self, record).await
    }
    async fn list(
        &self,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AdapterResult<SessionPage> {
        shared::list(self, filter, limit, cursor).await
    }
    async fn delete(&self, id: &str) -> AdapterResult<()> {
        shared::delete(self, id).await
    }
    async fn append_events(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
        shared::append_events(self, id, events).await
    }
    async fn append_batch(&self, batch: &[SessionEvents<'_>]) -> Vec<AdapterResult<()>> {
        shared::append_batch(self, batch).await
    }
    async fn events_after(&self, id: &str, after: u64, limit: usize) -> AdapterResult<Vec<Event>> {
        shared::events_after(self, id, after, limit).await
    }
    async fn ping(&self) -> AdapterResult<()> {
        shared::ping(self).await
    }
    async fn create_key(&self, key: &ApiKeyRecord) -> AdapterResult<()> {
        shared::create_key(self, key).await
    }
    async fn key_by_hash(&self, key_hash: &str) -> AdapterResult<Option<ApiKeyRecord>> {
        shared::key_by_hash(self, key_hash).await
    }
    async fn list_keys(&self) -> AdapterResult<Vec<ApiKeyRecord>> {
        shared::list_keys(self).await
    }
    async fn revoke_key(&self, name: &str) -> AdapterResult<bool> {
        shared::revoke_key(self, name).await
    }
}

/// Inserts `(session id, event)` rows in statements of 1, 2, 4 .. 256 rows, the largest
/// that fits first; a stored seq is skipped.
async fn insert_rows(
    conn: &mut SqliteConnection,
    rows: &[(&str, &Event)],
) -> Result<(), sqlx::Error> {
    let mut rest = rows;
    while !rest.is_empty() {
        let bits = rest.len().min(MAX_EVENTS_PER_STATEMENT).ilog2();
        let (chunk, after) = rest.split_at(1 << bits);
        let mut query = sqlx::query(INSERT_EVENTS[bits as usize].as_str());
        for (id, event) in chunk {
            query = query
                .bind(*id)
                .bind(shared::db_seq(event.seq))
                .bind(timestamp_to_text(&event.at))
                .bind(event.kind.as_str())
                .bind(event.data.get());
        }
        query.execute(&mut *conn).await?;
        rest = after;
    }
    Ok(())
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds `$1`..`$14`: every column but `version`, in [`crate::codec::SESSION_COLUMNS`] order.
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
        )
        .bind(json_text(&r.budget, "budget")?)
        .bind(
            r.forked_from
                .as_ref()
                .map(|f| json_text(f, "forked_from"))
                .transpose()?,
        ))
}

fn record_from_row(row: &SqliteRow) -> AdapterResult<SessionRecord> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(decode_error);
    let int = |name: &str| row.try_get::<i64, _>(name).map_err(decode_error);
    let error: Option<String> = row.try_get("error").map_err(decode_error)?;
    let forked_from: Option<String> = row.try_get("forked_from").map_err(decode_error)?;
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
        budget: from_json_text(&text("budget")?, "budget")?,
        forked_from: forked_from
            .map(|f| from_json_text(&f, "forked_from"))
            .transpose()?,
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
        AdapterError::other(format!(
            "sqlite: cannot create the directory {}",
            dir.display()
        ))
        .with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_power_of_two_statements() {
        assert_eq!(INSERT_EVENTS.len(), 9, "1, 2, 4 .. 256 events");
        assert_eq!(INSERT_EVENTS[3], insert_events_sql(8));
    }

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
