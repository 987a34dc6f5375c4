//! The catalog: the one place that maps configuration to adapters. Each section is a
//! closed enum; each `match` names every backend this build has.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{AdapterError, BlobStore, SessionStore, memory};

use crate::auth::jwt::JwtVerifier;
use crate::auth::keys::ApiKeys;
use crate::auth::{Authenticator, NoAuth, Principals, SharedSecret};
use crate::config::{
    AuthConfig, Config, ProfilesConfig, SandboxConfig, StorageConfig, StoreConfig,
};
use crate::metrics::{MeasuredBlobs, MeasuredStore, Metrics};
use crate::named_calls::{NamedProfiles, NamedSandboxes};
use crate::profiles::{ConvexFunctionType, DirectoryProfileSource};
use crate::runtime::{Adapters, AgentSettings, Limits, QuotaLimits, RuntimeSettings};
use crate::tools::ConvexCaller;

/// Tags the sandboxes of this runtime, so that after a crash it finds its own orphans.
const INSTANCE_TAG: &str = "agent-runtime";

/// An adapter that could not be built: which one, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("[{section}] kind = \"{kind}\": {error}")]
pub struct CatalogError {
    /// The config section (`store`, `storage`, `profiles`, `sandbox`).
    pub section: &'static str,
    /// The chosen kind.
    pub kind: &'static str,
    /// What went wrong.
    pub error: AdapterError,
}

/// Builds every adapter the config names, reporting each one that fails. The session
/// store and the blob store record every call's time and failure in `metrics`, labelled
/// by their kind; those, the profile source and the sandbox provider name a failed call's
/// operation.
pub async fn build_adapters(
    config: &Config,
    link: Option<agent_runtime_local::RuntimeLink>,
    metrics: &Arc<Metrics>,
) -> Result<Adapters, Vec<CatalogError>> {
    let (store, blobs, profiles, sandboxes) = (
        build_store(config).await,
        build_storage(config),
        build_profiles(config),
        build_sandbox(&config.sandbox, link),
    );
    match (store, blobs, profiles, sandboxes) {
        (Ok(store), Ok(blobs), Ok(profiles), Ok(sandboxes)) => Ok(Adapters {
            store: MeasuredStore::wrap(store, store_kind(&config.store), metrics.clone()),
            blobs: MeasuredBlobs::wrap(blobs, storage_kind(&config.storage), metrics.clone()),
            profiles: NamedProfiles::wrap(profiles),
            sandboxes: NamedSandboxes::wrap(sandboxes),
        }),
        (store, blobs, profiles, sandboxes) => {
            Err([store.err(), blobs.err(), profiles.err(), sandboxes.err()]
                .into_iter()
                .flatten()
                .collect())
        }
    }
}

/// The Convex deployment of `[convex]`, for a section of `kind = "convex"`. Config
/// validation already refused such a section without it.
fn convex<'a>(
    config: &'a Config,
    section: &'static str,
) -> Result<&'a agent_runtime_convex::ConvexConfig, CatalogError> {
    config.convex.as_ref().ok_or_else(|| CatalogError {
        section,
        kind: "convex",
        error: AdapterError::invalid_input("there is no [convex] section"),
    })
}

/// The `kind` of `[store]`, which labels its metrics.
pub fn store_kind(config: &StoreConfig) -> &'static str {
    match config {
        StoreConfig::Sqlite(_) => "sqlite",
        StoreConfig::Postgres(_) => "postgres",
        StoreConfig::Convex {} => "convex",
        StoreConfig::Memory {} => "memory",
    }
}

/// The `kind` of `[storage]`, which labels its metrics.
pub fn storage_kind(config: &StorageConfig) -> &'static str {
    match config {
        StorageConfig::Filesystem(_) => "filesystem",
        StorageConfig::S3(_) => "s3",
        StorageConfig::Convex {} => "convex",
        StorageConfig::Memory {} => "memory",
    }
}

/// The `kind` of `[sandbox]`, which labels sandbox start times.
pub fn sandbox_kind(config: &SandboxConfig) -> &'static str {
    match config {
        SandboxConfig::Local(_) => "local",
        SandboxConfig::Modal(_) => "modal",
    }
}

/// The session store named by `[store]`.
pub async fn build_store(config: &Config) -> Result<Arc<dyn SessionStore>, CatalogError> {
    let failed = |kind, error| CatalogError {
        section: "store",
        kind,
        error,
    };
    match &config.store {
        StoreConfig::Sqlite(sql) | StoreConfig::Postgres(sql) => agent_runtime_sql::build(sql)
            .await
            .map_err(|e| failed(store_kind(&config.store), e)),
        StoreConfig::Convex {} => {
            agent_runtime_convex::build_session_store(convex(config, "store")?)
                .map_err(|e| failed("convex", e))
        }
        StoreConfig::Memory {} => Ok(Arc::new(memory::MemorySessionStore::new())),
    }
}

/// The blob store named by `[storage]`.
pub fn build_storage(config: &Config) -> Result<Arc<dyn BlobStore>, CatalogError> {
    use agent_runtime_object_store::BlobStoreConfig;
    let (kind, adapter_config) = match &config.storage {
        StorageConfig::Convex {} => {
            return agent_runtime_convex::build_blob_store(convex(config, "storage")?).map_err(
                |error| CatalogError {
                    section: "storage",
                    kind: "convex",
                    error,
                },
            );
        }
        StorageConfig::Filesystem(fs) => (
            "filesystem",
            BlobStoreConfig::Filesystem {
                root: fs.root.clone(),
            },
        ),
        StorageConfig::S3(s3) => ("s3", BlobStoreConfig::S3(s3.clone())),
        StorageConfig::Memory {} => ("memory", BlobStoreConfig::Memory),
    };
    agent_runtime_object_store::build(&adapter_config).map_err(|error| CatalogError {
        section: "storage",
        kind,
        error,
    })
}

/// The profile source named by `[profiles]`.
pub fn build_profiles(
    config: &Config,
) -> Result<Arc<dyn agent_runtime_api::ProfileSource>, CatalogError> {
    match &config.profiles {
        ProfilesConfig::Directory(directory) => Ok(Arc::new(DirectoryProfileSource::new(
            directory.path.clone(),
        ))),
        ProfilesConfig::Convex {} => agent_runtime_convex::build_profile_source(convex(
            config, "profiles",
        )?)
        .map_err(|error| CatalogError {
            section: "profiles",
            kind: "convex",
            error,
        }),
    }
}

/// Calls Convex functions for the profiles' `convex` tools, when there is a `[convex]`
/// section.
pub fn convex_caller(config: &Config) -> Result<Option<Arc<dyn ConvexCaller>>, CatalogError> {
    let Some(convex) = &config.convex else {
        return Ok(None);
    };
    let client = agent_runtime_convex::ConvexClient::new(convex).map_err(|e| CatalogError {
        section: "convex",
        kind: "convex",
        error: e.into(),
    })?;
    Ok(Some(Arc::new(ConvexTools(client))))
}

/// The `convex` tools' calls, over the Convex client.
struct ConvexTools(agent_runtime_convex::ConvexClient);

#[async_trait::async_trait]
impl ConvexCaller for ConvexTools {
    async fn call(
        &self,
        kind: ConvexFunctionType,
        function: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let result = match kind {
            ConvexFunctionType::Query => self.0.query(function, args).await,
            ConvexFunctionType::Mutation => self.0.mutation(function, args).await,
            ConvexFunctionType::Action => self.0.action(function, args).await,
        };
        result.map_err(|error| error.to_string())
    }
}

/// The sandbox provider named by `[sandbox]`. A local provider gets `link`, the way its
/// sandboxes reach this runtime's `/mcp`, and this program as the sandboxes' init.
pub fn build_sandbox(
    config: &SandboxConfig,
    link: Option<agent_runtime_local::RuntimeLink>,
) -> Result<Arc<dyn agent_runtime_api::SandboxProvider>, CatalogError> {
    match config {
        SandboxConfig::Modal(modal) => {
            agent_runtime_modal::build((**modal).clone()).map_err(|error| CatalogError {
                section: "sandbox",
                kind: "modal",
                error,
            })
        }
        SandboxConfig::Local(local) => {
            let provider = build_local_sandbox(local, link)?;
            Ok(provider)
        }
    }
}

/// The local sandbox provider of `[sandbox] kind = "local"`, with this program (its
/// `sandbox-init` subcommand) as the sandboxes' init.
pub fn build_local_sandbox(
    local: &agent_runtime_local::LocalSandboxConfig,
    link: Option<agent_runtime_local::RuntimeLink>,
) -> Result<Arc<agent_runtime_local::LocalSandboxProvider>, CatalogError> {
    let mut local = local.clone();
    local.runtime_link = link;
    local.init_program =
        std::env::current_exe()
            .ok()
            .map(|program| agent_runtime_local::InitProgram {
                program,
                args: vec!["sandbox-init".to_owned()],
            });
    agent_runtime_local::LocalSandboxProvider::new(local)
        .map(Arc::new)
        .map_err(|error| CatalogError {
            section: "sandbox",
            kind: "local",
            error,
        })
}

/// The authenticator named by `[auth]`; API keys are looked up in `store`. Fails only on
/// a JWT setting that cannot be used (a message naming it).
pub fn authenticator(
    config: &AuthConfig,
    store: Arc<dyn SessionStore>,
) -> Result<Arc<dyn Authenticator>, String> {
    Ok(match config {
        AuthConfig::None {} => Arc::new(NoAuth),
        AuthConfig::SharedSecret(shared) => Arc::new(SharedSecret::new(shared.secret.clone())),
        AuthConfig::Principals(principals) => {
            let keys = principals
                .api_keys
                .then(|| ApiKeys::new(store, principals.key_cache));
            let jwt = match &principals.jwt {
                Some(jwt) => Some(
                    JwtVerifier::new(jwt, reqwest::Client::new())
                        .map_err(|e| format!("[auth.jwt] {e}"))?,
                ),
                None => None,
            };
            Arc::new(Principals { keys, jwt })
        }
    })
}

/// The session manager's settings from the config. Passed-through variables that are not
/// set in the runtime's environment are left out.
pub fn runtime_settings(config: &Config) -> RuntimeSettings {
    runtime_settings_with_env(config, |name| std::env::var(name).ok())
}

fn runtime_settings_with_env(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> RuntimeSettings {
    let sandbox_env: BTreeMap<String, String> = config
        .agent
        .env_passthrough
        .iter()
        .filter_map(|name| env(name).map(|value| (name.clone(), value)))
        .collect();
    RuntimeSettings {
        agent: AgentSettings {
            command: config.agent.command.display().to_string(),
            args: config.agent.args.clone(),
            env: config
                .agent
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect(),
            include_partial_messages: config.agent.include_partial_messages,
        },
        sandbox_env,
        vars: config.vars.clone(),
        idle_timeout: config.sessions.idle_timeout,
        sync_interval: config.sessions.sync_interval,
        max_sessions: config.sessions.max_sessions,
        quotas: QuotaLimits {
            max_live_sessions: config.quotas.max_live_sessions,
            max_stored_sessions: config.quotas.max_stored_sessions,
            creates_per_minute: config.quotas.creates_per_minute,
            messages_per_minute: config.quotas.messages_per_minute,
        },
        limits: Limits {
            file_bytes: config.limits.file_bytes.bytes(),
            workspace_bytes: config.limits.workspace_bytes.bytes(),
            workspace_files: config.limits.workspace_files,
            line_bytes: config.limits.agent_line_bytes.as_usize(),
            replay_page_bytes: config.limits.replay_page_bytes.as_usize(),
        },
        instance_tag: INSTANCE_TAG.to_owned(),
        agent_ready_timeout: Duration::from_secs(60),
        // Set by the server, which knows the address sandboxes reach it at.
        tools: None,
        store_patience: crate::runtime::STORE_PATIENCE,
    }
}

/// Finds the agent command as a sandbox would: a path is checked as is, a bare name is
/// looked up on the `PATH` the sandboxes get.
pub fn find_agent_command(settings: &RuntimeSettings) -> Result<std::path::PathBuf, String> {
    let command = &settings.agent.command;
    let path = settings
        .sandbox_env
        .get("PATH")
        .map(String::as_str)
        .unwrap_or_default();
    let cwd = std::env::current_dir().unwrap_or_default();
    which::which_in(command, Some(path), cwd).map_err(|_| {
        if command.contains('/') {
            format!("the agent command {command} does not exist or is not executable")
        } else {
            format!("the agent command `{command}` was not found on the sandboxes' PATH")
        }
    })
}

/// Puts the warm pools of `[warm_pool]` in front of the sandbox provider, when any has a
/// size above 0. The pool makes nothing until it is started, after startup recovery.
pub fn warm_pool(
    config: &Config,
    adapters: &mut Adapters,
    settings: &RuntimeSettings,
    metrics: &Arc<Metrics>,
) -> Option<Arc<crate::warm_pool::WarmPool>> {
    if config.warm_pool.total() == 0 {
        return None;
    }
    let pool = crate::warm_pool::WarmPool::new(
        adapters.sandboxes.clone(),
        adapters.profiles.clone(),
        &settings.instance_tag,
        config.warm_pool.clone(),
        metrics.clone(),
    );
    adapters.sandboxes = pool.clone();
    Some(pool)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn passes_through_only_set_variables() {
        let config = Config::from_toml_str(
            "[agent]\nenv_passthrough = [\"PATH\", \"UNSET_ONE\"]\nenv = { ANTHROPIC_BASE_URL = \"http://x\" }\n",
            Path::new("/srv"),
        )
        .unwrap();
        let settings =
            runtime_settings_with_env(&config, |name| (name == "PATH").then(|| "/bin".to_owned()));
        assert_eq!(
            settings.sandbox_env,
            BTreeMap::from([("PATH".to_owned(), "/bin".to_owned())])
        );
        assert_eq!(settings.agent.env["ANTHROPIC_BASE_URL"], "http://x");
    }

    #[test]
    fn limits_default_to_the_reference_config_and_follow_the_file() {
        let defaults = Config::from_toml_str("", Path::new("/srv")).unwrap();
        assert_eq!(runtime_settings(&defaults).limits, Limits::default());
        let config = Config::from_toml_str(
            "[limits]\nfile_bytes = \"1MiB\"\nworkspace_bytes = \"2MiB\"\nagent_line_bytes = \"512KiB\"\nreplay_page_bytes = 65536\n",
            Path::new("/srv"),
        )
        .unwrap();
        let limits = runtime_settings(&config).limits;
        assert_eq!(
            (limits.file_bytes, limits.workspace_bytes),
            (1 << 20, 2 << 20)
        );
        assert_eq!(
            (limits.line_bytes, limits.replay_page_bytes),
            (512 << 10, 65536)
        );
    }

    #[test]
    fn finds_the_agent_command_on_the_sandbox_path() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("fake-agent");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut settings =
            runtime_settings_with_env(&Config::from_toml_str("", dir.path()).unwrap(), |_| None);
        settings
            .sandbox_env
            .insert("PATH".into(), dir.path().display().to_string());
        settings.agent.command = "fake-agent".into();
        assert_eq!(find_agent_command(&settings).unwrap(), program);
        settings.agent.command = "missing-agent".into();
        assert!(
            find_agent_command(&settings)
                .unwrap_err()
                .contains("was not found")
        );
        settings.agent.command = program.display().to_string();
        assert_eq!(find_agent_command(&settings).unwrap(), program);
    }
}
