//! Built-in handlers for `agentRuntime/apiKeys:*`, mirroring
//! `adapters/convex/convex/agentRuntime/apiKeys.ts` on the same table.

use serde_json::{Value, json};

use super::builtin::{Kind, arg, text, validate, without_system};
use super::{FakeConvex, FakeDb, FunctionError};

const KEYS: &str = "agentRuntimeApiKeys";

pub(super) fn register(fake: &FakeConvex) {
    let name = |f: &str| format!("agentRuntime/apiKeys:{f}");
    fake.on_mutation(&name("create"), create);
    fake.on_query(&name("byHash"), by_hash);
    fake.on_query(&name("list"), list);
    fake.on_mutation(&name("revoke"), revoke);
}

fn create(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let key = arg(&args, "key")?;
    use Kind::*;
    let fields = [
        ("name", Text),
        ("keyHash", Text),
        ("admin", Bool),
        ("quotas", Quotas),
        ("createdAt", Text),
    ];
    validate(key, &fields, "key")?;
    let (name, hash) = (text(key, "name")?, text(key, "keyHash")?);
    let taken = db
        .table(KEYS)
        .iter()
        .any(|k| k["name"] == name || k["keyHash"] == hash);
    if taken {
        return Err(FunctionError::code(
            "CONFLICT",
            format!("an API key named {name} or with the same hash exists"),
        ));
    }
    db.insert(KEYS, key.clone());
    Ok(Value::Null)
}

fn by_hash(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let hash = text(&args, "keyHash")?;
    Ok(db
        .table(KEYS)
        .iter()
        .find(|k| k["keyHash"] == hash)
        .map_or(Value::Null, without_system))
}

fn list(db: &mut FakeDb, _args: Value) -> Result<Value, FunctionError> {
    let mut keys: Vec<Value> = db.table(KEYS).iter().map(without_system).collect();
    keys.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(json!(keys))
}

fn revoke(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let name = text(&args, "name")?.to_owned();
    let before = db.table(KEYS).len();
    db.table_mut(KEYS).retain(|k| k["name"] != name.as_str());
    Ok(json!(db.table(KEYS).len() < before))
}
