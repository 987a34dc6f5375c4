//! Messages of the command router, package `modal.task_command_router`.
#![allow(missing_docs)] // Each field is Modal's own; its name and number are its documentation.

use std::collections::BTreeMap;

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TaskExecStartRequest {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
    #[prost(string, repeated, tag = "3")]
    pub command_args: Vec<String>,
    #[prost(int32, tag = "4")]
    pub stdout_config: i32,
    #[prost(int32, tag = "5")]
    pub stderr_config: i32,
    #[prost(string, optional, tag = "7")]
    pub workdir: Option<String>,
    #[prost(btree_map = "string, string", tag = "12")]
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TaskExecStdinWriteRequest {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "5")]
    pub eof: bool,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TaskExecStdioReadRequest {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    #[prost(int32, tag = "4")]
    pub file_descriptor: i32,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TaskExecStdioReadResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

/// `TaskExecWaitRequest` (also the shape of `TaskExecPollRequest`).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TaskExecWaitRequest {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TaskExecWaitResponse {
    #[prost(oneof = "exit_status::ExitStatus", tags = "1, 2")]
    #[serde(flatten)]
    pub exit_status: Option<exit_status::ExitStatus>,
}

/// The `exit_status` oneof of [`TaskExecWaitResponse`].
pub mod exit_status {
    #[derive(Clone, Copy, PartialEq, prost::Oneof, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ExitStatus {
        #[prost(int32, tag = "1")]
        Code(i32),
        #[prost(int32, tag = "2")]
        Signal(i32),
    }
}
