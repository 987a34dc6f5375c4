use std::collections::HashSet;
use std::str::FromStr;

use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, Event, SessionEvents, SessionFilter, SessionPage,
    SessionRecord, SessionStore, async_trait,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgRow};
use sqlx::types::Json;
use sqlx::{Pool, Row};

use crate::codec::{
    data_from_db, from_db_int, from_json, kind_from_db, status_from_db, to_db_int, usage_and_error,
};
use crate::config::{SqlDialect, SqlStoreConfig};
use crate::error::{from_connect, from_migrate, from_sqlx};
use crate::shared::{self, Dialect};
use crate::{migrations, pool_options};

const DIALECT: SqlDialect = SqlDialect::Postgres;

/// Appends a batch of many sessions in one statement, one round trip: the events travel
/// as five arrays (a session id per event), so the statement text and its bind count do
/// not depend on the batch. `$6` holds the batch's session ids; the statement returns
/// those without a record, whose events it leaves out. A stored seq is skipped.
///
/// The existence check and the insert see one snapshot; a session deleted in between by
/// another transaction fails the foreign key instead, and the caller then goes entry by
/// entry.
const INSERT_BATCH_SQL: &str = "WITH present AS (SELECT id FROM sessions WHERE id = ANY($6::text[])), \
     stored AS (INSERT INTO events (session_id, seq, at, kind, data) \
       SELECT u.session_id, u.seq, u.at, u.kind, u.data \
       FROM UNNEST($1::text[], $2::int8[], $3::timestamptz[], $4::text[], $5::text[]) \
         AS u(session_id, seq, at, kind, data) \
       WHERE u.session_id IN (SELECT id FROM present) \
       ON CONFLICT (session_id, seq) DO NOTHING) \
     SELECT b.id FROM UNNEST($6::text[]) AS b(id) WHERE b.id NOT IN (SELECT id FROM present)";

/// A [`SessionStore`] in a PostgreSQL database.
///
/// Timestamps are stored as `timestamptz`, which keeps microseconds: finer parts of a
/// timestamp are cut. Metadata, usage and error are `jsonb`; event payloads are `text`,
/// byte for byte as given.
#[derive(Debug, Clone)]
pub struct PostgresSessionStore {
    pool: PgPool,
    /// The same pool: PostgreSQL takes concurrent writers.
    writes: PgPool,
}

impl PostgresSessionStore {
    /// Connects to the database at `config.url` and applies migrations. Several instances
    /// may start at once: migrations run under an advisory lock.
    pub async fn connect(config: &SqlStoreConfig) -> AdapterResult<Self> {
        if SqlDialect::from_url(&config.url)? != DIALECT {
            return Err(AdapterError::invalid_input(format!(
                "{} is not a postgres: URL",
                config.redacted_url()
            )));
        }
        let options =
            PgConnectOptions::from_str(&config.url).map_err(|e| from_connect(DIALECT, e))?;
        let pool = pool_options::<sqlx::Postgres>(config)?
            .connect_with(options)
            .await
            .map_err(|e| from_connect(DIALECT, e))?;
        migrations::migrator(DIALECT)
            .run(&pool)
            .await
            .map_err(|e| from_migrate(DIALECT, e))?;
        Ok(Self {
            writes: pool.clone(),
            pool,
        })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The dialect's own parts of the shared `SessionStore` code.
impl Dialect for PostgresSessionStore {
    type Db = sqlx::Postgres;
    const DIALECT: SqlDialect = DIALECT;

    fn reads(&self) -> &Pool<sqlx::Postgres> {
        &self.pool
    }

    fn writes(&self) -> &Pool<sqlx::Postgres> {
        &self.writes
    }

    fn bind_record<'q>(query: PgQuery<'q>, record: &SessionRecord) -> AdapterResult<PgQuery<'q>> {
        bind_record(query, record)
    }

    fn record_from_row(
        row: &<sqlx::Postgres as sqlx::Database>::Row,
    ) -> AdapterResult<SessionRecord> {
        record_from_row(row)
    }

    fn bind_key<'q>(query: PgQuery<'q>, key: &ApiKeyRecord) -> AdapterResult<PgQuery<'q>> {
        bind_key(query, key)
    }

    fn key_from_row(row: &<sqlx::Postgres as sqlx::Database>::Row) -> AdapterResult<ApiKeyRecord> {
        key_from_row(row)
    }

    fn event_from_row(row: &<sqlx::Postgres as sqlx::Database>::Row) -> AdapterResult<Event> {
        event_from_row(row)
    }

    async fn write_batch(
        &self,
        entries: &[SessionEvents<'_>],
    ) -> Result<HashSet<String>, sqlx::Error> {
        let count: usize = entries.iter().map(|e| e.events.len()).sum();
        let mut sessions: Vec<&str> = Vec::with_capacity(count);
        let mut seqs: Vec<i64> = Vec::with_capacity(count);
        let mut ats: Vec<DateTime<Utc>> = Vec::with_capacity(count);
        let mut kinds: Vec<&str> = Vec::with_capacity(count);
        let mut data: Vec<&str> = Vec::with_capacity(count);
        for entry in entries {
            for event in entry.events {
                sessions.push(entry.session_id);
                seqs.push(shared::db_seq(event.seq));
                ats.push(event.at);
                kinds.push(event.kind.as_str());
                data.push(event.data.get());
            }
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.session_id).collect();
        let missing: Vec<String> = sqlx::query_scalar(INSERT_BATCH_SQL)
            .bind(sessions)
            .bind(seqs)
            .bind(ats)
            .bind(kinds)
            .bind(data)
            .bind(ids)
            .fetch_all(&self.writes)
            .await?;
        Ok(missing.into_iter().collect())
    }
}

#[async_trait]
impl SessionStore for PostgresSessionStore {
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

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds `$1`..`$14`: every column but `version`, in [`crate::codec::SESSION_COLUMNS`] order.
fn bind_record<'q>(query: PgQuery<'q>, r: &SessionRecord) -> AdapterResult<PgQuery<'q>> {
    Ok(query
        .bind(r.id.as_str())
        .bind(r.owner.as_str())
        .bind(r.agent_type.as_str())
        .bind(r.status.as_str())
        .bind(Json(&r.metadata))
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(r.last_activity_at)
        .bind(to_db_int(r.last_seq, "last_seq")?)
        .bind(r.agent_session_id.as_deref())
        .bind(Json(&r.usage))
        .bind(r.error.as_ref().map(Json))
        .bind(Json(&r.budget))
        .bind(r.forked_from.as_ref().map(Json)))
}

fn record_from_row(row: &PgRow) -> AdapterResult<SessionRecord> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(decode_error);
    let time = |name: &str| row.try_get::<DateTime<Utc>, _>(name).map_err(decode_error);
    let int = |name: &str| row.try_get::<i64, _>(name).map_err(decode_error);
    let json = |name: &str| {
        row.try_get::<Json<serde_json::Value>, _>(name)
            .map(|Json(v)| v)
            .map_err(decode_error)
    };
    let error: Option<Json<serde_json::Value>> = row.try_get("error").map_err(decode_error)?;
    let forked_from: Option<Json<serde_json::Value>> =
        row.try_get("forked_from").map_err(decode_error)?;
    let (usage, error) = usage_and_error(json("usage")?, error.map(|Json(v)| v))?;
    Ok(SessionRecord {
        id: text("id")?,
        owner: text("owner")?,
        agent_type: text("agent_type")?,
        status: status_from_db(&text("status")?)?,
        metadata: json("metadata")?,
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        last_activity_at: time("last_activity_at")?,
        last_seq: from_db_int(int("last_seq")?, "last_seq")?,
        agent_session_id: row.try_get("agent_session_id").map_err(decode_error)?,
        usage,
        error,
        budget: from_json(json("budget")?, "budget")?,
        forked_from: forked_from
            .map(|Json(v)| from_json(v, "forked_from"))
            .transpose()?,
        version: from_db_int(int("version")?, "version")?,
    })
}

fn bind_key<'q>(query: PgQuery<'q>, key: &ApiKeyRecord) -> AdapterResult<PgQuery<'q>> {
    Ok(query
        .bind(key.name.as_str())
        .bind(key.key_hash.as_str())
        .bind(key.admin)
        .bind(Json(key.quotas))
        .bind(key.created_at))
}

fn key_from_row(row: &PgRow) -> AdapterResult<ApiKeyRecord> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(decode_error);
    let Json(quotas) = row.try_get("quotas").map_err(decode_error)?;
    Ok(ApiKeyRecord {
        name: text("name")?,
        key_hash: text("key_hash")?,
        admin: row.try_get("admin").map_err(decode_error)?,
        quotas,
        created_at: row.try_get("created_at").map_err(decode_error)?,
    })
}

fn event_from_row(row: &PgRow) -> AdapterResult<Event> {
    Ok(Event {
        seq: from_db_int(row.try_get("seq").map_err(decode_error)?, "seq")?,
        at: row.try_get("at").map_err(decode_error)?,
        kind: kind_from_db(row.try_get("kind").map_err(decode_error)?)?,
        data: data_from_db(row.try_get("data").map_err(decode_error)?)?,
    })
}

fn decode_error(error: sqlx::Error) -> AdapterError {
    from_sqlx(DIALECT, "read row", error)
}
