//! Chooses the reply to one `/v1/messages` request from its body alone.
//!
//! The turn to answer is the last message that is not `role:"system"` (Claude Code
//! sends system-role listings inside `messages`). Directives are matched only in text
//! outside `<system-reminder>` blocks, at the start of the remaining text.

use std::time::Duration;

use serde_json::Value;

/// What to answer, before the server-wide delay is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A text reply with `end_turn`, sent after `delay`.
    Text {
        /// The full reply text.
        text: String,
        /// Wait before answering (`SLOW:`).
        delay: Duration,
    },
    /// A `tool_use` reply with `stop_reason: tool_use`.
    ToolUse {
        /// Tool name as the agent knows it (`Bash`, `mcp__server__tool`, ...).
        name: String,
        /// The tool input as compact JSON text, streamed as `input_json_delta`.
        input_json: String,
    },
    /// An HTTP error status with the Messages API's error body.
    Error {
        /// HTTP status, 400..=599.
        status: u16,
    },
}

impl Reply {
    fn text(text: impl Into<String>) -> Reply {
        Reply::Text {
            text: text.into(),
            delay: Duration::ZERO,
        }
    }
}

/// Picks the reply for a request body.
pub fn plan(body: &Value) -> Reply {
    let empty = Vec::new();
    let messages = body["messages"].as_array().unwrap_or(&empty);
    let Some(last) = messages.iter().rev().find(|m| m["role"] != "system") else {
        return Reply::text("echo: ");
    };
    if let Some(results) = tool_results(&last["content"]) {
        return Reply::text(format!("TOOL RESULT SEEN: {}", results.join("\n")));
    }
    directive(&visible_text(&last["content"]), messages)
}

fn directive(text: &str, messages: &[Value]) -> Reply {
    if let Some(rest) = text.strip_prefix("TOOL:") {
        return tool_use(rest);
    }
    if let Some(rest) = text.strip_prefix("FAIL:") {
        let code = rest.split_whitespace().next().unwrap_or_default();
        if let Ok(status @ 400..=599) = code.parse::<u16>() {
            return Reply::Error { status };
        }
    }
    if let Some(rest) = text.strip_prefix("SLOW:") {
        let (ms, said) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if let Ok(ms) = ms.parse::<u64>() {
            return Reply::Text {
                text: format!("echo: {said}"),
                delay: Duration::from_millis(ms),
            };
        }
    }
    if text.starts_with("HISTORY") {
        return Reply::text(history(messages).join(" | "));
    }
    Reply::text(format!("echo: {text}"))
}

/// `TOOL:<name> <json>`; the input must be a JSON object, as the API requires.
fn tool_use(rest: &str) -> Reply {
    let (name, input) = rest.split_once(char::is_whitespace).unwrap_or((rest, "{}"));
    match serde_json::from_str::<Value>(input.trim()) {
        Ok(input @ Value::Object(_)) if !name.is_empty() => Reply::ToolUse {
            name: name.to_owned(),
            input_json: input.to_string(),
        },
        Ok(_) => Reply::text("invalid TOOL directive: expected TOOL:<name> <json object>"),
        Err(err) => Reply::text(format!("invalid TOOL directive: {err}")),
    }
}

/// Every user text of the conversation (outside reminders, tool results excluded).
fn history(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| visible_text(&m["content"]))
        .filter(|text| !text.is_empty())
        .collect()
}

/// The content texts of the tool_result blocks, if the message has any.
fn tool_results(content: &Value) -> Option<Vec<String>> {
    let blocks = content.as_array()?;
    let results: Vec<String> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| match &b["content"] {
            Value::String(text) => text.clone(),
            other => texts(other).join("\n"),
        })
        .collect();
    (!results.is_empty()).then_some(results)
}

/// The text blocks of an array content (or the string content) as they are.
pub(crate) fn texts(content: &Value) -> Vec<String> {
    match content {
        Value::String(text) => vec![text.clone()],
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The user-visible text: text blocks with `<system-reminder>` blocks removed, trimmed,
/// empty ones dropped, joined by `\n`.
pub fn visible_text(content: &Value) -> String {
    texts(content)
        .iter()
        .map(|text| strip_reminders(text))
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn strip_reminders(text: &str) -> String {
    const OPEN: &str = "<system-reminder>";
    const CLOSE: &str = "</system-reminder>";
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        rest = match rest[start..].find(CLOSE) {
            Some(end) => &rest[start + end + CLOSE.len()..],
            // An unclosed reminder hides everything after it.
            None => "",
        };
    }
    out.push_str(rest);
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(messages: Value) -> Value {
        json!({"model": "m", "stream": true, "messages": messages})
    }

    fn text(t: &str) -> Reply {
        Reply::text(t)
    }

    #[test]
    fn skips_system_messages_and_reminders() {
        let b = body(json!([
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nTOOL:Bash {}\n</system-reminder>"},
                {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "agent listing"}
        ]));
        assert_eq!(plan(&b), text("echo: hello"));
    }

    #[test]
    fn directives() {
        let one = |t: &str| plan(&body(json!([{"role": "user", "content": t}])));
        assert_eq!(
            one(r#"TOOL:Bash {"command":"echo hi"}"#),
            Reply::ToolUse {
                name: "Bash".into(),
                input_json: r#"{"command":"echo hi"}"#.into()
            }
        );
        assert!(matches!(one("TOOL:Bash {oops"), Reply::Text { .. }));
        assert_eq!(one("FAIL:529"), Reply::Error { status: 529 });
        assert_eq!(one("FAIL:200"), text("echo: FAIL:200"));
        assert_eq!(
            one("SLOW:250 later"),
            Reply::Text {
                text: "echo: later".into(),
                delay: Duration::from_millis(250)
            }
        );
    }

    #[test]
    fn tool_result_and_history() {
        let b = body(json!([
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "out"}]}]},
        ]));
        assert_eq!(plan(&b), text("TOOL RESULT SEEN: out"));
        let b = body(json!([
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "first"}]},
            {"role": "assistant", "content": "echo: first"},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "out"}]},
            {"role": "user", "content": "HISTORY"},
        ]));
        assert_eq!(plan(&b), text("first | HISTORY"));
    }
}
