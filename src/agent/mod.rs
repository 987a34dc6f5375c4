//! The Claude Code driver: how the agent is started, what goes to its stdin, and what its
//! stdout lines mean. See the stream-json protocol notes in ARCHITECTURE.md.

mod command;
mod lines;
mod mcp;
mod protocol;

pub use command::{AgentLaunch, LaunchMode, build_command, transcript_dir};
pub use lines::{Line, LineReader};
pub use mcp::{McpFailure, McpWatch};
pub use protocol::{
    AgentLine, CanUseTool, NotAnObject, ParsedLine, PermissionDecision, PermissionUpdate,
    TurnResult, assistant_uuid, classify, control_error, control_request, parse_line,
    permission_response, user_message,
};
