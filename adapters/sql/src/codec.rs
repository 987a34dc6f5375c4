//! Conversions between the API's types and column values, shared by both dialects.

use agent_runtime_api::{
    AdapterError, AdapterResult, EventKind, SessionError, SessionFilter, SessionStatus, Usage,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::value::RawValue;

/// The columns of `sessions`, in the order `record_from_row` functions read them.
pub(crate) const SESSION_COLUMNS: &str = "id, owner, agent_type, status, metadata, created_at, \
     updated_at, last_activity_at, last_seq, agent_session_id, usage, error, budget, forked_from, version";

/// A counter as stored: databases have signed 64-bit integers only.
pub(crate) fn to_db_int(value: u64, field: &str) -> AdapterResult<i64> {
    i64::try_from(value)
        .map_err(|_| AdapterError::invalid_input(format!("{field} {value} exceeds {}", i64::MAX)))
}

/// A stored counter; a negative one means the row was written by something else.
pub(crate) fn from_db_int(value: i64, field: &str) -> AdapterResult<u64> {
    u64::try_from(value).map_err(|_| corrupt(field, &value.to_string()))
}

/// A timestamp as SQLite text: UTC, nine fractional digits, so that it keeps nanoseconds
/// and text order is time order.
pub(crate) fn timestamp_to_text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A timestamp from SQLite text.
pub(crate) fn timestamp_from_text(text: &str, field: &str) -> AdapterResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| corrupt(field, text))
}

/// A stored status name.
pub(crate) fn status_from_db(name: &str) -> AdapterResult<SessionStatus> {
    SessionStatus::parse(name).ok_or_else(|| corrupt("status", name))
}

/// A stored event kind name.
pub(crate) fn kind_from_db(name: &str) -> AdapterResult<EventKind> {
    EventKind::parse(name).ok_or_else(|| corrupt("kind", name))
}

/// A stored event payload, kept byte for byte.
pub(crate) fn data_from_db(text: String) -> AdapterResult<Box<RawValue>> {
    RawValue::from_string(text).map_err(|e| AdapterError::other("stored event data").with_source(e))
}

/// Any value as JSON text.
pub(crate) fn json_text<T: serde::Serialize>(value: &T, field: &str) -> AdapterResult<String> {
    serde_json::to_string(value).map_err(|e| {
        AdapterError::invalid_input(format!("{field} cannot be stored as JSON")).with_source(e)
    })
}

/// A value from stored JSON.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    field: &str,
) -> AdapterResult<T> {
    serde_json::from_value(value)
        .map_err(|e| AdapterError::other(format!("stored {field}")).with_source(e))
}

/// A value from stored JSON text.
pub(crate) fn from_json_text<T: serde::de::DeserializeOwned>(
    text: &str,
    field: &str,
) -> AdapterResult<T> {
    serde_json::from_str(text)
        .map_err(|e| AdapterError::other(format!("stored {field}")).with_source(e))
}

/// The usage and error of a record, decoded from their JSON columns.
pub(crate) fn usage_and_error(
    usage: serde_json::Value,
    error: Option<serde_json::Value>,
) -> AdapterResult<(Usage, Option<SessionError>)> {
    let usage = from_json(usage, "usage")?;
    let error = error.map(|e| from_json(e, "error")).transpose()?;
    Ok((usage, error))
}

/// A `list` query: the SQL with `$n` placeholders, its text binds in order, then the row
/// limit as the last bind. `$n` placeholders are understood by both dialects.
pub(crate) struct ListQuery<'a> {
    /// The statement.
    pub sql: String,
    /// Values for `$1` .. `$n-1`.
    pub texts: Vec<&'a str>,
    /// Value for the last placeholder: rows to fetch, one more than the page holds.
    pub fetch: i64,
}

/// Builds the query for one page of `list`: `limit + 1` rows are fetched so that the
/// extra row tells whether more follow.
pub(crate) fn list_query<'a>(
    filter: &'a SessionFilter,
    limit: usize,
    cursor: Option<&'a str>,
) -> ListQuery<'a> {
    let mut sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE TRUE");
    let mut texts: Vec<&str> = Vec::new();
    let mut condition = |sql: &mut String, column: &str, value: &'a str| {
        texts.push(value);
        sql.push_str(&format!(" AND {column} = ${}", texts.len()));
    };
    if let Some(owner) = &filter.owner {
        condition(&mut sql, "owner", owner);
    }
    if let Some(agent_type) = &filter.agent_type {
        condition(&mut sql, "agent_type", agent_type);
    }
    if !filter.statuses.is_empty() {
        let first = texts.len() + 1;
        texts.extend(filter.statuses.iter().map(|s| s.as_str()));
        let placeholders: Vec<String> = (first..=texts.len()).map(|n| format!("${n}")).collect();
        sql.push_str(&format!(" AND status IN ({})", placeholders.join(", ")));
    }
    if let Some(cursor) = cursor {
        texts.push(cursor);
        sql.push_str(&format!(" AND id > ${}", texts.len()));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT ${}", texts.len() + 1));
    let fetch = i64::try_from(limit.max(1)).unwrap_or(i64::MAX - 1) + 1;
    ListQuery { sql, texts, fetch }
}

/// Cuts the extra row off a fetched page and derives the cursor from it.
pub(crate) fn page_from<R>(
    mut rows: Vec<R>,
    limit: usize,
    id_of: impl Fn(&R) -> &str,
) -> (Vec<R>, Option<String>) {
    let limit = limit.max(1);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|r| id_of(r).to_owned())
    } else {
        None
    };
    (rows, next_cursor)
}

fn corrupt(field: &str, value: &str) -> AdapterError {
    AdapterError::other(format!("stored {field} {value:?} is not valid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_round_trip_and_sort_as_text() {
        let early = Utc.timestamp_nanos(1_700_000_000_000_000_001);
        let late = Utc.timestamp_nanos(1_700_000_000_100_000_000);
        for at in [early, late] {
            assert_eq!(
                timestamp_from_text(&timestamp_to_text(&at), "at").unwrap(),
                at
            );
        }
        assert!(timestamp_to_text(&early) < timestamp_to_text(&late));
    }

    #[test]
    fn list_query_numbers_its_placeholders() {
        let filter = SessionFilter {
            owner: Some("alice".into()),
            agent_type: None,
            statuses: vec![SessionStatus::Idle, SessionStatus::Running],
        };
        let q = list_query(&filter, 10, Some("c"));
        assert_eq!(
            q.sql,
            format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE TRUE AND owner = $1 \
                 AND status IN ($2, $3) AND id > $4 ORDER BY id LIMIT $5"
            )
        );
        assert_eq!(q.texts, ["alice", "idle", "running", "c"]);
        assert_eq!(q.fetch, 11);
        assert_eq!(list_query(&SessionFilter::default(), 0, None).fetch, 2);
    }

    #[test]
    fn page_from_cuts_the_extra_row() {
        let (rows, next) = page_from(vec!["a", "b", "c"], 2, |r| r);
        assert_eq!((rows, next.as_deref()), (vec!["a", "b"], Some("b")));
        let (rows, next) = page_from(vec!["a", "b"], 2, |r| r);
        assert_eq!((rows, next), (vec!["a", "b"], None));
    }

    #[test]
    fn counters_beyond_i64_are_refused() {
        assert!(to_db_int(u64::MAX, "seq").is_err());
        assert!(from_db_int(-1, "seq").is_err());
        assert_eq!(to_db_int(7, "seq").unwrap(), 7);
    }
}
