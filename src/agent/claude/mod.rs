//! The Claude Code driver: its argv and environment (`command.rs`), its home files (the
//! state file, the MCP config, the transcript it continues), its stream-json protocol
//! (`protocol.rs`) and the MCP failures its output reports (`mcp.rs`). What was checked
//! against the pinned CLI is in ARCHITECTURE.md's decisions.

mod command;
mod mcp;
mod protocol;

use std::collections::BTreeMap;

use agent_runtime_api::{FileStat, FileTree, RelPath};
use serde_json::json;

use self::command::{AgentLaunch, LaunchMode, build_command, transcript_dir};
use crate::agent::{
    AgentDriver, AgentProtocol, AgentSettings, AgentStart, Conversation, Decision, NotAnObject,
    ParsedLine, PreparedAgent, ToolFailure,
};
use crate::profiles::{McpServer, OnUnlistedTool, PromptMode, RUNTIME_MCP_SERVER};

/// Where the MCP config goes, in the agent's home.
const MCP_CONFIG_FILE: &str = "mcp-config.json";

/// Claude Code, headless, in stream-json mode.
#[derive(Debug, Clone)]
pub struct ClaudeCode {
    settings: AgentSettings,
}

impl ClaudeCode {
    /// The driver for the `[agent]` settings.
    pub fn new(settings: AgentSettings) -> Self {
        Self { settings }
    }

    /// The stream-json protocol of one Claude Code process.
    pub fn protocol() -> Box<dyn AgentProtocol> {
        Box::new(StreamJson {
            mcp: mcp::McpWatch::new(RUNTIME_MCP_SERVER),
        })
    }
}

impl AgentDriver for ClaudeCode {
    fn prepare(&self, start: &AgentStart<'_>) -> Result<PreparedAgent, String> {
        let home = start.home;
        let mut home_files = FileTree::default();
        home_files.insert(rel(".claude.json")?, claude_state(start.workspace_path));
        let runtime_tools = start.runtime_tools.as_ref().map(|tools| {
            json!({
                "type": "http",
                "url": tools.url,
                "headers": { "Authorization": format!("Bearer {}", tools.token) },
            })
        });
        home_files.insert(
            rel(MCP_CONFIG_FILE)?,
            mcp_config(start.profile, runtime_tools),
        );

        // Claude Code finds a transcript by its path; resume passes the absolute path.
        let transcripts = transcript_dir(start.workspace_path);
        let mut lay_transcript = |id: &str, bytes: &bytes::Bytes| {
            let path = rel(&format!("{transcripts}/{id}.jsonl"))?;
            let absolute = format!("{home}/{path}");
            home_files.insert(path, bytes.clone());
            Ok::<_, String>(absolute)
        };
        let mode = match &start.conversation {
            Conversation::New { id } => LaunchMode::New {
                agent_session_id: id.clone(),
            },
            Conversation::Resume { id, transcript } => LaunchMode::Resume {
                transcript_path: lay_transcript(id, transcript)?,
            },
            Conversation::Fork {
                base,
                transcript,
                id,
            } => LaunchMode::Fork {
                transcript_path: lay_transcript(base, transcript)?,
                agent_session_id: id.clone(),
            },
        };

        let mut launch = agent_launch(start.profile, home);
        if start.runtime_tools.is_some() {
            // The profile declared these tools; the agent may use them without asking.
            launch
                .allowed_tools
                .push(format!("mcp__{RUNTIME_MCP_SERVER}"));
        }
        Ok(PreparedAgent {
            home_files,
            command: build_command(&self.settings, &launch, &mode),
            protocol: Self::protocol(),
        })
    }

    fn find_transcript<'a>(
        &self,
        home: &'a [FileStat],
        conversation: &str,
    ) -> Option<&'a FileStat> {
        // Under `projects/<slug>/`, whatever the slug: Claude Code shortens long ones
        // with a hash the runtime cannot reproduce.
        let suffix = format!("/{conversation}.jsonl");
        home.iter().find(|stat| {
            stat.path.as_str().starts_with("projects/") && stat.path.as_str().ends_with(&suffix)
        })
    }

    /// Settings (hooks, permissions), agents and commands under a `.claude/` directory,
    /// instructions in a `CLAUDE.md` or `CLAUDE.local.md` (Claude Code reads those of
    /// subdirectories too), and project MCP servers in `.mcp.json`.
    fn is_control_file(&self, path: &RelPath) -> bool {
        let path = path.as_str();
        let name = path.rsplit('/').next().unwrap_or(path);
        path == ".mcp.json"
            || matches!(name, "CLAUDE.md" | "CLAUDE.local.md")
            || path.split('/').any(|component| component == ".claude")
    }
}

/// Claude Code's stream-json protocol, for one process.
struct StreamJson {
    /// Follows the process's MCP calls.
    mcp: mcp::McpWatch,
}

impl AgentProtocol for StreamJson {
    fn initialize(&mut self, request_id: &str) -> String {
        protocol::control_request(request_id, "initialize")
    }

    fn user_message(&mut self, content: &serde_json::Value) -> String {
        protocol::user_message(content)
    }

    fn interrupt(&mut self, request_id: &str) -> String {
        protocol::control_request(request_id, "interrupt")
    }

    fn decide(&mut self, request_id: &str, decision: &Decision<'_>) -> String {
        protocol::permission_response(request_id, decision)
    }

    fn refuse(&mut self, request_id: &str, error: &str) -> String {
        protocol::control_error(request_id, error)
    }

    /// Claude Code reads the answers from the tool's input: the questions as they were
    /// asked, plus `answers`.
    fn with_answers(
        &self,
        input: &serde_json::Map<String, serde_json::Value>,
        answers: &BTreeMap<String, String>,
    ) -> serde_json::Value {
        let mut input = input.clone();
        input.insert("answers".into(), json!(answers));
        serde_json::Value::Object(input)
    }

    fn parse_line(&mut self, text: String) -> Result<ParsedLine, NotAnObject> {
        protocol::parse_line(text)
    }

    fn message_id(&self, line: &str) -> Option<String> {
        protocol::assistant_uuid(line)
    }

    fn tool_failures(&mut self, line: &str) -> Vec<ToolFailure> {
        self.mcp.observe(line)
    }
}

fn agent_launch(rendered: &crate::profiles::RenderedProfile, home: &str) -> AgentLaunch {
    let (system_prompt, append_system_prompt) = match &rendered.system_prompt {
        Some(prompt) if prompt.mode == PromptMode::Replace => (Some(prompt.text.clone()), None),
        Some(prompt) => (None, Some(prompt.text.clone())),
        None => (None, None),
    };
    AgentLaunch {
        model: rendered.model.clone(),
        max_turns: rendered.max_turns,
        permission_mode: rendered.permission_mode.map(|m| m.as_str().to_owned()),
        ask_permission: rendered.on_unlisted_tool == OnUnlistedTool::Ask,
        allowed_tools: rendered.allowed_tools.clone(),
        disallowed_tools: rendered.disallowed_tools.clone(),
        system_prompt,
        append_system_prompt,
        agent_home: home.to_owned(),
        mcp_config_path: format!("{home}/{MCP_CONFIG_FILE}"),
    }
}

/// Claude Code's state file: the workspace is trusted, so the profile's
/// `.claude/settings.json` permissions apply.
fn claude_state(workspace_path: &str) -> String {
    json!({
        "hasCompletedOnboarding": true,
        "projects": { workspace_path: { "hasTrustDialogAccepted": true } },
    })
    .to_string()
}

/// The agent's MCP config: the profile's servers, and the runtime's own if it has one.
fn mcp_config(
    rendered: &crate::profiles::RenderedProfile,
    runtime_tools: Option<serde_json::Value>,
) -> String {
    let mut servers: serde_json::Map<String, serde_json::Value> = rendered
        .mcp_servers
        .iter()
        .map(|(name, server)| {
            let entry = match server {
                McpServer::Command { command, args, env } => {
                    json!({ "type": "stdio", "command": command, "args": args, "env": env })
                }
                McpServer::Url { url, headers } => {
                    json!({ "type": "http", "url": url, "headers": headers })
                }
            };
            (name.clone(), entry)
        })
        .collect();
    if let Some(entry) = runtime_tools {
        servers.insert(RUNTIME_MCP_SERVER.to_owned(), entry);
    }
    json!({ "mcpServers": servers }).to_string()
}

fn rel(path: &str) -> Result<RelPath, String> {
    RelPath::new(path).map_err(|e| format!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::RuntimeTools;
    use crate::profiles::RenderedProfile;

    fn claude() -> ClaudeCode {
        ClaudeCode::new(AgentSettings {
            command: "claude".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            include_partial_messages: false,
        })
    }

    fn profile() -> RenderedProfile {
        RenderedProfile {
            name: "p".into(),
            model: None,
            max_turns: None,
            permission_mode: None,
            on_unlisted_tool: OnUnlistedTool::Deny,
            answer_timeout: std::time::Duration::from_secs(60),
            allowed_tools: vec!["Read".into()],
            disallowed_tools: Vec::new(),
            system_prompt: None,
            workspace: FileTree::default(),
            env: BTreeMap::new(),
            mcp_servers: BTreeMap::from([(
                "docs".to_owned(),
                McpServer::Url {
                    url: "http://docs.test/mcp".into(),
                    headers: BTreeMap::new(),
                },
            )]),
            tools: Vec::new(),
            variables: serde_json::Value::Null,
        }
    }

    fn prepare(conversation: Conversation, tools: bool) -> PreparedAgent {
        let profile = profile();
        let start = AgentStart {
            profile: &profile,
            workspace_path: "/s/work",
            home: "/s/home",
            conversation,
            runtime_tools: tools.then(|| RuntimeTools {
                url: "http://10.0.2.2:1/mcp".into(),
                token: "tok".into(),
            }),
        };
        claude().prepare(&start).unwrap()
    }

    fn home_file(prepared: &PreparedAgent, path: &str) -> Option<String> {
        let file = prepared
            .home_files
            .files
            .iter()
            .find(|f| f.path.as_str() == path)?;
        Some(String::from_utf8(file.contents.to_vec()).unwrap())
    }

    fn argv(prepared: &PreparedAgent) -> String {
        prepared.command.args.join(" ")
    }

    #[test]
    fn a_new_conversation_gets_its_config_and_the_runtimes_tools() {
        let prepared = prepare(Conversation::New { id: "c-1".into() }, true);
        let state: serde_json::Value =
            serde_json::from_str(&home_file(&prepared, ".claude.json").unwrap()).unwrap();
        assert_eq!(state["projects"]["/s/work"]["hasTrustDialogAccepted"], true);
        let mcp: serde_json::Value =
            serde_json::from_str(&home_file(&prepared, MCP_CONFIG_FILE).unwrap()).unwrap();
        assert_eq!(mcp["mcpServers"]["docs"]["url"], "http://docs.test/mcp");
        assert_eq!(
            mcp["mcpServers"][RUNTIME_MCP_SERVER]["headers"]["Authorization"],
            "Bearer tok"
        );
        let argv = argv(&prepared);
        assert!(argv.contains("--allowedTools Read,mcp__runtime"), "{argv}");
        assert!(
            argv.contains("--mcp-config /s/home/mcp-config.json"),
            "{argv}"
        );
        assert!(argv.contains("--session-id c-1"), "{argv}");
        assert!(!argv.contains("--resume"), "{argv}");
        assert_eq!(prepared.home_files.files.len(), 2, "no transcript");

        let without = prepare(Conversation::New { id: "c-1".into() }, false);
        let mcp = home_file(&without, MCP_CONFIG_FILE).unwrap();
        assert!(!mcp.contains(RUNTIME_MCP_SERVER), "{mcp}");
        assert!(argv_has(&without, "--allowedTools", "Read"));
    }

    fn argv_has(prepared: &PreparedAgent, flag: &str, value: &str) -> bool {
        prepared.command.args.windows(2).any(|w| w == [flag, value])
    }

    #[test]
    fn resume_and_fork_lay_the_transcript_where_claude_code_looks() {
        let transcript = bytes::Bytes::from_static(b"{}\n");
        let resumed = prepare(
            Conversation::Resume {
                id: "c-1".into(),
                transcript: transcript.clone(),
            },
            false,
        );
        let path = "projects/-s-work/c-1.jsonl";
        assert_eq!(home_file(&resumed, path).as_deref(), Some("{}\n"));
        assert!(argv_has(&resumed, "--resume", &format!("/s/home/{path}")));
        assert!(!argv(&resumed).contains("--session-id"));

        let forked = prepare(
            Conversation::Fork {
                base: "c-1".into(),
                transcript,
                id: "c-2".into(),
            },
            false,
        );
        assert_eq!(home_file(&forked, path).as_deref(), Some("{}\n"));
        assert!(
            argv(&forked).contains(&format!(
                "--resume /s/home/{path} --session-id c-2 --fork-session"
            )),
            "{}",
            argv(&forked)
        );

        let profile = profile();
        let start = AgentStart {
            profile: &profile,
            workspace_path: "/s/work",
            home: "/s/home",
            conversation: Conversation::Resume {
                id: "../../escape".into(),
                transcript: bytes::Bytes::new(),
            },
            runtime_tools: None,
        };
        assert!(
            claude().prepare(&start).is_err(),
            "an id that leaves its directory"
        );
    }

    #[test]
    fn finds_a_transcript_under_any_project_slug() {
        let stat = |path: &str| FileStat {
            path: RelPath::new(path).unwrap(),
            size: 1,
            modified_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        };
        let home = [
            stat("c-1.jsonl"),
            stat("projects/-s-work-hashed-1a2b/c-2.jsonl"),
            stat("projects/-s-work/c-1.jsonl"),
        ];
        let claude = claude();
        assert_eq!(
            claude
                .find_transcript(&home, "c-1")
                .map(|s| s.path.as_str()),
            Some("projects/-s-work/c-1.jsonl")
        );
        assert_eq!(
            claude
                .find_transcript(&home, "c-2")
                .map(|s| s.path.as_str()),
            Some("projects/-s-work-hashed-1a2b/c-2.jsonl")
        );
        assert!(claude.find_transcript(&home, "c-3").is_none());
    }

    #[test]
    fn control_files_are_the_ones_claude_code_reads_as_instructions_or_settings() {
        let claude = claude();
        let control = |path: &str| claude.is_control_file(&RelPath::new(path).unwrap());
        for path in [
            ".mcp.json",
            "CLAUDE.md",
            "sub/CLAUDE.local.md",
            ".claude/settings.json",
            "a/.claude/agents/x.md",
        ] {
            assert!(control(path), "{path}");
        }
        for path in ["README.md", "sub/.mcp.json", "claude.md", "notes/.claudex"] {
            assert!(!control(path), "{path}");
        }
    }

    #[test]
    fn answers_go_back_in_the_questions_input() {
        let input = json!({"questions": [{"question": "Q?"}]});
        let prepared = prepare(Conversation::New { id: "c-1".into() }, false);
        let answered = prepared.protocol.with_answers(
            input.as_object().unwrap(),
            &BTreeMap::from([("Q?".to_owned(), "A".to_owned())]),
        );
        assert_eq!(
            answered,
            json!({"questions": [{"question": "Q?"}], "answers": {"Q?": "A"}})
        );
    }
}
