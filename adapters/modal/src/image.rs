//! Image get-or-create: the configured image is built once by Modal, then reused by id.

use std::time::Duration;

use agent_runtime_api::{AdapterError, AdapterResult};
use backon::{BackoffBuilder, ExponentialBuilder};

use crate::config::Settings;
use crate::control::{Call, ControlPlane};
use crate::grpc::{CONTROL_RETRY, adapter_error, is_transient};
use crate::proto::{self, rpc, status};

/// How long the server holds one `ImageJoinStreaming` call open.
const JOIN_SECONDS: f32 = 55.0;
/// Consecutive broken join streams tolerated before giving up, and the pauses before
/// joining again.
const JOIN_RETRY: ExponentialBuilder = CONTROL_RETRY.with_max_times(5);

/// The id of the configured image, built (and waited for) when Modal does not have it.
pub(crate) async fn get_or_create(
    control: &ControlPlane,
    settings: &Settings,
    app_id: &str,
) -> AdapterResult<String> {
    let request = proto::ImageGetOrCreateRequest {
        image: Some(proto::Image {
            dockerfile_commands: settings.config.image.dockerfile_commands(),
        }),
        app_id: app_id.to_owned(),
        builder_version: builder_version(control, settings).await?,
    };
    let response: proto::ImageGetOrCreateResponse = control
        .unary(rpc::IMAGE_GET_OR_CREATE, request, Call::PLAIN)
        .await
        .map_err(|status| adapter_error("getting the image", &status))?;
    let result = match response.result.filter(|r| r.status != status::UNSPECIFIED) {
        Some(result) => result,
        None => join(control, &response.image_id).await?,
    };
    if result.status != status::SUCCESS {
        return Err(AdapterError::other(format!(
            "building the Modal image {:?} failed (status {}): {}",
            settings.config.image.tag, result.status, result.exception
        )));
    }
    tracing::info!(image_id = %response.image_id, "Modal image ready");
    Ok(response.image_id)
}

/// The environment's image builder version; `MODAL_IMAGE_BUILDER_VERSION` overrides it.
async fn builder_version(control: &ControlPlane, settings: &Settings) -> AdapterResult<String> {
    if let Some(version) = std::env::var("MODAL_IMAGE_BUILDER_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Ok(version);
    }
    let request = proto::EnvironmentGetOrCreateRequest {
        deployment_name: settings.environment.clone(),
        object_creation_type: 0,
    };
    let response: proto::EnvironmentGetOrCreateResponse = control
        .unary(rpc::ENVIRONMENT_GET_OR_CREATE, request, Call::PLAIN)
        .await
        .map_err(|status| adapter_error("reading the environment", &status))?;
    let settings = response.metadata.and_then(|m| m.settings);
    Ok(settings
        .map(|s| s.image_builder_version)
        .unwrap_or_default())
}

/// Follows the build until it has a result, reopening the stream where it left off.
async fn join(control: &ControlPlane, image_id: &str) -> AdapterResult<proto::GenericResult> {
    let call = Call {
        deadline: Some(Duration::from_secs_f32(JOIN_SECONDS + 15.0)),
        sandbox_token: None,
    };
    let mut last_entry_id = String::new();
    // Reset by every message: only consecutive breaks count.
    let mut delays = JOIN_RETRY.build();
    loop {
        let request = proto::ImageJoinStreamingRequest {
            image_id: image_id.to_owned(),
            timeout: JOIN_SECONDS,
            last_entry_id: last_entry_id.clone(),
        };
        let mut stream = control
            .stream::<_, proto::ImageJoinStreamingResponse>(
                rpc::IMAGE_JOIN_STREAMING,
                request,
                call,
            )
            .await
            .map_err(|status| adapter_error("following the image build", &status))?;
        loop {
            match stream.message().await {
                Ok(Some(message)) => {
                    delays = JOIN_RETRY.build();
                    if !message.entry_id.is_empty() {
                        last_entry_id = message.entry_id;
                    }
                    for log in &message.task_logs {
                        tracing::debug!(target: "modal_image_build", "{}", log.data.trim_end());
                    }
                    if let Some(result) = message.result.filter(|r| r.status != status::UNSPECIFIED)
                    {
                        return Ok(result);
                    }
                }
                Ok(None) => break,
                Err(status) if is_transient(status.code()) => {
                    let Some(delay) = delays.next() else {
                        return Err(adapter_error("following the image build", &status));
                    };
                    tokio::time::sleep(delay).await;
                    break;
                }
                Err(status) => return Err(adapter_error("following the image build", &status)),
            }
        }
    }
}
