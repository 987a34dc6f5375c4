//! The agent seam. The session core starts, feeds and reads an agent only through an
//! [`AgentDriver`] and the [`AgentProtocol`] of each process it starts; everything that is one CLI's own (its argv and home files, its MCP
//! config and tool naming, where its transcript lives, how it resumes and forks, its
//! stdio protocol) is inside that CLI's driver. [`ClaudeCode`] is the one driver today.
//!
//! **Architecture Invariant:** nothing here imports from `crate::runtime`: the session
//! core depends on the agent seam, never the other way round.

mod claude;
mod driver;
mod lines;

pub use claude::ClaudeCode;
pub use driver::{
    AgentDriver, AgentLine, AgentProtocol, AgentSettings, AgentStart, Conversation, Decision,
    NotAnObject, ParsedLine, PreparedAgent, RuntimeTools, ToolFailure, ToolRequest, TurnResult,
};
pub use lines::{Line, LineReader};
