//! `sandbox.json`: what a restarted runtime needs to find and reap a sandbox.

use std::io::ErrorKind;
use std::path::Path;

use agent_runtime_api::{AdapterError, AdapterResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::process::ProcessGroup;

/// The marker's file name inside a sandbox directory.
pub(crate) const MARKER_FILE: &str = "sandbox.json";

/// The contents of `sandbox.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Marker {
    /// The session the sandbox serves.
    pub session_id: String,
    /// The runtime instance that created it.
    pub owner_tag: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// How its processes were isolated, in words.
    #[serde(default)]
    pub isolation: String,
    /// Every process group started in it that may still be running.
    #[serde(default)]
    pub process_groups: Vec<ProcessGroup>,
}

/// Reads the marker of the sandbox in `dir`; `None` when there is none.
pub(crate) async fn read(dir: &Path) -> AdapterResult<Option<Marker>> {
    let path = dir.join(MARKER_FILE);
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        // A directory that vanished, or a marker path that is not a plain file.
        Err(error) if error.kind() == ErrorKind::NotADirectory => return Ok(None),
        Err(error) => {
            return Err(
                AdapterError::other(format!("reading {}", path.display())).with_source(error)
            );
        }
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|error| {
        AdapterError::other(format!("{} is not a sandbox marker", path.display()))
            .with_source(error)
    })
}

/// Writes the marker of the sandbox in `dir`, replacing it in one step so a crash never
/// leaves half a file.
pub(crate) async fn write(dir: &Path, marker: &Marker) -> AdapterResult<()> {
    let path = dir.join(MARKER_FILE);
    let temporary = dir.join(format!("{MARKER_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(marker)
        .map_err(|error| AdapterError::other("encoding the sandbox marker").with_source(error))?;
    let written = async {
        tokio::fs::write(&temporary, &bytes).await?;
        tokio::fs::rename(&temporary, &path).await
    };
    written.await.map_err(|error| {
        AdapterError::other(format!("writing {}", path.display())).with_source(error)
    })
}

/// Removes the marker, so the sandbox is no longer listed; a missing marker is fine.
pub(crate) async fn remove(dir: &Path) -> AdapterResult<()> {
    let path = dir.join(MARKER_FILE);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => {
            Err(AdapterError::other(format!("removing {}", path.display())).with_source(error))
        }
    }
}
