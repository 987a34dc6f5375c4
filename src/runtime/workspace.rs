//! Workspace files and the agent transcript: what changed in a turn, and moving them
//! between a sandbox and the blob store.

use std::collections::BTreeMap;

use agent_runtime_api::{
    AdapterResult, BlobKey, BlobStore, ErrorKind, FileTree, RelPath, Sandbox, SandboxDir,
};
use chrono::{DateTime, Utc};

use super::Limits;
use super::payload::{Change, ErrorData, EventErrorCode, FileChange};
use crate::agent::AgentDriver;

/// What a directory held at one moment: size and modification time per file.
pub(crate) type Snapshot = BTreeMap<RelPath, (u64, DateTime<Utc>)>;

/// What the blob store holds of a workspace: per file, the size and time it had when it
/// was stored, and a hash of its content.
pub(crate) type Synced = BTreeMap<RelPath, SyncedFile>;

/// One file as last stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncedFile {
    state: (u64, DateTime<Utc>),
    hash: [u8; 32],
}

impl SyncedFile {
    /// A stored file known to differ from the sandbox's, whatever the sandbox holds.
    pub(crate) fn stale() -> SyncedFile {
        SyncedFile {
            state: (u64::MAX, DateTime::<Utc>::UNIX_EPOCH),
            hash: [0; 32],
        }
    }
}

fn content_hash(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The record of files just restored into a sandbox: what the store holds.
pub(crate) fn synced_from(restored: &FileTree, snapshot: &Snapshot) -> Synced {
    restored
        .files
        .iter()
        .filter_map(|file| {
            let state = *snapshot.get(&file.path)?;
            Some((
                file.path.clone(),
                SyncedFile {
                    state,
                    hash: content_hash(&file.contents),
                },
            ))
        })
        .collect()
}

/// Lists a sandbox's workspace as a [`Snapshot`]; one of more than `max_entries` files and
/// directories is `TooLarge`.
pub(crate) async fn snapshot(sandbox: &dyn Sandbox, max_entries: usize) -> AdapterResult<Snapshot> {
    Ok(sandbox
        .list_files(SandboxDir::Workspace, max_entries)
        .await?
        .into_iter()
        .map(|stat| (stat.path, (stat.size, stat.modified_at)))
        .collect())
}

/// The `file` events between two snapshots, ordered by path.
pub(crate) fn diff(before: &Snapshot, after: &Snapshot) -> Vec<FileChange> {
    let mut changes = Vec::new();
    for (path, (size, modified)) in after {
        let change = match before.get(path) {
            None => Change::Created,
            Some(old) if old != &(*size, *modified) => Change::Modified,
            Some(_) => continue,
        };
        changes.push(FileChange {
            change,
            path: path.clone(),
            size: Some(*size),
        });
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        changes.push(FileChange {
            change: Change::Deleted,
            path: path.clone(),
            size: None,
        });
    }
    changes.sort_by(|a, b| a.path.as_str().cmp(b.path.as_str()));
    changes
}

/// Why a workspace file is not in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SkipReason {
    /// The file is over `limits.file_bytes`.
    FileTooLarge,
    /// The files before it, in path order, already fill `limits.workspace_bytes`.
    WorkspaceFull,
}

/// A workspace file a sync left out, with its size then.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Skipped {
    pub(crate) path: RelPath,
    pub(crate) size: u64,
    pub(crate) reason: SkipReason,
}

impl Skipped {
    /// The `error` event that reports it.
    pub(crate) fn event(&self, limits: &Limits) -> ErrorData {
        let message = match self.reason {
            SkipReason::FileTooLarge => format!(
                "{} ({} bytes) is over the limit of {} bytes per file; it is not stored",
                self.path, self.size, limits.file_bytes
            ),
            SkipReason::WorkspaceFull => format!(
                "{} ({} bytes) does not fit in the limit of {} bytes per workspace; it is not stored",
                self.path, self.size, limits.workspace_bytes
            ),
        };
        ErrorData {
            path: Some(self.path.clone()),
            ..ErrorData::new(EventErrorCode::FileSkipped, message, false)
        }
    }
}

/// Copies workspace files that changed since `synced` to the blob store and removes the
/// ones that disappeared. A file whose size or time changed is read and hashed, and
/// uploaded only if its content differs from what is stored. `synced` is updated file by
/// file, so a failure part-way loses no progress and the next attempt redoes only what
/// is left.
///
/// Files are taken in path order while they fit `limits`: one over `file_bytes`, or one
/// that would take the workspace past `workspace_bytes`, is never read; it is left out
/// (its stored copy, if any, removed) and returned, so storage holds only files that fit.
pub(crate) async fn sync_workspace(
    sandbox: &dyn Sandbox,
    blobs: &dyn BlobStore,
    session: &RelPath,
    synced: &mut Synced,
    limits: &Limits,
) -> AdapterResult<Vec<Skipped>> {
    let mut current = snapshot(sandbox, limits.workspace_files).await?;
    let mut skipped = Vec::new();
    let mut total: u64 = 0;
    current.retain(|path, (size, _)| {
        let reason = if *size > limits.file_bytes {
            SkipReason::FileTooLarge
        } else if total.saturating_add(*size) > limits.workspace_bytes {
            SkipReason::WorkspaceFull
        } else {
            total += *size;
            return true;
        };
        skipped.push(Skipped {
            path: path.clone(),
            size: *size,
            reason,
        });
        false
    });
    for (path, state) in &current {
        let stored = synced.get(path);
        if stored.is_some_and(|file| file.state == *state) {
            continue;
        }
        let read = sandbox.read_file(SandboxDir::Workspace, path, limits.file_bytes);
        let bytes = match read.await {
            Ok(bytes) => bytes,
            // Not a regular file any more, a symlink out of the sandbox, or grown past the
            // limit since the listing: not synced this time.
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::TooLarge
                ) =>
            {
                tracing::warn!(%path, %error, "a workspace file is left out of the sync");
                continue;
            }
            Err(error) => return Err(error),
        };
        let hash = content_hash(&bytes);
        if stored.is_none_or(|file| file.hash != hash) {
            match blobs.put(&BlobKey::file(session, path), bytes).await {
                Ok(()) => {}
                // One file the store refuses must not hold back every other file.
                Err(error) if error.kind() == ErrorKind::InvalidInput => {
                    tracing::warn!(%path, %error, "the blob store refused a workspace file");
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        synced.insert(
            path.clone(),
            SyncedFile {
                state: *state,
                hash,
            },
        );
    }
    let gone: Vec<RelPath> = synced
        .keys()
        .filter(|p| !current.contains_key(*p))
        .cloned()
        .collect();
    for path in gone {
        blobs.delete(&BlobKey::file(session, &path)).await?;
        synced.remove(&path);
    }
    Ok(skipped)
}

/// The name under which a session's transcript is stored: the runtime's own name (the
/// conversation id), whatever the agent calls the file in its home, which only the
/// driver knows (`AgentDriver::find_transcript`, `AgentDriver::prepare`).
fn transcript_name(agent_session_id: &str) -> Option<RelPath> {
    RelPath::new(&format!("{agent_session_id}.jsonl")).ok()
}

/// Copies the agent's transcript from the sandbox to the blob store, if it wrote one of
/// at most `limits.workspace_bytes`. Call it after the agent process exited: an agent may
/// write the file lazily.
pub(crate) async fn sync_transcript(
    agent: &dyn AgentDriver,
    sandbox: &dyn Sandbox,
    blobs: &dyn BlobStore,
    session: &RelPath,
    agent_session_id: &str,
    limits: &Limits,
) -> AdapterResult<bool> {
    match read_transcript(agent, sandbox, agent_session_id, limits).await {
        Ok(Some(bytes)) => {
            put_transcript(blobs, session, agent_session_id, bytes).await?;
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(error) if error.kind() == ErrorKind::TooLarge => {
            tracing::warn!(%error, "the agent's transcript is too large to store");
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Stores `bytes` as the transcript of conversation `agent_session_id` of a session.
pub(crate) async fn put_transcript(
    blobs: &dyn BlobStore,
    session: &RelPath,
    agent_session_id: &str,
    bytes: bytes::Bytes,
) -> AdapterResult<()> {
    match transcript_name(agent_session_id) {
        Some(name) => blobs.put(&BlobKey::transcript(session, &name), bytes).await,
        None => Ok(()),
    }
}

/// The agent's transcript of conversation `agent_session_id` as the sandbox holds it
/// now, if the agent wrote one; `TooLarge` if it is over `limits.workspace_bytes`.
pub(crate) async fn read_transcript(
    agent: &dyn AgentDriver,
    sandbox: &dyn Sandbox,
    agent_session_id: &str,
    limits: &Limits,
) -> AdapterResult<Option<bytes::Bytes>> {
    let max_bytes = limits.workspace_bytes;
    let home = sandbox
        .list_files(SandboxDir::AgentHome, limits.workspace_files)
        .await?;
    let Some(found) = agent.find_transcript(&home, agent_session_id) else {
        return Ok(None);
    };
    let read = sandbox.read_file(SandboxDir::AgentHome, &found.path, max_bytes);
    Ok(Some(read.await?))
}

/// Copies what the blob store holds of session `from` to session `to`: every workspace
/// file, and the transcript of the first of `conversations` it holds one of. Returns
/// that conversation's id, or `None` when it holds none of them.
pub(crate) async fn copy_stored(
    blobs: &dyn BlobStore,
    from: &RelPath,
    to: &RelPath,
    conversations: &[&str],
) -> AdapterResult<Option<String>> {
    let files = restore_workspace(blobs, from).await?;
    for file in files.files {
        blobs
            .put(&BlobKey::file(to, &file.path), file.contents)
            .await?;
    }
    for conversation in conversations {
        if let Some(bytes) = restore_transcript(blobs, from, conversation).await? {
            put_transcript(blobs, to, conversation, bytes).await?;
            return Ok(Some((*conversation).to_owned()));
        }
    }
    Ok(None)
}

/// The workspace files stored for a session, and the snapshot-free list of their paths.
pub(crate) async fn restore_workspace(
    blobs: &dyn BlobStore,
    session: &RelPath,
) -> AdapterResult<FileTree> {
    let prefix = BlobKey::files_prefix(session);
    let mut tree = FileTree::default();
    for meta in blobs.list(&prefix).await? {
        let Some(path) = meta
            .key
            .strip_prefix(&prefix)
            .and_then(|p| RelPath::new(p).ok())
        else {
            continue;
        };
        if let Some(bytes) = blobs.get(&meta.key).await? {
            tree.insert(path, bytes);
        }
    }
    Ok(tree)
}

/// The stored transcript of a session's agent conversation, if any.
pub(crate) async fn restore_transcript(
    blobs: &dyn BlobStore,
    session: &RelPath,
    agent_session_id: &str,
) -> AdapterResult<Option<bytes::Bytes>> {
    match transcript_name(agent_session_id) {
        Some(name) => blobs.get(&BlobKey::transcript(session, &name)).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn diff_reports_created_modified_and_deleted_files() {
        let p = |s: &str| RelPath::new(s).unwrap();
        let before = Snapshot::from([
            (p("a"), (1, at(1))),
            (p("b"), (2, at(1))),
            (p("c"), (3, at(1))),
        ]);
        let after = Snapshot::from([
            (p("a"), (1, at(1))),
            (p("b"), (2, at(2))),
            (p("d"), (4, at(1))),
        ]);
        let changes = diff(&before, &after);
        assert_eq!(
            serde_json::to_string(&changes).unwrap(),
            r#"[{"change":"modified","path":"b","size":2},{"change":"deleted","path":"c"},{"change":"created","path":"d","size":4}]"#
        );
    }
}
