//! Notices MCP failures in the agent's output: a server that did not connect, and a call
//! to one of its tools that came back as an error. The agent sees these as tool errors
//! already; clients get them as `tool_failed` events.

use std::collections::HashMap;

use serde_json::Value;

use crate::agent::ToolFailure;

/// Follows MCP tool calls across output lines.
#[derive(Debug, Default)]
pub(super) struct McpWatch {
    /// Calls that were made and not answered yet: tool use id → tool name.
    pending: HashMap<String, String>,
    /// Tools the runtime serves itself; it reports their failures where they happen.
    own_prefix: String,
    /// Servers already reported as not connected (every turn's `init` lists them again).
    reported_servers: std::collections::HashSet<String>,
}

/// The longest error text carried into an event.
const MAX_MESSAGE: usize = 500;

impl McpWatch {
    /// Watches for failures of every MCP server but `own_server`.
    pub(super) fn new(own_server: &str) -> Self {
        Self {
            pending: HashMap::new(),
            own_prefix: format!("mcp__{own_server}__"),
            reported_servers: Default::default(),
        }
    }

    /// The failures that `line` reports. Cheap for lines that mention no MCP tool.
    pub(super) fn observe(&mut self, line: &str) -> Vec<ToolFailure> {
        let mentions_call = line.contains("\"mcp__");
        let mentions_error = !self.pending.is_empty() && line.contains("\"is_error\":true");
        let mentions_servers = line.contains("\"mcp_servers\":[{");
        if !(mentions_call || mentions_error || mentions_servers) {
            return Vec::new();
        }
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            return Vec::new();
        };
        match (value["type"].as_str(), value["subtype"].as_str()) {
            (Some("system"), Some("init")) => failed_servers(&value)
                .into_iter()
                .filter(|failure| self.reported_servers.insert(failure.tool.clone()))
                .collect(),
            (Some("assistant"), _) => {
                for block in content(&value) {
                    let name = block["name"].as_str().unwrap_or_default();
                    if block["type"] == "tool_use"
                        && name.starts_with("mcp__")
                        && !name.starts_with(&self.own_prefix)
                        && let Some(id) = block["id"].as_str()
                    {
                        self.pending.insert(id.to_owned(), name.to_owned());
                    }
                }
                Vec::new()
            }
            (Some("user"), _) => content(&value)
                .iter()
                .filter(|block| block["type"] == "tool_result")
                .filter_map(|block| {
                    let tool = self.pending.remove(block["tool_use_id"].as_str()?)?;
                    (block["is_error"] == true).then(|| ToolFailure {
                        tool,
                        message: result_text(&block["content"]),
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn content(line: &Value) -> &[Value] {
    line["message"]["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Servers that `system/init` lists with a status other than `connected`.
fn failed_servers(init: &Value) -> Vec<ToolFailure> {
    init["mcp_servers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|server| server["status"] != "connected")
        .map(|server| ToolFailure {
            tool: format!("mcp__{}", server["name"].as_str().unwrap_or("?")),
            message: format!("the MCP server's status is {}", server["status"]),
        })
        .collect()
}

fn result_text(content: &Value) -> String {
    let text = match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    };
    text.chars().take(MAX_MESSAGE).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"mcp__everything__echo","input":{}},{"type":"tool_use","id":"t2","name":"mcp__runtime__lookup","input":{}}]}}"#;

    #[test]
    fn reports_failed_calls_of_other_servers_only() {
        let mut watch = McpWatch::new("runtime");
        assert!(watch.observe(CALL).is_empty());
        let results = r#"{"type":"user","message":{"content":[{"tool_use_id":"t1","type":"tool_result","content":[{"type":"text","text":"MCP error -32603: boom"}],"is_error":true},{"tool_use_id":"t2","type":"tool_result","content":"own failure","is_error":true}]}}"#;
        assert_eq!(
            watch.observe(results),
            [ToolFailure {
                tool: "mcp__everything__echo".into(),
                message: "MCP error -32603: boom".into()
            }]
        );
        assert!(watch.observe(results).is_empty(), "a call is reported once");
    }

    #[test]
    fn successful_calls_and_plain_lines_report_nothing() {
        let mut watch = McpWatch::new("runtime");
        watch.observe(CALL);
        let ok = r#"{"type":"user","message":{"content":[{"tool_use_id":"t1","type":"tool_result","content":"Echo: hi"}]}}"#;
        assert!(watch.observe(ok).is_empty());
        assert!(
            watch
                .observe(
                    r#"{"type":"assistant","message":{"content":[{"type":"text","text":"hi"}]}}"#
                )
                .is_empty()
        );
    }

    #[test]
    fn reports_servers_that_did_not_connect() {
        let mut watch = McpWatch::new("runtime");
        let init = r#"{"type":"system","subtype":"init","mcp_servers":[{"name":"ok","status":"connected"},{"name":"broken","status":"failed"}]}"#;
        assert_eq!(
            watch.observe(init),
            [ToolFailure {
                tool: "mcp__broken".into(),
                message: "the MCP server's status is \"failed\"".into()
            }]
        );
        assert!(
            watch.observe(init).is_empty(),
            "reported once, not every turn"
        );
    }
}
