//! Agent profiles: parsing `profile.toml`, checking session metadata, rendering templates.
//!
//! # Layout
//! - [`Profile`]: a parsed, checked profile; [`Profile::render`] makes a [`RenderedProfile`]
//!   for one session.
//! - `manifest`: the `profile.toml` format.
//! - `schema`: the metadata JSON Schema and sample metadata.
//! - `render`: the templates (minijinja, strict undefined, no auto-escaping) and variables.
//! - [`DirectoryProfileSource`]: profiles from a folder of folders.
//!
//! **Invariant:** every template is parsed in [`Profile::parse`], so a syntax error shows
//! when the profile loads, not when a session starts.

mod directory;
mod manifest;
mod render;
mod schema;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use agent_runtime_api::{AdapterError, ErrorKind, FileTree, ProfileBundle, ProfileSource};
use serde::Serialize;

use crate::error::{ErrorCode, RuntimeError};
use serde_json::Value;

pub use directory::{DirectoryProfileSource, MAX_PROFILE_BYTES, is_safe_name};
pub use manifest::{
    ConvexFunctionType, InputSchema, OnUnlistedTool, PermissionMode, PromptMode,
    RUNTIME_MCP_SERVER, ToolKind, ToolSpec,
};

use manifest::{Manifest, McpServerSpec, SchemaSource};
use render::Templates;
use schema::MetadataSchema;

/// Why a profile could not be loaded, or metadata was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProfileError {
    /// No profile has this name.
    #[error("profile {name:?} not found")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The profile's files are wrong; the message names the file and the key or line.
    #[error("profile {profile:?} is invalid: {message}")]
    Invalid {
        /// The profile's name.
        profile: String,
        /// What is wrong, and where.
        message: String,
    },
    /// The session's metadata does not fit the profile.
    #[error("metadata for profile {profile:?} is invalid: {message}")]
    MetadataInvalid {
        /// The profile's name.
        profile: String,
        /// Every problem found, with its JSON pointer.
        message: String,
    },
    /// The profile source failed (unreachable storage, a broken backend).
    #[error("loading profile {name:?} failed: {error}")]
    Source {
        /// The name asked for.
        name: String,
        /// The source's failure.
        error: AdapterError,
    },
}

impl ProfileError {
    /// The wire error code: `profile_not_found`, `profile_invalid` or `metadata_invalid`.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProfileError::NotFound { .. } => ErrorCode::ProfileNotFound,
            ProfileError::Invalid { .. } => ErrorCode::ProfileInvalid,
            ProfileError::MetadataInvalid { .. } => ErrorCode::MetadataInvalid,
            ProfileError::Source { error, .. } if error.is_transient() => {
                ErrorCode::StorageUnavailable
            }
            ProfileError::Source { .. } => ErrorCode::Internal,
        }
    }
}

impl From<ProfileError> for RuntimeError {
    /// A source's failure is a storage failure: unreachable is `storage_unavailable`,
    /// anything else is internal (logged, not shown). The others are the client's to fix
    /// and say what is wrong.
    fn from(error: ProfileError) -> Self {
        match error {
            ProfileError::Source { error, .. } => {
                RuntimeError::storage("loading the profile", error)
            }
            other => RuntimeError::new(other.code(), other.to_string()),
        }
    }
}

/// What clients see of a profile when they list them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSummary {
    /// The profile's name, which is also its agent type.
    pub name: String,
    /// What the profile is for.
    pub description: String,
    /// The JSON Schema that session metadata must satisfy, if any.
    pub metadata_schema: Option<Value>,
}

/// The values one session renders a profile with.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// The session's id, bound as `SESSION_ID`.
    pub session_id: &'a str,
    /// The session's metadata: a JSON object, or `null` for none.
    pub metadata: &'a Value,
    /// The config's `[vars]`, each bound under its name.
    pub vars: &'a BTreeMap<String, String>,
}

/// A system prompt, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPrompt {
    /// The prompt's text.
    pub text: String,
    /// Whether it replaces Claude Code's prompt or is appended to it.
    pub mode: PromptMode,
}

/// An MCP server for the agent, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpServer {
    /// A server the agent starts inside the sandbox.
    Command {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its environment.
        env: BTreeMap<String, String>,
    },
    /// A server the agent reaches over HTTP.
    Url {
        /// Its endpoint.
        url: String,
        /// Headers sent with every request.
        headers: BTreeMap<String, String>,
    },
}

/// A profile rendered for one session: everything the agent driver needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedProfile {
    /// The profile's name (the session's agent type).
    pub name: String,
    /// The model to use, if the profile picks one.
    pub model: Option<String>,
    /// The most agent turns per message, if limited.
    pub max_turns: Option<u32>,
    /// The permission mode, if set.
    pub permission_mode: Option<PermissionMode>,
    /// Whether tool calls the profile does not allow are asked of the clients.
    pub on_unlisted_tool: OnUnlistedTool,
    /// How long a request of the agent's waits for an answer before it is denied.
    pub answer_timeout: std::time::Duration,
    /// Tools the agent may use without asking.
    pub allowed_tools: Vec<String>,
    /// Tools the agent may not use.
    pub disallowed_tools: Vec<String>,
    /// The system prompt, if any.
    pub system_prompt: Option<SystemPrompt>,
    /// The files that start the session's workspace.
    pub workspace: FileTree,
    /// Environment variables for the sandbox.
    pub env: BTreeMap<String, String>,
    /// MCP servers for the agent, by name.
    pub mcp_servers: BTreeMap<String, McpServer>,
    /// Tools served by the runtime, still unrendered.
    pub tools: Vec<ToolSpec>,
    /// The session's template variables, for rendering the tools at each call.
    pub variables: Value,
}

/// A parsed and checked profile, ready to render for any number of sessions.
#[derive(Debug, Clone)]
pub struct Profile {
    name: String,
    manifest: Manifest,
    schema: Option<MetadataSchema>,
    templates: Templates,
}

impl Profile {
    /// Loads the profile `name` from `source` and parses it. A name the source does not
    /// know, or refuses as a name, is `NotFound`.
    pub async fn load(source: &dyn ProfileSource, name: &str) -> Result<Profile, ProfileError> {
        let bundle = source
            .load(name)
            .await
            .map_err(|error| match error.kind() {
                ErrorKind::NotFound | ErrorKind::InvalidInput => ProfileError::NotFound {
                    name: name.to_owned(),
                },
                _ => ProfileError::Source {
                    name: name.to_owned(),
                    error,
                },
            })?;
        Profile::parse(bundle)
    }

    /// Parses the manifest, compiles the metadata schema and parses every template.
    ///
    /// # Behavior
    /// - Any problem is `profile_invalid`, naming the profile, the file and the key or line.
    pub fn parse(bundle: ProfileBundle) -> Result<Profile, ProfileError> {
        let invalid = |message: String| ProfileError::Invalid {
            profile: bundle.name.clone(),
            message,
        };
        let manifest = Manifest::parse(&bundle.manifest).map_err(invalid)?;
        check_env_names(&manifest).map_err(invalid)?;
        let (schema, schema_file) = match &manifest.metadata_schema {
            None => (None, None),
            Some(SchemaSource::Inline(value)) => {
                let schema = MetadataSchema::compile(value.clone())
                    .map_err(|e| invalid(format!("profile.toml: metadata_schema: {e}")))?;
                (Some(schema), None)
            }
            Some(SchemaSource::File(path)) => {
                let value = read_schema_file(&bundle.files, path.as_str()).map_err(invalid)?;
                let schema =
                    MetadataSchema::compile(value).map_err(|e| invalid(format!("{path}: {e}")))?;
                (Some(schema), Some(path))
            }
        };
        let templates =
            Templates::compile(&manifest, &bundle.files, schema_file).map_err(invalid)?;
        Ok(Profile {
            name: bundle.name,
            manifest,
            schema,
            templates,
        })
    }

    /// The profile's name, which is also its agent type.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The most each session of the profile may use (`[budget]`).
    pub fn budget(&self) -> agent_runtime_api::Budget {
        self.manifest.budget
    }

    /// The workspace files that are the same for every session of the profile: files
    /// copied verbatim and templates that read no variable. A warm pool of the profile
    /// lays them into its sandboxes ahead of time.
    pub fn fixed_workspace(&self) -> FileTree {
        self.templates.fixed_workspace()
    }

    /// What clients see of the profile.
    pub fn summary(&self) -> ProfileSummary {
        ProfileSummary {
            name: self.name.clone(),
            description: self.manifest.description.clone(),
            metadata_schema: self.schema.as_ref().map(|s| s.value().clone()),
        }
    }

    /// Checks session metadata: a JSON object (`null` counts as `{}`) that satisfies the
    /// profile's schema. The error lists every violation with its JSON pointer.
    pub fn validate_metadata(&self, metadata: &Value) -> Result<(), ProfileError> {
        let empty = Value::Object(Default::default());
        let metadata = match metadata {
            Value::Null => &empty,
            Value::Object(_) => metadata,
            other => return Err(self.metadata_invalid(format!("must be an object, not {other}"))),
        };
        let Some(schema) = &self.schema else {
            return Ok(());
        };
        let violations = schema.violations(metadata);
        if violations.is_empty() {
            return Ok(());
        }
        Err(self.metadata_invalid(violations.join("; ")))
    }

    /// Metadata that satisfies the schema's required properties, for checking a profile
    /// renders without a real session.
    pub fn sample_metadata(&self) -> Value {
        match self.schema.as_ref().map(|s| schema::sample(s.value())) {
            Some(sample @ Value::Object(_)) => sample,
            _ => Value::Object(Default::default()),
        }
    }

    /// Renders the profile for one session, after checking its metadata.
    ///
    /// # Behavior
    /// - An undefined variable is `profile_invalid` naming the file (or key) and line.
    /// - A metadata key that would replace `SESSION_ID`, `AGENT_TYPE`, `metadata` or a
    ///   config variable, or two keys with one SCREAMING_SNAKE_CASE name, is
    ///   `metadata_invalid`.
    pub fn render(&self, context: &RenderContext<'_>) -> Result<RenderedProfile, ProfileError> {
        self.validate_metadata(context.metadata)?;
        let empty = serde_json::Map::new();
        let metadata = context.metadata.as_object().unwrap_or(&empty);
        let variables = render::variables(context.session_id, &self.name, metadata, context.vars)
            .map_err(|(is_metadata, message)| match is_metadata {
            true => self.metadata_invalid(message),
            false => self.invalid(message),
        })?;
        let invalid = |message: String| self.invalid(message);
        let system_prompt = self
            .templates
            .render_prompt(&variables)
            .map_err(invalid)?
            .zip(self.manifest.system_prompt.as_ref())
            .map(|(text, (_, mode))| SystemPrompt { text, mode: *mode });
        let manifest_string = |key: String| {
            self.templates
                .render_manifest(&key, &variables)
                .map_err(invalid)
        };
        let env = self
            .manifest
            .env
            .keys()
            .map(|name| Ok((name.clone(), manifest_string(format!("env.{name}"))?)))
            .collect::<Result<_, ProfileError>>()?;
        let mcp_servers = self
            .manifest
            .mcp_servers
            .iter()
            .map(|(name, spec)| Ok((name.clone(), render_server(name, spec, &manifest_string)?)))
            .collect::<Result<_, ProfileError>>()?;
        Ok(RenderedProfile {
            name: self.name.clone(),
            model: self.manifest.model.clone(),
            max_turns: self.manifest.max_turns,
            permission_mode: self.manifest.permission_mode,
            on_unlisted_tool: self.manifest.on_unlisted_tool,
            answer_timeout: self.manifest.answer_timeout,
            allowed_tools: self.manifest.allowed_tools.clone(),
            disallowed_tools: self.manifest.disallowed_tools.clone(),
            system_prompt,
            workspace: self
                .templates
                .render_workspace(&variables)
                .map_err(invalid)?,
            env,
            mcp_servers,
            tools: self.manifest.tools.clone(),
            variables: serde_json::to_value(&variables)
                .map_err(|e| self.invalid(format!("variables: {e}")))?,
        })
    }

    fn invalid(&self, message: String) -> ProfileError {
        ProfileError::Invalid {
            profile: self.name.clone(),
            message,
        }
    }

    fn metadata_invalid(&self, message: String) -> ProfileError {
        ProfileError::MetadataInvalid {
            profile: self.name.clone(),
            message,
        }
    }
}

fn render_server(
    name: &str,
    spec: &McpServerSpec,
    render: &impl Fn(String) -> Result<String, ProfileError>,
) -> Result<McpServer, ProfileError> {
    let key = format!("mcp_servers.{name}");
    Ok(match spec {
        McpServerSpec::Command { command, args, env } => McpServer::Command {
            command: command.clone(),
            args: (0..args.len())
                .map(|i| render(format!("{key}.args[{i}]")))
                .collect::<Result<_, _>>()?,
            env: env
                .keys()
                .map(|var| Ok((var.clone(), render(format!("{key}.env.{var}"))?)))
                .collect::<Result<_, ProfileError>>()?,
        },
        McpServerSpec::Url { headers, .. } => McpServer::Url {
            url: render(format!("{key}.url"))?,
            headers: headers
                .keys()
                .map(|header| Ok((header.clone(), render(format!("{key}.headers.{header}"))?)))
                .collect::<Result<_, ProfileError>>()?,
        },
    })
}

fn read_schema_file(files: &FileTree, path: &str) -> Result<Value, String> {
    let Some(file) = files.get(path) else {
        return Err(format!("metadata schema file `{path}` does not exist"));
    };
    serde_json::from_slice(&file.contents).map_err(|e| format!("{path}: {e}"))
}

/// Sandbox variable names must be usable by a shell.
fn check_env_names(manifest: &Manifest) -> Result<(), String> {
    let valid = |name: &str| {
        name.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let servers = manifest.mcp_servers.values().flat_map(|spec| match spec {
        McpServerSpec::Command { env, .. } => env.keys().collect(),
        McpServerSpec::Url { .. } => Vec::new(),
    });
    match manifest.env.keys().chain(servers).find(|name| !valid(name)) {
        Some(name) => Err(format!(
            "profile.toml: environment variable name `{name}` must match [A-Za-z_][A-Za-z0-9_]*"
        )),
        None => Ok(()),
    }
}
