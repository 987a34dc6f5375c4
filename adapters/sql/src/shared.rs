//! What both dialects share: the statements, their outcomes, and every `SessionStore`
//! operation, written once over [`Dialect`], which each dialect's store implements with
//! what differs (the driver, how values are bound and read, how a batch is written).

use std::collections::HashSet;
use std::future::Future;

use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, Event, SessionEvents, SessionFilter, SessionPage,
    SessionRecord, check_seqs_increase,
};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Database, Executor, IntoArguments, Pool, Row};

use crate::codec::{SESSION_COLUMNS, from_db_int, list_query, page_from, to_db_int};

use crate::config::SqlDialect;
use crate::error::{from_sqlx, is_foreign_key_violation, is_unique_violation};

/// The optimistic update: `$1` is the id, `$2`..`$14` the other columns in
/// [`crate::codec::SESSION_COLUMNS`] order, `$15` the version the caller read. It changes
/// nothing unless that version is still stored, and returns the new version.
pub(crate) const UPDATE_SQL: &str = "UPDATE sessions SET owner = $2, agent_type = $3, \
     status = $4, metadata = $5, created_at = $6, updated_at = $7, last_activity_at = $8, \
     last_seq = $9, agent_session_id = $10, usage = $11, error = $12, budget = $13, \
     forked_from = $14, version = version + 1 WHERE id = $1 AND version = $15 RETURNING version";

/// The columns of `api_keys`, in the order `bind_key` binds them.
pub(crate) const KEY_COLUMNS: &str = "name, key_hash, admin, quotas, created_at";

/// The outcome of inserting a new API key: an existing name or hash is a `Conflict`.
pub(crate) fn key_created<T>(
    dialect: SqlDialect,
    name: &str,
    result: Result<T, sqlx::Error>,
) -> AdapterResult<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(AdapterError::conflict(format!(
            "an API key named {name} or with the same hash exists"
        ))),
        Err(e) => Err(from_sqlx(dialect, &format!("create API key {name}"), e)),
    }
}

/// The outcome of inserting a new record: an existing id is a `Conflict`.
pub(crate) fn created<T>(
    dialect: SqlDialect,
    id: &str,
    result: Result<T, sqlx::Error>,
) -> AdapterResult<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(AdapterError::conflict(format!(
            "session {id} already exists"
        ))),
        Err(e) => Err(from_sqlx(dialect, &format!("create session {id}"), e)),
    }
}

/// Why an update changed no row, given the version stored for the id (if any).
pub(crate) fn update_refused(record: &SessionRecord, stored: Option<i64>) -> AdapterError {
    match stored {
        None => no_session(&record.id),
        Some(stored) => AdapterError::conflict(format!(
            "session {} is at version {stored}, not {}",
            record.id, record.version
        )),
    }
}

/// Refuses an entry of a batch that `append_events` would refuse before any write: seqs
/// that do not strictly increase, or that do not fit the database's integer.
pub(crate) fn check_entry(entry: &SessionEvents<'_>) -> AdapterResult<()> {
    check_seqs_increase(entry.events)?;
    // Seqs increase, so the last is the largest.
    if let Some(last) = entry.events.last() {
        to_db_int(last.seq, "seq")?;
    }
    Ok(())
}

/// A seq that [`check_entry`] let through, as the database stores it.
pub(crate) fn db_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// The error for a session id without a record.
pub(crate) fn no_session(id: &str) -> AdapterError {
    AdapterError::not_found(format!("session {id}"))
}

/// A query of the driver `DB`.
pub(crate) type DbQuery<'q, DB> = Query<'q, DB, <DB as Database>::Arguments>;

/// What a dialect's store provides so that the functions below implement
/// `SessionStore` for it: its driver, two pools (`reads`, and `writes` for every
/// statement that changes something), how a record, a key and an event are bound and read
/// (each dialect has its own column types), and how a batch of events is written. Each
/// dialect's `impl SessionStore` hands every call to the function of the same name here.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// The sqlx driver.
    type Db: Driver;
    /// The dialect, for error messages.
    const DIALECT: SqlDialect;
    /// The pool reads go through.
    fn reads(&self) -> &Pool<Self::Db>;
    /// The pool writes go through.
    fn writes(&self) -> &Pool<Self::Db>;
    /// Binds every column of [`SESSION_COLUMNS`] but `version`, in order, from `$1`.
    fn bind_record<'q>(
        query: DbQuery<'q, Self::Db>,
        record: &SessionRecord,
    ) -> AdapterResult<DbQuery<'q, Self::Db>>;
    /// A record from a row of [`SESSION_COLUMNS`].
    fn record_from_row(row: &<Self::Db as Database>::Row) -> AdapterResult<SessionRecord>;
    /// Binds the columns of [`KEY_COLUMNS`], in order, from `$1`.
    fn bind_key<'q>(
        query: DbQuery<'q, Self::Db>,
        key: &ApiKeyRecord,
    ) -> AdapterResult<DbQuery<'q, Self::Db>>;
    /// A key from a row of [`KEY_COLUMNS`].
    fn key_from_row(row: &<Self::Db as Database>::Row) -> AdapterResult<ApiKeyRecord>;
    /// An event from a row of `seq, at, kind, data`.
    fn event_from_row(row: &<Self::Db as Database>::Row) -> AdapterResult<Event>;
    /// Stores the events of entries that passed [`check_entry`]; returns the ids that have
    /// no record, whose events are left out. A stored seq is skipped.
    fn write_batch(
        &self,
        entries: &[SessionEvents<'_>],
    ) -> impl Future<Output = Result<HashSet<String>, sqlx::Error>> + Send;
}

/// What the functions below need of an sqlx driver, which both drivers have: executing on
/// a pool, binding text and integers, reading an integer.
pub(crate) trait Driver: Database<Arguments: IntoArguments<Self>> {
    /// The pool as an executor.
    fn on(pool: &Pool<Self>) -> impl Executor<'_, Database = Self>;
    /// Binds a text value.
    fn text<'q>(query: DbQuery<'q, Self>, value: &str) -> DbQuery<'q, Self>;
    /// Binds an integer.
    fn int<'q>(query: DbQuery<'q, Self>, value: i64) -> DbQuery<'q, Self>;
    /// The integer in the first column of `row`.
    fn first_int(row: &Self::Row) -> Result<i64, sqlx::Error>;
}

impl<DB> Driver for DB
where
    DB: Database<Arguments: IntoArguments<DB>>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    fn on(pool: &Pool<DB>) -> impl Executor<'_, Database = DB> {
        pool
    }
    fn text<'q>(query: DbQuery<'q, DB>, value: &str) -> DbQuery<'q, DB> {
        query.bind(value)
    }
    fn int<'q>(query: DbQuery<'q, DB>, value: i64) -> DbQuery<'q, DB> {
        query.bind(value)
    }
    fn first_int(row: &DB::Row) -> Result<i64, sqlx::Error> {
        row.try_get(0)
    }
}

/// A statement: fixed SQL as it is, SQL built at run time through `AssertSqlSafe`.
fn query<'q, DB: Database>(sql: impl sqlx::SqlSafeStr) -> DbQuery<'q, DB> {
    sqlx::query(sql)
}

/// `SessionStore::create`.
pub(crate) async fn create<D: Dialect>(store: &D, record: &SessionRecord) -> AdapterResult<()> {
    let sql = format!(
        "INSERT INTO sessions ({SESSION_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1)"
    );
    let result = D::bind_record(query(AssertSqlSafe(sql)), record)?
        .execute(D::Db::on(store.writes()))
        .await;
    created(D::DIALECT, &record.id, result)
}

/// `SessionStore::get`.
pub(crate) async fn get<D: Dialect>(store: &D, id: &str) -> AdapterResult<Option<SessionRecord>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
    let row = D::Db::text(query(AssertSqlSafe(sql)), id)
        .fetch_optional(D::Db::on(store.reads()))
        .await
        .map_err(|e| from_sqlx(D::DIALECT, &format!("get session {id}"), e))?;
    row.as_ref().map(D::record_from_row).transpose()
}

/// `SessionStore::update`.
pub(crate) async fn update<D: Dialect>(store: &D, record: &SessionRecord) -> AdapterResult<u64> {
    let version = to_db_int(record.version, "version")?;
    let decode = |e| from_sqlx(D::DIALECT, "read row", e);
    let updated = D::Db::int(D::bind_record(query(UPDATE_SQL), record)?, version)
        .fetch_optional(D::Db::on(store.writes()))
        .await
        .map_err(|e| from_sqlx(D::DIALECT, &format!("update session {}", record.id), e))?;
    if let Some(row) = updated {
        let new = D::Db::first_int(&row).map_err(decode)?;
        return from_db_int(new, "version");
    }
    let stored = D::Db::text(
        query("SELECT version FROM sessions WHERE id = $1"),
        &record.id,
    )
    .fetch_optional(D::Db::on(store.writes()))
    .await
    .map_err(|e| from_sqlx(D::DIALECT, &format!("get session {}", record.id), e))?;
    let stored = stored
        .as_ref()
        .map(D::Db::first_int)
        .transpose()
        .map_err(decode)?;
    Err(update_refused(record, stored))
}

/// `SessionStore::list`.
pub(crate) async fn list<D: Dialect>(
    store: &D,
    filter: &SessionFilter,
    limit: usize,
    cursor: Option<&str>,
) -> AdapterResult<SessionPage> {
    let q = list_query(filter, limit, cursor);
    let mut statement = query(AssertSqlSafe(q.sql));
    for text in q.texts {
        statement = D::Db::text(statement, text);
    }
    let rows = D::Db::int(statement, q.fetch)
        .fetch_all(D::Db::on(store.reads()))
        .await
        .map_err(|e| from_sqlx(D::DIALECT, "list sessions", e))?;
    let records = rows
        .iter()
        .map(D::record_from_row)
        .collect::<AdapterResult<Vec<_>>>()?;
    let (sessions, next_cursor) = page_from(records, limit, |r| r.id.as_str());
    Ok(SessionPage {
        sessions,
        next_cursor,
    })
}

/// `SessionStore::delete`.
pub(crate) async fn delete<D: Dialect>(store: &D, id: &str) -> AdapterResult<()> {
    D::Db::text(query("DELETE FROM sessions WHERE id = $1"), id)
        .execute(D::Db::on(store.writes()))
        .await
        .map_err(|e| from_sqlx(D::DIALECT, &format!("delete session {id}"), e))?;
    Ok(())
}

/// `SessionStore::append_events`: a batch of one entry.
pub(crate) async fn append_events<D: Dialect>(
    store: &D,
    id: &str,
    events: &[Event],
) -> AdapterResult<()> {
    let entry = SessionEvents {
        session_id: id,
        events,
    };
    let mut outcomes = append_batch(store, &[entry]).await;
    outcomes.pop().unwrap_or(Ok(()))
}

/// `SessionStore::append_batch`: every valid entry in one [`Dialect::write_batch`].
pub(crate) async fn append_batch<D: Dialect>(
    store: &D,
    batch: &[SessionEvents<'_>],
) -> Vec<AdapterResult<()>> {
    let mut outcomes: Vec<AdapterResult<()>> = batch.iter().map(check_entry).collect();
    let valid: Vec<usize> = (0..batch.len()).filter(|&i| outcomes[i].is_ok()).collect();
    if valid.is_empty() {
        return outcomes;
    }
    let entries: Vec<SessionEvents<'_>> = valid.iter().map(|&i| batch[i]).collect();
    match store.write_batch(&entries).await {
        Ok(missing) => {
            for &i in &valid {
                if missing.contains(batch[i].session_id) {
                    outcomes[i] = Err(no_session(batch[i].session_id));
                }
            }
        }
        // A session was deleted between the existence check and the insert (by another
        // process): entry by entry tells exactly which.
        Err(e) if is_foreign_key_violation(&e) && valid.len() > 1 => {
            for &i in &valid {
                let entry = [batch[i]];
                let write = Box::pin(append_batch(store, &entry));
                outcomes[i] = write.await.pop().unwrap_or(Ok(()));
            }
        }
        Err(e) if is_foreign_key_violation(&e) => {
            outcomes[valid[0]] = Err(no_session(batch[valid[0]].session_id));
        }
        Err(e) => {
            let doing = match entries.as_slice() {
                [one] => format!("append events to {}", one.session_id),
                many => format!("append events of {} sessions", many.len()),
            };
            let error = from_sqlx(D::DIALECT, &doing, e);
            for &i in &valid {
                outcomes[i] = Err(error.clone());
            }
        }
    }
    outcomes
}

/// `SessionStore::events_after`.
pub(crate) async fn events_after<D: Dialect>(
    store: &D,
    id: &str,
    after: u64,
    limit: usize,
) -> AdapterResult<Vec<Event>> {
    let Ok(after) = i64::try_from(after) else {
        return Ok(Vec::new());
    };
    let statement = query(
        "SELECT seq, at, kind, data FROM events \
         WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    );
    let statement = D::Db::int(D::Db::text(statement, id), after);
    let rows = D::Db::int(statement, i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(D::Db::on(store.reads()))
        .await
        .map_err(|e| from_sqlx(D::DIALECT, &format!("read events of {id}"), e))?;
    rows.iter().map(D::event_from_row).collect()
}

/// `SessionStore::ping`.
pub(crate) async fn ping<D: Dialect>(store: &D) -> AdapterResult<()> {
    query::<D::Db>("SELECT 1")
        .execute(D::Db::on(store.reads()))
        .await
        .map_err(|e| from_sqlx(D::DIALECT, "ping", e))?;
    Ok(())
}

/// `SessionStore::create_key`.
pub(crate) async fn create_key<D: Dialect>(store: &D, key: &ApiKeyRecord) -> AdapterResult<()> {
    let sql = format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5)");
    let result = D::bind_key(query(AssertSqlSafe(sql)), key)?
        .execute(D::Db::on(store.writes()))
        .await;
    key_created(D::DIALECT, &key.name, result)
}

/// `SessionStore::key_by_hash`.
pub(crate) async fn key_by_hash<D: Dialect>(
    store: &D,
    key_hash: &str,
) -> AdapterResult<Option<ApiKeyRecord>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
    let row = D::Db::text(query(AssertSqlSafe(sql)), key_hash)
        .fetch_optional(D::Db::on(store.reads()))
        .await
        .map_err(|e| from_sqlx(D::DIALECT, "find API key", e))?;
    row.as_ref().map(D::key_from_row).transpose()
}

/// `SessionStore::list_keys`.
pub(crate) async fn list_keys<D: Dialect>(store: &D) -> AdapterResult<Vec<ApiKeyRecord>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY name");
    let rows = query::<D::Db>(AssertSqlSafe(sql))
        .fetch_all(D::Db::on(store.reads()))
        .await
        .map_err(|e| from_sqlx(D::DIALECT, "list API keys", e))?;
    rows.iter().map(D::key_from_row).collect()
}

/// `SessionStore::revoke_key`.
pub(crate) async fn revoke_key<D: Dialect>(store: &D, name: &str) -> AdapterResult<bool> {
    let removed = D::Db::text(
        query("DELETE FROM api_keys WHERE name = $1 RETURNING 1"),
        name,
    )
    .fetch_optional(D::Db::on(store.writes()))
    .await
    .map_err(|e| from_sqlx(D::DIALECT, &format!("revoke API key {name}"), e))?;
    Ok(removed.is_some())
}
