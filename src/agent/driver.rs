//! The seam between the session core and an agent CLI: [`AgentDriver`], and the
//! agent-neutral terms the core speaks in (a start, a conversation, a line's meaning, a
//! decision on a tool call).

use std::collections::BTreeMap;

use agent_runtime_api::{CommandSpec, FileStat, FileTree, RelPath};
use serde_json::value::RawValue;

use crate::profiles::RenderedProfile;

/// How the agent process is started: the operator's `[agent]` settings.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The program (a name on the sandbox's PATH, or a path).
    pub command: String,
    /// Extra arguments, appended after the driver's own.
    pub args: Vec<String>,
    /// Extra environment for the agent process (API endpoint and key).
    pub env: BTreeMap<String, String>,
    /// Whether to ask for partial messages (token-by-token output lines).
    pub include_partial_messages: bool,
}

/// The conversation an agent starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversation {
    /// A new conversation with the id the runtime chose.
    New {
        /// The conversation id (a UUID).
        id: String,
    },
    /// The session's own stored conversation, continued in place.
    Resume {
        /// The conversation id.
        id: String,
        /// The stored transcript.
        transcript: bytes::Bytes,
    },
    /// Another conversation's history (a fork's source), continued under a new id; the
    /// stored transcript is left as it is.
    Fork {
        /// The id of the conversation the history is from.
        base: String,
        /// Its stored transcript.
        transcript: bytes::Bytes,
        /// The new conversation's id (a UUID).
        id: String,
    },
}

/// The runtime's own MCP server for one session: where the sandbox reaches it, and the
/// token that lets it call exactly the session's tools.
#[derive(Debug, Clone)]
pub struct RuntimeTools {
    /// The MCP endpoint's URL as the sandbox sees it.
    pub url: String,
    /// The session's bearer token.
    pub token: String,
}

/// Everything a driver needs to start the agent of one session.
#[derive(Debug)]
pub struct AgentStart<'a> {
    /// The session's profile, rendered.
    pub profile: &'a RenderedProfile,
    /// The workspace's absolute path in the sandbox (the agent's working directory).
    pub workspace_path: &'a str,
    /// The agent home's absolute path in the sandbox.
    pub home: &'a str,
    /// The conversation it starts with.
    pub conversation: Conversation,
    /// The runtime's own tools, when the profile declares some and the runtime serves
    /// them; the agent may call them without asking.
    pub runtime_tools: Option<RuntimeTools>,
}

/// What starting an agent takes: the files its home must hold first, a command, and
/// the protocol to speak with the process it starts.
pub struct PreparedAgent {
    /// Files to write into the agent's home before the command starts (its config, its
    /// MCP servers, the transcript it continues).
    pub home_files: FileTree,
    /// The command that starts the agent in the workspace.
    pub command: CommandSpec,
    /// The protocol of the process the command starts.
    pub protocol: Box<dyn AgentProtocol>,
}

/// What an agent stdout line means to the runtime. Everything else is forwarded as is.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentLine {
    /// The agent names its conversation id.
    Init {
        /// The conversation id.
        session_id: String,
    },
    /// A turn ended.
    Result(TurnResult),
    /// An answer to one of the runtime's requests; not part of the session's log.
    ControlResponse {
        /// The request it answers.
        request_id: String,
        /// The error text when the request failed.
        error: Option<String>,
    },
    /// The agent asks whether it may use a tool, and waits for the answer.
    ToolRequest(ToolRequest),
    /// Another request of the agent's, which the runtime does not serve.
    OtherRequest {
        /// Its id, to refuse it by.
        request_id: String,
    },
    /// The agent no longer waits for its request `request_id`.
    CancelRequest {
        /// The request withdrawn.
        request_id: String,
    },
    /// Any other line.
    Other,
}

/// The agent asks to use a tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRequest {
    /// The agent's id of the request, echoed in the answer.
    pub request_id: String,
    /// The tool's name, as the agent calls it.
    pub tool_name: String,
    /// The tool's input, a JSON object.
    pub input: serde_json::Map<String, serde_json::Value>,
    /// The tool call the request is about, when the agent names it.
    pub tool_use_id: Option<String>,
    /// Permission updates the agent proposes, relayed as they are.
    pub permission_suggestions: Option<serde_json::Value>,
    /// A short description of the call, when the agent gives one.
    pub description: Option<String>,
    /// Whether the tool asks the person questions (its input holds `questions`, each
    /// with a `question` text), to be answered rather than allowed.
    pub is_question: bool,
}

/// What a turn-ending line says of the turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnResult {
    /// Whether the turn failed.
    pub is_error: bool,
    /// How it ended, in the agent's words (`success`, `error_max_turns`, ...).
    pub subtype: String,
    /// Input tokens, cache reads and writes included.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// The result text (the final answer, or the error).
    pub text: Option<String>,
    /// The conversation the line claims to end a turn of.
    pub session_id: Option<String>,
}

/// One line of the agent's output, read once: its JSON, validated and kept verbatim for
/// the event, and what it means to the runtime.
#[derive(Debug)]
pub struct ParsedLine {
    /// The line as it was printed.
    pub json: Box<RawValue>,
    /// What it means to the runtime.
    pub meaning: AgentLine,
}

/// A line that is not a JSON object; it is given back for the error message.
#[derive(Debug)]
pub struct NotAnObject(pub String);

/// The runtime's answer to a [`ToolRequest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision<'a> {
    /// The tool runs with `input` (the request's, or the client's edit).
    Allow {
        /// The input the tool runs with.
        input: &'a serde_json::Value,
        /// Whether later calls of the same tool are allowed without asking, for the
        /// rest of the agent's process.
        always: bool,
        /// The tool, for `always`.
        tool_name: &'a str,
        /// The tool call, when the request named it.
        tool_use_id: Option<&'a str>,
    },
    /// The tool does not run; the model reads `message` and goes on.
    Deny {
        /// Why, as the model reads it.
        message: &'a str,
    },
}

/// A failure of a tool the agent called through one of its MCP servers, as the agent
/// was told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFailure {
    /// The tool or server that failed.
    pub tool: String,
    /// What went wrong.
    pub message: String,
}

/// An agent CLI the runtime drives: everything that is the CLI's own, from its argv and
/// home files to its transcript's place; [`AgentProtocol`] is its stdio protocol. The
/// session core speaks to the agent only through these two traits.
///
/// The core expects one long-lived process per live session that reads user turns on
/// stdin, prints one JSON value per line, ends each turn with a line that means
/// [`AgentLine::Result`], answers [`AgentProtocol::initialize`] with an
/// [`AgentLine::ControlResponse`] of the same id, and keeps its conversation in a
/// transcript file under its home, which the runtime stores and lays back on resume.
pub trait AgentDriver: Send + Sync {
    /// The home files, the command and the protocol that start the agent for `start`.
    /// Fails only on a conversation id that cannot name a file.
    fn prepare(&self, start: &AgentStart<'_>) -> Result<PreparedAgent, String>;

    /// Finds the transcript of `conversation` in a listing of the agent's home.
    fn find_transcript<'a>(&self, home: &'a [FileStat], conversation: &str)
    -> Option<&'a FileStat>;

    /// Whether a workspace file steers the agent (its instructions, settings, hooks,
    /// project MCP servers): such files come from the profile only, never from what a
    /// previous life of the agent left.
    fn is_control_file(&self, path: &RelPath) -> bool;
}

/// The stdio protocol of one agent process: the lines the runtime writes to it and what
/// the lines it prints mean. One per process, so it may keep what the process told it
/// (a protocol's request ids, the calls still open).
///
/// Every stdin line it makes is one line of valid JSON ending in a newline, produced by
/// serde from typed values, never from client text: one malformed line can end an
/// agent process.
pub trait AgentProtocol: Send {
    /// The request that makes the agent ready.
    fn initialize(&mut self, request_id: &str) -> String;

    /// A user turn.
    fn user_message(&mut self, content: &serde_json::Value) -> String;

    /// The request that ends the running turn early.
    fn interrupt(&mut self, request_id: &str) -> String;

    /// The answer to the agent's tool request `request_id`.
    fn decide(&mut self, request_id: &str, decision: &Decision<'_>) -> String;

    /// A refusal of the agent's request `request_id` (one the runtime does not serve),
    /// so that the agent does not wait for it.
    fn refuse(&mut self, request_id: &str, error: &str) -> String;

    /// The tool's input with the person's answers to a question request, as the
    /// agent reads them in [`Decision::Allow`].
    fn with_answers(
        &self,
        input: &serde_json::Map<String, serde_json::Value>,
        answers: &BTreeMap<String, String>,
    ) -> serde_json::Value;

    /// Reads one stdout line.
    fn parse_line(&mut self, text: String) -> Result<ParsedLine, NotAnObject>;

    /// The id of a message of the conversation itself (not a subagent's) that the
    /// agent's transcript holds once it holds the conversation up to that message.
    fn message_id(&self, line: &str) -> Option<String>;

    /// The failures of tools served by the agent's MCP servers that `line` reports,
    /// leaving out the runtime's own tools (their failures are reported where they
    /// happen). Cheap for lines that report none.
    fn tool_failures(&mut self, line: &str) -> Vec<ToolFailure>;
}
