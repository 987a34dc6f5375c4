//! The fake deployment's data: tables of JSON documents and file storage.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Map, Value};

/// What a function handler sees: the tables and the file storage of the fake deployment.
///
/// Documents are JSON objects with Convex's system fields `_id` and `_creationTime`.
/// A mutation runs on a copy that is kept only when the handler succeeds, so a handler
/// that fails changes nothing, as in Convex.
#[derive(Debug, Clone, Default)]
pub struct FakeDb {
    tables: BTreeMap<String, Vec<Value>>,
    files: BTreeMap<String, StoredFile>,
    /// Upload tokens handed out and not used yet.
    upload_tokens: Vec<String>,
    /// `http://127.0.0.1:<port>`, for the URLs handed out.
    base_url: String,
    next_id: u64,
}

/// One file in the fake's storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Its id, as `ctx.storage` and the `_storage` table know it.
    pub storage_id: String,
    /// The last part of its download URL, `/api/storage/<uuid>`.
    pub uuid: String,
    /// Its bytes.
    pub bytes: Bytes,
    /// The `Content-Type` it was uploaded with.
    pub content_type: String,
}

impl FakeDb {
    pub(super) fn new(base_url: String) -> Self {
        FakeDb {
            base_url,
            ..FakeDb::default()
        }
    }

    /// The documents of `table`, in insertion order (empty for an unknown table).
    pub fn table(&self, table: &str) -> &[Value] {
        self.tables.get(table).map_or(&[], Vec::as_slice)
    }

    /// The documents of `table`, to change or remove in place.
    pub fn table_mut(&mut self, table: &str) -> &mut Vec<Value> {
        self.tables.entry(table.to_owned()).or_default()
    }

    /// Inserts `fields` (an object) into `table` with fresh system fields; returns its `_id`.
    pub fn insert(&mut self, table: &str, fields: Value) -> String {
        let id = self.fresh_id(table);
        let mut document = Map::new();
        document.insert("_id".into(), Value::String(id.clone()));
        document.insert("_creationTime".into(), Value::from(now_millis()));
        if let Value::Object(fields) = fields {
            document.extend(fields);
        }
        self.table_mut(table).push(Value::Object(document));
        id
    }

    /// Every table name with at least one document ever inserted.
    pub fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    /// An upload URL as `ctx.storage.generateUploadUrl()` returns it; usable once.
    pub fn generate_upload_url(&mut self) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.upload_tokens.push(token.clone());
        format!("{}/api/storage/upload?token={token}", self.base_url)
    }

    /// Takes an upload token; false when it was never handed out or already used.
    pub(super) fn take_upload_token(&mut self, token: &str) -> bool {
        let before = self.upload_tokens.len();
        self.upload_tokens.retain(|t| t != token);
        self.upload_tokens.len() != before
    }

    /// Stores a file as an upload does; returns its storage id.
    pub fn store_file(&mut self, bytes: Bytes, content_type: &str) -> String {
        let storage_id = self.fresh_id("_storage");
        let file = StoredFile {
            storage_id: storage_id.clone(),
            uuid: uuid::Uuid::new_v4().to_string(),
            bytes,
            content_type: content_type.to_owned(),
        };
        self.files.insert(storage_id.clone(), file);
        storage_id
    }

    /// The file with this storage id.
    pub fn file(&self, storage_id: &str) -> Option<&StoredFile> {
        self.files.get(storage_id)
    }

    /// The file a download URL's uuid names.
    pub fn file_by_uuid(&self, uuid: &str) -> Option<&StoredFile> {
        self.files.values().find(|f| f.uuid == uuid)
    }

    /// Every stored file, by storage id.
    pub fn files(&self) -> impl Iterator<Item = &StoredFile> {
        self.files.values()
    }

    /// Deletes a file, as `ctx.storage.delete` does; a missing one is fine.
    pub fn delete_file(&mut self, storage_id: &str) {
        self.files.remove(storage_id);
    }

    /// The download URL of a file, as `ctx.storage.getUrl` returns it, or `None`.
    pub fn file_url(&self, storage_id: &str) -> Option<String> {
        let file = self.files.get(storage_id)?;
        Some(format!("{}/api/storage/{}", self.base_url, file.uuid))
    }

    /// Ids unique per deployment; the table number keeps them distinct across tables.
    fn fresh_id(&mut self, table: &str) -> String {
        self.next_id += 1;
        let table_tag = table.bytes().fold(0u32, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(u32::from(b))
        });
        format!("k{:08x}{:016x}", table_tag, self.next_id)
    }
}

/// Milliseconds since the epoch as a float64, like `Date.now()` and `_creationTime`.
pub(super) fn now_millis() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}
