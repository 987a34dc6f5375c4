//! Hand-written protobuf messages for the subset of Modal's gRPC API this crate uses.
//!
//! Field names and numbers follow Modal's `api.proto` (package `modal.client`) and
//! `task_command_router.proto` (package `modal.task_command_router`) as shipped with the
//! Python client 1.6.4. Only used fields are declared: protobuf skips unknown fields on
//! decode and omitted fields take their defaults, so a subset stays wire-compatible.
//! Enums are plain `i32`; their values are in [`status`] and the constants below.
//!
//! The messages are public so a test server can speak exactly the same wire format. They
//! serialize (serde) with Modal's field names, which is how the conformance test
//! (`tests/fake_modal/conformance.rs`) compares them, field by field, with the classes of
//! the official `modal` package.
#![allow(missing_docs)] // Each field is Modal's own; its name and number are its documentation.

/// gRPC method paths.
pub mod rpc {
    /// The control plane's service name.
    pub const CONTROL_SERVICE: &str = "modal.client.ModalClient";
    /// The per-task command router's service name.
    pub const ROUTER_SERVICE: &str = "modal.task_command_router.TaskCommandRouter";

    pub const AUTH_TOKEN_GET: &str = "/modal.client.ModalClient/AuthTokenGet";
    pub const APP_GET_OR_CREATE: &str = "/modal.client.ModalClient/AppGetOrCreate";
    pub const ENVIRONMENT_GET_OR_CREATE: &str = "/modal.client.ModalClient/EnvironmentGetOrCreate";
    pub const IMAGE_GET_OR_CREATE: &str = "/modal.client.ModalClient/ImageGetOrCreate";
    pub const IMAGE_JOIN_STREAMING: &str = "/modal.client.ModalClient/ImageJoinStreaming";
    pub const SANDBOX_CREATE_V2: &str = "/modal.client.ModalClient/SandboxCreateV2";
    pub const SANDBOX_WAIT_V2: &str = "/modal.client.ModalClient/SandboxWaitV2";
    pub const SANDBOX_TERMINATE_V2: &str = "/modal.client.ModalClient/SandboxTerminateV2";
    pub const SANDBOX_LIST_V2: &str = "/modal.client.ModalClient/SandboxListV2";
    pub const SANDBOX_GET_COMMAND_ROUTER_ACCESS: &str =
        "/modal.client.ModalClient/SandboxGetCommandRouterAccess";
    pub const SANDBOX_GET_TASK_ID_V2: &str = "/modal.client.ModalClient/SandboxGetTaskIdV2";
    pub const SANDBOX_TAGS_SET_V2: &str = "/modal.client.ModalClient/SandboxTagsSetV2";

    pub const TASK_EXEC_START: &str = "/modal.task_command_router.TaskCommandRouter/TaskExecStart";
    pub const TASK_EXEC_STDIN_WRITE: &str =
        "/modal.task_command_router.TaskCommandRouter/TaskExecStdinWrite";
    pub const TASK_EXEC_STDIO_READ: &str =
        "/modal.task_command_router.TaskCommandRouter/TaskExecStdioRead";
    pub const TASK_EXEC_WAIT: &str = "/modal.task_command_router.TaskCommandRouter/TaskExecWait";
}

/// `GenericResult.GenericStatus` values.
pub mod status {
    pub const UNSPECIFIED: i32 = 0;
    pub const SUCCESS: i32 = 1;
    pub const FAILURE: i32 = 2;
    pub const TERMINATED: i32 = 3;
    pub const TIMEOUT: i32 = 4;
    pub const INIT_FAILURE: i32 = 5;
    pub const INTERNAL_FAILURE: i32 = 6;
    pub const IDLE_TIMEOUT: i32 = 7;
}

/// `ObjectCreationType::CREATE_IF_MISSING`.
pub const CREATE_IF_MISSING: i32 = 1;
/// `TaskExecStdoutConfig::PIPE` (also `TaskExecStderrConfig::PIPE`).
pub const PIPE: i32 = 1;
/// `TaskExecStdioFileDescriptor::STDOUT`.
pub const FD_STDOUT: i32 = 0;
/// `TaskExecStdioFileDescriptor::STDERR`.
pub const FD_STDERR: i32 = 1;

mod control;
mod router;

pub use control::*;
pub use router::*;
