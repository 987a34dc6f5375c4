//! The configuration of the Modal sandbox provider, its offline checks and [`build`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{AdapterError, SandboxProvider};
use serde::Deserialize;

use crate::ModalSandboxProvider;

/// Modal's public control plane.
pub const DEFAULT_SERVER_URL: &str = "https://api.modal.com";
/// The Claude Code release installed by the default image.
pub const DEFAULT_CLAUDE_CODE_VERSION: &str = "2.1.197";
/// The tag that marks which runtime owns a sandbox.
pub const OWNER_TAG: &str = "agent-runtime-owner";
/// The tag that names the session a sandbox serves.
pub const SESSION_TAG: &str = "agent-runtime-session";
/// The tag that names the session id a sandbox's directories were named after (see
/// [`SESSION_PLACEHOLDER`]); it stays when the sandbox is handed to another session.
pub const DIRS_TAG: &str = "agent-runtime-dirs";
/// Written in `workdir` or `agent_home`, expands to the session id.
pub const SESSION_PLACEHOLDER: &str = "{session_id}";

/// Where and how sandboxes are made on Modal.
///
/// Every field has a default; only the credentials must come from somewhere (the config,
/// or `MODAL_TOKEN_ID` / `MODAL_TOKEN_SECRET`). Unknown fields are refused.
///
/// ```toml
/// token_id = "ak-..."             # default: $MODAL_TOKEN_ID
/// token_secret = "as-..."         # default: $MODAL_TOKEN_SECRET
/// environment = "main"            # default: $MODAL_ENVIRONMENT, else the workspace default
/// app = "agent-runtime"
/// timeout = "24h"                 # a sandbox's maximum lifetime
/// idle_timeout = "15m"            # "0s": none
/// workdir = "/workspace"
/// agent_home = "/agent-home"
/// image = { tag = "node:22-slim", commands = ["RUN npm install -g @anthropic-ai/claude-code@2.1.197"] }
/// resources = { cpu = 1.0, memory_mb = 2048 }
/// tags = { team = "research" }
/// attempt_timeout = "30s"         # each attempt of a control-plane call
/// start_timeout = "5m"            # scheduling and the first router connection
/// max_throttle_wait = "5m"        # all waits Modal asks for while throttling one call
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModalConfig {
    /// The control plane's URL: `https://…`, or `http://…` for a test server.
    pub server_url: String,
    /// The token id (`ak-…`); `MODAL_TOKEN_ID` when absent.
    pub token_id: Option<String>,
    /// The token secret (`as-…`); `MODAL_TOKEN_SECRET` when absent.
    pub token_secret: Option<Secret>,
    /// The Modal environment; `MODAL_ENVIRONMENT` when absent, else the workspace default.
    pub environment: Option<String>,
    /// The app that owns the sandboxes; created if missing.
    pub app: String,
    /// The image sandboxes run.
    pub image: ImageConfig,
    /// CPU and memory of each sandbox.
    pub resources: ResourcesConfig,
    /// A sandbox's maximum lifetime (Modal allows up to 24 h).
    #[serde(with = "agent_runtime_api::duration")]
    pub timeout: Duration,
    /// How long a sandbox may stay idle (no running command) before Modal ends it; zero for
    /// no limit.
    #[serde(with = "agent_runtime_api::duration")]
    pub idle_timeout: Duration,
    /// The workspace, an absolute path inside the sandbox. `{session_id}` expands to the
    /// session id, for hosts where sandboxes share one filesystem (test servers).
    pub workdir: String,
    /// The agent's home (its config directory), an absolute path inside the sandbox, not
    /// inside `workdir`. `{session_id}` expands as in `workdir`.
    pub agent_home: String,
    /// Extra tags put on every sandbox.
    pub tags: BTreeMap<String, String>,
    /// The deadline of each attempt of a control-plane call. A create that outlives it is
    /// retried with the same `x-idempotency-key`, so Modal makes one sandbox, not two.
    #[serde(with = "agent_runtime_api::duration")]
    pub attempt_timeout: Duration,
    /// How long a new sandbox may take to be scheduled (its task id polled) and for its
    /// command router to accept the first connection. Modal's Python client allows about
    /// five minutes: the sandbox may take a long time to start on the worker.
    #[serde(with = "agent_runtime_api::duration")]
    pub start_timeout: Duration,
    /// The most time one call waits in total as Modal's `RPCRetryPolicy` asks (throttling,
    /// `RESOURCE_EXHAUSTED`) before it fails; "0s" fails throttled calls at once.
    #[serde(with = "agent_runtime_api::duration")]
    pub max_throttle_wait: Duration,
}

impl Default for ModalConfig {
    fn default() -> Self {
        ModalConfig {
            server_url: DEFAULT_SERVER_URL.to_owned(),
            token_id: None,
            token_secret: None,
            environment: None,
            app: "agent-runtime".to_owned(),
            image: ImageConfig::default(),
            resources: ResourcesConfig::default(),
            timeout: Duration::from_secs(24 * 3600),
            idle_timeout: Duration::from_secs(15 * 60),
            workdir: "/workspace".to_owned(),
            agent_home: "/agent-home".to_owned(),
            tags: BTreeMap::new(),
            attempt_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(5 * 60),
            max_throttle_wait: Duration::from_secs(5 * 60),
        }
    }
}

/// The image of every sandbox: a registry image plus Dockerfile commands run on top.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// A public registry image, as after `FROM` (`node:22-slim`, `ghcr.io/org/img:tag`).
    pub tag: String,
    /// Dockerfile commands run on top of it, e.g. `RUN npm install -g …`. The image also
    /// needs `sh`, `cat`, `mkdir`, GNU `tar` and GNU `find`, which file transfer uses.
    pub commands: Vec<String>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            tag: "node:22-slim".to_owned(),
            commands: vec![format!(
                "RUN npm install -g @anthropic-ai/claude-code@{DEFAULT_CLAUDE_CODE_VERSION}"
            )],
        }
    }
}

impl ImageConfig {
    /// The image as Dockerfile commands.
    pub fn dockerfile_commands(&self) -> Vec<String> {
        let mut commands = vec![format!("FROM {}", self.tag)];
        commands.extend(self.commands.iter().cloned());
        commands
    }
}

/// CPU and memory reserved for each sandbox.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourcesConfig {
    /// CPU cores (fractions allowed).
    pub cpu: f64,
    /// Memory in MiB.
    pub memory_mb: u32,
}

impl Default for ResourcesConfig {
    fn default() -> Self {
        ResourcesConfig {
            cpu: 1.0,
            memory_mb: 2048,
        }
    }
}

pub use agent_runtime_api::Secret;

/// The configuration with credentials resolved and checked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub config: ModalConfig,
    pub token_id: String,
    pub token_secret: Secret,
    pub environment: String,
}

/// Lists what is wrong with `config` without reaching the network: missing credentials
/// (naming `token_id` / `token_secret` and their environment variables), malformed values.
/// Empty when the provider can be built.
pub fn check_offline(config: &ModalConfig) -> Vec<String> {
    match resolve(config) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

/// Checks `config` offline and makes the provider. Nothing is contacted until the first
/// call; credentials that Modal refuses show up there.
pub fn build(config: ModalConfig) -> Result<Arc<dyn SandboxProvider>, AdapterError> {
    Ok(Arc::new(ModalSandboxProvider::new(config)?))
}

pub(crate) fn resolve(config: &ModalConfig) -> Result<Settings, Vec<String>> {
    let mut problems = Vec::new();
    let token_id = config.token_id.clone().or_else(|| env("MODAL_TOKEN_ID"));
    let token_secret =
        (config.token_secret.clone()).or_else(|| env("MODAL_TOKEN_SECRET").map(Secret::new));
    if token_id.is_none() {
        problems.push("missing token_id: set it in the config or MODAL_TOKEN_ID".to_owned());
    }
    if token_secret.is_none() {
        problems
            .push("missing token_secret: set it in the config or MODAL_TOKEN_SECRET".to_owned());
    }
    let environment = (config.environment.clone())
        .or_else(|| env("MODAL_ENVIRONMENT"))
        .unwrap_or_default();
    for (name, value) in [
        ("token_id", token_id.as_deref().unwrap_or_default()),
        (
            "token_secret",
            token_secret
                .as_ref()
                .map(Secret::expose)
                .unwrap_or_default(),
        ),
        ("environment", &environment),
    ] {
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            problems.push(format!("{name} may hold only visible ASCII characters"));
        }
    }
    check_values(config, &mut problems);
    match (token_id, token_secret) {
        (Some(token_id), Some(token_secret)) if problems.is_empty() => Ok(Settings {
            config: config.clone(),
            token_id,
            token_secret,
            environment,
        }),
        _ => Err(problems),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn check_values(config: &ModalConfig, problems: &mut Vec<String>) {
    if let Err(error) = crate::grpc::endpoint(&config.server_url) {
        problems.push(format!("server_url: {error}"));
    }
    if config.app.trim().is_empty() {
        problems.push("app must not be empty".to_owned());
    }
    if config.image.tag.trim().is_empty() || config.image.tag.contains(char::is_whitespace) {
        problems.push(format!(
            "image.tag {:?} is not an image reference",
            config.image.tag
        ));
    }
    if config.image.commands.iter().any(|c| c.contains('\n')) {
        problems.push("image.commands: write one Dockerfile command per entry".to_owned());
    }
    if !(config.resources.cpu > 0.0 && config.resources.cpu <= 1024.0) {
        problems.push("resources.cpu must be above 0".to_owned());
    }
    if config.resources.memory_mb == 0 {
        problems.push("resources.memory_mb must be above 0".to_owned());
    }
    if config.timeout < Duration::from_secs(1) || config.timeout > Duration::from_secs(86_400) {
        problems.push("timeout must be between 1s and 24h".to_owned());
    }
    if config.idle_timeout > Duration::from_secs(86_400) {
        problems.push("idle_timeout must be at most 24h".to_owned());
    }
    if config.attempt_timeout < Duration::from_millis(100)
        || config.attempt_timeout > Duration::from_secs(3600)
    {
        problems.push("attempt_timeout must be between 100ms and 1h".to_owned());
    }
    if config.start_timeout < Duration::from_millis(100)
        || config.start_timeout > Duration::from_secs(3600)
    {
        problems.push("start_timeout must be between 100ms and 1h".to_owned());
    }
    if config.max_throttle_wait > Duration::from_secs(86_400) {
        problems.push("max_throttle_wait must be at most 24h".to_owned());
    }
    for (name, path) in [
        ("workdir", &config.workdir),
        ("agent_home", &config.agent_home),
    ] {
        if let Some(problem) = path_problem(path) {
            problems.push(format!("{name} {path:?}: {problem}"));
        }
    }
    let (work, home) = (
        format!("{}/", config.workdir),
        format!("{}/", config.agent_home),
    );
    if work.starts_with(&home) || home.starts_with(&work) {
        problems.push("workdir and agent_home must be separate directories".to_owned());
    }
    for name in config.tags.keys() {
        if name == OWNER_TAG || name == SESSION_TAG || name == DIRS_TAG {
            problems.push(format!("tags: {name:?} is set by the provider itself"));
        }
    }
}

fn path_problem(path: &str) -> Option<&'static str> {
    let plain = path.replace(SESSION_PLACEHOLDER, "x");
    if !plain.starts_with('/') || plain.len() < 2 {
        return Some("must be an absolute path below /");
    }
    if plain.contains(['{', '}', '\0', '\n']) {
        return Some("the only placeholder allowed is {session_id}");
    }
    let components = plain[1..].split('/');
    if components.clone().any(|c| matches!(c, "" | "." | "..")) {
        return Some("must be normalized (no empty, . or .. components, no trailing /)");
    }
    None
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
