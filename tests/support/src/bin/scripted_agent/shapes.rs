//! Output line shapes, copied field for field from real Claude Code 2.1.197 captures, and
//! the one function that writes a line to stdout.

use std::io::Write;

use serde_json::{Value, json};

/// The text of the user line Claude Code prints when a turn is interrupted.
pub const INTERRUPTED_TEXT: &str = "[Request interrupted by user]";

/// Cost the scripted agent reports per model call; the value from the captures.
const COST_PER_CALL: f64 = 0.000175;

/// Tools listed in `system/init`.
const TOOLS: &[&str] = &["Task", "Bash", "Edit", "Read", "Write"];

/// Identity of the conversation, repeated on most lines.
pub struct Ctx<'a> {
    /// Conversation id (`session_id` on every line).
    pub session_id: &'a str,
    /// Model name, echoed as given by `--model`.
    pub model: &'a str,
    /// Working directory, reported in `system/init`.
    pub cwd: &'a str,
    /// Permission mode, reported in `system/init`.
    pub permission_mode: &'a str,
}

/// Writes one JSON line to stdout and flushes it. If stdout is gone the host is gone
/// too, so the process exits rather than keep running unobserved.
pub fn emit(line: &Value) {
    emit_raw(&line.to_string());
}

/// Writes one raw line (used for the deliberate non-JSON line of `malformed`).
pub fn emit_raw(line: &str) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if written.is_err() {
        std::process::exit(1);
    }
}

/// A fresh v4 uuid as a string.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The current time as Claude Code prints it: `2026-11-24T11:10:34.347Z`.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The text of message content: a string, or the text blocks of an array joined by `\n`.
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A short random hex id for `msg_…`, `req_…` and `toolu_…` ids.
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// `system/init`, printed at the start of every turn.
pub fn init(ctx: &Ctx) -> Value {
    let api_key_source = if std::env::var_os("ANTHROPIC_API_KEY").is_some() {
        "ANTHROPIC_API_KEY"
    } else {
        "none"
    };
    json!({
        "type": "system", "subtype": "init", "cwd": ctx.cwd, "session_id": ctx.session_id,
        "tools": TOOLS, "mcp_servers": [], "model": ctx.model,
        "permissionMode": ctx.permission_mode, "slash_commands": [],
        "apiKeySource": api_key_source, "claude_code_version": "scripted",
        "output_style": "default", "agents": [], "skills": [], "plugins": [],
        "analytics_disabled": true, "product_feedback_disabled": true, "uuid": uuid(),
        "fast_mode_state": "off",
    })
}

/// The `message` object of an assistant line with one content block.
pub fn assistant_message(ctx: &Ctx, block: Value) -> Value {
    json!({
        "id": format!("msg_scripted_{}", short_id()), "type": "message", "role": "assistant",
        "model": ctx.model, "content": [block], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
        "context_management": null,
    })
}

/// An `assistant` line around a message from [`assistant_message`].
pub fn assistant(ctx: &Ctx, message: &Value) -> Value {
    json!({
        "type": "assistant", "message": message, "parent_tool_use_id": null,
        "session_id": ctx.session_id, "uuid": uuid(),
        "request_id": format!("req_scripted_{}", short_id()),
    })
}

/// A `user` line (tool result or interrupt marker); `tool_use_result` only for tools.
pub fn user(ctx: &Ctx, message: &Value, tool_use_result: Option<&Value>) -> Value {
    let mut line = json!({
        "type": "user", "message": message, "parent_tool_use_id": null,
        "session_id": ctx.session_id, "uuid": uuid(), "timestamp": now(),
    });
    if let Some(result) = tool_use_result {
        line["tool_use_result"] = result.clone();
    }
    line
}

/// The user message Claude Code prints when a turn is interrupted.
pub fn interrupted_message() -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": INTERRUPTED_TEXT}]})
}

fn usage(calls: u64) -> Value {
    json!({
        "input_tokens": 10 * calls, "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0, "output_tokens": 5 * calls,
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "inference_geo": "", "iterations": [], "speed": "standard",
    })
}

/// A successful `result` line; `calls` is the number of model calls (`num_turns`).
pub fn result_success(ctx: &Ctx, text: &str, calls: u64, duration_ms: u64) -> Value {
    let cost = COST_PER_CALL * calls as f64;
    json!({
        "type": "result", "subtype": "success", "is_error": false, "api_error_status": null,
        "duration_ms": duration_ms, "duration_api_ms": duration_ms, "num_turns": calls,
        "result": text, "stop_reason": "end_turn", "session_id": ctx.session_id,
        "total_cost_usd": cost, "usage": usage(calls),
        "modelUsage": {ctx.model: {
            "inputTokens": 10 * calls, "outputTokens": 5 * calls, "cacheReadInputTokens": 0,
            "cacheCreationInputTokens": 0, "webSearchRequests": 0, "costUSD": cost,
            "contextWindow": 200000, "maxOutputTokens": 64000}},
        "permission_denials": [], "terminal_reason": "completed", "fast_mode_state": "off",
        "uuid": uuid(),
    })
}

/// The `result` of a turn whose API call failed: `subtype` success, `is_error` true, the
/// error as the result text (as Claude Code reports a refused request).
pub fn result_api_error(ctx: &Ctx, text: &str, duration_ms: u64) -> Value {
    json!({
        "type": "result", "subtype": "success", "is_error": true, "api_error_status": 529,
        "duration_ms": duration_ms, "duration_api_ms": 0, "num_turns": 1, "result": text,
        "stop_reason": "stop_sequence", "session_id": ctx.session_id, "total_cost_usd": 0,
        "usage": usage(0), "modelUsage": {}, "permission_denials": [],
        "terminal_reason": "completed", "fast_mode_state": "off", "uuid": uuid(),
    })
}

/// An error `result` (`error_during_execution`) with the given terminal reason and errors.
pub fn result_error(
    session_id: &str,
    terminal_reason: Option<&str>,
    errors: &[String],
    duration_ms: u64,
) -> Value {
    let mut line = json!({
        "type": "result", "subtype": "error_during_execution", "duration_ms": duration_ms,
        "duration_api_ms": 0, "is_error": true, "num_turns": 1, "stop_reason": null,
        "session_id": session_id, "total_cost_usd": 0, "usage": usage(0), "modelUsage": {},
        "permission_denials": [], "fast_mode_state": "off", "uuid": uuid(), "errors": errors,
    });
    if let Some(reason) = terminal_reason {
        line["terminal_reason"] = json!(reason);
    }
    line
}

/// A successful `control_response`, with a `response` object when there is one.
pub fn control_success(request_id: &Value, response: Option<Value>) -> Value {
    let mut inner = json!({"subtype": "success", "request_id": request_id});
    if let Some(response) = response {
        inner["response"] = response;
    }
    json!({"type": "control_response", "response": inner})
}

/// An error `control_response` (the SDK's documented shape).
pub fn control_error(request_id: &Value, error: &str) -> Value {
    json!({"type": "control_response",
           "response": {"subtype": "error", "request_id": request_id, "error": error}})
}

/// The response object of `initialize`.
pub fn initialize_response(model: &str) -> Value {
    json!({
        "commands": [], "agents": [], "output_style": "default",
        "available_output_styles": ["default"],
        "models": [{"value": model, "displayName": model, "description": "scripted"}],
        "account": {"tokenSource": "none", "apiKeySource": "none", "apiProvider": "firstParty"},
        "pid": std::process::id(),
    })
}
