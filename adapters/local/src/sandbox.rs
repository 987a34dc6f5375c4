//! One local sandbox: a directory on disk and the process groups started in it.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{
    AdapterError, AdapterResult, AgentProcess, CommandSpec, ExitStatus, FileReader, FileStat,
    FileTree, RelPath, Sandbox, SandboxDir, async_trait,
};
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::bwrap::Bubblewrap;
use crate::files;
use crate::marker::{self, Marker};
use crate::network::Handshake;
use crate::process::{self, ProcessGroup};

/// The name of the workspace directory inside a sandbox directory.
pub(crate) const WORKSPACE_DIR: &str = "workspace";
/// The name of the agent home directory inside a sandbox directory.
pub(crate) const HOME_DIR: &str = "home";

/// A sandbox of the local provider.
pub(crate) struct LocalSandbox {
    id: String,
    /// `{root}/{id}`, canonical because `root` is.
    dir: PathBuf,
    workspace: String,
    home: String,
    /// The spec's environment; empty for a handle from `open`, since it is never stored.
    env: BTreeMap<String, String>,
    bubblewrap: Option<Arc<Bubblewrap>>,
    terminate_grace: Duration,
    /// Serializes the read-modify-write of `sandbox.json` by spawn and terminate.
    marker_lock: Mutex<()>,
}

/// What a [`LocalSandbox`] is made from; the provider fills it in.
pub(crate) struct SandboxParts {
    pub id: String,
    pub root: PathBuf,
    pub env: BTreeMap<String, String>,
    pub bubblewrap: Option<Arc<Bubblewrap>>,
    pub terminate_grace: Duration,
}

impl LocalSandbox {
    /// A handle on the sandbox `{root}/{id}`; `root` must be canonical and UTF-8.
    pub fn new(parts: SandboxParts) -> AdapterResult<Self> {
        let dir = parts.root.join(&parts.id);
        let utf8 = |path: PathBuf| {
            path.into_os_string().into_string().map_err(|path| {
                AdapterError::invalid_input(format!("sandbox path {path:?} is not UTF-8"))
            })
        };
        Ok(LocalSandbox {
            workspace: utf8(dir.join(WORKSPACE_DIR))?,
            home: utf8(dir.join(HOME_DIR))?,
            id: parts.id,
            dir,
            env: parts.env,
            bubblewrap: parts.bubblewrap,
            terminate_grace: parts.terminate_grace,
            marker_lock: Mutex::new(()),
        })
    }

    /// The sandbox's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, dir: SandboxDir) -> PathBuf {
        PathBuf::from(match dir {
            SandboxDir::Workspace => &self.workspace,
            SandboxDir::AgentHome => &self.home,
        })
    }

    /// Loads the marker, which exists for exactly as long as the sandbox is live.
    async fn live_marker(&self) -> AdapterResult<Marker> {
        marker::read(&self.dir)
            .await?
            .ok_or_else(|| AdapterError::not_found(format!("sandbox {} was terminated", self.id)))
    }

    fn command(&self, program: &Path, spec: &CommandSpec) -> tokio::process::Command {
        let mut command = match &self.bubblewrap {
            None => {
                let mut command = tokio::process::Command::new(program);
                command.args(&spec.args);
                command
            }
            Some(bwrap) => {
                let mut command = tokio::process::Command::new(bwrap.program());
                let (workspace, home) = (Path::new(&self.workspace), Path::new(&self.home));
                command.args(bwrap.args(workspace, home, program, &spec.args));
                command
            }
        };
        command
            .env_clear()
            .envs(&self.env)
            .envs(&spec.env)
            .current_dir(&self.workspace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropping the handle must not kill the agent; terminate does, by group.
            .kill_on_drop(false);
        // Its own session, so it has no controlling terminal: a process that could open
        // the runtime's terminal could type into the operator's shell (TIOCSTI). A session
        // leader also leads its own group, so one signal reaches the process and all it
        // starts.
        // SAFETY: setsid is async-signal-safe and the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                rustix::process::setsid()?;
                Ok(())
            });
        }
        command
    }
}

#[async_trait]
impl Sandbox for LocalSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    fn workspace_path(&self) -> &str {
        &self.workspace
    }

    fn agent_home_path(&self) -> &str {
        &self.home
    }

    async fn write_files(&self, dir: SandboxDir, files: &FileTree) -> AdapterResult<()> {
        let (root, files) = (self.path_of(dir), files.clone());
        let access = files::Access::of(dir);
        blocking(move || files::write_tree(&root, &files, access)).await
    }

    async fn list_files(
        &self,
        dir: SandboxDir,
        max_entries: usize,
    ) -> AdapterResult<Vec<FileStat>> {
        let root = self.path_of(dir);
        blocking(move || files::list(&root, max_entries)).await
    }

    async fn read_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<Bytes> {
        let (root, path) = (self.path_of(dir), path.clone());
        blocking(move || files::read(&root, &path, max_bytes)).await
    }

    async fn open_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<FileReader> {
        let (root, path) = (self.path_of(dir), path.clone());
        let (file, size) = blocking(move || files::open(&root, &path, max_bytes)).await?;
        // The reader stops at the size seen at open, even if the file grows meanwhile.
        let reader = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), size);
        Ok(FileReader {
            size,
            reader: Box::pin(reader),
        })
    }

    async fn spawn(&self, spec: &CommandSpec) -> AdapterResult<AgentProcess> {
        let _guard = self.marker_lock.lock().await;
        let mut marker = self.live_marker().await?;
        let mut env = self.env.clone();
        env.extend(spec.env.clone());
        let program = process::resolve_program(&spec.program, &env, Path::new(&self.workspace))?;
        // Spawned here, on a runtime thread, never on a blocking-pool thread: bubblewrap's
        // --die-with-parent fires when the spawning *thread* exits, and idle blocking
        // threads do exit.
        let mut command = self.command(&program, spec);
        let handshake = match self.bubblewrap.as_ref().and_then(|bwrap| bwrap.slirp()) {
            Some(slirp) => {
                let handshake = Handshake::new()?;
                handshake.pass_to(&mut command);
                Some((handshake, slirp))
            }
            None => None,
        };
        let mut child = command.spawn().map_err(|error| {
            AdapterError::other(format!("starting `{}` failed", spec.program)).with_source(error)
        })?;
        let wrapped = self.bubblewrap.is_some();
        let group = child
            .id()
            .and_then(|pid| ProcessGroup::led_by(pid, wrapped));
        let group = group.ok_or_else(|| {
            AdapterError::other(format!("`{}` ended before it was recorded", spec.program))
        })?;
        marker.process_groups.retain(ProcessGroup::is_running);
        marker.process_groups.push(group);
        if let Err(error) = marker::write(&self.dir, &marker).await {
            // Unrecorded, it could outlive the sandbox; better not to run it at all.
            process::kill_groups(&[group], Duration::ZERO).await;
            return Err(error);
        }
        // The network comes before the program starts: bubblewrap waits for it.
        let network = match handshake {
            Some((handshake, slirp)) => match handshake.attach(slirp).await {
                Ok(attached) => Some(attached),
                Err(error) => {
                    process::kill_groups(&[group], Duration::ZERO).await;
                    let stderr = match child.wait_with_output().await {
                        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                        Err(_) => String::new(),
                    };
                    return Err(AdapterError::other(format!(
                        "{error}; bubblewrap said: {stderr}"
                    )));
                }
            },
            None => None,
        };
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
            return Err(AdapterError::other("a pipe of the process is missing"));
        };
        // A task reaps the process as soon as it ends, whether or not anyone awaits `exit`,
        // so terminate sees the group gone without waiting out its grace period.
        let (sender, receiver) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // The network lives as long as the process.
            let _network = network;
            let status = match child.wait().await {
                Ok(status) => process::exit_status(status),
                Err(error) => {
                    tracing::warn!(%error, "waiting for a sandbox process failed");
                    ExitStatus {
                        code: None,
                        signal: None,
                    }
                }
            };
            let _ = sender.send(status);
        });
        let exit = async move {
            receiver.await.unwrap_or(ExitStatus {
                code: None,
                signal: None,
            })
        };
        Ok(AgentProcess {
            stdin: Box::pin(stdin),
            stdout: Box::pin(stdout),
            stderr: Box::pin(stderr),
            exit: Box::pin(exit),
        })
    }

    async fn assign(&self, session_id: &str) -> AdapterResult<()> {
        crate::provider::check_session_id(session_id)?;
        let mut marker = self.live_marker().await?;
        marker.session_id = session_id.to_owned();
        marker::write(&self.dir, &marker).await
    }

    async fn terminate(&self) -> AdapterResult<()> {
        let _guard = self.marker_lock.lock().await;
        match marker::read(&self.dir).await {
            Ok(Some(marker)) => {
                process::kill_groups(&marker.process_groups, self.terminate_grace).await;
            }
            Ok(None) => {}
            // Its groups are unknown; the directory still goes.
            Err(error) => tracing::warn!(sandbox = %self.id, %error, "unreadable marker"),
        }
        // The marker goes first: from then on the sandbox is not listed, even if removing
        // the rest fails half way.
        marker::remove(&self.dir).await?;
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            Err(error) => Err(files::io_error(&self.dir, error)),
        }
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> AdapterResult<T> + Send + 'static,
) -> AdapterResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| AdapterError::other("file task failed").with_source(error))?
}
