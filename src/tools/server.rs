//! The MCP side: the bearer-token gate and the `ServerHandler` over a session's tools.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};

use super::call::Executor;
use super::{ToolSession, ToolSessions};
use crate::profiles::ToolSpec;

/// The header rmcp answers `initialize` with.
const MCP_SESSION_ID: &str = "mcp-session-id";

/// Requires `Authorization: Bearer <token>` of a live tool session and attaches the
/// [`ToolSession`] to the request, where the handler finds it through rmcp's copy of the
/// request parts.
pub(crate) async fn authenticate(
    State(sessions): State<Arc<ToolSessions>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(request.headers()).map(str::to_owned) else {
        return unauthorized("missing `Authorization: Bearer <token>`");
    };
    let Some(session) = sessions.lookup(&token) else {
        return unauthorized("the token is unknown or was revoked");
    };
    request.extensions_mut().insert(session);
    let response = next.run(request).await;
    if let Some(id) = response
        .headers()
        .get(MCP_SESSION_ID)
        .and_then(|v| v.to_str().ok())
    {
        sessions.record_mcp_session(&token, id);
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(message: &str) -> Response {
    let body = json!({ "error": { "code": "unauthorized", "message": message } });
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(body),
    )
        .into_response()
}

/// One MCP session's handler. The tools come from each request's token, not from the
/// MCP session, so a revoked token stops working at once.
#[derive(Clone)]
pub(crate) struct SessionTools {
    pub executor: Arc<Executor>,
}

impl ServerHandler for SessionTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "agent-runtime",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Tools of this agent session, run by the agent runtime.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let session = session_of(&context)?;
        let tools = session.tools.iter().map(mcp_tool).collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let session = session_of(&context)?;
        let Some(tool) = session.tools.iter().find(|t| t.name == request.name) else {
            let message = format!("unknown tool `{}`", request.name);
            return Err(ErrorData::invalid_params(message, None));
        };
        let args = Value::Object(request.arguments.unwrap_or_default());
        Ok(self.executor.call(&session, tool, args).await.into())
    }
}

fn session_of(context: &RequestContext<RoleServer>) -> Result<Arc<ToolSession>, ErrorData> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<ToolSession>>())
        .cloned()
        // Only reachable if the router is mounted without its authentication layer.
        .ok_or_else(|| ErrorData::internal_error("the request carries no tool session", None))
}

fn mcp_tool(spec: &ToolSpec) -> Tool {
    let schema: JsonObject = match spec.input_schema.value() {
        Value::Object(schema) => schema.clone(),
        // MCP requires an object schema; `true` and the like accept any object.
        _ => JsonObject::from_iter([("type".to_owned(), Value::from("object"))]),
    };
    Tool::new(spec.name.clone(), spec.description.clone(), schema)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn bearer_parsing() {
        let cases = [
            (Some("Bearer abc"), Some("abc")),
            (Some("bearer abc"), Some("abc")),
            (Some("Bearer  abc "), Some("abc")),
            (Some("Bearer "), None),
            (Some("Basic abc"), None),
            (Some("abc"), None),
            (None, None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            }
            assert_eq!(bearer(&headers), expected, "{value:?}");
        }
    }
}
