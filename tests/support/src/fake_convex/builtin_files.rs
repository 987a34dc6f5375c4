//! Built-in handlers for `agentRuntime/blobs:*`, `agentRuntime/profiles:*` and
//! `agentRuntime/health:ping`, mirroring the TypeScript functions of the same names.

use serde_json::{Value, json};

use super::builtin::{arg, invalid_args, nullable_text, number, page_size, text, without_system};
use super::db::now_millis;
use super::{FakeConvex, FakeDb, FunctionError};

const BLOBS: &str = "agentRuntimeBlobs";
const PROFILES: &str = "agentRuntimeProfiles";
/// Blobs deleted per `removePrefix` call, as `DELETE_STEP` in `blobs.ts`.
const DELETE_STEP: usize = 256;

pub(super) fn register(fake: &FakeConvex) {
    let name = |f: &str| format!("agentRuntime/{f}");
    fake.on_mutation(&name("blobs:generateUploadUrl"), |db, _| {
        Ok(Value::String(db.generate_upload_url()))
    });
    fake.on_mutation(&name("blobs:commit"), commit);
    fake.on_query(&name("blobs:get"), get_blob);
    fake.on_query(&name("blobs:list"), list_blobs);
    fake.on_mutation(&name("blobs:remove"), remove_blob);
    fake.on_mutation(&name("blobs:removePrefix"), remove_prefix);
    fake.on_query(&name("profiles:list"), list_profiles);
    fake.on_query(&name("profiles:get"), get_profile);
    fake.on_mutation(&name("profiles:put"), put_profile);
    fake.on_mutation(&name("profiles:remove"), remove_profile);
    fake.on_query(&name("health:ping"), |_, _| Ok(Value::Null));
}

fn commit(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let key = text(&args, "key")?.to_owned();
    let storage_id = text(&args, "storageId")?.to_owned();
    let size = number(&args, "size")?;
    let Some(file) = db.file(&storage_id) else {
        return Err(FunctionError::code(
            "NOT_FOUND",
            format!("storage file {storage_id}"),
        ));
    };
    let stored = file.bytes.len() as f64;
    if stored != size {
        return Err(FunctionError::code(
            "INVALID_INPUT",
            format!("storage file {storage_id} holds {stored} bytes, not {size}"),
        ));
    }
    let fields =
        json!({"key": key, "storageId": storage_id, "size": size, "modifiedAt": now_millis()});
    match blob_at(db, &key) {
        None => {
            db.insert(BLOBS, fields);
        }
        Some(at) => {
            let old = db.table(BLOBS)[at]["storageId"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            if old != storage_id {
                db.delete_file(&old);
            }
            let doc = &mut db.table_mut(BLOBS)[at];
            for field in ["storageId", "size", "modifiedAt"] {
                doc[field] = fields[field].clone();
            }
        }
    }
    Ok(Value::Null)
}

fn get_blob(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let key = text(&args, "key")?;
    let Some(at) = blob_at(db, key) else {
        return Ok(Value::Null);
    };
    let doc = &db.table(BLOBS)[at];
    let storage_id = doc["storageId"].as_str().unwrap_or("");
    Ok(json!({
        "storageId": storage_id,
        "size": doc["size"],
        "modifiedAt": doc["modifiedAt"],
        "url": db.file_url(storage_id),
    }))
}

fn list_blobs(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let prefix = text(&args, "prefix")?;
    let after = nullable_text(&args, "after")?;
    let size = page_size(number(&args, "limit")?);
    let mut keys = under(db, prefix);
    keys.retain(|(key, _)| after.is_none_or(|a| key.as_str() > a));
    let is_done = keys.len() <= size;
    let blobs: Vec<Value> = keys
        .into_iter()
        .take(size)
        .map(|(_, at)| {
            let doc = &db.table(BLOBS)[at];
            json!({"key": doc["key"], "size": doc["size"], "modifiedAt": doc["modifiedAt"]})
        })
        .collect();
    Ok(json!({"blobs": blobs, "isDone": is_done}))
}

fn remove_blob(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let key = text(&args, "key")?.to_owned();
    if let Some(at) = blob_at(db, &key) {
        let doc = db.table_mut(BLOBS).remove(at);
        db.delete_file(doc["storageId"].as_str().unwrap_or(""));
    }
    Ok(Value::Null)
}

fn remove_prefix(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let prefix = text(&args, "prefix")?.to_owned();
    let keys: Vec<String> = under(db, &prefix).into_iter().map(|(key, _)| key).collect();
    for key in keys.iter().take(DELETE_STEP) {
        remove_blob(db, json!({"key": key}))?;
    }
    Ok(json!({"done": keys.len() <= DELETE_STEP}))
}

/// The keys under `prefix` with their positions, sorted by key.
fn under(db: &FakeDb, prefix: &str) -> Vec<(String, usize)> {
    let mut keys: Vec<(String, usize)> = db
        .table(BLOBS)
        .iter()
        .enumerate()
        .filter_map(|(at, d)| d["key"].as_str().map(|k| (k.to_owned(), at)))
        .filter(|(key, _)| key.starts_with(prefix))
        .collect();
    keys.sort();
    keys
}

fn blob_at(db: &FakeDb, key: &str) -> Option<usize> {
    db.table(BLOBS).iter().position(|d| d["key"] == key)
}

fn list_profiles(db: &mut FakeDb, _: Value) -> Result<Value, FunctionError> {
    let mut names: Vec<&str> = db
        .table(PROFILES)
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    Ok(json!(names))
}

fn get_profile(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let name = text(&args, "name")?;
    Ok(profile_at(db, name).map_or(Value::Null, |at| without_system(&db.table(PROFILES)[at])))
}

fn put_profile(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let profile = arg(&args, "profile")?.clone();
    let name = text(&profile, "name")?.to_owned();
    text(&profile, "manifest")?;
    let files = arg(&profile, "files")?
        .as_array()
        .ok_or_else(|| invalid_args("profile.files must be an array"))?;
    for file in files {
        text(file, "path")?;
        text(file, "contentBase64")?;
        if !arg(file, "executable")?.is_boolean() {
            return Err(invalid_args("profile file executable must be a boolean"));
        }
    }
    match profile_at(db, &name) {
        None => {
            db.insert(PROFILES, profile);
        }
        Some(at) => {
            let doc = &mut db.table_mut(PROFILES)[at];
            for field in ["name", "manifest", "files"] {
                doc[field] = profile[field].clone();
            }
        }
    }
    Ok(Value::Null)
}

fn remove_profile(db: &mut FakeDb, args: Value) -> Result<Value, FunctionError> {
    let name = text(&args, "name")?.to_owned();
    db.table_mut(PROFILES)
        .retain(|d| d["name"] != name.as_str());
    Ok(Value::Null)
}

fn profile_at(db: &FakeDb, name: &str) -> Option<usize> {
    db.table(PROFILES).iter().position(|d| d["name"] == name)
}
