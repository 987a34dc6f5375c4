//! The argv and environment of a Claude Code process.

use std::collections::BTreeMap;

use agent_runtime_api::CommandSpec;

use crate::agent::AgentSettings;

/// Whether the agent starts a new conversation or continues a stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LaunchMode {
    /// A new conversation with the id the runtime chose.
    New {
        /// The agent session id (a UUID).
        agent_session_id: String,
    },
    /// Continue the conversation in this transcript file (an absolute path in the
    /// sandbox). Claude Code appends to it in place.
    Resume {
        /// The transcript's path.
        transcript_path: String,
    },
    /// Continue the conversation in this transcript file under a new conversation id
    /// (`--resume <path> --fork-session --session-id <id>`). Claude Code leaves the file
    /// as it is and writes the new conversation, history included, to `<id>.jsonl` in
    /// the workspace's transcript directory, from its first turn on.
    Fork {
        /// The transcript's path.
        transcript_path: String,
        /// The new conversation's id (a UUID).
        agent_session_id: String,
    },
}

/// Everything the driver needs to start the agent for one session.
#[derive(Debug, Clone, Default)]
pub(super) struct AgentLaunch {
    /// Model name or alias.
    pub(super) model: Option<String>,
    /// Most agentic turns per user turn.
    pub(super) max_turns: Option<u32>,
    /// `default`, `acceptEdits`, `bypassPermissions` or `plan`.
    pub(super) permission_mode: Option<String>,
    /// Whether Claude Code asks the runtime (a `can_use_tool` control request) about a
    /// tool call it would otherwise deny (`--permission-prompt-tool stdio`).
    pub(super) ask_permission: bool,
    /// Tools allowed without asking.
    pub(super) allowed_tools: Vec<String>,
    /// Tools never allowed.
    pub(super) disallowed_tools: Vec<String>,
    /// Text appended to Claude Code's own system prompt.
    pub(super) append_system_prompt: Option<String>,
    /// Text replacing Claude Code's system prompt.
    pub(super) system_prompt: Option<String>,
    /// The agent's home in the sandbox (`CLAUDE_CONFIG_DIR`).
    pub(super) agent_home: String,
    /// Path of the MCP config file in the sandbox.
    pub(super) mcp_config_path: String,
}

/// Builds the command that starts Claude Code in stream-json mode.
pub(super) fn build_command(
    settings: &AgentSettings,
    launch: &AgentLaunch,
    mode: &LaunchMode,
) -> CommandSpec {
    let mut args: Vec<String> = [
        "--output-format",
        "stream-json",
        "--verbose",
        "--input-format",
        "stream-json",
    ]
    .map(String::from)
    .into();
    let mut push = |flag: &str, value: &str| {
        args.push(flag.to_owned());
        args.push(value.to_owned());
    };
    if let Some(model) = &launch.model {
        push("--model", model);
    }
    if let Some(max_turns) = launch.max_turns {
        push("--max-turns", &max_turns.to_string());
    }
    if let Some(mode) = &launch.permission_mode {
        push("--permission-mode", mode);
    }
    if launch.ask_permission {
        push("--permission-prompt-tool", "stdio");
    }
    if !launch.allowed_tools.is_empty() {
        push("--allowedTools", &launch.allowed_tools.join(","));
    }
    if !launch.disallowed_tools.is_empty() {
        push("--disallowedTools", &launch.disallowed_tools.join(","));
    }
    if let Some(text) = &launch.system_prompt {
        push("--system-prompt", text);
    }
    if let Some(text) = &launch.append_system_prompt {
        push("--append-system-prompt", text);
    }
    push("--mcp-config", &launch.mcp_config_path);
    match mode {
        LaunchMode::New { agent_session_id } => push("--session-id", agent_session_id),
        LaunchMode::Resume { transcript_path } => push("--resume", transcript_path),
        LaunchMode::Fork {
            transcript_path,
            agent_session_id,
        } => {
            push("--resume", transcript_path);
            push("--session-id", agent_session_id);
        }
    }
    if let LaunchMode::Fork { .. } = mode {
        args.push("--fork-session".to_owned());
    }
    // A workspace `.mcp.json` must not add servers the profile did not declare.
    args.push("--strict-mcp-config".to_owned());
    if settings.include_partial_messages {
        args.push("--include-partial-messages".to_owned());
    }
    args.extend(settings.args.iter().cloned());

    let mut env: BTreeMap<String, String> = settings.env.clone();
    for (name, value) in [
        ("CLAUDE_CONFIG_DIR", launch.agent_home.as_str()),
        ("HOME", launch.agent_home.as_str()),
        // No telemetry or update checks: the sandbox talks to the model API only.
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
        // Needed for bypassPermissions when the sandbox runs as root; the sandbox is the
        // isolation boundary.
        ("IS_SANDBOX", "1"),
    ] {
        env.insert(name.to_owned(), value.to_owned());
    }
    CommandSpec {
        program: settings.command.clone(),
        args,
        env,
    }
}

/// Where Claude Code keeps the transcripts of a working directory, relative to its home:
/// `projects/<slug>` where every character outside `[A-Za-z0-9]` becomes `-`.
///
/// Slugs over 200 characters are shortened by Claude Code with a hash the runtime cannot
/// reproduce, which is why resume passes the transcript's absolute path instead.
pub(super) fn transcript_dir(workspace_path: &str) -> String {
    let slug: String = workspace_path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("projects/{slug}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AgentSettings {
        AgentSettings {
            command: "claude".into(),
            args: vec!["--extra".into()],
            env: BTreeMap::from([("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:1".into())]),
            include_partial_messages: true,
        }
    }

    #[test]
    fn builds_the_argv_and_environment() {
        let launch = AgentLaunch {
            model: Some("sonnet".into()),
            max_turns: Some(7),
            permission_mode: Some("acceptEdits".into()),
            allowed_tools: vec!["Read".into(), "Bash(git *)".into()],
            append_system_prompt: Some("Be brief.".into()),
            agent_home: "/s/home".into(),
            mcp_config_path: "/s/home/mcp.json".into(),
            ..Default::default()
        };
        let mode = LaunchMode::New {
            agent_session_id: "u-1".into(),
        };
        let command = build_command(&settings(), &launch, &mode);
        assert_eq!(
            command.args.join(" "),
            "--output-format stream-json --verbose --input-format stream-json --model sonnet \
             --max-turns 7 --permission-mode acceptEdits --allowedTools Read,Bash(git *) \
             --append-system-prompt Be brief. --mcp-config /s/home/mcp.json --session-id u-1 \
             --strict-mcp-config --include-partial-messages --extra"
        );
        assert_eq!(command.env["CLAUDE_CONFIG_DIR"], "/s/home");
        assert_eq!(command.env["ANTHROPIC_BASE_URL"], "http://127.0.0.1:1");

        let resume = LaunchMode::Resume {
            transcript_path: "/s/home/t.jsonl".into(),
        };
        let command = build_command(&settings(), &launch, &resume);
        assert!(
            command
                .args
                .windows(2)
                .any(|w| w == ["--resume", "/s/home/t.jsonl"])
        );
        assert!(!command.args.iter().any(|a| a == "--permission-prompt-tool"));

        let fork = LaunchMode::Fork {
            transcript_path: "/s/home/t.jsonl".into(),
            agent_session_id: "u-2".into(),
        };
        let command = build_command(&settings(), &launch, &fork);
        assert!(
            command.args.join(" ").contains(
                "--resume /s/home/t.jsonl --session-id u-2 --fork-session --strict-mcp-config"
            ),
            "{:?}",
            command.args
        );

        // A profile that asks its clients makes Claude Code ask the runtime.
        let asking = AgentLaunch {
            ask_permission: true,
            ..launch
        };
        let command = build_command(&settings(), &asking, &mode);
        assert!(
            command
                .args
                .windows(2)
                .any(|w| w == ["--permission-prompt-tool", "stdio"])
        );
    }

    #[test]
    fn slugs_the_workspace_path() {
        assert_eq!(
            transcript_dir("/srv/proj/odd.dir_name/sub dir@x"),
            "projects/-srv-proj-odd-dir-name-sub-dir-x"
        );
    }
}
