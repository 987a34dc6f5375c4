//! The provider: app and image get-or-create, sandbox create, list by tag, reopen.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_runtime_api::{
    AdapterError, AdapterResult, RelPath, Sandbox, SandboxInfo, SandboxProvider, SandboxSpec,
    async_trait,
};
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::{DIRS_TAG, OWNER_TAG, SESSION_PLACEHOLDER, SESSION_TAG, Settings, resolve};
use crate::control::{Call, ControlPlane};
use crate::grpc::adapter_error;
use crate::image;
use crate::proto::{self, rpc, secret_source::Source};
use crate::sandbox::{ModalSandbox, Parts};

/// Most pages read by one listing, against a server that keeps returning pages.
const MAX_PAGES: usize = 1000;
/// How often a sandbox without a task yet is asked for it (as Modal's clients do).
const TASK_ID_POLL: Duration = Duration::from_millis(500);

/// How long each phase of the last `create` took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateTimings {
    /// Getting the app and the image: near zero once cached, the build time on first use.
    pub image: Duration,
    /// The `SandboxCreateV2` round trip.
    pub sandbox: Duration,
    /// From the created sandbox to its first command finishing, which placed the files.
    pub ready: Duration,
}

impl CreateTimings {
    /// All phases together.
    pub fn total(&self) -> Duration {
        self.image + self.sandbox + self.ready
    }
}

/// Runs sandboxes on Modal. Made by [`crate::build`] or [`ModalSandboxProvider::new`].
pub struct ModalSandboxProvider {
    settings: Settings,
    control: Arc<ControlPlane>,
    app_id: OnceCell<String>,
    image_id: OnceCell<String>,
    last_timings: Mutex<Option<CreateTimings>>,
}

impl std::fmt::Debug for ModalSandboxProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModalSandboxProvider")
            .field("server_url", &self.settings.config.server_url)
            .field("app", &self.settings.config.app)
            .finish_non_exhaustive()
    }
}

impl ModalSandboxProvider {
    /// Checks `config` offline (see [`crate::check_offline`]); contacts nothing.
    pub fn new(config: crate::ModalConfig) -> AdapterResult<Self> {
        let settings = resolve(&config).map_err(|problems| {
            AdapterError::invalid_input(format!("Modal sandbox config: {}", problems.join("; ")))
        })?;
        Ok(ModalSandboxProvider {
            control: Arc::new(ControlPlane::new(&settings)?),
            settings,
            app_id: OnceCell::new(),
            image_id: OnceCell::new(),
            last_timings: Mutex::new(None),
        })
    }

    /// The phases of the most recent successful `create`; also logged with each create.
    pub fn last_create_timings(&self) -> Option<CreateTimings> {
        *self.last_timings.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn app_id(&self) -> AdapterResult<&str> {
        let id = self.app_id.get_or_try_init(|| async {
            let request = proto::AppGetOrCreateRequest {
                app_name: self.settings.config.app.clone(),
                environment_name: self.settings.environment.clone(),
                object_creation_type: proto::CREATE_IF_MISSING,
            };
            let response: proto::AppGetOrCreateResponse = self
                .control
                .unary(rpc::APP_GET_OR_CREATE, request, Call::PLAIN)
                .await
                .map_err(|status| adapter_error("getting the app", &status))?;
            Ok::<_, AdapterError>(response.app_id)
        });
        Ok(id.await?)
    }

    async fn image_id(&self, app_id: &str) -> AdapterResult<&str> {
        let id = self
            .image_id
            .get_or_try_init(|| image::get_or_create(&self.control, &self.settings, app_id));
        Ok(id.await?)
    }

    /// The workspace and agent home of a session's sandbox.
    fn paths(&self, session_id: &str) -> AdapterResult<(String, String)> {
        let config = &self.settings.config;
        let templated = [&config.workdir, &config.agent_home]
            .iter()
            .any(|path| path.contains(SESSION_PLACEHOLDER));
        let single_component = RelPath::new(session_id).is_ok() && !session_id.contains('/');
        if templated && !single_component {
            return Err(AdapterError::invalid_input(format!(
                "session id {session_id:?} cannot be part of a path"
            )));
        }
        let expand = |path: &str| path.replace(SESSION_PLACEHOLDER, session_id);
        Ok((expand(&config.workdir), expand(&config.agent_home)))
    }

    /// The tags of a new sandbox. [`DIRS_TAG`] keeps the session id its directories were
    /// named after, which stays when the sandbox is handed to another session.
    fn tags(&self, spec: &SandboxSpec) -> Vec<proto::SandboxTag> {
        let mut tags = vec![
            tag(OWNER_TAG, &spec.owner_tag),
            tag(SESSION_TAG, &spec.session_id),
            tag(DIRS_TAG, &spec.session_id),
        ];
        let extra = self.settings.config.tags.iter();
        tags.extend(extra.map(|(name, value)| tag(name, value)));
        tags
    }

    async fn create_sandbox(
        &self,
        app_id: &str,
        image_id: &str,
        spec: &SandboxSpec,
        workspace: &str,
    ) -> AdapterResult<proto::SandboxCreateV2Response> {
        let config = &self.settings.config;
        let idle = config.idle_timeout.as_secs();
        let definition = proto::Sandbox {
            // Keeps the sandbox up; commands run beside it through the router.
            entrypoint_args: vec!["sleep".into(), "infinity".into()],
            image_id: image_id.to_owned(),
            resources: Some(proto::Resources {
                milli_cpu: (config.resources.cpu * 1000.0).round() as u32,
                memory_mb: config.resources.memory_mb,
            }),
            timeout_secs: u32::try_from(config.timeout.as_secs()).unwrap_or(u32::MAX),
            workdir: Some(workspace.to_owned()),
            idle_timeout_secs: (idle > 0).then(|| u32::try_from(idle).unwrap_or(u32::MAX)),
        };
        let tags = self.tags(spec);
        // The spec's environment goes in as an ephemeral secret: every command inherits it.
        let secret_sources = (!spec.env.is_empty())
            .then(|| proto::SecretSource {
                source: Some(Source::Env(proto::StringMap {
                    contents: spec.env.clone(),
                })),
            })
            .into_iter()
            .collect();
        let request = proto::SandboxCreateV2Request {
            app_id: app_id.to_owned(),
            definition: Some(definition),
            tags,
            secret_sources,
        };
        self.control
            .unary(rpc::SANDBOX_CREATE_V2, request, Call::PLAIN)
            .await
            .map_err(|status| adapter_error("creating a sandbox", &status))
    }

    async fn create_timed(&self, spec: &SandboxSpec) -> AdapterResult<Box<dyn Sandbox>> {
        let (workspace, agent_home) = self.paths(&spec.session_id)?;
        let started = Instant::now();
        let app_id = self.app_id().await?;
        let image_id = self.image_id(app_id).await?;
        let image_done = Instant::now();
        let created = self
            .create_sandbox(app_id, image_id, spec, &workspace)
            .await?;
        let created_at = Instant::now();
        tracing::Span::current().record("sandbox_id", created.sandbox_id.as_str());
        let sandbox_token = Some(created.sandbox_token).filter(|t| !t.is_empty());
        let task_id = if created.task_id.is_empty() {
            match self
                .task_id(&created.sandbox_id, sandbox_token.as_deref())
                .await
            {
                Ok(task_id) => task_id,
                Err(error) => {
                    self.abandon(&created.sandbox_id, sandbox_token.as_deref())
                        .await;
                    return Err(error);
                }
            }
        } else {
            created.task_id
        };
        let sandbox = ModalSandbox::new(
            Arc::clone(&self.control),
            Parts {
                id: created.sandbox_id,
                task_id,
                workspace,
                agent_home,
                sandbox_token,
                access: created.command_router_access,
                environment: self.settings.environment.clone(),
                tags: self.tags(spec),
            },
        )?;
        if let Err(error) = sandbox.place(&spec.workspace, &spec.agent_home).await {
            // Do not leave a half-made sandbox running.
            if let Err(cleanup) = sandbox.terminate().await {
                tracing::warn!(sandbox = sandbox.id(), %cleanup, "terminating a failed sandbox");
            }
            return Err(error);
        }
        let timings = CreateTimings {
            image: image_done - started,
            sandbox: created_at - image_done,
            ready: created_at.elapsed(),
        };
        self.report(timings);
        Ok(Box::new(sandbox))
    }

    /// Polls `SandboxGetTaskIdV2` until the sandbox has a task (it has been scheduled on a
    /// worker), for at most `start_timeout`.
    async fn task_id(
        &self,
        sandbox_id: &str,
        sandbox_token: Option<&str>,
    ) -> AdapterResult<String> {
        let patience = self.control.limits.start_timeout;
        let started = Instant::now();
        let call = Call {
            deadline: None,
            sandbox_token,
        };
        loop {
            let request = proto::SandboxGetTaskIdRequest {
                sandbox_id: sandbox_id.to_owned(),
                ..Default::default()
            };
            let response: proto::SandboxGetTaskIdResponse = self
                .control
                .unary(rpc::SANDBOX_GET_TASK_ID_V2, request, call)
                .await
                .map_err(|status| adapter_error("getting a sandbox's task", &status))?;
            match response.task_id.filter(|id| !id.is_empty()) {
                Some(task_id) => return Ok(task_id),
                None => {
                    if let Some(result) = response.task_result {
                        return Err(AdapterError::not_found(format!(
                            "Modal sandbox {sandbox_id} ended before it started: {}",
                            result.exception
                        )));
                    }
                }
            }
            if started.elapsed() + TASK_ID_POLL > patience {
                return Err(AdapterError::unavailable(format!(
                    "Modal sandbox {sandbox_id} was not scheduled within {patience:?}"
                )));
            }
            tokio::time::sleep(TASK_ID_POLL).await;
        }
    }

    /// Terminates a sandbox that could not be made ready, logging a failure.
    async fn abandon(&self, sandbox_id: &str, sandbox_token: Option<&str>) {
        let request = proto::SandboxTerminateRequest {
            sandbox_id: sandbox_id.to_owned(),
        };
        let call = Call {
            deadline: None,
            sandbox_token,
        };
        let answer = self
            .control
            .unary::<_, proto::SandboxTerminateResponse>(rpc::SANDBOX_TERMINATE_V2, request, call)
            .await;
        if let Err(status) = answer {
            tracing::warn!(sandbox = sandbox_id, code = ?status.code(),
                grpc_message = status.message(), "terminating a sandbox that did not start");
        }
    }

    fn report(&self, timings: CreateTimings) {
        let span = tracing::Span::current();
        span.record("image_ms", timings.image.as_millis() as u64);
        span.record("sandbox_ms", timings.sandbox.as_millis() as u64);
        span.record("ready_ms", timings.ready.as_millis() as u64);
        tracing::info!(
            total_ms = timings.total().as_millis() as u64,
            "sandbox ready"
        );
        *self.last_timings.lock().unwrap_or_else(|e| e.into_inner()) = Some(timings);
    }

    /// Every live sandbox of the app that has all `tags`, newest first.
    async fn list(&self, tags: Vec<proto::SandboxTag>) -> AdapterResult<Vec<proto::SandboxInfo>> {
        let app_id = self.app_id().await?.to_owned();
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut before = 0.0;
        for _ in 0..MAX_PAGES {
            let request = proto::SandboxListRequest {
                app_id: app_id.clone(),
                before_timestamp: before,
                environment_name: self.settings.environment.clone(),
                include_finished: false,
                tags: tags.clone(),
            };
            let page: proto::SandboxListResponse = self
                .control
                .unary(rpc::SANDBOX_LIST_V2, request, Call::PLAIN)
                .await
                .map_err(|status| adapter_error("listing sandboxes", &status))?;
            let Some(last) = page.sandboxes.last().map(|s| s.created_at) else {
                return Ok(found);
            };
            let progressed = before == 0.0 || last < before;
            found.extend(
                page.sandboxes
                    .into_iter()
                    .filter(|s| seen.insert(s.id.clone())),
            );
            if !progressed {
                break; // The server ignored the cursor; what it sent is all there is.
            }
            before = last;
        }
        Ok(found)
    }
}

fn tag(name: &str, value: &str) -> proto::SandboxTag {
    proto::SandboxTag {
        tag_name: name.to_owned(),
        tag_value: value.to_owned(),
    }
}

fn tag_value<'a>(info: &'a proto::SandboxInfo, name: &str) -> Option<&'a str> {
    info.tags
        .iter()
        .find(|t| t.tag_name == name)
        .map(|t| t.tag_value.as_str())
}

#[async_trait]
impl SandboxProvider for ModalSandboxProvider {
    async fn create(&self, spec: &SandboxSpec) -> AdapterResult<Box<dyn Sandbox>> {
        let span = tracing::info_span!("modal.create", session_id = %spec.session_id,
            sandbox_id = tracing::field::Empty, image_ms = tracing::field::Empty,
            sandbox_ms = tracing::field::Empty, ready_ms = tracing::field::Empty);
        self.create_timed(spec).instrument(span).await
    }

    async fn list_owned(&self, owner_tag: &str) -> AdapterResult<Vec<SandboxInfo>> {
        let listed = self.list(vec![tag(OWNER_TAG, owner_tag)]).await?;
        let owned = listed.iter().filter_map(|info| {
            let session_id = tag_value(info, SESSION_TAG)?;
            Some(SandboxInfo {
                id: info.id.clone(),
                session_id: session_id.to_owned(),
            })
        });
        Ok(owned.collect())
    }

    async fn open(&self, id: &str) -> AdapterResult<Box<dyn Sandbox>> {
        let listed = self.list(Vec::new()).await?;
        let info = listed.iter().find(|info| info.id == id);
        let info =
            info.ok_or_else(|| AdapterError::not_found(format!("no live Modal sandbox {id}")))?;
        let session_id = tag_value(info, SESSION_TAG).ok_or_else(|| {
            AdapterError::not_found(format!("Modal sandbox {id} was not made by this runtime"))
        })?;
        let task_id = info
            .task_info
            .as_ref()
            .map(|t| t.id.clone())
            .unwrap_or_default();
        let task_id = if task_id.is_empty() {
            self.task_id(id, None).await?
        } else {
            task_id
        };
        let dirs = tag_value(info, DIRS_TAG).unwrap_or(session_id);
        let (workspace, agent_home) = self.paths(dirs)?;
        let parts = Parts {
            id: id.to_owned(),
            task_id,
            workspace,
            agent_home,
            sandbox_token: None,
            access: None,
            environment: self.settings.environment.clone(),
            tags: info.tags.clone(),
        };
        Ok(Box::new(ModalSandbox::new(
            Arc::clone(&self.control),
            parts,
        )?))
    }
}
