//! How `chat` shows a session's events in a terminal: assistant text as it streams, tool
//! calls and results on one line each, status changes, files, errors, and the usage and
//! cost of each turn. Plain text when stdout is not a terminal.

use std::collections::HashSet;
use std::io::Write;

use serde_json::Value;

/// The longest tool input or result summary shown, in characters.
const SUMMARY_CHARS: usize = 160;

/// The terminal: knows whether the cursor is in the middle of a line, and which
/// assistant messages were already shown as they streamed.
pub struct Screen {
    mid_line: bool,
    color: bool,
    /// The message whose `stream_event`s are arriving.
    streaming: Option<String>,
    /// Messages whose text was shown delta by delta, so their full text is not repeated.
    streamed: HashSet<String>,
    /// The person interrupted the running turn.
    interrupted: bool,
}

impl Screen {
    /// A screen on stdout, in color when `color`.
    pub fn new(color: bool) -> Screen {
        Screen {
            mid_line: false,
            color,
            streaming: None,
            streamed: HashSet::new(),
            interrupted: false,
        }
    }

    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.mid_line = !text.ends_with('\n');
    }

    fn styled(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{style}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Whether the cursor is in the middle of a line (after a prompt, or streamed text).
    pub fn mid_line(&self) -> bool {
        self.mid_line
    }

    /// Ends the current line, if one is open.
    pub fn end_line(&mut self) {
        if self.mid_line {
            self.write("\n");
        }
    }

    /// A line of its own.
    pub fn line(&mut self, text: &str) {
        self.end_line();
        self.write(&format!("{text}\n"));
    }

    /// A line about the session rather than from the agent.
    pub fn note(&mut self, text: &str) {
        let text = self.styled("2", &format!("· {text}"));
        self.line(&text);
    }

    /// An error line.
    pub fn error(&mut self, text: &str) {
        let text = self.styled("31", &format!("! {text}"));
        self.line(&text);
    }

    /// A question for the person, without a line end: their answer follows on the line.
    pub fn ask(&mut self, text: &str) {
        self.end_line();
        let text = self.styled("1", text);
        self.write(&text);
    }

    /// The input prompt.
    pub fn prompt(&mut self) {
        self.end_line();
        self.write("> ");
    }

    /// The person interrupted the running turn: its end is shown as an interruption.
    pub fn interrupting(&mut self) {
        self.interrupted = true;
    }

    /// The person's answer ended the line (a terminal echoes it; a pipe does not).
    pub fn answered(&mut self) {
        self.mid_line = false;
    }

    /// Shows one event envelope. `own` is the seq of an `input` event this chat sent,
    /// which is not echoed.
    pub fn event(&mut self, envelope: &Value, own: &HashSet<u64>) {
        let data = &envelope["data"];
        match envelope["type"].as_str().unwrap_or_default() {
            "agent" => self.agent(data),
            "status" => {
                let status = data["status"].as_str().unwrap_or("?");
                match data["reason"].as_str() {
                    Some(reason) => self.note(&format!("{status} ({reason})")),
                    None => self.note(status),
                }
            }
            "input" => {
                let seq = envelope["seq"].as_u64().unwrap_or_default();
                if !own.contains(&seq) {
                    let text = content_text(&data["content"]);
                    self.line(&format!("» {text}"));
                }
            }
            "file" => {
                let change = data["change"].as_str().unwrap_or("changed");
                let path = data["path"].as_str().unwrap_or("?");
                match data["size"].as_u64() {
                    Some(size) => self.note(&format!("{change} {path} ({size} B)")),
                    None => self.note(&format!("{change} {path}")),
                }
            }
            "error" => {
                let code = data["code"].as_str().unwrap_or("error");
                let message = data["message"].as_str().unwrap_or_default();
                self.error(&format!("{code}: {message}"));
            }
            "answer" => self.answer(data),
            // Asked by the chat itself, which knows whether it can answer.
            "permission" | "question" => {}
            other => self.note(&format!("{other} event")),
        }
    }

    fn answer(&mut self, data: &Value) {
        let outcome = data["outcome"].as_str().unwrap_or("?");
        let text = match (outcome, data["by"].as_str()) {
            ("allow" | "deny", Some(by)) => {
                let always = if data["always"] == true {
                    " always"
                } else {
                    ""
                };
                format!("{outcome}{always} (by {by})")
            }
            _ => {
                let why = data["message"]
                    .as_str()
                    .or(data["reason"].as_str())
                    .unwrap_or_default();
                format!("{outcome}: {why}")
            }
        };
        self.note(&format!("answered: {text}"));
    }

    /// An agent line (Claude Code's stream-json).
    fn agent(&mut self, data: &Value) {
        match data["type"].as_str().unwrap_or_default() {
            "stream_event" => self.partial(&data["event"]),
            "assistant" => {
                let message = &data["message"];
                let streamed = message["id"]
                    .as_str()
                    .is_some_and(|id| self.streamed.contains(id));
                for block in message["content"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    match block["type"].as_str().unwrap_or_default() {
                        "text" if streamed => self.end_line(),
                        "text" => {
                            let text = block["text"].as_str().unwrap_or_default().to_owned();
                            self.line(text.trim_end());
                        }
                        "tool_use" => {
                            let name = block["name"].as_str().unwrap_or("tool");
                            let input = summary(&block["input"]);
                            let text = self.styled("36", &format!("⚙ {name} {input}"));
                            self.line(&text);
                        }
                        _ => {}
                    }
                }
            }
            "user" => {
                let content = &data["message"]["content"];
                for block in content.as_array().map(Vec::as_slice).unwrap_or_default() {
                    if block["type"] != "tool_result" {
                        continue;
                    }
                    let text = content_text(&block["content"]);
                    let first = one_line(&text);
                    if block["is_error"] == true {
                        let text = self.styled("31", &format!("  ↳ error: {first}"));
                        self.line(&text);
                    } else {
                        let text = self.styled("2", &format!("  ↳ {first}"));
                        self.line(&text);
                    }
                }
            }
            "result" => self.result(data),
            _ => {}
        }
    }

    /// A partial message: text deltas are shown as they come.
    fn partial(&mut self, event: &Value) {
        match event["type"].as_str().unwrap_or_default() {
            "message_start" => {
                self.streaming = event["message"]["id"].as_str().map(str::to_owned);
            }
            "content_block_delta" if event["delta"]["type"] == "text_delta" => {
                if let Some(id) = &self.streaming {
                    self.streamed.insert(id.clone());
                }
                let text = event["delta"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                self.write(&text);
            }
            _ => {}
        }
    }

    /// The end of a turn: how it ended, its usage and cost.
    fn result(&mut self, data: &Value) {
        self.end_line();
        let subtype = data["subtype"].as_str().unwrap_or("?");
        let interrupted = std::mem::take(&mut self.interrupted);
        if interrupted && subtype != "success" {
            self.error("turn interrupted");
        } else if data["is_error"] == true || subtype != "success" {
            let detail = data["result"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    data["errors"].as_array().map(|errors| {
                        errors
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                })
                .unwrap_or_default();
            self.error(&format!("turn ended: {subtype} {}", one_line(&detail)));
        }
        let usage = &data["usage"];
        let input = [
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ]
        .iter()
        .filter_map(|key| usage[key].as_u64())
        .sum::<u64>();
        let output = usage["output_tokens"].as_u64().unwrap_or_default();
        let mut parts = vec![format!("{input} in / {output} out tokens")];
        if let Some(cost) = data["total_cost_usd"].as_f64() {
            parts.push(format!("${cost:.4}"));
        }
        if let Some(ms) = data["duration_ms"].as_u64() {
            parts.push(format!("{:.1}s", ms as f64 / 1000.0));
        }
        self.note(&format!("turn done: {}", parts.join(" · ")));
    }
}

/// The text of a message's content: a string, or its text blocks joined.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A tool input in one short line: the value that says the most (a command, a path, a
/// pattern, a URL), else the compact JSON.
pub fn summary(input: &Value) -> String {
    const TELLING: [&str; 6] = ["command", "file_path", "path", "pattern", "url", "query"];
    let text = TELLING
        .iter()
        .find_map(|key| input[key].as_str().map(str::to_owned))
        .unwrap_or_else(|| input.to_string());
    one_line(&text)
}

/// The first line of `text`, cut to [`SUMMARY_CHARS`], with a count of what was left out.
pub fn one_line(text: &str) -> String {
    let mut lines = text.trim().lines();
    let first = lines.next().unwrap_or_default();
    let rest = lines.count();
    let mut shown: String = first.chars().take(SUMMARY_CHARS).collect();
    if shown.len() < first.len() {
        shown.push('…');
    }
    if rest > 0 {
        shown.push_str(&format!(" (+{rest} lines)"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn summaries_are_one_short_line() {
        assert_eq!(summary(&json!({ "command": "ls -la" })), "ls -la");
        assert_eq!(summary(&json!({ "x": 1 })), "{\"x\":1}");
        assert_eq!(one_line("a\nb\nc"), "a (+2 lines)");
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).chars().count(), SUMMARY_CHARS + 1);
    }

    #[test]
    fn content_text_reads_strings_and_blocks() {
        assert_eq!(content_text(&json!("hi")), "hi");
        assert_eq!(
            content_text(&json!([{ "type": "text", "text": "a" }, { "type": "image" }])),
            "a"
        );
    }
}
