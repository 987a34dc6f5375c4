//! agent-runtime: runs AI agents in per-session sandboxes and streams their output.
//!
//! # Layout
//! - [`runtime`]: the session manager (an actor per session) and the EventBus.
//! - [`error`]: stable error codes shared by every transport.
//! - [`auth`]: principals and authenticators; [`keys_command`]: `agent-runtime keys`.
//! - [`transport`]: Socket.IO, REST and SSE on one axum router ([`transport::serve`]).
//! - [`metrics`]: the metrics behind `/metrics`, recorded by the runtime, the catalog's
//!   measuring adapters and the transports.
//! - [`warm_pool`]: sandboxes made ahead of sessions, a decorator of any sandbox provider.

pub mod agent;
pub mod app;
pub mod auth;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod error;
pub mod keys_command;
pub mod metrics;
pub mod named_calls;
pub mod profiles;
pub mod runtime;
pub mod tools;
pub mod transport;
pub mod warm_pool;
