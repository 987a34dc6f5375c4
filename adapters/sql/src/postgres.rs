use std::str::FromStr;

use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, Event, SessionFilter, SessionPage, SessionRecord,
    SessionStore, async_trait, check_seqs_increase,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row};

use crate::codec::{
    SESSION_COLUMNS, data_from_db, from_db_int, kind_from_db, list_query, page_from,
    status_from_db, to_db_int, usage_and_error,
};
use crate::config::{SqlDialect, SqlStoreConfig};
use crate::error::{from_connect, from_migrate, from_sqlx, is_foreign_key_violation};
use crate::{migrations, pool_options, shared};

const DIALECT: SqlDialect = SqlDialect::Postgres;

/// Appends a whole batch in one statement: the events travel as four arrays, so the
/// statement text and its bind count do not depend on the batch size. A stored seq is
/// skipped; a missing session fails the foreign key.
const INSERT_EVENTS_SQL: &str = "INSERT INTO events (session_id, seq, at, kind, data) \
     SELECT $1::text, u.seq, u.at, u.kind, u.data \
     FROM UNNEST($2::int8[], $3::timestamptz[], $4::text[], $5::text[]) AS u(seq, at, kind, data) \
     ON CONFLICT (session_id, seq) DO NOTHING";

/// A [`SessionStore`] in a PostgreSQL database.
///
/// Timestamps are stored as `timestamptz`, which keeps microseconds: finer parts of a
/// timestamp are cut. Metadata, usage and error are `jsonb`; event payloads are `text`,
/// byte for byte as given.
#[derive(Debug, Clone)]
pub struct PostgresSessionStore {
    pool: PgPool,
}

impl PostgresSessionStore {
    /// Connects to the database at `config.url` and applies migrations. Several instances
    /// may start at once: migrations run under an advisory lock.
    pub async fn connect(config: &SqlStoreConfig) -> AdapterResult<Self> {
        if SqlDialect::from_url(&config.url)? != DIALECT {
            return Err(AdapterError::InvalidInput(format!(
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
        Ok(Self { pool })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

shared::session_store!(PostgresSessionStore);

impl PostgresSessionStore {
    /// Stores a non-empty batch whose seqs increase.
    async fn insert_batch(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
        let seqs = events
            .iter()
            .map(|e| to_db_int(e.seq, "seq"))
            .collect::<AdapterResult<Vec<i64>>>()?;
        let ats: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        let data: Vec<&str> = events.iter().map(|e| e.data.get()).collect();
        let result = sqlx::query(INSERT_EVENTS_SQL)
            .bind(id)
            .bind(seqs)
            .bind(ats)
            .bind(kinds)
            .bind(data)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            // The foreign key is the existence check: no extra round trip per batch.
            Err(e) if is_foreign_key_violation(&e) => Err(shared::no_session(id)),
            Err(e) => Err(from_sqlx(DIALECT, &format!("append events to {id}"), e)),
        }
    }

    /// `NotFound` unless a record with this id exists.
    async fn require_session(&self, id: &str) -> AdapterResult<()> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| from_sqlx(DIALECT, &format!("get session {id}"), e))?;
        found.map(|_| ()).ok_or_else(|| shared::no_session(id))
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds `$1`..`$12`: every column but `version`, in [`SESSION_COLUMNS`] order.
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
        .bind(r.error.as_ref().map(Json)))
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
