//! The adapter API of agent-runtime.
//!
//! # Layout
//! - [`SessionStore`]: session records, each session's event log, and API keys
//!   ([`ApiKeyRecord`]).
//! - [`BlobStore`]: workspace files and agent transcripts, under validated keys.
//! - [`ProfileSource`]: where agent profiles come from.
//! - [`SandboxProvider`] and [`Sandbox`]: where an agent process runs.
//! - [`AdapterError`]: what every call fails with: an [`ErrorKind`] the runtime branches
//!   on, the adapter's message, the failed operation, what it was about and the backend's
//!   error as its source. Where a `# Behavior` names a kind (`NotFound`, `Conflict`, …),
//!   it means an error of that [`ErrorKind`].
//! - [`duration`]: the one text format of durations in every configuration.
//! - [`memory`]: in-memory implementations, always compiled; the reference behaviour.
//! - `contract` (feature `contract-tests`): one suite per trait, one public function per
//!   behaviour, and a macro per trait that makes each behaviour a test of an adapter's own.
//!
//! Every trait documents its contract in a `# Behavior` section; the contract suites check
//! exactly those lines, one function per line. This crate depends on no adapter, no transport and no backend crate.
#![deny(missing_docs)]

mod api_key;
mod blob_store;
mod error;
mod event;
mod path;
mod profile_source;
mod sandbox;
mod secret;
mod session;
mod session_store;

pub mod duration;
pub mod memory;

#[cfg(feature = "contract-tests")]
pub mod contract;

pub use api_key::{ApiKeyRecord, QuotaOverrides};
pub use blob_store::{BlobKey, BlobMeta, BlobStore};
pub use error::{AdapterError, AdapterResult, ErrorKind};
pub use event::{Event, EventKind, check_seqs_increase};
pub use path::{PathError, RelPath};
pub use profile_source::{FileEntry, FileTree, ProfileBundle, ProfileSource};
pub use sandbox::{
    AgentProcess, CommandSpec, ExitStatus, FileReader, FileStat, Sandbox, SandboxDir, SandboxInfo,
    SandboxProvider, SandboxSpec,
};
pub use secret::Secret;
pub use session::{Budget, ForkedFrom, SessionError, SessionRecord, SessionStatus, Usage};
pub use session_store::{SessionEvents, SessionFilter, SessionPage, SessionStore};

/// Re-exported so adapter authors implement the traits with the same macro version.
pub use async_trait::async_trait;
