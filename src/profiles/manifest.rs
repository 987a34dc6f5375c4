//! `profile.toml`: the raw serde shape and its checked, typed form.

use std::collections::BTreeMap;
use std::time::Duration;

use agent_runtime_api::{Budget, RelPath};
use serde::Deserialize;
use serde_json::Value;

pub use super::schema::InputSchema;

/// How Claude Code asks for permission before using a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PermissionMode {
    /// Ask for every tool that needs permission.
    Default,
    /// Accept file edits without asking.
    AcceptEdits,
    /// Never ask.
    BypassPermissions,
    /// Plan only; change nothing.
    Plan,
}

impl PermissionMode {
    /// The value Claude Code's `--permission-mode` flag takes.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Default => "default",
            PermissionMode::AcceptEdits => "acceptEdits",
            PermissionMode::BypassPermissions => "bypassPermissions",
            PermissionMode::Plan => "plan",
        }
    }
}

/// What happens to a tool call that the profile does not allow up front (not in
/// `allowed_tools`, not allowed by `permission_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnlistedTool {
    /// Claude Code denies it on its own; the model gets an error as the tool's result.
    #[default]
    Deny,
    /// The runtime asks the session's clients (a `permission` event, or a `question`
    /// event for `AskUserQuestion`) and the agent waits for their answer.
    Ask,
}

/// How long a request of the agent's waits for a person when the profile does not say.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The longest a profile may let a request wait: a live sandbox kept that long for one
/// answer is a leak, not a wait.
pub const MAX_ANSWER_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Whether a profile's system prompt replaces Claude Code's own or is appended to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    /// Appended to the default system prompt (`--append-system-prompt`).
    #[default]
    Append,
    /// Replaces the default system prompt (`--system-prompt`).
    Replace,
}

/// A declarative tool that the runtime serves to the agent over MCP.
///
/// Its string fields are templates, kept unrendered: they are rendered per call, with the
/// call's arguments bound as `args`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The tool's name as the agent sees it.
    pub name: String,
    /// What the tool does, shown to the agent.
    pub description: String,
    /// JSON Schema of the tool's arguments, compiled.
    pub input_schema: InputSchema,
    /// What a call does.
    pub kind: ToolKind,
}

/// What calling a [`ToolSpec`] does.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolKind {
    /// An HTTP request.
    Http {
        /// The HTTP method, upper case.
        method: String,
        /// The URL template.
        url: String,
        /// Header templates.
        headers: BTreeMap<String, String>,
        /// The JSON body; its strings are templates.
        body: Option<Value>,
    },
    /// A Convex function call.
    Convex {
        /// The function path, such as `events:list`.
        function: String,
        /// Which kind of Convex function it is.
        function_type: ConvexFunctionType,
        /// The arguments; their strings are templates.
        args: Option<Value>,
    },
}

/// The kind of a Convex function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvexFunctionType {
    /// A read-only query.
    Query,
    /// A transactional write.
    Mutation,
    /// An action, which may have side effects outside Convex.
    Action,
}

/// The checked content of `profile.toml`.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    pub description: String,
    pub model: Option<String>,
    pub max_turns: Option<u32>,
    pub permission_mode: Option<PermissionMode>,
    pub on_unlisted_tool: OnUnlistedTool,
    pub answer_timeout: Duration,
    pub allowed_tools: Vec<String>,
    pub disallowed_tools: Vec<String>,
    pub system_prompt: Option<(PromptSource, PromptMode)>,
    pub metadata_schema: Option<SchemaSource>,
    pub template_exclude: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub mcp_servers: BTreeMap<String, McpServerSpec>,
    pub tools: Vec<ToolSpec>,
    /// The most each session of the profile may use (`[budget]`); unlimited when absent.
    pub budget: Budget,
}

/// Where the system prompt's template comes from.
#[derive(Debug, Clone)]
pub(crate) enum PromptSource {
    File(RelPath),
    Text(String),
}

/// Where the metadata schema comes from.
#[derive(Debug, Clone)]
pub(crate) enum SchemaSource {
    Inline(Value),
    File(RelPath),
}

/// An MCP server as declared, before rendering.
#[derive(Debug, Clone)]
pub(crate) enum McpServerSpec {
    Command {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    },
    Url {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    description: String,
    model: Option<String>,
    max_turns: Option<u32>,
    permission_mode: Option<PermissionMode>,
    #[serde(default)]
    on_unlisted_tool: OnUnlistedTool,
    #[serde(
        default,
        deserialize_with = "agent_runtime_api::duration::optional_positive"
    )]
    answer_timeout: Option<Duration>,
    #[serde(default)]
    allowed_tools: Vec<String>,
    #[serde(default)]
    disallowed_tools: Vec<String>,
    system_prompt: Option<RawPrompt>,
    metadata_schema: Option<Value>,
    metadata_schema_file: Option<RelPath>,
    #[serde(default)]
    template_exclude: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    mcp_servers: BTreeMap<String, RawMcpServer>,
    #[serde(default)]
    tools: Vec<RawTool>,
    #[serde(default)]
    budget: RawBudget,
}

/// `[budget]`: the most a session of the profile may use; each limit absent is unlimited.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_cost_usd: Option<f64>,
    max_tokens: Option<u64>,
    max_turns: Option<u64>,
}

impl RawBudget {
    fn check(self) -> Result<Budget, String> {
        if let Some(cost) = self.max_cost_usd
            && !(cost.is_finite() && cost >= 0.0)
        {
            return Err(format!(
                "`budget.max_cost_usd` must be a non-negative number, not {cost}"
            ));
        }
        Ok(Budget {
            max_cost_usd: self.max_cost_usd,
            max_tokens: self.max_tokens,
            max_turns: self.max_turns,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    file: Option<RelPath>,
    text: Option<String>,
    #[serde(default)]
    mode: PromptMode,
}

// Both server kinds share one struct so that a mistake gets a message naming the key,
// which an untagged enum's "did not match any variant" would not.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcpServer {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawToolKind {
    Http,
    Convex,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: String,
    kind: RawToolKind,
    description: String,
    input_schema: Option<Value>,
    method: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<Value>,
    function: Option<String>,
    function_type: Option<ConvexFunctionType>,
    args: Option<Value>,
}

const HTTP_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl Manifest {
    /// Parses and checks `profile.toml`; the error is a message for `profile_invalid`.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| format!("profile.toml: {}", e.to_string().trim()))?;
        let in_manifest = |message: String| format!("profile.toml: {message}");
        let system_prompt = raw.system_prompt.map(prompt_source).transpose();
        let metadata_schema = match (raw.metadata_schema, raw.metadata_schema_file) {
            (Some(_), Some(_)) => {
                return Err(in_manifest(
                    "set `metadata_schema` or `metadata_schema_file`, not both".into(),
                ));
            }
            (Some(inline), None) => Some(SchemaSource::Inline(inline)),
            (None, Some(file)) => Some(SchemaSource::File(file)),
            (None, None) => None,
        };
        let mcp_servers = raw
            .mcp_servers
            .into_iter()
            .map(|(name, server)| Ok((name.clone(), mcp_server(&name, server)?)))
            .collect::<Result<_, String>>()
            .map_err(in_manifest)?;
        let answer_timeout = raw.answer_timeout.unwrap_or(DEFAULT_ANSWER_TIMEOUT);
        if answer_timeout > MAX_ANSWER_TIMEOUT {
            return Err(in_manifest(format!(
                "`answer_timeout` is at most {}",
                humantime::format_duration(MAX_ANSWER_TIMEOUT)
            )));
        }
        Ok(Manifest {
            description: raw.description,
            model: raw.model,
            max_turns: raw.max_turns,
            permission_mode: raw.permission_mode,
            on_unlisted_tool: raw.on_unlisted_tool,
            answer_timeout,
            allowed_tools: raw.allowed_tools,
            disallowed_tools: raw.disallowed_tools,
            system_prompt: system_prompt.map_err(in_manifest)?,
            metadata_schema,
            template_exclude: raw.template_exclude,
            env: raw.env,
            mcp_servers,
            tools: tools(raw.tools).map_err(in_manifest)?,
            budget: raw.budget.check().map_err(in_manifest)?,
        })
    }
}

fn prompt_source(raw: RawPrompt) -> Result<(PromptSource, PromptMode), String> {
    let source = match (raw.file, raw.text) {
        (Some(file), None) => PromptSource::File(file),
        (None, Some(text)) => PromptSource::Text(text),
        _ => return Err("`system_prompt` needs exactly one of `file` or `text`".into()),
    };
    Ok((source, raw.mode))
}

/// The MCP server name under which the runtime serves a profile's `[[tools]]`.
pub const RUNTIME_MCP_SERVER: &str = "runtime";

fn mcp_server(name: &str, raw: RawMcpServer) -> Result<McpServerSpec, String> {
    let key = format!("mcp_servers.{name}");
    if name == RUNTIME_MCP_SERVER {
        return Err(format!(
            "`{key}`: the name `{RUNTIME_MCP_SERVER}` is kept for the runtime's own tools"
        ));
    }
    match (raw.command, raw.url) {
        (Some(command), None) => {
            if !raw.headers.is_empty() {
                return Err(format!("`{key}.headers` is only for url-based servers"));
            }
            Ok(McpServerSpec::Command {
                command,
                args: raw.args,
                env: raw.env,
            })
        }
        (None, Some(url)) => {
            if !raw.args.is_empty() || !raw.env.is_empty() {
                return Err(format!(
                    "`{key}.args` and `.env` are only for command-based servers"
                ));
            }
            Ok(McpServerSpec::Url {
                url,
                headers: raw.headers,
            })
        }
        _ => Err(format!("`{key}` needs exactly one of `command` or `url`")),
    }
}

fn tools(raw: Vec<RawTool>) -> Result<Vec<ToolSpec>, String> {
    let mut seen = std::collections::BTreeSet::new();
    raw.into_iter()
        .map(|tool| {
            if !seen.insert(tool.name.clone()) {
                return Err(format!("two tools are named `{}`", tool.name));
            }
            tool_spec(tool)
        })
        .collect()
}

fn tool_spec(raw: RawTool) -> Result<ToolSpec, String> {
    let name = raw.name;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(format!(
            "tool name `{name}` must be 1-64 characters of [A-Za-z0-9_-]"
        ));
    }
    let key = format!("tools `{name}`");
    let misplaced = |field: &str| Err(format!("{key}: `{field}` does not belong to its kind"));
    let kind = match raw.kind {
        RawToolKind::Http => {
            if raw.function.is_some() || raw.function_type.is_some() || raw.args.is_some() {
                return misplaced("function`/`function_type`/`args");
            }
            let method = raw
                .method
                .unwrap_or_else(|| "GET".into())
                .to_ascii_uppercase();
            if !HTTP_METHODS.contains(&method.as_str()) {
                return Err(format!(
                    "{key}: method `{method}` is not one of {HTTP_METHODS:?}"
                ));
            }
            let Some(url) = raw.url else {
                return Err(format!("{key}: kind \"http\" needs `url`"));
            };
            crate::tools::UrlTemplate::parse(&url).map_err(|e| format!("{key}: {e}"))?;
            ToolKind::Http {
                method,
                url,
                headers: raw.headers,
                body: raw.body,
            }
        }
        RawToolKind::Convex => {
            if raw.method.is_some() || raw.url.is_some() || !raw.headers.is_empty() {
                return misplaced("method`/`url`/`headers");
            }
            if raw.body.is_some() {
                return misplaced("body");
            }
            let (Some(function), Some(function_type)) = (raw.function, raw.function_type) else {
                return Err(format!(
                    "{key}: kind \"convex\" needs `function` and `function_type`"
                ));
            };
            ToolKind::Convex {
                function,
                function_type,
                args: raw.args,
            }
        }
    };
    let input_schema = raw
        .input_schema
        .unwrap_or_else(|| serde_json::json!({ "type": "object" }));
    let input_schema = InputSchema::compile(input_schema).map_err(|e| format!("{key}: {e}"))?;
    Ok(ToolSpec {
        name,
        description: raw.description,
        input_schema,
        kind,
    })
}
