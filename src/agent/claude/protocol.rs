//! The stream-json lines the runtime writes and the few it needs to understand.
//!
//! Every stdin line is produced by serde, never from client text, because one malformed
//! line makes Claude Code exit.

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use crate::agent::{AgentLine, Decision, NotAnObject, ParsedLine, ToolRequest, TurnResult};

/// The tool through which Claude Code asks the person questions.
pub(super) const QUESTION_TOOL: &str = "AskUserQuestion";

/// A user turn as a stdin line (with the trailing newline).
pub(super) fn user_message(content: &serde_json::Value) -> String {
    let line = json!({
        "type": "user",
        "session_id": "",
        "message": { "role": "user", "content": content },
        "parent_tool_use_id": null,
    });
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// A control request (`initialize`, `interrupt`) as a stdin line.
pub(super) fn control_request(request_id: &str, subtype: &str) -> String {
    let line = json!({
        "type": "control_request",
        "request_id": request_id,
        "request": { "subtype": subtype },
    });
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// The runtime's decision on one of the agent's `can_use_tool` requests, as Claude Code
/// reads it in the `response` of a `control_response`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "behavior", rename_all = "lowercase")]
enum PermissionDecision<'a> {
    /// The tool runs with `updatedInput` (the request's input, or the client's edit).
    Allow {
        #[serde(rename = "updatedInput")]
        updated_input: &'a serde_json::Value,
        /// Rules Claude Code adds for the rest of its process (`addRules` for the session).
        #[serde(rename = "updatedPermissions", skip_serializing_if = "Vec::is_empty")]
        updated_permissions: Vec<PermissionUpdate<'a>>,
        #[serde(rename = "toolUseID", skip_serializing_if = "Option::is_none")]
        tool_use_id: Option<&'a str>,
    },
    /// The tool does not run; the model gets `message` as the tool's error result.
    Deny {
        message: &'a str,
        /// Whether the whole turn ends too. The runtime never asks for that: the model
        /// reads the denial and goes on.
        interrupt: bool,
    },
}

/// One permission update Claude Code applies to its running process.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct PermissionUpdate<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    rules: [PermissionRule<'a>; 1],
    behavior: &'static str,
    destination: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct PermissionRule<'a> {
    #[serde(rename = "toolName")]
    tool_name: &'a str,
}

impl<'a> PermissionUpdate<'a> {
    /// Allows every later call of `tool` for the rest of the agent's process.
    fn allow_for_session(tool: &'a str) -> Self {
        Self {
            kind: "addRules",
            rules: [PermissionRule { tool_name: tool }],
            behavior: "allow",
            destination: "session",
        }
    }
}

impl<'a> From<&Decision<'a>> for PermissionDecision<'a> {
    fn from(decision: &Decision<'a>) -> Self {
        match *decision {
            Decision::Allow {
                input,
                always,
                tool_name,
                tool_use_id,
            } => PermissionDecision::Allow {
                updated_input: input,
                updated_permissions: if always {
                    vec![PermissionUpdate::allow_for_session(tool_name)]
                } else {
                    Vec::new()
                },
                tool_use_id,
            },
            Decision::Deny { message } => PermissionDecision::Deny {
                message,
                interrupt: false,
            },
        }
    }
}

/// The answer to the agent's `can_use_tool` request `request_id` as a stdin line.
pub(super) fn permission_response(request_id: &str, decision: &Decision<'_>) -> String {
    let decision = PermissionDecision::from(decision);
    let line = json!({
        "type": "control_response",
        "response": { "subtype": "success", "request_id": request_id, "response": &decision },
    });
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// A refusal of the agent's control request `request_id` (one the runtime cannot serve)
/// as a stdin line, so the agent does not wait for it forever.
pub(super) fn control_error(request_id: &str, error: &str) -> String {
    let line = json!({
        "type": "control_response",
        "response": { "subtype": "error", "request_id": request_id, "error": error },
    });
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// A `can_use_tool` request's fields, as Claude Code prints them.
#[derive(Deserialize)]
struct CanUseTool {
    tool_name: String,
    input: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    permission_suggestions: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    subtype: Option<&'a str>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    is_error: bool,
    #[serde(default)]
    total_cost_usd: f64,
    #[serde(default)]
    usage: Option<PeekUsage>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    response: Option<PeekControl>,
    #[serde(default, borrow)]
    request_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    request: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PeekRequest<'a> {
    #[serde(borrow)]
    subtype: &'a str,
}

#[derive(Deserialize, Default)]
struct PeekUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
}

#[derive(Deserialize)]
struct PeekControl {
    #[serde(default)]
    subtype: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    error: Option<String>,
}

/// The strings one of which every line the runtime acts on contains, as its `type`.
const ACTED_ON: [&str; 5] = [
    "\"result\"",
    "\"system\"",
    "\"control_response\"",
    "\"control_request\"",
    "\"control_cancel_request\"",
];

/// Reads one stdout line. Its JSON is validated in one pass and kept verbatim as the
/// event's data. Only a line that names a type the runtime acts on is read
/// a second time for its fields (about two lines a turn); for every other line, a
/// substring search tells it is [`AgentLine::Other`].
pub(super) fn parse_line(text: String) -> Result<ParsedLine, NotAnObject> {
    if !text.trim_start().starts_with('{') {
        return Err(NotAnObject(text));
    }
    let json = match serde_json::from_str::<&RawValue>(&text) {
        Ok(json) => json.to_owned(),
        Err(_) => return Err(NotAnObject(text)),
    };
    let meaning = if ACTED_ON.iter().any(|name| json.get().contains(name)) {
        // An object whose fields do not read as a line the runtime acts on (a `type`
        // that is not a string, say) is passed on and means nothing.
        classify(json.get()).unwrap_or(AgentLine::Other)
    } else {
        AgentLine::Other
    };
    Ok(ParsedLine { json, meaning })
}

/// The `uuid` of an `assistant` line of the conversation itself (not a subagent's, which
/// has a `parent_tool_use_id` and may be kept elsewhere). Claude Code writes every
/// assistant message to its transcript under the same uuid (checked with the pinned CLI),
/// so a transcript that holds it holds the conversation up to that message. A substring
/// search skips every other line without parsing it again.
pub(super) fn assistant_uuid(line: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Assistant<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
        #[serde(default)]
        uuid: Option<String>,
        #[serde(default)]
        parent_tool_use_id: Option<String>,
    }
    if !line.contains("\"assistant\"") {
        return None;
    }
    let peek: Assistant = serde_json::from_str(line).ok()?;
    (peek.kind == "assistant" && peek.parent_tool_use_id.is_none())
        .then_some(peek.uuid)
        .flatten()
}

/// Reads the fields the runtime acts on from one stdout line, without building a tree of
/// the whole line. A line that is not a JSON object with a string `type` is an error.
pub(super) fn classify(line: &str) -> Result<AgentLine, serde_json::Error> {
    let peek: Peek = serde_json::from_str(line)?;
    Ok(match (peek.kind, peek.subtype) {
        ("system", Some("init")) => match peek.session_id {
            Some(session_id) => AgentLine::Init { session_id },
            None => AgentLine::Other,
        },
        ("result", subtype) => {
            let usage = peek.usage.unwrap_or_default();
            AgentLine::Result(TurnResult {
                is_error: peek.is_error,
                subtype: subtype.unwrap_or_default().to_owned(),
                // Saturating: the numbers are the agent's word, and may be absurd.
                input_tokens: usage
                    .input_tokens
                    .saturating_add(usage.cache_creation_input_tokens)
                    .saturating_add(usage.cache_read_input_tokens),
                output_tokens: usage.output_tokens,
                cost_usd: peek.total_cost_usd,
                text: peek.result,
                session_id: peek.session_id,
            })
        }
        ("control_response", _) => match peek.response {
            Some(response) => AgentLine::ControlResponse {
                error: (response.subtype != "success")
                    .then(|| response.error.unwrap_or(response.subtype)),
                request_id: response.request_id,
            },
            None => AgentLine::Other,
        },
        ("control_request", _) => {
            let Some(request_id) = peek
                .request_id
                .and_then(|id| serde_json::from_str::<String>(id.get()).ok())
            else {
                return Ok(AgentLine::Other);
            };
            let Some(request) = peek.request else {
                return Ok(AgentLine::OtherRequest { request_id });
            };
            let subtype = serde_json::from_str::<PeekRequest>(request.get()).ok();
            match subtype.map(|s| s.subtype) {
                // A `can_use_tool` whose fields do not read is refused like any request
                // the runtime cannot serve: the agent must not wait for it.
                Some("can_use_tool") => match serde_json::from_str::<CanUseTool>(request.get()) {
                    Ok(ask) => AgentLine::ToolRequest(ToolRequest {
                        request_id,
                        is_question: ask.tool_name == QUESTION_TOOL,
                        tool_name: ask.tool_name,
                        input: ask.input,
                        tool_use_id: ask.tool_use_id,
                        permission_suggestions: ask.permission_suggestions,
                        description: ask.description,
                    }),
                    Err(_) => AgentLine::OtherRequest { request_id },
                },
                _ => AgentLine::OtherRequest { request_id },
            }
        }
        ("control_cancel_request", _) => match peek
            .request_id
            .and_then(|id| serde_json::from_str::<String>(id.get()).ok())
        {
            Some(request_id) => AgentLine::CancelRequest { request_id },
            None => AgentLine::Other,
        },
        _ => AgentLine::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_lines_are_single_json_lines() {
        let tricky = json!("line one\nline two \"quoted\" \u{0}");
        let line = user_message(&tricky);
        assert!(line.ends_with('\n'));
        assert_eq!(
            line.matches('\n').count(),
            1,
            "embedded newlines are escaped"
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["message"]["content"], tricky);
        assert_eq!(
            control_request("intr1", "interrupt"),
            "{\"request\":{\"subtype\":\"interrupt\"},\"request_id\":\"intr1\",\"type\":\"control_request\"}\n"
        );
    }

    #[test]
    fn finds_the_uuid_of_assistant_lines_only() {
        let assistant =
            r#"{"type":"assistant","message":{"role":"assistant","content":[]},"uuid":"u-1"}"#;
        assert_eq!(assistant_uuid(assistant).as_deref(), Some("u-1"));
        let user = r#"{"type":"user","message":{"role":"assistant"},"uuid":"u-2"}"#;
        assert_eq!(assistant_uuid(user), None);
        assert_eq!(assistant_uuid(r#"{"type":"assistant"}"#), None);
        assert_eq!(assistant_uuid(r#"{"type":"result","uuid":"u-3"}"#), None);
        let subagent = r#"{"type":"assistant","parent_tool_use_id":"toolu_1","uuid":"u-4"}"#;
        assert_eq!(assistant_uuid(subagent), None);
        let own = r#"{"type":"assistant","parent_tool_use_id":null,"uuid":"u-5"}"#;
        assert_eq!(assistant_uuid(own).as_deref(), Some("u-5"));
    }

    #[test]
    fn classifies_the_lines_the_runtime_acts_on() {
        let init =
            r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"abc","tools":["Bash"]}"#;
        assert_eq!(
            classify(init).unwrap(),
            AgentLine::Init {
                session_id: "abc".into()
            }
        );

        let result = r#"{"type":"result","subtype":"success","is_error":true,"total_cost_usd":0.5,
            "usage":{"input_tokens":20,"cache_creation_input_tokens":3,"cache_read_input_tokens":4,"output_tokens":10}}"#;
        assert_eq!(
            classify(result).unwrap(),
            AgentLine::Result(TurnResult {
                is_error: true,
                subtype: "success".into(),
                input_tokens: 27,
                output_tokens: 10,
                cost_usd: 0.5,
                text: None,
                session_id: None,
            })
        );
        let absurd = format!(
            r#"{{"type":"result","session_id":"s","usage":{{"input_tokens":{max},"cache_read_input_tokens":{max}}}}}"#,
            max = u64::MAX
        );
        match classify(&absurd).unwrap() {
            AgentLine::Result(result) => {
                assert_eq!(result.input_tokens, u64::MAX);
                assert_eq!(result.session_id.as_deref(), Some("s"));
            }
            other => panic!("not a result: {other:?}"),
        }

        let ok = r#"{"type":"control_response","response":{"subtype":"success","request_id":"i1","response":{}}}"#;
        assert_eq!(
            classify(ok).unwrap(),
            AgentLine::ControlResponse {
                request_id: "i1".into(),
                error: None
            }
        );
        let failed = r#"{"type":"control_response","response":{"subtype":"error","request_id":"i2","error":"no"}}"#;
        assert_eq!(
            classify(failed).unwrap(),
            AgentLine::ControlResponse {
                request_id: "i2".into(),
                error: Some("no".into())
            }
        );
        assert_eq!(
            classify(r#"{"type":"assistant","message":{}}"#).unwrap(),
            AgentLine::Other
        );
    }

    #[test]
    fn a_line_is_an_object_and_only_the_lines_acted_on_mean_something() {
        let parse = |text: &str| parse_line(text.to_owned());
        for bad in ["not json {", "[1,2]", "3", "", "{\"open\": ", "  "] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        for other in [
            "{}",
            r#"{"type":3}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"a \"result\""}]}}"#,
            // Names a type acted on, but is not one: read, and means nothing.
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","input":{"system":"result"}}]}}"#,
            r#"{"type":["result"]}"#,
        ] {
            let line = parse(other).unwrap();
            assert_eq!(line.meaning, AgentLine::Other, "{other}");
            assert_eq!(line.json.get(), other, "kept verbatim");
        }
        let spaced = r#" { "type" : "result", "subtype" : "success", "session_id" : "s" }"#;
        match parse(spaced).unwrap().meaning {
            AgentLine::Result(result) => assert_eq!(result.session_id.as_deref(), Some("s")),
            other => panic!("not a result: {other:?}"),
        }
        let init = r#"{"type":"system","subtype":"init","session_id":"abc"}"#;
        assert_eq!(
            parse(init).unwrap().meaning,
            AgentLine::Init {
                session_id: "abc".into()
            }
        );
    }

    #[test]
    fn reads_the_agents_permission_requests() {
        // As the pinned CLI printed it (ids shortened).
        let ask = r#"{"type":"control_request","request_id":"cd9a","request":{"subtype":"can_use_tool","tool_name":"Write","display_name":"Write","input":{"file_path":"/w/out2.txt","content":"x\n"},"description":"out2.txt","permission_suggestions":[{"type":"setMode","mode":"acceptEdits","destination":"session"}],"tool_use_id":"toolu_03"}}"#;
        match parse_line(ask.to_owned()).unwrap().meaning {
            AgentLine::ToolRequest(request) => {
                assert_eq!(request.request_id, "cd9a");
                assert!(!request.is_question);
                assert_eq!(request.tool_name, "Write");
                assert_eq!(request.input["file_path"], "/w/out2.txt");
                assert_eq!(request.tool_use_id.as_deref(), Some("toolu_03"));
                assert_eq!(request.description.as_deref(), Some("out2.txt"));
                assert_eq!(
                    request.permission_suggestions.unwrap()[0]["mode"],
                    "acceptEdits"
                );
            }
            other => panic!("not a permission request: {other:?}"),
        }
        let question = r#"{"type":"control_request","request_id":"q1","request":{"subtype":"can_use_tool","tool_name":"AskUserQuestion","input":{"questions":[{"question":"Q?"}]}}}"#;
        match parse_line(question.to_owned()).unwrap().meaning {
            AgentLine::ToolRequest(request) => assert!(request.is_question),
            other => panic!("not a question: {other:?}"),
        }
        // Requests the runtime cannot serve are refused by their id, never ignored.
        for (line, id) in [
            (
                r#"{"type":"control_request","request_id":"h1","request":{"subtype":"hook_callback"}}"#,
                "h1",
            ),
            (
                r#"{"type":"control_request","request_id":"h2","request":{"subtype":"can_use_tool","tool_name":"Write","input":"not an object"}}"#,
                "h2",
            ),
            (r#"{"type":"control_request","request_id":"h3"}"#, "h3"),
        ] {
            assert_eq!(
                parse_line(line.to_owned()).unwrap().meaning,
                AgentLine::OtherRequest {
                    request_id: id.into()
                },
                "{line}"
            );
        }
        assert_eq!(
            classify(r#"{"type":"control_request","request_id":7,"request":{}}"#).unwrap(),
            AgentLine::Other
        );
        assert_eq!(
            classify(r#"{"type":"control_cancel_request","request_id":"cd9a"}"#).unwrap(),
            AgentLine::CancelRequest {
                request_id: "cd9a".into()
            }
        );
    }

    #[test]
    fn permission_answers_are_the_lines_the_cli_reads() {
        let input = json!({ "file_path": "/w/a", "content": "x" });
        let allow = permission_response(
            "r\"1",
            &Decision::Allow {
                input: &input,
                always: true,
                tool_name: "Write",
                tool_use_id: Some("toolu_1"),
            },
        );
        assert!(allow.ends_with('\n') && allow.matches('\n').count() == 1);
        let allow: serde_json::Value = serde_json::from_str(&allow).unwrap();
        assert_eq!(
            allow,
            json!({"type": "control_response", "response": {"subtype": "success", "request_id": "r\"1",
                "response": {"behavior": "allow", "updatedInput": input, "toolUseID": "toolu_1",
                "updatedPermissions": [{"type": "addRules", "rules": [{"toolName": "Write"}],
                    "behavior": "allow", "destination": "session"}]}}})
        );
        let deny = permission_response(
            "r2",
            &Decision::Deny {
                message: "not now\nplease",
            },
        );
        assert_eq!(deny.matches('\n').count(), 1);
        let deny: serde_json::Value = serde_json::from_str(&deny).unwrap();
        assert_eq!(
            deny["response"]["response"],
            json!({"behavior": "deny", "message": "not now\nplease", "interrupt": false})
        );
        let refused: serde_json::Value =
            serde_json::from_str(&control_error("h1", "unsupported")).unwrap();
        assert_eq!(refused["response"]["subtype"], "error");
        assert_eq!(refused["response"]["request_id"], "h1");
    }

    #[test]
    fn refuses_lines_that_are_not_typed_objects() {
        for bad in ["not json {", "[1,2]", "{}", r#"{"type":3}"#, ""] {
            assert!(classify(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
