use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{AdapterResult, FileTree, RelPath};

/// What a new sandbox is made of.
#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    /// The session the sandbox serves; also used as a tag to find it again.
    pub session_id: String,
    /// Identifies the runtime instance that owns the sandbox, so orphans can be found.
    pub owner_tag: String,
    /// The agent profile the session runs (its agent type); empty when the sandbox is
    /// made for no profile in particular. Providers need not use it: a warm pool keeps
    /// sandboxes per profile by it.
    pub profile: String,
    /// Files placed in the workspace before anything runs.
    pub workspace: FileTree,
    /// Files placed in the agent's home (its config directory) before anything runs.
    pub agent_home: FileTree,
    /// The only environment variables the sandbox's processes get, besides the
    /// command's own.
    pub env: BTreeMap<String, String>,
}

/// The two directories of a sandbox that the runtime reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SandboxDir {
    /// The agent's working directory: the files a session works on.
    Workspace,
    /// The agent's own state (Claude Code's `CLAUDE_CONFIG_DIR`): transcripts, settings.
    AgentHome,
}

/// A file as [`Sandbox::list_files`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// Relative to the listed directory.
    pub path: RelPath,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub modified_at: DateTime<Utc>,
}

/// A file opened by [`Sandbox::open_file`].
pub struct FileReader {
    /// The file's size when it was opened; the reader gives at most this many bytes.
    pub size: u64,
    /// The file's bytes.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A process to start inside a sandbox.
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    /// The program: a name looked up on the sandbox's PATH, or a path.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables added to the sandbox's own for this process.
    pub env: BTreeMap<String, String>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code, when the process exited on its own.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// Whether the process exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "killed by signal {signal}"),
            (None, None) => f.write_str("unknown exit"),
        }
    }
}

/// A running process inside a sandbox: its pipes and the future of its exit.
pub struct AgentProcess {
    /// The process's standard input.
    pub stdin: Pin<Box<dyn AsyncWrite + Send>>,
    /// The process's standard output.
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// The process's standard error.
    pub stderr: Pin<Box<dyn AsyncRead + Send>>,
    /// Resolves once the process has ended.
    pub exit: Pin<Box<dyn Future<Output = ExitStatus> + Send>>,
}

impl std::fmt::Debug for AgentProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentProcess").finish_non_exhaustive()
    }
}

/// A sandbox known to a provider, as [`SandboxProvider::list_owned`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInfo {
    /// The provider's id of the sandbox.
    pub id: String,
    /// The session it was made for.
    pub session_id: String,
}

/// A place where one session's agent runs.
///
/// # Behavior
/// Each line but the one on files outside the directory (which each provider tests its
/// own way) is checked by one function of `contract::sandbox` (feature `contract-tests`),
/// in this order, followed by those of [`SandboxProvider`].
/// - `write_files` creates parent directories and replaces existing files.
/// - `write_batch` leaves the directories as `write_files` of each of its writes, in
///   order, would.
/// - Files written to [`SandboxDir::AgentHome`] are readable only by their owner (mode
///   0600, and 0700 for the directory): it holds the token of the runtime's tools.
/// - `list_files` lists regular files under the directory, recursively, ordered by path;
///   an empty directory gives an empty list. A directory holding more than `max_entries`
///   files is `TooLarge` (a provider may count directories too), found without listing
///   more than that: a sandbox of millions of files costs the runtime bounded memory.
/// - `read_file` returns the bytes of a regular file; a missing file is `NotFound`, one of
///   more than `max_bytes` is `TooLarge`, found without holding more than `max_bytes + 1`
///   bytes of it.
/// - `open_file` is `read_file` as a stream: the same errors, before it returns, and a
///   reader of at most `max_bytes`. The provided method reads the file whole first;
///   providers that can stream override it.
/// - Whatever the sandbox's processes do (symlinks, renames while the runtime reads),
///   `write_files`, `list_files`, `read_file` and `open_file` never touch a file outside the
///   directory.
/// - `spawn` starts a process with the workspace as its working directory and only the
///   spec's and the command's environment variables.
/// - A spawned process's stdout carries what it prints, in order, its stderr is separate,
///   its stdin reaches it, and `exit` resolves with its status when it ends.
/// - `terminate` kills every process of the sandbox and releases it; it is idempotent.
///   After it, a spawned process's `exit` resolves.
/// - `workspace_path` and `agent_home_path` are absolute paths as processes inside the
///   sandbox see them.
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// The provider's id of this sandbox.
    fn id(&self) -> &str;
    /// The working directory, as the sandbox's processes see it.
    fn workspace_path(&self) -> &str;
    /// The agent's home directory, as the sandbox's processes see it.
    fn agent_home_path(&self) -> &str;
    /// Writes files below `dir`.
    async fn write_files(&self, dir: SandboxDir, files: &FileTree) -> AdapterResult<()>;
    /// Writes files below several directories, in order, as `write_files` of each would.
    /// The provided method does just that; a provider whose every write is a round trip
    /// (a remote sandbox) overrides it to make them one.
    async fn write_batch(&self, writes: &[(SandboxDir, &FileTree)]) -> AdapterResult<()> {
        for (dir, files) in writes {
            self.write_files(*dir, files).await?;
        }
        Ok(())
    }
    /// Lists the files below `dir`, if there are at most `max_entries`.
    async fn list_files(&self, dir: SandboxDir, max_entries: usize)
    -> AdapterResult<Vec<FileStat>>;
    /// Reads one file below `dir` of at most `max_bytes`.
    async fn read_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<Bytes>;
    /// Opens one file below `dir` of at most `max_bytes` for reading as a stream.
    async fn open_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<FileReader> {
        let bytes = self.read_file(dir, path, max_bytes).await?;
        Ok(FileReader {
            size: bytes.len() as u64,
            reader: Box::pin(std::io::Cursor::new(bytes)),
        })
    }
    /// Starts a process.
    async fn spawn(&self, command: &CommandSpec) -> AdapterResult<AgentProcess>;
    /// Kills everything in the sandbox and releases it.
    async fn terminate(&self) -> AdapterResult<()>;
    /// Hands the sandbox to the session `session_id`: from then on `list_owned` reports it
    /// as serving that session (its owner tag stays). A warm pool makes sandboxes before
    /// their session exists and hands one over when a session takes it. A provider that
    /// cannot refuses with `InvalidInput`, which is the default.
    async fn assign(&self, session_id: &str) -> AdapterResult<()> {
        Err(crate::AdapterError::invalid_input(format!(
            "sandbox {} cannot be handed to session {session_id:?}",
            self.id()
        )))
    }
}

/// Creates sandboxes.
///
/// # Behavior
/// - `create` returns a sandbox whose workspace and agent home hold exactly the spec's
///   files.
/// - `list_owned(owner_tag)` returns the sandboxes created with that tag that have not
///   been terminated, including those of an earlier run of the runtime.
/// - `open(id)` returns a handle on a sandbox from `list_owned`, to read its files and
///   terminate it; an unknown id is `NotFound`.
/// - A sandbox handed to another session ([`Sandbox::assign`]) is listed under that
///   session and reopens with the same directories, where the provider can hand over.
#[async_trait]
pub trait SandboxProvider: Send + Sync + 'static {
    /// Makes a new sandbox.
    async fn create(&self, spec: &SandboxSpec) -> AdapterResult<Box<dyn Sandbox>>;
    /// The live sandboxes created with `owner_tag`.
    async fn list_owned(&self, owner_tag: &str) -> AdapterResult<Vec<SandboxInfo>>;
    /// A handle on an existing sandbox.
    async fn open(&self, id: &str) -> AdapterResult<Box<dyn Sandbox>>;
}
