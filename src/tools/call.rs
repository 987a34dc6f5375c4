//! Executing one tool call: validate the arguments, render the templates, run the request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use super::template::{Renderer, call_context};
use super::{ConvexCaller, ToolFailureSink, ToolSession};
use crate::profiles::{ConvexFunctionType, InputSchema, ToolKind, ToolSpec};

/// How long one call may take, HTTP or Convex.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The most response text handed to the agent; more is cut off with a note.
const MAX_RESULT_BYTES: usize = 1024 * 1024;
/// How much of a failed response's body goes into the error.
const ERROR_EXCERPT_CHARS: usize = 500;

/// Runs tool calls with the runtime's credentials; shared by every MCP session.
pub(crate) struct Executor {
    /// The client for `http` tools.
    pub http: reqwest::Client,
    /// The deployment for `convex` tools, if the runtime has one.
    pub convex: Option<Arc<dyn ConvexCaller>>,
    /// Told of every failed call.
    pub failures: Arc<dyn ToolFailureSink>,
    /// Renders the templates.
    pub renderer: Renderer,
}

impl Executor {
    /// Runs `tool` for `session`; any failure is reported to the sink and returned to the
    /// agent as an error result.
    pub async fn call(
        &self,
        session: &ToolSession,
        tool: &ToolSpec,
        args: Value,
    ) -> CallToolResult {
        match self.run(session, tool, args).await {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(message) => {
                let (session_id, name) = (&session.session_id, &tool.name);
                tracing::warn!(session = %session_id, tool = %name, %message, "tool call failed");
                self.failures
                    .tool_failed(&session.session_id, &tool.name, &message);
                CallToolResult::error(vec![ContentBlock::text(message)])
            }
        }
    }

    async fn run(
        &self,
        session: &ToolSession,
        tool: &ToolSpec,
        args: Value,
    ) -> Result<String, String> {
        validate_arguments(&tool.input_schema, &args)?;
        let context = call_context(&session.context, &args);
        match &tool.kind {
            ToolKind::Http {
                method,
                url,
                headers,
                body,
            } => {
                let request = HttpCall {
                    method,
                    url,
                    headers,
                    body: body.as_ref(),
                };
                self.http_call(request, &context).await
            }
            ToolKind::Convex {
                function,
                function_type,
                args,
            } => {
                self.convex_call(function, *function_type, args.as_ref(), &context)
                    .await
            }
        }
    }

    async fn http_call(
        &self,
        call: HttpCall<'_>,
        context: &minijinja::Value,
    ) -> Result<String, String> {
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", call.method))?;
        let url = self.renderer.render_url(call.url, context)?;
        let mut request = self.http.request(method, url).timeout(CALL_TIMEOUT);
        for (name, template) in call.headers {
            let (name, value) = self.render_header(name, template, context)?;
            request = request.header(name, value);
        }
        if let Some(template) = call.body {
            request = request.json(&self.renderer.render_json("body", template, context)?);
        }
        let response = request.send().await.map_err(describe_reqwest)?;
        let status = response.status();
        if status.is_redirection() {
            // Only a redirect within the tool's origin is followed (see `http_client`).
            return Err(format!(
                "the upstream answered HTTP {status}, a redirect to another origin; \
                 tools follow redirects only within their URL's origin"
            ));
        }
        let text = read_limited(response).await?;
        if !status.is_success() {
            return Err(format!(
                "the upstream answered HTTP {status}: {}",
                excerpt(&text)
            ));
        }
        Ok(text)
    }

    fn render_header(
        &self,
        name: &str,
        template: &str,
        context: &minijinja::Value,
    ) -> Result<(HeaderName, HeaderValue), String> {
        let key = format!("headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{key}: not a valid header name"))?;
        let rendered = self.renderer.render_str(&key, template, context)?;
        // The value is often a secret: say what is wrong, not what it is.
        let mut value = HeaderValue::from_str(&rendered)
            .map_err(|_| format!("{key}: the rendered value is not a valid header value"))?;
        value.set_sensitive(true);
        Ok((header, value))
    }

    async fn convex_call(
        &self,
        function: &str,
        kind: ConvexFunctionType,
        args: Option<&Value>,
        context: &minijinja::Value,
    ) -> Result<String, String> {
        let Some(convex) = &self.convex else {
            return Err(
                "convex tools are not available: the runtime has no Convex deployment configured"
                    .into(),
            );
        };
        let args = match args {
            Some(template) => self.renderer.render_json("args", template, context)?,
            None => Value::Object(Default::default()),
        };
        let call = convex.call(kind, function, args);
        let value = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| {
                format!(
                    "convex {function}: no answer within {}s",
                    CALL_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("convex {function}: {e}"))?;
        Ok(match value {
            Value::String(text) => text,
            other => other.to_string(),
        })
    }
}

/// The templates of an `http` tool.
struct HttpCall<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a BTreeMap<String, String>,
    body: Option<&'a Value>,
}

/// Checks a call's arguments against the tool's schema, compiled when its profile
/// loaded; the error lists every violation.
pub(crate) fn validate_arguments(schema: &InputSchema, args: &Value) -> Result<(), String> {
    let violations = schema.violations(args);
    if violations.is_empty() {
        return Ok(());
    }
    Err(format!("invalid arguments: {}", violations.join("; ")))
}

/// A transport error without its URL, which may carry credentials.
fn describe_reqwest(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!(
            "the upstream did not answer within {}s",
            CALL_TIMEOUT.as_secs()
        );
    }
    let error = error.without_url();
    let mut message = format!("the request failed: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// The response body as text, cut at [`MAX_RESULT_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<String, String> {
    let mut body: Vec<u8> = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await.map_err(describe_reqwest)? {
        let room = MAX_RESULT_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if truncated {
        text.push_str(&format!("\n[response cut at {MAX_RESULT_BYTES} bytes]"));
    }
    Ok(text)
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(ERROR_EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None if text.is_empty() => "(empty body)".into(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;

    /// Failures as the sink saw them: (session, tool, message).
    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, String, String)>>);

    impl ToolFailureSink for Recorded {
        fn tool_failed(&self, session_id: &str, tool: &str, message: &str) {
            let entry = (session_id.into(), tool.into(), message.into());
            self.0.lock().unwrap().push(entry);
        }
    }

    #[test]
    fn argument_violations_are_listed() {
        let schema = InputSchema::compile(json!({
            "type": "object",
            "properties": {
                "limit": { "type": "integer", "maximum": 50 },
                "q": { "type": "string" },
            },
            "required": ["q"],
            "additionalProperties": false,
        }))
        .unwrap();
        assert_eq!(
            validate_arguments(&schema, &json!({ "q": "x", "limit": 5 })),
            Ok(())
        );
        let err = validate_arguments(&schema, &json!({ "limit": 99, "extra": 1 })).unwrap_err();
        assert!(err.starts_with("invalid arguments: "), "{err}");
        assert!(
            err.contains("at (root): \"q\" is a required property"),
            "{err}"
        );
        assert!(
            err.contains("at /limit: 99 is greater than the maximum of 50"),
            "{err}"
        );
        assert!(err.contains("extra"), "{err}");
        let wrong_type = validate_arguments(&schema, &json!({ "q": 1 })).unwrap_err();
        assert!(wrong_type.contains("at /q:"), "{wrong_type}");
    }

    #[test]
    fn a_broken_schema_is_refused_when_compiled() {
        let err = InputSchema::compile(json!({ "type": 12 })).unwrap_err();
        assert!(err.contains("input schema does not compile"), "{err}");
    }

    #[test]
    fn formats_are_enforced() {
        let schema = InputSchema::compile(json!({
            "type": "object",
            "properties": {
                "contact": { "type": "string", "format": "email" },
                "day": { "type": "string", "format": "date" },
                "link": { "type": "string", "format": "uri" },
            },
        }))
        .unwrap();
        let good = json!({ "contact": "a@example.com", "day": "2026-01-31",
                           "link": "https://example.com/x" });
        assert_eq!(validate_arguments(&schema, &good), Ok(()));
        let bad = json!({ "contact": "nope", "day": "2026-02-31", "link": "not a uri" });
        let err = validate_arguments(&schema, &bad).unwrap_err();
        for field in ["/contact", "/day", "/link"] {
            assert!(err.contains(&format!("at {field}: ")), "{field}: {err}");
        }
    }

    #[test]
    fn excerpts_are_cut_on_char_boundaries() {
        let long = "é".repeat(ERROR_EXCERPT_CHARS + 10);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), ERROR_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("  "), "(empty body)");
        assert_eq!(excerpt(" short "), "short");
    }

    /// Stands in for the Convex adapter: answers with what it was asked.
    struct EchoConvex;

    #[async_trait]
    impl ConvexCaller for EchoConvex {
        async fn call(
            &self,
            kind: ConvexFunctionType,
            function: &str,
            args: Value,
        ) -> Result<Value, String> {
            match function {
                "fail:now" => Err("function threw: nope".into()),
                _ => Ok(json!({ "kind": format!("{kind:?}"), "function": function, "args": args })),
            }
        }
    }

    #[tokio::test]
    async fn convex_tools_render_their_args() {
        let failures = Arc::new(Recorded::default());
        let executor = |convex: Option<Arc<dyn ConvexCaller>>| Executor {
            http: reqwest::Client::new(),
            convex,
            failures: failures.clone(),
            renderer: Renderer::new(),
        };
        let tool = |function: &str| ToolSpec {
            name: "events".into(),
            description: String::new(),
            input_schema: InputSchema::compile(json!({ "type": "object" })).unwrap(),
            kind: ToolKind::Convex {
                function: function.into(),
                function_type: ConvexFunctionType::Query,
                args: Some(
                    json!({ "regionCode": "{{ REGION_CODE }}", "limit": "{{ args.limit }}" }),
                ),
            },
        };
        let session = ToolSession {
            session_id: "s-9".into(),
            tools: Vec::new(),
            context: json!({ "REGION_CODE": "eth" }),
        };
        let with_convex = executor(Some(Arc::new(EchoConvex)));
        let result = with_convex
            .call(&session, &tool("events:list"), json!({ "limit": 3 }))
            .await;
        assert_eq!(result.is_error, Some(false));
        let text = result.content[0].as_text().unwrap().text.clone();
        let expected = json!({ "kind": "Query", "function": "events:list",
                               "args": { "regionCode": "eth", "limit": 3 } });
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);

        let thrown = with_convex
            .call(&session, &tool("fail:now"), json!({ "limit": 3 }))
            .await;
        assert_eq!(thrown.is_error, Some(true));
        let missing = executor(None)
            .call(&session, &tool("events:list"), json!({ "limit": 3 }))
            .await;
        assert_eq!(missing.is_error, Some(true));
        let recorded = failures.0.lock().unwrap().clone();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[0].2, "convex fail:now: function threw: nope");
        assert!(
            recorded[1].2.contains("no Convex deployment"),
            "{}",
            recorded[1].2
        );
    }
}
