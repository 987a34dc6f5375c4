//! A [`SandboxProvider`](agent_runtime_api::SandboxProvider) that runs each session's agent
//! as local processes, isolated by bubblewrap with a private network unless configured
//! otherwise.
//!
//! # Layout
//! - `config`: [`LocalSandboxConfig`], [`Isolation`] and [`build`].
//! - `provider`: [`LocalSandboxProvider`]: create, list_owned, open.
//! - `sandbox`: one sandbox; a directory on disk and the processes started in it.
//! - `marker`: `sandbox.json`, which makes a sandbox findable after a restart.
//! - `files`: file access that never leaves a sandbox's directories (`openat2` beneath a
//!   descriptor of the directory), with size limits and owner-only agent homes.
//! - `process`: program lookup, process groups and their killing.
//! - `bwrap`: the bubblewrap command line: binds, namespaces, the init and its relays.
//! - `network`: a sandbox's private network (slirp4netns), attached before the program runs.
//! - `relay`: host side of the relays to allowed loopback services.
//! - `init`: [`sandbox_init`], the sandbox's first process: relays inside, then the program.
//!
//! # On disk
//!
//! ```text
//! {root}/.shared/        resolv.conf of the private network, relay sockets
//! {root}/{session id}-{8 hex}/
//!     sandbox.json    session id, owner tag, creation time, process groups
//!     workspace/      the processes' working directory
//!     home/           the agent's own state
//! ```
//!
//! Every process is started in a new process group, recorded in `sandbox.json` before
//! `spawn` returns, so `terminate` (or a restarted runtime) can kill the whole group.
//!
//! **Architecture Invariant:** the spec's environment is never written to disk: it may hold
//! credentials. A handle from `open` therefore spawns with the command's environment only.
//!
//! **Architecture Invariant:** with `isolation = "dangerously-none"` a sandbox is only a
//! directory and a process group; its processes run as the runtime's user and can read
//! anything it can. Every other setting isolates, or the provider refuses to start.
#![deny(missing_docs)]

mod bwrap;
mod config;
mod files;
mod init;
mod marker;
mod network;
mod process;
mod provider;
mod relay;
mod sandbox;

pub use config::{InitProgram, Isolation, LocalSandboxConfig, Network, RuntimeLink, build};
pub use init::sandbox_init;
pub use provider::LocalSandboxProvider;
pub use relay::bind_socket;
