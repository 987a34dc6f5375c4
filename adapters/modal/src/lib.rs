//! A [`SandboxProvider`](agent_runtime_api::SandboxProvider) that runs each session's agent
//! in a Modal Sandbox, driven over Modal's gRPC API (Modal has no REST API for sandboxes).
//!
//! # Layout
//! - `config`: [`ModalConfig`], [`Secret`], [`check_offline`] and [`build`].
//! - `provider`: [`ModalSandboxProvider`]: app and image get-or-create, create, list, open;
//!   [`CreateTimings`].
//! - `sandbox`: one sandbox: files and processes through its command router, terminate.
//! - `exec`: commands bridged into pipes; output resumes from its byte offset.
//! - `files`: file transfer as tar archives, listings with `find`.
//! - `life`: the long poll that notices a sandbox's end and resolves its processes' exits.
//! - `image`: building the configured image once.
//! - `control`, `router`, `auth`, `grpc`: the clients, headers, tokens, retries, deadlines.
//! - [`proto`]: the hand-written protobuf messages, public so a test server can share them.
//!
//! # Calls
//!
//! ```text
//! create:   AppGetOrCreate, EnvironmentGetOrCreate, ImageGetOrCreate (+ImageJoinStreaming)
//!           once per provider; SandboxCreateV2; one command that places the files
//! command:  TaskExecStart, TaskExecStdioRead (stdout, stderr), TaskExecStdinWrite,
//!           TaskExecWait, all on the router at the URL that came with the sandbox
//! watch:    SandboxWaitV2 long polls while a handle or a process lives
//! list:     SandboxListV2 by tag, paginated; terminate: SandboxTerminateV2
//! ```
//!
//! Sandboxes carry three tags, [`OWNER_TAG`], [`SESSION_TAG`] and [`DIRS_TAG`], which is
//! how `list_owned` and `open` find them after a restart; `assign` rewrites the session tag
//! (`SandboxTagsSetV2`, which replaces the whole tag set, so every tag is sent again) when
//! a warm pool hands a sandbox to a session.
//!
//! **Architecture Invariant:** every unary call has a deadline and transient failures are
//! retried with backoff; the output streams have no deadline, because a command may run for
//! hours, and resume from their offset instead.
//!
//! **Architecture Invariant:** credentials live only in [`Secret`] and request headers;
//! they are never logged.
#![deny(missing_docs)]

mod auth;
mod config;
mod control;
mod exec;
mod files;
mod grpc;
mod image;
mod life;
pub mod proto;
mod provider;
mod router;
mod sandbox;

pub use config::{
    DEFAULT_CLAUDE_CODE_VERSION, DEFAULT_SERVER_URL, DIRS_TAG, ImageConfig, ModalConfig, OWNER_TAG,
    ResourcesConfig, SESSION_PLACEHOLDER, SESSION_TAG, Secret, build, check_offline,
};
pub use provider::{CreateTimings, ModalSandboxProvider};
