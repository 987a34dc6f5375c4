//! Built-in handlers for `agentRuntime/sessions:*` and `agentRuntime/events:*`, mirroring
//! `adapters/convex/convex/agentRuntime/{sessions,events}.ts` on the same tables.

use serde_json::{Map, Value, json};

use super::{FakeConvex, FakeDb, FunctionError};

pub(super) const SESSIONS: &str = "agentRuntimeSessions";
pub(super) const EVENTS: &str = "agentRuntimeEvents";
/// The most documents one call reads or writes, as `MAX_PAGE` in `server.ts`.
pub(super) const MAX_PAGE: usize = 1000;
/// Stop filling a page of events past this many bytes, as `PAGE_BYTES` in `events.ts`.
const PAGE_BYTES: usize = 8 * 1024 * 1024;
const STATUSES: [&str; 7] = [
    "starting", "idle", "running", "waiting", "stopping", "stopped", "failed",
];

pub(super) fn register(fake: &FakeConvex) {
    let name = |f: &str| format!("agentRuntime/{f}");
    fake.on_mutation(&name("sessions:create"), create);
    fake.on_query(&name("sessions:get"), get);
    fake.on_mutation(&name("sessions:update"), update);
    fake.on_query(&name("sessions:list"), list);
    fake.on_mutation(&name("sessions:remove"), remove);
    fake.on_mutation(&name("events:append"), append);
    fake.on_query(&name("events:after"), after);
}

fn create(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let mut record = session_record(arg(&args, "record")?)?;
    let id = text(&record, "sessionId")?.to_owned();
    if find_session(db, &id).is_some() {
        return Err(FunctionError::code(
            "CONFLICT",
            format!("session {id} already exists"),
        ));
    }
    record["version"] = json!(1);
    db.insert(SESSIONS, record);
    Ok(Value::Null)
}

fn get(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let id = text(&args, "sessionId")?;
    Ok(find_session(db, id).map_or(Value::Null, |at| without_system(&db.table(SESSIONS)[at])))
}

fn update(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let record = session_record(arg(&args, "record")?)?;
    let id = text(&record, "sessionId")?;
    let Some(at) = find_session(db, id) else {
        return Err(FunctionError::code("NOT_FOUND", format!("session {id}")));
    };
    let stored = number(&db.table(SESSIONS)[at], "version")?;
    let expected = number(&record, "version")?;
    if stored != expected {
        return Err(FunctionError::code(
            "CONFLICT",
            format!("session {id} is at version {stored}, not {expected}"),
        ));
    }
    let version = expected + 1.0;
    let doc = &mut db.table_mut(SESSIONS)[at];
    let system = system_fields(doc);
    *doc = record;
    doc["version"] = json!(version);
    merge(doc, system);
    Ok(json!(version))
}

fn list(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let owner = nullable_text(&args, "owner")?;
    let agent_type = nullable_text(&args, "agentType")?;
    let statuses = arg(&args, "statuses")?
        .as_array()
        .ok_or_else(|| invalid_args("statuses must be an array"))?;
    let after = nullable_text(&args, "after")?;
    let size = page_size(number(&args, "limit")?);
    let mut matching: Vec<&Value> = db
        .table(SESSIONS)
        .iter()
        .filter(|d| owner.is_none_or(|o| d["owner"] == o))
        .filter(|d| agent_type.is_none_or(|t| d["agentType"] == t))
        .filter(|d| statuses.is_empty() || statuses.contains(&d["status"]))
        .filter(|d| after.is_none_or(|a| d["sessionId"].as_str().is_some_and(|id| id > a)))
        .collect();
    matching.sort_by(|a, b| a["sessionId"].as_str().cmp(&b["sessionId"].as_str()));
    let more = matching.len() > size;
    let sessions: Vec<Value> = matching
        .into_iter()
        .take(size)
        .map(without_system)
        .collect();
    let next_cursor = match sessions.last() {
        Some(last) if more => last["sessionId"].clone(),
        _ => Value::Null,
    };
    Ok(json!({"sessions": sessions, "nextCursor": next_cursor}))
}

fn remove(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let id = text(&args, "sessionId")?.to_owned();
    let mut seen = 0;
    db.table_mut(EVENTS).retain(|e| {
        if e["sessionId"] != id.as_str() || seen >= MAX_PAGE {
            return true;
        }
        seen += 1;
        false
    });
    if db
        .table(EVENTS)
        .iter()
        .any(|e| e["sessionId"] == id.as_str())
    {
        return Ok(json!({"done": false}));
    }
    db.table_mut(SESSIONS)
        .retain(|d| d["sessionId"] != id.as_str());
    Ok(json!({"done": true}))
}

fn append(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let id = text(&args, "sessionId")?.to_owned();
    let events = arg(&args, "events")?
        .as_array()
        .ok_or_else(|| invalid_args("events must be an array"))?;
    let events = events.iter().map(event).collect::<Result<Vec<_>, _>>()?;
    let seqs = events
        .iter()
        .map(|e| number(e, "seq"))
        .collect::<Result<Vec<_>, _>>()?;
    if seqs.windows(2).any(|w| w[1] <= w[0]) {
        return Err(FunctionError::code(
            "INVALID_INPUT",
            "event seqs must strictly increase",
        ));
    }
    if find_session(db, &id).is_none() {
        return Err(FunctionError::code("NOT_FOUND", format!("session {id}")));
    }
    let mut inserted = 0;
    for (mut event, seq) in events.into_iter().zip(seqs) {
        let stored = db
            .table(EVENTS)
            .iter()
            .any(|e| e["sessionId"] == id.as_str() && e["seq"].as_f64() == Some(seq));
        if !stored {
            event["sessionId"] = json!(id);
            db.insert(EVENTS, event);
            inserted += 1;
        }
    }
    Ok(json!({"inserted": inserted}))
}

fn after(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let id = text(&args, "sessionId")?;
    let after = number(&args, "after")?;
    let size = page_size(number(&args, "limit")?);
    let mut log: Vec<&Value> = db
        .table(EVENTS)
        .iter()
        .filter(|e| e["sessionId"] == id && e["seq"].as_f64().is_some_and(|s| s > after))
        .collect();
    log.sort_by(|a, b| {
        a["seq"]
            .as_f64()
            .partial_cmp(&b["seq"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let (mut page, mut bytes, mut is_done) = (Vec::new(), 0, true);
    for doc in log {
        let len = doc["data"].as_str().map_or(0, str::len);
        if page.len() == size || (!page.is_empty() && bytes + len > PAGE_BYTES) {
            is_done = false;
            break;
        }
        bytes += len;
        page.push(
            json!({"seq": doc["seq"], "at": doc["at"], "type": doc["type"], "data": doc["data"]}),
        );
    }
    Ok(json!({"events": page, "isDone": is_done}))
}

fn find_session(db: &FakeDb, id: &str) -> Option<usize> {
    db.table(SESSIONS).iter().position(|d| d["sessionId"] == id)
}

/// Checks a record as the `sessionRecord` validator does: exactly these fields and types.
fn session_record(value: &Value) -> Result<Value, FunctionError> {
    use Kind::*;
    let fields = [
        ("sessionId", Text),
        ("owner", Text),
        ("agentType", Text),
        ("status", Status),
        ("metadata", Text),
        ("createdAt", Text),
        ("updatedAt", Text),
        ("lastActivityAt", Text),
        ("lastSeq", Number),
        ("agentSessionId", NullableText),
        ("usage", Usage),
        ("budget", Budget),
        ("forkedFrom", ForkedFrom),
        ("error", Error),
        ("version", Number),
    ];
    validate(value, &fields, "record")?;
    Ok(value.clone())
}

/// Checks an event as the `event` validator does.
fn event(value: &Value) -> Result<Value, FunctionError> {
    use Kind::*;
    validate(
        value,
        &[
            ("seq", Number),
            ("at", Text),
            ("type", Text),
            ("data", Text),
        ],
        "event",
    )?;
    Ok(value.clone())
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Text,
    NullableText,
    Number,
    Bool,
    Status,
    Usage,
    /// Optional, as `v.optional(budget)`: absent, or exactly its three limits.
    Budget,
    /// Optional and nullable, as `v.optional(v.union(forkedFrom, v.null()))`.
    ForkedFrom,
    Error,
    Quotas,
}

pub(super) fn validate(
    value: &Value,
    fields: &[(&str, Kind)],
    what: &str,
) -> Result<(), FunctionError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid_args(&format!("{what} must be an object")))?;
    if let Some(extra) = object.keys().find(|k| !fields.iter().any(|(f, _)| f == k)) {
        return Err(invalid_args(&format!(
            "{what} has an unexpected field {extra}"
        )));
    }
    for (field, kind) in fields {
        let v = object.get(*field).unwrap_or(&Value::Null);
        let ok = match kind {
            Kind::Text => v.is_string(),
            Kind::NullableText => v.is_string() || v.is_null(),
            Kind::Number => v.is_number(),
            Kind::Bool => v.is_boolean(),
            Kind::Quotas => {
                let keys = [
                    "maxLiveSessions",
                    "maxStoredSessions",
                    "createsPerMinute",
                    "messagesPerMinute",
                ];
                v.as_object().is_some_and(|q| {
                    q.len() == 4
                        && keys
                            .iter()
                            .all(|k| q.get(*k).is_some_and(|n| n.is_number() || n.is_null()))
                })
            }
            Kind::Status => v.as_str().is_some_and(|s| STATUSES.contains(&s)),
            Kind::Usage => {
                let keys = ["inputTokens", "outputTokens", "costUsd", "turns"];
                v.as_object().is_some_and(|u| {
                    u.len() == 4 && keys.iter().all(|k| u.get(*k).is_some_and(Value::is_number))
                })
            }
            Kind::Budget => {
                let keys = ["maxCostUsd", "maxTokens", "maxTurns"];
                object.get(*field).is_none()
                    || v.as_object().is_some_and(|b| {
                        b.len() == 3
                            && keys
                                .iter()
                                .all(|k| b.get(*k).is_some_and(|n| n.is_number() || n.is_null()))
                    })
            }
            Kind::ForkedFrom => {
                v.is_null()
                    || v.as_object().is_some_and(|f| {
                        f.len() == 3
                            && f.get("sessionId").is_some_and(Value::is_string)
                            && f.get("seq").is_some_and(Value::is_number)
                            && f.get("agentSessionId")
                                .is_some_and(|a| a.is_string() || a.is_null())
                    })
            }
            Kind::Error => {
                v.is_null()
                    || v.as_object().is_some_and(|e| {
                        e.len() == 2
                            && e.get("code").is_some_and(Value::is_string)
                            && e.get("message").is_some_and(Value::is_string)
                    })
            }
        };
        if !ok {
            return Err(invalid_args(&format!(
                "{what}.{field} has the wrong type: {v}"
            )));
        }
    }
    Ok(())
}

/// A document without `_id` and `_creationTime`.
pub(super) fn without_system(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(object) = doc.as_object_mut() {
        object.retain(|k, _| !k.starts_with('_'));
    }
    doc
}

fn system_fields(doc: &Value) -> Map<String, Value> {
    doc.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn merge(doc: &mut Value, fields: Map<String, Value>) {
    if let Some(object) = doc.as_object_mut() {
        object.extend(fields);
    }
}

pub(super) fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a Value, FunctionError> {
    args.get(name)
        .ok_or_else(|| invalid_args(&format!("missing argument {name}")))
}

pub(super) fn text<'a>(args: &'a Value, name: &str) -> Result<&'a str, FunctionError> {
    arg(args, name)?
        .as_str()
        .ok_or_else(|| invalid_args(&format!("{name} must be a string")))
}

pub(super) fn nullable_text<'a>(
    args: &'a Value,
    name: &str,
) -> Result<Option<&'a str>, FunctionError> {
    match arg(args, name)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(invalid_args(&format!("{name} must be a string or null"))),
    }
}

pub(super) fn number(args: &Value, name: &str) -> Result<f64, FunctionError> {
    arg(args, name)?
        .as_f64()
        .ok_or_else(|| invalid_args(&format!("{name} must be a number")))
}

/// Clamps a caller's page size to 1..=MAX_PAGE, as `pageSize` in `server.ts`.
pub(super) fn page_size(limit: f64) -> usize {
    if !limit.is_finite() {
        return MAX_PAGE;
    }
    (limit.floor().max(1.0) as usize).min(MAX_PAGE)
}

pub(super) fn invalid_args(message: &str) -> FunctionError {
    FunctionError::message(format!("ArgumentValidationError: {message}"))
}
