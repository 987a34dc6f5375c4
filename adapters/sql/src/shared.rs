//! Statements and outcomes that both dialects share.

use agent_runtime_api::{
    AdapterError, AdapterResult, SessionEvents, SessionRecord, check_seqs_increase,
};

use crate::codec::to_db_int;

use crate::config::SqlDialect;
use crate::error::{from_sqlx, is_unique_violation};

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
        Err(e) if is_unique_violation(&e) => Err(AdapterError::Conflict(format!(
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
    AdapterError::NotFound(format!("session {id}"))
}

/// The `SessionStore` impl of a dialect's store. Its text is the same for both dialects;
/// the names it uses (`bind_record`, `record_from_row`, `list_query`, `DIALECT`, ...) are
/// resolved where it is expanded, in each dialect's module, so each dialect's types and
/// SQL types apply. The dialect's store provides `write_batch`, and two pools: `pool`
/// for reads and `writes` for every statement that changes something.
macro_rules! session_store {
    ($store:ty) => {
        #[async_trait]
        impl SessionStore for $store {
            async fn create(&self, record: &SessionRecord) -> AdapterResult<()> {
                let sql = format!(
                    "INSERT INTO sessions ({SESSION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1)"
                );
                let result = bind_record(sqlx::query(AssertSqlSafe(sql)), record)?
                    .execute(&self.writes)
                    .await;
                shared::created(DIALECT, &record.id, result)
            }

            async fn get(&self, id: &str) -> AdapterResult<Option<SessionRecord>> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
                let row = sqlx::query(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| from_sqlx(DIALECT, &format!("get session {id}"), e))?;
                row.as_ref().map(record_from_row).transpose()
            }

            async fn update(&self, record: &SessionRecord) -> AdapterResult<u64> {
                let version = to_db_int(record.version, "version")?;
                let updated = bind_record(sqlx::query(shared::UPDATE_SQL), record)?
                    .bind(version)
                    .fetch_optional(&self.writes)
                    .await
                    .map_err(|e| from_sqlx(DIALECT, &format!("update session {}", record.id), e))?;
                if let Some(row) = updated {
                    let new: i64 = row.try_get(0).map_err(decode_error)?;
                    return from_db_int(new, "version");
                }
                let stored: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM sessions WHERE id = $1")
                        .bind(&record.id)
                        .fetch_optional(&self.writes)
                        .await
                        .map_err(|e| {
                            from_sqlx(DIALECT, &format!("get session {}", record.id), e)
                        })?;
                Err(shared::update_refused(record, stored))
            }

            async fn list(
                &self,
                filter: &SessionFilter,
                limit: usize,
                cursor: Option<&str>,
            ) -> AdapterResult<SessionPage> {
                let q = list_query(filter, limit, cursor);
                let mut query = sqlx::query(AssertSqlSafe(q.sql));
                for text in q.texts {
                    query = query.bind(text);
                }
                let rows = query
                    .bind(q.fetch)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| from_sqlx(DIALECT, "list sessions", e))?;
                let records = rows
                    .iter()
                    .map(record_from_row)
                    .collect::<AdapterResult<Vec<_>>>()?;
                let (sessions, next_cursor) = page_from(records, limit, |r| r.id.as_str());
                Ok(SessionPage {
                    sessions,
                    next_cursor,
                })
            }

            async fn delete(&self, id: &str) -> AdapterResult<()> {
                sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(id)
                    .execute(&self.writes)
                    .await
                    .map_err(|e| from_sqlx(DIALECT, &format!("delete session {id}"), e))?;
                Ok(())
            }

            async fn append_events(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
                let entry = SessionEvents {
                    session_id: id,
                    events,
                };
                let mut outcomes = self.append_batch(&[entry]).await;
                outcomes.pop().unwrap_or(Ok(()))
            }

            async fn append_batch(&self, batch: &[SessionEvents<'_>]) -> Vec<AdapterResult<()>> {
                let mut outcomes: Vec<AdapterResult<()>> = batch
                    .iter()
                    .map(|entry| shared::check_entry(entry))
                    .collect();
                let valid: Vec<usize> = (0..batch.len()).filter(|&i| outcomes[i].is_ok()).collect();
                if valid.is_empty() {
                    return outcomes;
                }
                let entries: Vec<SessionEvents<'_>> = valid.iter().map(|&i| batch[i]).collect();
                match self.write_batch(&entries).await {
                    Ok(missing) => {
                        for &i in &valid {
                            if missing.contains(batch[i].session_id) {
                                outcomes[i] = Err(shared::no_session(batch[i].session_id));
                            }
                        }
                    }
                    // A session was deleted between the existence check and the insert (by
                    // another process): entry by entry tells exactly which.
                    Err(e) if is_foreign_key_violation(&e) && valid.len() > 1 => {
                        for &i in &valid {
                            outcomes[i] = self
                                .append_events(batch[i].session_id, batch[i].events)
                                .await;
                        }
                    }
                    Err(e) if is_foreign_key_violation(&e) => {
                        outcomes[valid[0]] = Err(shared::no_session(batch[valid[0]].session_id));
                    }
                    Err(e) => {
                        let doing = match entries.as_slice() {
                            [one] => format!("append events to {}", one.session_id),
                            many => format!("append events of {} sessions", many.len()),
                        };
                        let error = from_sqlx(DIALECT, &doing, e);
                        for &i in &valid {
                            outcomes[i] = Err(error.clone());
                        }
                    }
                }
                outcomes
            }

            async fn events_after(
                &self,
                id: &str,
                after: u64,
                limit: usize,
            ) -> AdapterResult<Vec<Event>> {
                let Ok(after) = i64::try_from(after) else {
                    return Ok(Vec::new());
                };
                let rows = sqlx::query(
                    "SELECT seq, at, kind, data FROM events \
                     WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(id)
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| from_sqlx(DIALECT, &format!("read events of {id}"), e))?;
                rows.iter().map(event_from_row).collect()
            }

            async fn ping(&self) -> AdapterResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(|e| from_sqlx(DIALECT, "ping", e))?;
                Ok(())
            }

            async fn create_key(&self, key: &ApiKeyRecord) -> AdapterResult<()> {
                let sql = format!(
                    "INSERT INTO api_keys ({}) VALUES ($1, $2, $3, $4, $5)",
                    shared::KEY_COLUMNS
                );
                let result = bind_key(sqlx::query(AssertSqlSafe(sql)), key)?
                    .execute(&self.writes)
                    .await;
                shared::key_created(DIALECT, &key.name, result)
            }

            async fn key_by_hash(&self, key_hash: &str) -> AdapterResult<Option<ApiKeyRecord>> {
                let sql = format!(
                    "SELECT {} FROM api_keys WHERE key_hash = $1",
                    shared::KEY_COLUMNS
                );
                let row = sqlx::query(AssertSqlSafe(sql))
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| from_sqlx(DIALECT, "find API key", e))?;
                row.as_ref().map(key_from_row).transpose()
            }

            async fn list_keys(&self) -> AdapterResult<Vec<ApiKeyRecord>> {
                let sql = format!("SELECT {} FROM api_keys ORDER BY name", shared::KEY_COLUMNS);
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| from_sqlx(DIALECT, "list API keys", e))?;
                rows.iter().map(key_from_row).collect()
            }

            async fn revoke_key(&self, name: &str) -> AdapterResult<bool> {
                let done = sqlx::query("DELETE FROM api_keys WHERE name = $1")
                    .bind(name)
                    .execute(&self.writes)
                    .await
                    .map_err(|e| from_sqlx(DIALECT, &format!("revoke API key {name}"), e))?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use session_store;
