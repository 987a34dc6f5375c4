//! The provider: makes, lists and reopens sandbox directories below one root.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{
    AdapterError, AdapterResult, RelPath, Sandbox, SandboxDir, SandboxInfo, SandboxProvider,
    SandboxSpec, async_trait,
};
use chrono::Utc;

use crate::bwrap::Bubblewrap;
use crate::files::io_error;
use crate::marker::{self, Marker};
use crate::sandbox::{HOME_DIR, LocalSandbox, SandboxParts, WORKSPACE_DIR};
use crate::{Isolation, LocalSandboxConfig};

/// The longest session id accepted: a sandbox id adds 9 bytes, and a file name may hold 255.
const MAX_SESSION_ID_BYTES: usize = 200;

/// Runs sandboxes as local processes, each in its own directory below a root.
///
/// Made by [`crate::build`] or [`LocalSandboxProvider::new`]. Several providers (of one
/// runtime run, or of a restarted one) may share a root: everything they know about a
/// sandbox is in its directory.
#[derive(Debug)]
pub struct LocalSandboxProvider {
    /// Canonical, so the paths handed to processes and path checks are absolute and final.
    root: PathBuf,
    isolation: Isolation,
    bubblewrap: Option<Arc<Bubblewrap>>,
    terminate_grace: Duration,
}

impl LocalSandboxProvider {
    /// Creates the root directory if missing and, with bubblewrap, checks that `bwrap`
    /// works on this host. Blocks while it does so; call it at startup.
    pub fn new(config: LocalSandboxConfig) -> AdapterResult<Self> {
        std::fs::create_dir_all(&config.root).map_err(|error| {
            AdapterError::Other(format!(
                "creating the sandbox root {}: {error}",
                config.root.display()
            ))
        })?;
        let root = std::fs::canonicalize(&config.root).map_err(|e| io_error(&config.root, e))?;
        if root.to_str().is_none() {
            return Err(AdapterError::InvalidInput(format!(
                "the sandbox root {} is not a UTF-8 path",
                root.display()
            )));
        }
        let bubblewrap = match config.isolation {
            Isolation::None => None,
            Isolation::Bubblewrap if root == Path::new("/") => {
                return Err(AdapterError::InvalidInput(
                    "the sandbox root cannot be / with bubblewrap, which hides the root \
                     from sandboxed processes"
                        .into(),
                ));
            }
            Isolation::Bubblewrap => Some(Arc::new(Bubblewrap::check()?)),
        };
        Ok(LocalSandboxProvider {
            root,
            isolation: config.isolation,
            bubblewrap,
            terminate_grace: config.terminate_grace,
        })
    }

    /// The canonical directory that holds the sandboxes.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn handle(&self, id: String, env: BTreeMap<String, String>) -> AdapterResult<LocalSandbox> {
        LocalSandbox::new(SandboxParts {
            id,
            root: self.root.clone(),
            env,
            bubblewrap: self.bubblewrap.clone(),
            terminate_grace: self.terminate_grace,
        })
    }

    /// Makes the directories and the marker, then places the spec's files.
    async fn populate(&self, sandbox: &LocalSandbox, spec: &SandboxSpec) -> AdapterResult<()> {
        let dir = sandbox.dir();
        for sub in [WORKSPACE_DIR, HOME_DIR] {
            let path = dir.join(sub);
            tokio::fs::create_dir(&path)
                .await
                .map_err(|error| io_error(&path, error))?;
        }
        // The marker comes before any file, so a crash from here on leaves a sandbox that
        // list_owned reports and the next run reaps.
        let record = Marker {
            session_id: spec.session_id.clone(),
            owner_tag: spec.owner_tag.clone(),
            created_at: Utc::now(),
            isolation: self.isolation,
            process_groups: Vec::new(),
        };
        marker::write(dir, &record).await?;
        sandbox
            .write_files(SandboxDir::Workspace, &spec.workspace)
            .await?;
        sandbox
            .write_files(SandboxDir::AgentHome, &spec.agent_home)
            .await
    }
}

#[async_trait]
impl SandboxProvider for LocalSandboxProvider {
    async fn create(&self, spec: &SandboxSpec) -> AdapterResult<Box<dyn Sandbox>> {
        check_session_id(&spec.session_id)?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{}-{}", spec.session_id, &suffix[..8]);
        let sandbox = self.handle(id, spec.env.clone())?;
        tokio::fs::create_dir(sandbox.dir())
            .await
            .map_err(|error| match error.kind() {
                ErrorKind::AlreadyExists => AdapterError::Conflict(format!(
                    "sandbox directory {} exists already",
                    sandbox.dir().display()
                )),
                _ => io_error(sandbox.dir(), error),
            })?;
        if let Err(error) = self.populate(&sandbox, spec).await {
            if let Err(cleanup) = sandbox.terminate().await {
                tracing::warn!(%cleanup, "removing a half-made sandbox failed");
            }
            return Err(error);
        }
        tracing::debug!(sandbox = sandbox.id(), "sandbox created");
        Ok(Box::new(sandbox))
    }

    async fn list_owned(&self, owner_tag: &str) -> AdapterResult<Vec<SandboxInfo>> {
        let mut entries = match tokio::fs::read_dir(&self.root).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error(&self.root, error)),
        };
        let mut owned = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|error| io_error(&self.root, error))?
        {
            let Ok(id) = entry.file_name().into_string() else {
                continue;
            };
            match marker::read(&entry.path()).await {
                Ok(Some(found)) if found.owner_tag == owner_tag => owned.push(SandboxInfo {
                    id,
                    session_id: found.session_id,
                }),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "skipping a sandbox with a bad marker"),
            }
        }
        owned.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(owned)
    }

    async fn open(&self, id: &str) -> AdapterResult<Box<dyn Sandbox>> {
        let unknown = || AdapterError::NotFound(format!("no sandbox with id {id:?}"));
        // An id that is not one plain path component cannot name a sandbox directory.
        if id.contains('/') || RelPath::new(id).is_err() {
            return Err(unknown());
        }
        let sandbox = self.handle(id.to_owned(), BTreeMap::new())?;
        let is_dir = tokio::fs::symlink_metadata(sandbox.dir())
            .await
            .is_ok_and(|meta| meta.is_dir());
        if !is_dir || marker::read(sandbox.dir()).await?.is_none() {
            return Err(unknown());
        }
        Ok(Box::new(sandbox))
    }
}

/// A session id names a directory, so it must be one plain path component.
fn check_session_id(session_id: &str) -> AdapterResult<()> {
    let refuse = |reason: &str| {
        Err(AdapterError::InvalidInput(format!(
            "session id {:?} cannot name a sandbox: {reason}",
            session_id.replace('\0', "\\0")
        )))
    };
    if let Err(error) = RelPath::new(session_id) {
        return refuse(error.reason);
    }
    if session_id.contains('/') {
        return refuse("contains a /");
    }
    if session_id.len() > MAX_SESSION_ID_BYTES {
        return refuse("longer than 200 bytes");
    }
    if session_id.starts_with('.') {
        // Hidden names are left to temporary files and the like.
        return refuse("starts with a dot");
    }
    Ok(())
}
