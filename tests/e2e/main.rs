//! The real `agent-runtime` binary, started on port 0 with its own config, driven over
//! the network by real clients: `socket.io-client` (npm), `python-socketio`, plain HTTP,
//! the client SDKs of `clients/`,
//! and with the pinned Claude Code CLI against the fake Messages API.

mod approvals;
mod chat;
mod claude;
mod cli;
mod console;
mod escape;
mod forks;
mod modal;
mod modal_pool;
mod openapi;
mod origin;
mod outage;
mod principals;
mod quickstart;
mod recovery;
mod rest;
mod sdk;
mod socketio;
mod spec;
mod support;
mod ticketdrop;
