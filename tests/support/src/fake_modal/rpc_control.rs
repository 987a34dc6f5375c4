//! The control plane's methods.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_runtime_modal::proto::{
    self, GenericResult, router_access_target::Target, secret_source::Source, status,
};
use tokio::sync::{mpsc, watch};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::{Request, Status};

use super::service::{Messages, streaming, unary, unimplemented};
use super::state::{CreateAttempt, FakeSandbox, State, lock, now, take};

/// Sandboxes per `SandboxListV2` page; small, so clients must paginate.
const PAGE: usize = 3;
/// The longest `SandboxWaitV2` long poll.
const MAX_WAIT: f32 = 55.0;

pub(super) async fn dispatch(
    state: Arc<State>,
    method: &str,
    request: http::Request<Body>,
) -> http::Response<Body> {
    let s = state;
    match method {
        "AuthTokenGet" => {
            unary(request, move |r: Request<proto::Empty>| async move {
                auth_token_get(&s, &r)
            })
            .await
        }
        "AppGetOrCreate" => unary(request, move |r| async move { app_get_or_create(&s, r) }).await,
        "EnvironmentGetOrCreate" => {
            unary(request, move |r| async move { environment(&s, r) }).await
        }
        "ImageGetOrCreate" => {
            unary(request, move |r| async move { image_get_or_create(&s, r) }).await
        }
        "ImageJoinStreaming" => streaming(request, move |r| async move { image_join(&s, r) }).await,
        "SandboxCreateV2" => {
            unary(request, move |r| async move { sandbox_create(s, r).await }).await
        }
        "SandboxTagsSetV2" => unary(request, move |r| async move { tags_set(&s, r) }).await,
        "SandboxGetTaskIdV2" => unary(request, move |r| async move { task_id(&s, r) }).await,
        "SandboxWaitV2" => unary(request, move |r| async move { sandbox_wait(&s, r).await }).await,
        "SandboxTerminateV2" => {
            unary(request, move |r| async move { sandbox_terminate(&s, r) }).await
        }
        "SandboxListV2" => unary(request, move |r| async move { sandbox_list(&s, r) }).await,
        "SandboxGetCommandRouterAccess" => {
            unary(request, move |r| async move { router_access(&s, r) }).await
        }
        other => unimplemented(other),
    }
}

/// Injected failures first, then the client's headers and auth token.
fn admit<Q>(state: &State, request: &Request<Q>) -> Result<(), Status> {
    state.injected_failure()?;
    state.throttled()?;
    state.check_client(request.metadata(), false)
}

fn auth_token_get(
    state: &State,
    request: &Request<proto::Empty>,
) -> Result<proto::AuthTokenGetResponse, Status> {
    state.injected_failure()?;
    state.check_client(request.metadata(), true)?;
    let mut inner = state.lock();
    let (token, exp) = inner.jwt();
    inner.tokens.insert(token.clone(), exp);
    state
        .counters
        .auth_tokens_issued
        .fetch_add(1, Ordering::SeqCst);
    Ok(proto::AuthTokenGetResponse { token })
}

fn app_get_or_create(
    state: &State,
    request: Request<proto::AppGetOrCreateRequest>,
) -> Result<proto::AppGetOrCreateResponse, Status> {
    admit(state, &request)?;
    let request = request.into_inner();
    if request.app_name.is_empty() {
        return Err(Status::invalid_argument("app_name is empty"));
    }
    let mut inner = state.lock();
    let key = (request.app_name, request.environment_name);
    if let Some(app_id) = inner.apps.get(&key) {
        return Ok(proto::AppGetOrCreateResponse {
            app_id: app_id.clone(),
        });
    }
    if request.object_creation_type != proto::CREATE_IF_MISSING {
        return Err(Status::not_found(format!("no app {:?}", key.0)));
    }
    let app_id = inner.id("ap");
    inner.apps.insert(key, app_id.clone());
    Ok(proto::AppGetOrCreateResponse { app_id })
}

fn environment(
    state: &State,
    request: Request<proto::EnvironmentGetOrCreateRequest>,
) -> Result<proto::EnvironmentGetOrCreateResponse, Status> {
    admit(state, &request)?;
    let settings = proto::EnvironmentSettings {
        image_builder_version: "2024.10".into(),
    };
    Ok(proto::EnvironmentGetOrCreateResponse {
        environment_id: "en-fake".into(),
        metadata: Some(proto::EnvironmentMetadata {
            name: request.into_inner().deployment_name,
            settings: Some(settings),
        }),
    })
}

fn image_get_or_create(
    state: &State,
    request: Request<proto::ImageGetOrCreateRequest>,
) -> Result<proto::ImageGetOrCreateResponse, Status> {
    admit(state, &request)?;
    let request = request.into_inner();
    let commands = request
        .image
        .map(|i| i.dockerfile_commands)
        .unwrap_or_default();
    if !commands.first().is_some_and(|c| c.starts_with("FROM "))
        || request.builder_version.is_empty()
    {
        return Err(Status::invalid_argument(
            "an image needs a FROM command and a builder version",
        ));
    }
    let mut inner = state.lock();
    if !inner.apps.values().any(|id| *id == request.app_id) {
        return Err(Status::not_found(format!("no app {}", request.app_id)));
    }
    let (image_id, built) = match inner.images.get(&commands) {
        Some(known) => known.clone(),
        None => {
            let image_id = inner.id("im");
            inner.images.insert(commands, (image_id.clone(), false));
            (image_id, false)
        }
    };
    let result = built.then(|| GenericResult {
        status: status::SUCCESS,
        ..Default::default()
    });
    Ok(proto::ImageGetOrCreateResponse { image_id, result })
}

/// "Builds" the image: one log entry, then success.
fn image_join(
    state: &State,
    request: Request<proto::ImageJoinStreamingRequest>,
) -> Result<Messages<proto::ImageJoinStreamingResponse>, Status> {
    admit(state, &request)?;
    let image_id = request.into_inner().image_id;
    let mut inner = state.lock();
    let image = inner.images.values_mut().find(|(id, _)| *id == image_id);
    let (_, built) = image.ok_or_else(|| Status::not_found(format!("no image {image_id}")))?;
    if !*built {
        *built = true;
        state.counters.image_builds.fetch_add(1, Ordering::SeqCst);
    }
    let (sender, receiver) = mpsc::channel(2);
    let log = proto::TaskLogs {
        data: "fake build step\n".into(),
        file_descriptor: 1,
    };
    let messages = [
        proto::ImageJoinStreamingResponse {
            task_logs: vec![log],
            entry_id: "1".into(),
            ..Default::default()
        },
        proto::ImageJoinStreamingResponse {
            result: Some(GenericResult {
                status: status::SUCCESS,
                ..Default::default()
            }),
            entry_id: "2".into(),
            ..Default::default()
        },
    ];
    for message in messages {
        let _ = sender.try_send(Ok(message));
    }
    Ok(receiver)
}

/// Creates a sandbox after the configured delay. Attempts with the same
/// `x-idempotency-key` share one creation, which goes on when an attempt's caller gives up:
/// a retried create answers with the sandbox the first attempt made.
async fn sandbox_create(
    state: Arc<State>,
    request: Request<proto::SandboxCreateV2Request>,
) -> Result<proto::SandboxCreateV2Response, Status> {
    admit(&state, &request)?;
    let header = |name: &str| {
        let value = request.metadata().get(name).and_then(|v| v.to_str().ok());
        value.map(str::to_owned)
    };
    let attempt = CreateAttempt {
        idempotency_key: header("x-idempotency-key").unwrap_or_default(),
        retry_attempt: header("x-retry-attempt").unwrap_or_default(),
        retry_delay: header("x-retry-delay"),
    };
    let key = attempt.idempotency_key.clone();
    let mut outcome = {
        let mut inner = state.lock();
        inner.create_attempts.push(attempt);
        match inner.creates.get(&key).filter(|_| !key.is_empty()) {
            Some(outcome) => outcome.clone(),
            None => {
                let (sender, outcome) = watch::channel(None);
                inner.creates.insert(key, outcome.clone());
                let delay = *lock(&state.faults.create_delay);
                let state = Arc::clone(&state);
                let request = request.into_inner();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    sender.send_replace(Some(create_now(&state, request)));
                });
                outcome
            }
        }
    };
    let done = outcome.wait_for(Option::is_some).await;
    let done = done.map_err(|_| Status::internal("fake Modal: create abandoned"))?;
    done.clone()
        .unwrap_or_else(|| Err(Status::internal("fake Modal: no outcome")))
}

fn create_now(
    state: &State,
    request: proto::SandboxCreateV2Request,
) -> Result<proto::SandboxCreateV2Response, Status> {
    let definition = request
        .definition
        .clone()
        .ok_or_else(|| Status::invalid_argument("no definition"))?;
    let root = tempfile::Builder::new()
        .prefix("fake-modal-")
        .tempdir()
        .map_err(|e| Status::internal(format!("sandbox directory: {e}")))?;
    let workdir = definition
        .workdir
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.path().to_owned());
    std::fs::create_dir_all(&workdir)
        .map_err(|e| Status::internal(format!("workdir {}: {e}", workdir.display())))?;
    let mut env = BTreeMap::new();
    for source in &request.secret_sources {
        match &source.source {
            Some(Source::Env(map)) => env.extend(map.contents.clone()),
            _ => {
                return Err(Status::invalid_argument(
                    "the fake supports only env secret sources",
                ));
            }
        }
    }
    let mut inner = state.lock();
    if !inner.apps.values().any(|id| *id == request.app_id) {
        return Err(Status::not_found(format!("no app {}", request.app_id)));
    }
    if !inner
        .images
        .values()
        .any(|(id, built)| *id == definition.image_id && *built)
    {
        return Err(Status::failed_precondition(format!(
            "image {:?} is not built",
            definition.image_id
        )));
    }
    let (id, task_id) = (inner.id("sb"), inner.id("ta"));
    // Strictly increasing, so pagination by creation time is exact.
    let created_at = now().max(inner.last_created_at + 0.001);
    inner.last_created_at = created_at;
    let sandbox = Arc::new(FakeSandbox {
        id: id.clone(),
        task_id: task_id.clone(),
        app_id: request.app_id.clone(),
        tags: Mutex::new(request.tags.clone()),
        env,
        workdir,
        created_at,
        _root: root,
        router_jwts: Mutex::new(HashMap::new()),
        processes: Mutex::new(HashMap::new()),
        commands: Mutex::new(Vec::new()),
        ended: watch::channel(None).0,
    });
    inner.sandboxes.insert(id.clone(), Arc::clone(&sandbox));
    inner.tasks.insert(task_id.clone(), id.clone());
    inner.last_create = Some(request);
    drop(inner);
    let access = proto::CommandRouterAccess {
        jwt: state.router_jwt(&sandbox),
        url: state.router_url(),
    };
    let task_id = if state.task_ids_withheld() {
        String::new()
    } else {
        task_id
    };
    Ok(proto::SandboxCreateV2Response {
        sandbox_id: id.clone(),
        task_id,
        command_router_access: Some(access),
        sandbox_token: format!("st-{id}"),
    })
}

async fn sandbox_wait(
    state: &State,
    request: Request<proto::SandboxWaitRequest>,
) -> Result<proto::SandboxWaitResponse, Status> {
    admit(state, &request)?;
    let request = request.into_inner();
    let sandbox = state.sandbox(&request.sandbox_id)?;
    let mut ended = sandbox.ended.subscribe();
    let patience = Duration::from_secs_f32(request.timeout.clamp(0.0, MAX_WAIT));
    let _ = tokio::time::timeout(patience, ended.wait_for(Option::is_some)).await;
    Ok(proto::SandboxWaitResponse {
        result: sandbox.result(),
    })
}

fn sandbox_terminate(
    state: &State,
    request: Request<proto::SandboxTerminateRequest>,
) -> Result<proto::SandboxTerminateResponse, Status> {
    admit(state, &request)?;
    let sandbox = state.sandbox(&request.into_inner().sandbox_id)?;
    let existing_result = sandbox.result();
    sandbox.end(status::TERMINATED, "terminated");
    Ok(proto::SandboxTerminateResponse { existing_result })
}

fn sandbox_list(
    state: &State,
    request: Request<proto::SandboxListRequest>,
) -> Result<proto::SandboxListResponse, Status> {
    admit(state, &request)?;
    let request = request.into_inner();
    let mut matching: Vec<Arc<FakeSandbox>> = state
        .lock()
        .sandboxes
        .values()
        .filter(|s| request.app_id.is_empty() || s.app_id == request.app_id)
        .filter(|s| request.include_finished || s.result().is_none())
        .filter(|s| request.before_timestamp <= 0.0 || s.created_at < request.before_timestamp)
        .filter(|s| s.has_tags(&request.tags))
        .cloned()
        .collect();
    matching.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
    let withheld = state.task_ids_withheld();
    let sandboxes = matching
        .iter()
        .take(PAGE)
        .map(|s| info(s, withheld))
        .collect();
    Ok(proto::SandboxListResponse { sandboxes })
}

fn info(sandbox: &FakeSandbox, withheld: bool) -> proto::SandboxInfo {
    proto::SandboxInfo {
        id: sandbox.id.clone(),
        created_at: sandbox.created_at,
        task_info: Some(proto::TaskInfo {
            id: if withheld {
                String::new()
            } else {
                sandbox.task_id.clone()
            },
            result: sandbox.result(),
        }),
        app_id: sandbox.app_id.clone(),
        tags: lock(&sandbox.tags).clone(),
    }
}

fn router_access(
    state: &State,
    request: Request<proto::SandboxGetCommandRouterAccessRequest>,
) -> Result<proto::SandboxGetCommandRouterAccessResponse, Status> {
    admit(state, &request)?;
    let sandbox = match request.into_inner().target {
        Some(Target::SandboxId(id)) => state.sandbox(&id)?,
        Some(Target::TaskId(task_id)) => {
            let id = state
                .lock()
                .tasks
                .get(&task_id)
                .cloned()
                .unwrap_or_default();
            state.sandbox(&id)?
        }
        None => return Err(Status::invalid_argument("no sandbox or task id")),
    };
    if sandbox.result().is_some() {
        return Err(Status::not_found(format!(
            "sandbox {} has ended",
            sandbox.id
        )));
    }
    Ok(proto::SandboxGetCommandRouterAccessResponse {
        jwt: state.router_jwt(&sandbox),
        url: state.router_url(),
    })
}

/// The sandbox's task id, withheld while the test asks for polls without one.
fn task_id(
    state: &State,
    request: Request<proto::SandboxGetTaskIdRequest>,
) -> Result<proto::SandboxGetTaskIdResponse, Status> {
    admit(state, &request)?;
    let sandbox = state.sandbox(&request.into_inner().sandbox_id)?;
    state.counters.task_id_polls.fetch_add(1, Ordering::SeqCst);
    if take(&state.faults.withhold_task_ids) {
        return Ok(proto::SandboxGetTaskIdResponse {
            task_id: None,
            task_result: sandbox.result(),
        });
    }
    Ok(proto::SandboxGetTaskIdResponse {
        task_id: Some(sandbox.task_id.clone()),
        task_result: sandbox.result(),
    })
}

/// Replaces the sandbox's tags with the request's, as Modal does: the official client
/// (`modal` 1.6.4) documents `Sandbox.set_tags` as replacing the entire tag set, an empty
/// set clearing them all. A client that sent only the tag it changes loses the others.
fn tags_set(
    state: &State,
    request: Request<proto::SandboxTagsSetRequest>,
) -> Result<proto::Empty, Status> {
    admit(state, &request)?;
    let request = request.into_inner();
    let sandbox = state.sandbox(&request.sandbox_id)?;
    if sandbox.result().is_some() {
        return Err(Status::not_found(format!(
            "sandbox {} has ended",
            sandbox.id
        )));
    }
    *lock(&sandbox.tags) = request.tags;
    Ok(proto::Empty {})
}
