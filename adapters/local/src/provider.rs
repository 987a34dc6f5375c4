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

use crate::bwrap::{self, Bubblewrap, BubblewrapParts, Relay};
use crate::files::io_error;
use crate::marker::{self, Marker};
use crate::network::{self, Slirp};
use crate::relay;
use crate::sandbox::{HOME_DIR, LocalSandbox, SandboxParts, WORKSPACE_DIR};
use crate::{Isolation, LocalSandboxConfig, Network};

/// The directory below the root for what all sandboxes share: relay sockets, the private
/// network's `resolv.conf`. Its dot keeps it apart from sandbox directories.
const SHARED_DIR: &str = ".shared";

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
    /// How sandboxes are isolated, in words for logs and `sandbox.json`.
    summary: String,
    bubblewrap: Option<Arc<Bubblewrap>>,
    /// Host services to relay into sandboxes, and the sockets they are relayed through.
    host_services: Vec<Relay>,
    /// Whether the relays of `host_services` listen yet (they start with the first create,
    /// which runs on the async runtime).
    relays_started: std::sync::OnceLock<Result<(), String>>,
    terminate_grace: Duration,
}

impl LocalSandboxProvider {
    /// Creates the root directory if missing and, with bubblewrap, checks that `bwrap`
    /// works on this host. Blocks while it does so; call it at startup.
    pub fn new(config: LocalSandboxConfig) -> AdapterResult<Self> {
        std::fs::create_dir_all(&config.root).map_err(|error| {
            AdapterError::other(format!(
                "creating the sandbox root {}",
                config.root.display()
            ))
            .with_source(error)
        })?;
        let root = std::fs::canonicalize(&config.root).map_err(|e| io_error(&config.root, e))?;
        if root.to_str().is_none() {
            return Err(AdapterError::invalid_input(format!(
                "the sandbox root {} is not a UTF-8 path",
                root.display()
            )));
        }
        let shared = root.join(SHARED_DIR);
        let (bubblewrap, summary, host_services) = match config.isolation {
            Isolation::DangerouslyNone => {
                let summary = "none (agents can read everything the runtime can and reach \
                               every service on this host)";
                tracing::warn!(
                    "local sandboxes are NOT isolated: isolation = \"dangerously-none\""
                );
                (None, summary.to_owned(), Vec::new())
            }
            Isolation::Auto | Isolation::Bubblewrap if root == Path::new("/") => {
                return Err(AdapterError::invalid_input(
                    "the sandbox root cannot be / with bubblewrap, which hides the root \
                     from sandboxed processes",
                ));
            }
            Isolation::Auto | Isolation::Bubblewrap => {
                let (bubblewrap, summary, host_services) = isolate(&config, &shared)?;
                (Some(Arc::new(bubblewrap)), summary, host_services)
            }
        };
        if bubblewrap.is_some() {
            tracing::info!(isolation = %summary, "local sandboxes are isolated");
        }
        Ok(LocalSandboxProvider {
            root,
            summary,
            bubblewrap,
            host_services,
            relays_started: std::sync::OnceLock::new(),
            terminate_grace: config.terminate_grace,
        })
    }

    /// How sandboxes are isolated, in words.
    pub fn isolation_summary(&self) -> &str {
        &self.summary
    }

    /// Whether sandboxes get a network of their own, without the host's loopback.
    pub fn has_private_network(&self) -> bool {
        self.bubblewrap
            .as_ref()
            .is_some_and(|bwrap| bwrap.slirp().is_some())
    }

    /// Starts the relays of the host services, once.
    fn start_relays(&self) -> AdapterResult<()> {
        let started = self.relays_started.get_or_init(|| {
            self.host_services
                .iter()
                .try_for_each(|service| relay::serve(&service.socket, service.address))
                .map_err(|error| error.to_string())
        });
        started
            .clone()
            .map_err(|error| AdapterError::other(format!("relaying host services: {error}")))
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
            isolation: self.summary.clone(),
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
        self.start_relays()?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{}-{}", spec.session_id, &suffix[..8]);
        let sandbox = self.handle(id, spec.env.clone())?;
        tokio::fs::create_dir(sandbox.dir())
            .await
            .map_err(|error| match error.kind() {
                ErrorKind::AlreadyExists => AdapterError::conflict(format!(
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
        let unknown = || AdapterError::not_found(format!("no sandbox with id {id:?}"));
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
pub(crate) fn check_session_id(session_id: &str) -> AdapterResult<()> {
    let refuse = |reason: &str| {
        Err(AdapterError::invalid_input(format!(
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

/// Checks bubblewrap (and slirp4netns for a private network) and prepares what every
/// sandbox gets: read-only paths, `resolv.conf`, relays.
fn isolate(
    config: &LocalSandboxConfig,
    shared: &Path,
) -> AdapterResult<(Bubblewrap, String, Vec<Relay>)> {
    let program = bwrap::find()?;
    let slirp = match config.network {
        Network::Host => None,
        Network::Private => Some(Slirp::find().ok_or_else(|| {
            AdapterError::invalid_input(
                "network = \"private\" needs `slirp4netns`, which is not on PATH; install it \
                 (`apt-get install slirp4netns` on Debian and Ubuntu)",
            )
        })?),
        Network::Auto => {
            let found = Slirp::find();
            if found.is_none() {
                tracing::warn!(
                    "slirp4netns is not installed: sandboxes share the host's network and can \
                     reach every service on its loopback, the runtime's API included; install \
                     slirp4netns for a private network"
                );
            }
            found
        }
    };
    let mut read_only = Vec::new();
    for path in &config.read_only_paths {
        let canonical = std::fs::canonicalize(path).map_err(|error| {
            AdapterError::invalid_input(format!("read_only_paths: {}", path.display()))
                .with_source(error)
        })?;
        if !read_only.contains(&canonical) {
            read_only.push(canonical);
        }
    }
    let mut relays = Vec::new();
    let mut host_services = Vec::new();
    let mut resolv_conf = None;
    if slirp.is_some() {
        std::fs::create_dir_all(shared).map_err(|error| io_error(shared, error))?;
        let path = shared.join("resolv.conf");
        std::fs::write(&path, network::RESOLV_CONF).map_err(|error| io_error(&path, error))?;
        resolv_conf = Some(path);
        for service in &config.host_services {
            if !service.ip().is_loopback() {
                return Err(AdapterError::invalid_input(format!(
                    "host_services: {service} is not a loopback address; sandboxes reach other \
                     addresses through their network"
                )));
            }
            let relay = Relay {
                address: *service,
                socket: relay::socket_path(shared, *service),
            };
            relays.push(relay.clone());
            host_services.push(relay);
        }
        if let Some(link) = &config.runtime_link {
            relays.push(Relay {
                address: link.address,
                socket: link.socket.clone(),
            });
        }
        if !relays.is_empty() && config.init_program.is_none() {
            return Err(AdapterError::invalid_input(
                "relaying host services into sandboxes needs the sandbox init program",
            ));
        }
    }
    let summary = match &slirp {
        Some(slirp) => format!(
            "bubblewrap, private network through {}",
            slirp.program().display()
        ),
        None => "bubblewrap, host network (the host's loopback is reachable)".to_owned(),
    };
    let bubblewrap = Bubblewrap::new(
        program,
        BubblewrapParts {
            read_only,
            slirp,
            resolv_conf,
            init: config.init_program.clone(),
            relays,
        },
    );
    Ok((bubblewrap, summary, host_services))
}
