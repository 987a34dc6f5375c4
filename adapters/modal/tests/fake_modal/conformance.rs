//! The provider's messages against the official `modal` package (the version scripts/test
//! pins): every message the provider or the fake Modal server encodes is decoded by the
//! official generated classes and compared field by field by name; the official classes
//! encode the same values by name and the provider's structs must decode them equal. The
//! RPC paths must exist with the request and response types the structs stand for.
//!
//! The fake Modal server speaks `agent_runtime_modal::proto` too, so this checks its wire
//! format as well: a wrong field number in either shows up here.

use std::fmt::Debug;
use std::process::Command;

use agent_runtime_modal::proto::{self, rpc};
use prost::Message;
use serde::Serialize;

/// The official package the structs are checked against; scripts/test installs it.
const MODAL_VERSION: &str = "1.6.4";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance.py");

/// Decodes bytes into the sample's struct and compares it with the sample.
type DecodesEqual = Box<dyn Fn(&[u8]) -> Result<(), String>>;

/// One message: its official full name, its fields by name, its encoding, and a check that
/// decodes the official encoding back into the same struct.
struct Sample {
    type_name: &'static str,
    json: serde_json::Value,
    bytes: Vec<u8>,
    decodes_equal: DecodesEqual,
}

fn sample<M>(type_name: &'static str, message: M) -> Sample
where
    M: Message + Serialize + PartialEq + Default + Debug + 'static,
{
    Sample {
        type_name,
        json: serde_json::to_value(&message).expect("a message serializes"),
        bytes: message.encode_to_vec(),
        decodes_equal: Box::new(move |bytes| match M::decode(bytes) {
            Ok(decoded) if decoded == message => Ok(()),
            Ok(decoded) => Err(format!("decoded {decoded:?}, expected {message:?}")),
            Err(error) => Err(format!("does not decode: {error}")),
        }),
    }
}

fn result(status: i32) -> proto::GenericResult {
    proto::GenericResult {
        status,
        exception: "exception".into(),
        exitcode: 3,
        traceback: "traceback".into(),
    }
}

fn tags() -> Vec<proto::SandboxTag> {
    vec![proto::SandboxTag {
        tag_name: "tag_name".into(),
        tag_value: "tag_value".into(),
    }]
}

fn string_map() -> proto::StringMap {
    proto::StringMap {
        contents: [("KEY".to_owned(), "value".to_owned())].into(),
    }
}

/// Every message type with every field set to a value that is not its default.
fn samples() -> Vec<Sample> {
    vec![
        sample("modal.client.AuthTokenGetRequest", proto::Empty {}),
        sample(
            "modal.client.AuthTokenGetResponse",
            proto::AuthTokenGetResponse {
                token: "token".into(),
            },
        ),
        sample(
            "modal.client.AppGetOrCreateRequest",
            proto::AppGetOrCreateRequest {
                app_name: "app_name".into(),
                environment_name: "environment_name".into(),
                object_creation_type: proto::CREATE_IF_MISSING,
            },
        ),
        sample(
            "modal.client.AppGetOrCreateResponse",
            proto::AppGetOrCreateResponse {
                app_id: "app_id".into(),
            },
        ),
        sample(
            "modal.client.EnvironmentGetOrCreateRequest",
            proto::EnvironmentGetOrCreateRequest {
                deployment_name: "deployment_name".into(),
                object_creation_type: 1,
            },
        ),
        sample(
            "modal.client.EnvironmentGetOrCreateResponse",
            proto::EnvironmentGetOrCreateResponse {
                environment_id: "environment_id".into(),
                metadata: Some(proto::EnvironmentMetadata {
                    name: "name".into(),
                    settings: Some(proto::EnvironmentSettings {
                        image_builder_version: "2024.10".into(),
                    }),
                }),
            },
        ),
        sample(
            "modal.client.ImageGetOrCreateRequest",
            proto::ImageGetOrCreateRequest {
                image: Some(proto::Image {
                    dockerfile_commands: vec!["FROM x".into(), "RUN y".into()],
                }),
                app_id: "app_id".into(),
                builder_version: "builder_version".into(),
            },
        ),
        sample(
            "modal.client.ImageGetOrCreateResponse",
            proto::ImageGetOrCreateResponse {
                image_id: "image_id".into(),
                result: Some(result(proto::status::SUCCESS)),
            },
        ),
        sample(
            "modal.client.ImageJoinStreamingRequest",
            proto::ImageJoinStreamingRequest {
                image_id: "image_id".into(),
                timeout: 55.5,
                last_entry_id: "last_entry_id".into(),
            },
        ),
        sample(
            "modal.client.ImageJoinStreamingResponse",
            proto::ImageJoinStreamingResponse {
                result: Some(result(proto::status::FAILURE)),
                task_logs: vec![proto::TaskLogs {
                    data: "data".into(),
                    file_descriptor: 2,
                }],
                entry_id: "entry_id".into(),
                eof: true,
            },
        ),
        sample(
            "modal.client.SandboxCreateV2Request",
            proto::SandboxCreateV2Request {
                app_id: "app_id".into(),
                definition: Some(proto::Sandbox {
                    entrypoint_args: vec!["sleep".into(), "infinity".into()],
                    image_id: "image_id".into(),
                    resources: Some(proto::Resources {
                        memory_mb: 2048,
                        milli_cpu: 1500,
                    }),
                    timeout_secs: 86_400,
                    workdir: Some("/workspace".into()),
                    idle_timeout_secs: Some(900),
                }),
                tags: tags(),
                secret_sources: vec![
                    proto::SecretSource {
                        source: Some(proto::secret_source::Source::Env(string_map())),
                    },
                    proto::SecretSource {
                        source: Some(proto::secret_source::Source::SecretId("secret_id".into())),
                    },
                ],
            },
        ),
        sample(
            "modal.client.SandboxCreateV2Response",
            proto::SandboxCreateV2Response {
                sandbox_id: "sandbox_id".into(),
                task_id: "task_id".into(),
                command_router_access: Some(proto::CommandRouterAccess {
                    jwt: "jwt".into(),
                    url: "url".into(),
                }),
                sandbox_token: "sandbox_token".into(),
            },
        ),
        sample(
            "modal.client.SandboxWaitRequest",
            proto::SandboxWaitRequest {
                sandbox_id: "sandbox_id".into(),
                timeout: 10.0,
            },
        ),
        sample(
            "modal.client.SandboxWaitResponse",
            proto::SandboxWaitResponse {
                result: Some(result(proto::status::IDLE_TIMEOUT)),
            },
        ),
        sample(
            "modal.client.SandboxTerminateRequest",
            proto::SandboxTerminateRequest {
                sandbox_id: "sandbox_id".into(),
            },
        ),
        sample(
            "modal.client.SandboxTerminateResponse",
            proto::SandboxTerminateResponse {
                existing_result: Some(result(proto::status::TERMINATED)),
            },
        ),
        sample(
            "modal.client.SandboxListRequest",
            proto::SandboxListRequest {
                app_id: "app_id".into(),
                before_timestamp: 1_764_892_800.25,
                environment_name: "environment_name".into(),
                include_finished: true,
                tags: tags(),
            },
        ),
        sample(
            "modal.client.SandboxListResponse",
            proto::SandboxListResponse {
                sandboxes: vec![proto::SandboxInfo {
                    id: "id".into(),
                    created_at: 1_764_892_800.5,
                    task_info: Some(proto::TaskInfo {
                        id: "task_id".into(),
                        result: Some(result(proto::status::TIMEOUT)),
                    }),
                    app_id: "app_id".into(),
                    tags: tags(),
                }],
            },
        ),
        sample(
            "modal.client.SandboxGetCommandRouterAccessRequest",
            proto::SandboxGetCommandRouterAccessRequest {
                target: Some(proto::router_access_target::Target::SandboxId(
                    "sandbox_id".into(),
                )),
            },
        ),
        sample(
            "modal.client.SandboxGetCommandRouterAccessRequest",
            proto::SandboxGetCommandRouterAccessRequest {
                target: Some(proto::router_access_target::Target::TaskId(
                    "task_id".into(),
                )),
            },
        ),
        sample(
            "modal.client.SandboxGetCommandRouterAccessResponse",
            proto::SandboxGetCommandRouterAccessResponse {
                jwt: "jwt".into(),
                url: "url".into(),
            },
        ),
        sample(
            "modal.client.SandboxGetTaskIdRequest",
            proto::SandboxGetTaskIdRequest {
                sandbox_id: "sandbox_id".into(),
                timeout: Some(1.5),
                wait_until_ready: true,
            },
        ),
        sample(
            "modal.client.SandboxGetTaskIdResponse",
            proto::SandboxGetTaskIdResponse {
                task_id: Some("task_id".into()),
                task_result: Some(result(proto::status::INIT_FAILURE)),
            },
        ),
        sample(
            "modal.client.SandboxTagsSetRequest",
            proto::SandboxTagsSetRequest {
                environment_name: "environment_name".into(),
                sandbox_id: "sandbox_id".into(),
                tags: tags(),
            },
        ),
        sample(
            "modal.client.RPCStatus",
            proto::RpcStatus {
                code: 8,
                message: "message".into(),
                details: vec![proto::Any {
                    type_url: format!("type.modal.com/{}", proto::RPC_RETRY_POLICY_TYPE),
                    value: vec![0x0d, 0, 0, 0x20, 0x40],
                }],
            },
        ),
        sample(
            proto::RPC_RETRY_POLICY_TYPE,
            proto::RpcRetryPolicy {
                retry_after_secs: 2.5,
            },
        ),
        sample(
            "modal.task_command_router.TaskExecStartRequest",
            proto::TaskExecStartRequest {
                task_id: "task_id".into(),
                exec_id: "exec_id".into(),
                command_args: vec!["sh".into(), "-c".into()],
                stdout_config: proto::PIPE,
                stderr_config: proto::PIPE,
                workdir: Some("/workspace".into()),
                env: [("KEY".to_owned(), "value".to_owned())].into(),
            },
        ),
        sample(
            "modal.task_command_router.TaskExecStartResponse",
            proto::Empty {},
        ),
        sample(
            "modal.task_command_router.TaskExecStdinWriteRequest",
            proto::TaskExecStdinWriteRequest {
                task_id: "task_id".into(),
                exec_id: "exec_id".into(),
                offset: 1 << 40,
                data: vec![0, 1, 255],
                eof: true,
            },
        ),
        sample(
            "modal.task_command_router.TaskExecStdinWriteResponse",
            proto::Empty {},
        ),
        sample(
            "modal.task_command_router.TaskExecStdioReadRequest",
            proto::TaskExecStdioReadRequest {
                task_id: "task_id".into(),
                exec_id: "exec_id".into(),
                offset: 1 << 33,
                file_descriptor: proto::FD_STDERR,
            },
        ),
        sample(
            "modal.task_command_router.TaskExecStdioReadResponse",
            proto::TaskExecStdioReadResponse {
                data: b"output\n".to_vec(),
            },
        ),
        sample(
            "modal.task_command_router.TaskExecWaitRequest",
            proto::TaskExecWaitRequest {
                task_id: "task_id".into(),
                exec_id: "exec_id".into(),
            },
        ),
        sample(
            "modal.task_command_router.TaskExecWaitResponse",
            proto::TaskExecWaitResponse {
                exit_status: Some(proto::exit_status::ExitStatus::Code(3)),
            },
        ),
        sample(
            "modal.task_command_router.TaskExecWaitResponse",
            proto::TaskExecWaitResponse {
                exit_status: Some(proto::exit_status::ExitStatus::Signal(9)),
            },
        ),
    ]
}

/// Every RPC the provider calls, with the official types its structs stand for.
fn rpcs() -> serde_json::Value {
    let client = |path: &str, request: &str, response: &str, streaming: bool| {
        serde_json::json!({"path": path, "request": request, "response": response,
            "streaming": streaming})
    };
    let c = |name: &str| format!("modal.client.{name}");
    let r = |name: &str| format!("modal.task_command_router.{name}");
    serde_json::json!([
        client(
            rpc::AUTH_TOKEN_GET,
            &c("AuthTokenGetRequest"),
            &c("AuthTokenGetResponse"),
            false
        ),
        client(
            rpc::APP_GET_OR_CREATE,
            &c("AppGetOrCreateRequest"),
            &c("AppGetOrCreateResponse"),
            false
        ),
        client(
            rpc::ENVIRONMENT_GET_OR_CREATE,
            &c("EnvironmentGetOrCreateRequest"),
            &c("EnvironmentGetOrCreateResponse"),
            false
        ),
        client(
            rpc::IMAGE_GET_OR_CREATE,
            &c("ImageGetOrCreateRequest"),
            &c("ImageGetOrCreateResponse"),
            false
        ),
        client(
            rpc::IMAGE_JOIN_STREAMING,
            &c("ImageJoinStreamingRequest"),
            &c("ImageJoinStreamingResponse"),
            true
        ),
        client(
            rpc::SANDBOX_CREATE_V2,
            &c("SandboxCreateV2Request"),
            &c("SandboxCreateV2Response"),
            false
        ),
        client(
            rpc::SANDBOX_WAIT_V2,
            &c("SandboxWaitRequest"),
            &c("SandboxWaitResponse"),
            false
        ),
        client(
            rpc::SANDBOX_TERMINATE_V2,
            &c("SandboxTerminateRequest"),
            &c("SandboxTerminateResponse"),
            false
        ),
        client(
            rpc::SANDBOX_LIST_V2,
            &c("SandboxListRequest"),
            &c("SandboxListResponse"),
            false
        ),
        client(
            rpc::SANDBOX_GET_COMMAND_ROUTER_ACCESS,
            &c("SandboxGetCommandRouterAccessRequest"),
            &c("SandboxGetCommandRouterAccessResponse"),
            false
        ),
        client(
            rpc::SANDBOX_GET_TASK_ID_V2,
            &c("SandboxGetTaskIdRequest"),
            &c("SandboxGetTaskIdResponse"),
            false
        ),
        client(
            rpc::SANDBOX_TAGS_SET_V2,
            &c("SandboxTagsSetRequest"),
            "google.protobuf.Empty",
            false
        ),
        client(
            rpc::TASK_EXEC_START,
            &r("TaskExecStartRequest"),
            &r("TaskExecStartResponse"),
            false
        ),
        client(
            rpc::TASK_EXEC_STDIN_WRITE,
            &r("TaskExecStdinWriteRequest"),
            &r("TaskExecStdinWriteResponse"),
            false
        ),
        client(
            rpc::TASK_EXEC_STDIO_READ,
            &r("TaskExecStdioReadRequest"),
            &r("TaskExecStdioReadResponse"),
            true
        ),
        client(
            rpc::TASK_EXEC_WAIT,
            &r("TaskExecWaitRequest"),
            &r("TaskExecWaitResponse"),
            false
        ),
    ])
}

/// What the official package made of the samples.
#[derive(serde::Deserialize)]
struct Report {
    version: String,
    mismatches: Vec<String>,
    encoded: Vec<String>,
}

/// The interpreter with the official package, or `None` (with a message) when it is not
/// configured here. Under CI a missing one is a failure.
fn python_with_modal() -> Option<String> {
    let python = std::env::var("AGENT_RUNTIME_TEST_PYTHON").ok();
    let usable = python.as_ref().is_some_and(|python| {
        Command::new(python)
            .args(["-c", "import modal_proto.api_pb2"])
            .status()
            .is_ok_and(|status| status.success())
    });
    if usable {
        return python;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "AGENT_RUNTIME_TEST_PYTHON must name a python with modal=={MODAL_VERSION}; scripts/test installs it"
    );
    eprintln!("SKIPPED: set AGENT_RUNTIME_TEST_PYTHON to a python with modal=={MODAL_VERSION}");
    None
}

fn check(python: &str, samples: &[Sample], rpcs: serde_json::Value) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.json"), dir.path().join("out.json"));
    let document = serde_json::json!({
        "samples": samples.iter().map(|s| serde_json::json!({
            "type": s.type_name, "json": s.json, "hex": hex(&s.bytes),
        })).collect::<Vec<_>>(),
        "rpcs": rpcs,
    });
    std::fs::write(&input, document.to_string()).unwrap();
    let status = Command::new(python)
        .arg(SCRIPT)
        .arg(&input)
        .arg(&output)
        .status()
        .expect("run the conformance script");
    assert!(status.success(), "the conformance script failed: {status}");
    serde_json::from_slice(&std::fs::read(&output).unwrap()).expect("its report")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn messages_match_the_official_modal_package_field_by_field() {
    let Some(python) = python_with_modal() else {
        return;
    };
    let samples = samples();
    let report = check(&python, &samples, rpcs());
    assert_eq!(
        report.version, MODAL_VERSION,
        "the pinned package is installed"
    );
    assert!(
        report.mismatches.is_empty(),
        "differences from the official package:\n{}",
        report.mismatches.join("\n")
    );
    assert_eq!(report.encoded.len(), samples.len());
    for (sample, encoded) in samples.iter().zip(&report.encoded) {
        if let Err(problem) = (sample.decodes_equal)(&unhex(encoded)) {
            panic!("the official encoding of {}: {problem}", sample.type_name);
        }
    }
}

/// `Resources` with its two field numbers swapped, as a typo would make it.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct SwappedResources {
    #[prost(uint32, tag = "3")]
    memory_mb: u32,
    #[prost(uint32, tag = "2")]
    milli_cpu: u32,
}

/// `SandboxTag` with a field number the official message does not have.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct MisnumberedTag {
    #[prost(string, tag = "1")]
    tag_name: String,
    #[prost(string, tag = "9")]
    tag_value: String,
}

#[test]
fn the_check_catches_a_wrong_field_number_and_a_wrong_rpc() {
    let Some(python) = python_with_modal() else {
        return;
    };
    let swapped = SwappedResources {
        memory_mb: 2048,
        milli_cpu: 1500,
    };
    let misnumbered = MisnumberedTag {
        tag_name: "tag_name".into(),
        tag_value: "tag_value".into(),
    };
    let samples = [
        sample("modal.client.Resources", swapped),
        sample("modal.client.SandboxTag", misnumbered),
    ];
    let rpcs = serde_json::json!([{"path": rpc::SANDBOX_WAIT_V2,
        "request": "modal.client.SandboxWaitV2Request",
        "response": "modal.client.SandboxWaitResponse", "streaming": false}]);
    let report = check(&python, &samples, rpcs);
    let found = report.mismatches.join("\n");
    for expected in [
        "modal.client.Resources: memory_mb: sent 2048, the official class reads 1500",
        "modal.client.SandboxTag: tag_value: sent 'tag_value', the official class has nothing",
        "SandboxWaitV2: request is 'modal.client.SandboxWaitRequest'",
    ] {
        assert!(found.contains(expected), "{expected:?} in:\n{found}");
    }
    // The other way round: the official encoding by name does not decode equal either.
    assert!((samples[0].decodes_equal)(&unhex(&report.encoded[0])).is_err());
    assert!((samples[1].decodes_equal)(&unhex(&report.encoded[1])).is_err());
}
