//! Messages of the control plane, package `modal.client`.
#![allow(missing_docs)] // Each field is Modal's own; its name and number are its documentation.

use std::collections::BTreeMap;

/// `google.protobuf.Empty` and every empty request or response.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct AuthTokenGetResponse {
    #[prost(string, tag = "1")]
    pub token: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct AppGetOrCreateRequest {
    #[prost(string, tag = "1")]
    pub app_name: String,
    #[prost(string, tag = "2")]
    pub environment_name: String,
    #[prost(int32, tag = "3")]
    pub object_creation_type: i32,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct AppGetOrCreateResponse {
    #[prost(string, tag = "1")]
    pub app_id: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct EnvironmentGetOrCreateRequest {
    #[prost(string, tag = "1")]
    pub deployment_name: String,
    #[prost(int32, tag = "2")]
    pub object_creation_type: i32,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct EnvironmentGetOrCreateResponse {
    #[prost(string, tag = "1")]
    pub environment_id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<EnvironmentMetadata>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct EnvironmentMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub settings: Option<EnvironmentSettings>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct EnvironmentSettings {
    #[prost(string, tag = "1")]
    pub image_builder_version: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Image {
    #[prost(string, repeated, tag = "6")]
    pub dockerfile_commands: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct ImageGetOrCreateRequest {
    #[prost(message, optional, tag = "2")]
    pub image: Option<Image>,
    #[prost(string, tag = "4")]
    pub app_id: String,
    #[prost(string, tag = "9")]
    pub builder_version: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct ImageGetOrCreateResponse {
    #[prost(string, tag = "1")]
    pub image_id: String,
    #[prost(message, optional, tag = "2")]
    pub result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct ImageJoinStreamingRequest {
    #[prost(string, tag = "1")]
    pub image_id: String,
    #[prost(float, tag = "2")]
    pub timeout: f32,
    #[prost(string, tag = "3")]
    pub last_entry_id: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct ImageJoinStreamingResponse {
    #[prost(message, optional, tag = "1")]
    pub result: Option<GenericResult>,
    #[prost(message, repeated, tag = "2")]
    pub task_logs: Vec<TaskLogs>,
    #[prost(string, tag = "3")]
    pub entry_id: String,
    #[prost(bool, tag = "4")]
    pub eof: bool,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TaskLogs {
    #[prost(string, tag = "1")]
    pub data: String,
    #[prost(int32, tag = "8")]
    pub file_descriptor: i32,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct GenericResult {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub exception: String,
    #[prost(int32, tag = "3")]
    pub exitcode: i32,
    #[prost(string, tag = "4")]
    pub traceback: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Resources {
    #[prost(uint32, tag = "2")]
    pub memory_mb: u32,
    #[prost(uint32, tag = "3")]
    pub milli_cpu: u32,
}

/// The sandbox definition (`modal.client.Sandbox`).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Sandbox {
    #[prost(string, repeated, tag = "1")]
    pub entrypoint_args: Vec<String>,
    #[prost(string, tag = "3")]
    pub image_id: String,
    #[prost(message, optional, tag = "5")]
    pub resources: Option<Resources>,
    #[prost(uint32, tag = "7")]
    pub timeout_secs: u32,
    #[prost(string, optional, tag = "8")]
    pub workdir: Option<String>,
    #[prost(uint32, optional, tag = "33")]
    pub idle_timeout_secs: Option<u32>,
}

#[derive(Clone, PartialEq, Eq, prost::Message, serde::Serialize)]
pub struct SandboxTag {
    #[prost(string, tag = "1")]
    pub tag_name: String,
    #[prost(string, tag = "2")]
    pub tag_value: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct StringMap {
    #[prost(btree_map = "string, string", tag = "1")]
    pub contents: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SecretSource {
    #[prost(oneof = "secret_source::Source", tags = "1, 2")]
    #[serde(flatten)]
    pub source: Option<secret_source::Source>,
}

/// The `source` oneof of [`SecretSource`].
pub mod secret_source {
    #[derive(Clone, PartialEq, prost::Oneof, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Source {
        #[prost(string, tag = "1")]
        SecretId(String),
        #[prost(message, tag = "2")]
        Env(super::StringMap),
    }
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct CommandRouterAccess {
    #[prost(string, tag = "1")]
    pub jwt: String,
    #[prost(string, tag = "2")]
    pub url: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxCreateV2Request {
    #[prost(string, tag = "1")]
    pub app_id: String,
    #[prost(message, optional, tag = "2")]
    pub definition: Option<Sandbox>,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<SandboxTag>,
    #[prost(message, repeated, tag = "6")]
    pub secret_sources: Vec<SecretSource>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxCreateV2Response {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
    #[prost(string, tag = "3")]
    pub task_id: String,
    #[prost(message, optional, tag = "5")]
    pub command_router_access: Option<CommandRouterAccess>,
    #[prost(string, tag = "6")]
    pub sandbox_token: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxWaitRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
    #[prost(float, tag = "2")]
    pub timeout: f32,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxWaitResponse {
    #[prost(message, optional, tag = "1")]
    pub result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxTerminateRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxTerminateResponse {
    #[prost(message, optional, tag = "1")]
    pub existing_result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxListRequest {
    #[prost(string, tag = "1")]
    pub app_id: String,
    #[prost(double, tag = "2")]
    pub before_timestamp: f64,
    #[prost(string, tag = "3")]
    pub environment_name: String,
    #[prost(bool, tag = "4")]
    pub include_finished: bool,
    #[prost(message, repeated, tag = "5")]
    pub tags: Vec<SandboxTag>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxListResponse {
    #[prost(message, repeated, tag = "1")]
    pub sandboxes: Vec<SandboxInfo>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxInfo {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(double, tag = "3")]
    pub created_at: f64,
    #[prost(message, optional, tag = "4")]
    pub task_info: Option<TaskInfo>,
    #[prost(string, tag = "5")]
    pub app_id: String,
    #[prost(message, repeated, tag = "6")]
    pub tags: Vec<SandboxTag>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TaskInfo {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "4")]
    pub result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxGetCommandRouterAccessRequest {
    #[prost(oneof = "router_access_target::Target", tags = "1, 2")]
    #[serde(flatten)]
    pub target: Option<router_access_target::Target>,
}

/// The `target` oneof of [`SandboxGetCommandRouterAccessRequest`].
pub mod router_access_target {
    #[derive(Clone, PartialEq, prost::Oneof, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Target {
        #[prost(string, tag = "1")]
        SandboxId(String),
        #[prost(string, tag = "2")]
        TaskId(String),
    }
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxGetCommandRouterAccessResponse {
    #[prost(string, tag = "1")]
    pub jwt: String,
    #[prost(string, tag = "2")]
    pub url: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxGetTaskIdRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
    #[prost(float, optional, tag = "2")]
    pub timeout: Option<f32>,
    #[prost(bool, tag = "3")]
    pub wait_until_ready: bool,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxGetTaskIdResponse {
    #[prost(string, optional, tag = "1")]
    pub task_id: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub task_result: Option<GenericResult>,
}

/// `modal.client.RPCStatus`, Modal's copy of `google.rpc.Status`: what a failed call
/// carries in its `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `modal.client.RPCRetryPolicy`: the server's instruction to try again after a delay.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcRetryPolicy {
    #[prost(float, tag = "1")]
    pub retry_after_secs: f32,
}

/// The full name an `Any` holding an [`RpcRetryPolicy`] ends with (after the last `/`).
pub const RPC_RETRY_POLICY_TYPE: &str = "modal.client.RPCRetryPolicy";

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct SandboxTagsSetRequest {
    #[prost(string, tag = "1")]
    pub environment_name: String,
    #[prost(string, tag = "2")]
    pub sandbox_id: String,
    #[prost(message, repeated, tag = "3")]
    pub tags: Vec<SandboxTag>,
}
