//! The stream-json lines the runtime writes and the few it needs to understand.
//!
//! Every stdin line is produced by serde, never from client text, because one malformed
//! line makes Claude Code exit.

use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

/// A user turn as a stdin line (with the trailing newline).
pub fn user_message(content: &serde_json::Value) -> String {
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
pub fn control_request(request_id: &str, subtype: &str) -> String {
    let line = json!({
        "type": "control_request",
        "request_id": request_id,
        "request": { "subtype": subtype },
    });
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// What an agent stdout line means to the runtime. Everything else is forwarded as is.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentLine {
    /// `system/init`: the agent's conversation id.
    Init {
        /// The agent's session id.
        session_id: String,
    },
    /// `result`: a turn ended.
    Result(TurnResult),
    /// An answer to one of the runtime's control requests; not part of the session's log.
    ControlResponse {
        /// The request it answers.
        request_id: String,
        /// The error text when the request failed.
        error: Option<String>,
    },
    /// Any other line.
    Other,
}

/// What a `result` line says of the turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnResult {
    /// Whether the turn failed (`subtype` can be `success` even then).
    pub is_error: bool,
    /// `success`, `error_max_turns`, `error_during_execution`, ...
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

/// The strings one of which every line the runtime acts on contains, as its `type`.
const ACTED_ON: [&str; 3] = ["\"result\"", "\"system\"", "\"control_response\""];

/// Reads one stdout line. Its JSON is validated in one pass and kept verbatim as the
/// event's data. Only a line that names a type the runtime acts on is read
/// a second time for its fields (about two lines a turn); for every other line, a
/// substring search tells it is [`AgentLine::Other`].
pub fn parse_line(text: String) -> Result<ParsedLine, NotAnObject> {
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

/// Reads the fields the runtime acts on from one stdout line, without building a tree of
/// the whole line. A line that is not a JSON object with a string `type` is an error.
pub fn classify(line: &str) -> Result<AgentLine, serde_json::Error> {
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
    fn refuses_lines_that_are_not_typed_objects() {
        for bad in ["not json {", "[1,2]", "{}", r#"{"type":3}"#, ""] {
            assert!(classify(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
