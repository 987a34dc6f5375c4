use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{AdapterResult, RelPath};

/// A storage key. Built only from validated parts, so a key can never point outside the
/// session it belongs to.
///
/// Layout: `sessions/{id}/files/{path}` for workspace files and
/// `sessions/{id}/transcripts/{name}` for agent transcripts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Everything stored for a session.
    pub fn session(session_id: &RelPath) -> BlobKey {
        BlobKey(format!("sessions/{session_id}/"))
    }

    /// The prefix of a session's workspace files.
    pub fn files_prefix(session_id: &RelPath) -> BlobKey {
        BlobKey(format!("sessions/{session_id}/files/"))
    }

    /// One workspace file of a session.
    pub fn file(session_id: &RelPath, path: &RelPath) -> BlobKey {
        BlobKey(format!("sessions/{session_id}/files/{path}"))
    }

    /// The prefix of a session's agent transcripts.
    pub fn transcripts_prefix(session_id: &RelPath) -> BlobKey {
        BlobKey(format!("sessions/{session_id}/transcripts/"))
    }

    /// One agent transcript of a session.
    pub fn transcript(session_id: &RelPath, name: &RelPath) -> BlobKey {
        BlobKey(format!("sessions/{session_id}/transcripts/{name}"))
    }

    /// Parses a key read back from a backend; refuses anything a builder above could not
    /// have made (absolute, `..`, NUL, ...). A trailing `/` marks a prefix.
    pub fn parse(key: &str) -> Option<BlobKey> {
        let body = key.strip_suffix('/').unwrap_or(key);
        RelPath::new(body).ok().map(|_| BlobKey(key.to_owned()))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part of this key below `prefix`, if the key is under it.
    pub fn strip_prefix(&self, prefix: &BlobKey) -> Option<&str> {
        self.0.strip_prefix(prefix.as_str())
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`BlobStore::list`] says of one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The object's key.
    pub key: BlobKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified_at: DateTime<Utc>,
}

/// Workspace files and agent transcripts.
///
/// # Behavior
/// Each line is checked by one function of `contract::blob_store` (feature
/// `contract-tests`), in this order.
/// - `put` then `get` returns the same bytes; `put` on an existing key replaces it.
/// - `get` of a missing key returns `Ok(None)`.
/// - `list(prefix)` returns every object whose key starts with `prefix`, at any depth,
///   ordered by key; an empty prefix result is an empty list, not an error.
/// - `delete(key)` removes exactly that object, not others whose keys start with it;
///   deleting a missing key succeeds.
/// - `delete_prefix(prefix)` removes every object under `prefix` and nothing else;
///   deleting a prefix with nothing under it succeeds.
/// - Empty objects are stored and listed with size 0.
/// - `ping` succeeds when the backend answers.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> AdapterResult<()>;
    /// Returns the bytes under `key`.
    async fn get(&self, key: &BlobKey) -> AdapterResult<Option<Bytes>>;
    /// Lists the objects under `prefix`.
    async fn list(&self, prefix: &BlobKey) -> AdapterResult<Vec<BlobMeta>>;
    /// Removes one object.
    async fn delete(&self, key: &BlobKey) -> AdapterResult<()>;
    /// Removes every object under `prefix`.
    async fn delete_prefix(&self, prefix: &BlobKey) -> AdapterResult<()>;
    /// Checks that the backend answers.
    async fn ping(&self) -> AdapterResult<()>;
}
