//! Session records and events as the Convex functions send and receive them.
//!
//! Counters (seq, version, tokens) are float64 numbers below 2^53; timestamps are RFC 3339
//! strings written with full precision; metadata and event data are JSON text, so they are
//! stored verbatim and escape Convex's rules for field names and nesting.

use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, Budget, Event, EventKind, ForkedFrom,
    QuotaOverrides, SessionError, SessionRecord, SessionStatus, Usage,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::codec::{counter, read_counter};

/// A record as the functions' `sessionRecord` validator expects it.
pub(crate) fn record_to_convex(record: &SessionRecord) -> AdapterResult<Value> {
    Ok(json!({
        "sessionId": record.id,
        "owner": record.owner,
        "agentType": record.agent_type,
        "status": record.status.as_str(),
        "metadata": record.metadata.to_string(),
        "createdAt": time_text(&record.created_at),
        "updatedAt": time_text(&record.updated_at),
        "lastActivityAt": time_text(&record.last_activity_at),
        "lastSeq": counter(record.last_seq, "last_seq")?,
        "agentSessionId": record.agent_session_id,
        "usage": {
            "inputTokens": counter(record.usage.input_tokens, "input_tokens")?,
            "outputTokens": counter(record.usage.output_tokens, "output_tokens")?,
            "costUsd": record.usage.cost_usd,
            "turns": counter(record.usage.turns, "turns")?,
        },
        "budget": {
            "maxCostUsd": record.budget.max_cost_usd,
            "maxTokens": record.budget.max_tokens.map(|n| counter(n, "max_tokens")).transpose()?,
            "maxTurns": record.budget.max_turns.map(|n| counter(n, "max_turns")).transpose()?,
        },
        "forkedFrom": match &record.forked_from {
            None => Value::Null,
            Some(from) => json!({
                "sessionId": from.session_id,
                "seq": counter(from.seq, "forked_from.seq")?,
                "agentSessionId": from.agent_session_id,
            }),
        },
        "error": record.error.as_ref().map(|e| json!({"code": e.code, "message": e.message})),
        "version": counter(record.version, "version")?,
    }))
}

/// Reads a record the functions returned.
pub(crate) fn record_from_convex(value: &Value) -> AdapterResult<SessionRecord> {
    let status = text(value, "status")?;
    let usage = value.get("usage").unwrap_or(&Value::Null);
    let error = match value.get("error") {
        None | Some(Value::Null) => None,
        Some(error) => Some(SessionError {
            code: text(error, "code")?.to_owned(),
            message: text(error, "message")?.to_owned(),
        }),
    };
    Ok(SessionRecord {
        id: text(value, "sessionId")?.to_owned(),
        owner: text(value, "owner")?.to_owned(),
        agent_type: text(value, "agentType")?.to_owned(),
        status: SessionStatus::parse(status)
            .ok_or_else(|| invalid(format!("unknown session status {status:?}")))?,
        metadata: serde_json::from_str(text(value, "metadata")?)
            .map_err(|err| invalid(format!("session metadata is not JSON: {err}")))?,
        created_at: time(value, "createdAt")?,
        updated_at: time(value, "updatedAt")?,
        last_activity_at: time(value, "lastActivityAt")?,
        last_seq: number(value, "lastSeq")?,
        agent_session_id: match value.get("agentSessionId") {
            None | Some(Value::Null) => None,
            Some(_) => Some(text(value, "agentSessionId")?.to_owned()),
        },
        usage: Usage {
            input_tokens: number(usage, "inputTokens")?,
            output_tokens: number(usage, "outputTokens")?,
            cost_usd: usage
                .get("costUsd")
                .and_then(Value::as_f64)
                .ok_or_else(|| invalid("usage.costUsd is not a number".into()))?,
            turns: number(usage, "turns")?,
        },
        budget: match value.get("budget") {
            // Stored before budgets existed: unlimited.
            None | Some(Value::Null) => Budget::default(),
            Some(budget) => Budget {
                max_cost_usd: match budget.get("maxCostUsd") {
                    None | Some(Value::Null) => None,
                    Some(cost) => Some(
                        cost.as_f64()
                            .ok_or_else(|| invalid("budget.maxCostUsd is not a number".into()))?,
                    ),
                },
                max_tokens: optional_number(budget, "maxTokens")?,
                max_turns: optional_number(budget, "maxTurns")?,
            },
        },
        forked_from: match value.get("forkedFrom") {
            // A created session, or one stored before forks existed.
            None | Some(Value::Null) => None,
            Some(from) => Some(ForkedFrom {
                session_id: text(from, "sessionId")?.to_owned(),
                seq: number(from, "seq")?,
                agent_session_id: match from.get("agentSessionId") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(text(from, "agentSessionId")?.to_owned()),
                },
            }),
        },
        error,
        version: number(value, "version")?,
    })
}

/// An event as the functions' `event` validator expects it.
pub(crate) fn event_to_convex(event: &Event) -> AdapterResult<Value> {
    Ok(json!({
        "seq": counter(event.seq, "seq")?,
        "at": time_text(&event.at),
        "type": event.kind.as_str(),
        "data": event.data.get(),
    }))
}

/// Reads an event the functions returned.
pub(crate) fn event_from_convex(value: &Value) -> AdapterResult<Event> {
    let kind = text(value, "type")?;
    Ok(Event {
        seq: number(value, "seq")?,
        at: time(value, "at")?,
        kind: EventKind::parse(kind)
            .ok_or_else(|| invalid(format!("unknown event type {kind:?}")))?,
        data: RawValue::from_string(text(value, "data")?.to_owned())
            .map_err(|err| invalid(format!("event data is not JSON: {err}")))?,
    })
}

/// An API key as the functions' `apiKey` validator expects it.
pub(crate) fn key_to_convex(key: &ApiKeyRecord) -> Value {
    let q = &key.quotas;
    json!({
        "name": key.name,
        "keyHash": key.key_hash,
        "admin": key.admin,
        "quotas": {
            "maxLiveSessions": q.max_live_sessions,
            "maxStoredSessions": q.max_stored_sessions,
            "createsPerMinute": q.creates_per_minute,
            "messagesPerMinute": q.messages_per_minute,
        },
        "createdAt": time_text(&key.created_at),
    })
}

/// Reads an API key the functions returned.
pub(crate) fn key_from_convex(value: &Value) -> AdapterResult<ApiKeyRecord> {
    let quotas = value.get("quotas").unwrap_or(&Value::Null);
    let limit = |name: &str| -> AdapterResult<Option<u32>> {
        match quotas.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => u32::try_from(number(quotas, name)?)
                .map(Some)
                .map_err(|_| invalid(format!("quotas.{name} is out of range"))),
        }
    };
    Ok(ApiKeyRecord {
        name: text(value, "name")?.to_owned(),
        key_hash: text(value, "keyHash")?.to_owned(),
        admin: value
            .get("admin")
            .and_then(Value::as_bool)
            .ok_or_else(|| invalid("field admin is missing or not a boolean".into()))?,
        quotas: QuotaOverrides {
            max_live_sessions: limit("maxLiveSessions")?,
            max_stored_sessions: limit("maxStoredSessions")?,
            creates_per_minute: limit("createsPerMinute")?,
            messages_per_minute: limit("messagesPerMinute")?,
        },
        created_at: time(value, "createdAt")?,
    })
}

/// The field `name` of `value` as a string.
pub(crate) fn text<'a>(value: &'a Value, name: &str) -> AdapterResult<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("field {name} is missing or not a string")))
}

/// The field `name` of `value` as a u64 counter.
pub(crate) fn number(value: &Value, name: &str) -> AdapterResult<u64> {
    let field = value.get(name).unwrap_or(&Value::Null);
    Ok(read_counter(field, name)?)
}

/// A counter that may be null or absent.
fn optional_number(value: &Value, name: &str) -> AdapterResult<Option<u64>> {
    match value.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => number(value, name).map(Some),
    }
}

/// An answer that does not have the documented shape.
pub(crate) fn invalid(message: String) -> AdapterError {
    AdapterError::other(format!("unexpected answer from convex: {message}"))
}

/// RFC 3339 with as many fraction digits as needed, so the time round-trips exactly.
fn time_text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn time(value: &Value, name: &str) -> AdapterResult<DateTime<Utc>> {
    let raw = text(value, name)?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| invalid(format!("{name} {raw:?} is not an RFC 3339 time: {err}")))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn records_round_trip() {
        let at = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let record = SessionRecord {
            id: "s1".into(),
            owner: "o".into(),
            agent_type: "assistant".into(),
            status: SessionStatus::Running,
            metadata: json!({"$weird key": [1, {"n": 18446744073709551615_u64}]}),
            created_at: at,
            updated_at: at,
            last_activity_at: at,
            last_seq: 42,
            agent_session_id: Some("a".into()),
            budget: Budget {
                max_cost_usd: Some(2.5),
                max_tokens: None,
                max_turns: Some(3),
            },
            usage: Usage {
                input_tokens: 1,
                output_tokens: 2,
                cost_usd: 0.125,
                turns: 3,
            },
            forked_from: Some(ForkedFrom {
                session_id: "s0".into(),
                seq: 17,
                agent_session_id: Some("a0".into()),
            }),
            error: Some(SessionError {
                code: "c".into(),
                message: "m".into(),
            }),
            version: 9,
        };
        let sent = record_to_convex(&record).unwrap();
        assert_eq!(sent["createdAt"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(record_from_convex(&sent).unwrap(), record);
    }

    #[test]
    fn events_round_trip_verbatim() {
        let event = Event {
            seq: 3,
            at: Utc.timestamp_millis_opt(1_700_000_000_003).unwrap(),
            kind: EventKind::Agent,
            data: RawValue::from_string(r#"{"b":1,  "a":"é"}"#.into()).unwrap(),
        };
        let sent = event_to_convex(&event).unwrap();
        let back = event_from_convex(&sent).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.data.get(), r#"{"b":1,  "a":"é"}"#);
    }

    #[test]
    fn refuses_counters_above_2_pow_53() {
        let mut record = agent_runtime_api::contract::sample_record("s", "o");
        record.last_seq = (1 << 53) + 1;
        assert!(matches!(
            record_to_convex(&record),
            Err(e) if e.kind() == agent_runtime_api::ErrorKind::InvalidInput
        ));
    }
}
