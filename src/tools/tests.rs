//! End to end over the network: the `/mcp` router, a local upstream, JSON-RPC over HTTP.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::*;
use crate::profiles::{InputSchema, ToolKind, ToolSpec};

const PROTOCOL: &str = "2025-06-18";

/// Failures as the sink saw them: (session, tool, message).
#[derive(Default)]
struct Recorded(Mutex<Vec<(String, String, String)>>);

impl ToolFailureSink for Recorded {
    fn tool_failed(&self, session_id: &str, tool: &str, message: &str) {
        let entry = (session_id.into(), tool.into(), message.into());
        self.0.lock().unwrap().push(entry);
    }
}

/// What the upstream received: (path?query, authorization, x-session, body).
type Received = Arc<Mutex<Vec<(String, String, String, Value)>>>;

async fn upstream() -> (String, Received) {
    async fn orders(
        State(received): State<Received>,
        Path(market): Path<String>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: axum::Json<Value>,
    ) -> String {
        let header = |name: &str| {
            let value = headers.get(name).and_then(|v| v.to_str().ok());
            value.unwrap_or_default().to_owned()
        };
        let target = format!("/markets/{market}/orders?{}", query.unwrap_or_default());
        let entry = (target, header("authorization"), header("x-session"), body.0);
        received.lock().unwrap().push(entry);
        "order accepted".into()
    }
    async fn fail() -> (StatusCode, &'static str) {
        (StatusCode::INTERNAL_SERVER_ERROR, "boom from upstream")
    }
    async fn redirect(Query(query): Query<BTreeMap<String, String>>) -> Redirect {
        Redirect::temporary(&query["to"])
    }
    let received = Received::default();
    let app = Router::new()
        .route("/markets/{market}/orders", post(orders))
        .route("/fail", get(fail))
        .route("/redirect", get(redirect))
        .route("/home", get(|| async { "home" }))
        .with_state(received.clone());
    (serve(app).await, received)
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn http_tool(name: &str, method: &str, url: &str, body: Option<Value>) -> ToolSpec {
    let headers = BTreeMap::from([
        ("Authorization".into(), "Bearer {{ API_TOKEN }}".into()),
        ("X-Session".into(), "{{ SESSION_ID }}".into()),
    ]);
    ToolSpec {
        name: name.into(),
        description: format!("{name} tool"),
        input_schema: InputSchema::compile(json!({
            "type": "object",
            "properties": { "limit": { "type": "integer" }, "note": { "type": "string" } },
        }))
        .unwrap(),
        kind: ToolKind::Http {
            method: method.into(),
            url: url.into(),
            headers,
            body,
        },
    }
}

fn trader(upstream: &str) -> ToolSession {
    let order = http_tool(
        "place_order",
        "POST",
        &format!(
            "{upstream}/markets/{{{{ REGION_CODE }}}}/orders?limit={{{{ args.limit }}}}\
             &q={{{{ args.note | urlencode }}}}"
        ),
        Some(
            json!({ "regionCode": "{{ REGION_CODE }}", "limit": "{{ args.limit }}",
                     "note": "note: {{ args.note }}", "tags": ["{{ AGENT_TYPE }}"] }),
        ),
    );
    let broken = http_tool("broken", "GET", &format!("{upstream}/fail"), None);
    ToolSession {
        session_id: "s-1".into(),
        tools: vec![order, broken],
        context: json!({ "SESSION_ID": "s-1", "AGENT_TYPE": "trader", "REGION_CODE": "btc-usd",
                         "API_TOKEN": "upstream-secret" }),
    }
}

/// A minimal MCP client: JSON-RPC POSTs, answers read from JSON or SSE `data:` lines.
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    mcp_session: Option<String>,
}

impl Client {
    async fn post(&self, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(id) = &self.mcp_session {
            request = request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", PROTOCOL);
        }
        request.send().await.unwrap()
    }

    /// Sends a request and returns its JSON-RPC answer (`result` or `error` object).
    async fn request(&self, id: u64, method: &str, params: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let response = self.post(&body).await;
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        let text = tokio::time::timeout(Duration::from_secs(10), response.text())
            .await
            .expect("the answer's stream ends")
            .unwrap();
        answer(&text, id).unwrap_or_else(|| panic!("no answer to {method} in {text:?}"))
    }

    async fn initialize(&mut self) -> Value {
        let params = json!({ "protocolVersion": PROTOCOL, "capabilities": {},
                             "clientInfo": { "name": "test", "version": "0" } });
        let body = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params });
        let response = self.post(&body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers().get("mcp-session-id").unwrap();
        self.mcp_session = Some(id.to_str().unwrap().to_owned());
        let answer = answer(&response.text().await.unwrap(), 0).unwrap();
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        assert_eq!(self.post(&note).await.status(), StatusCode::ACCEPTED);
        answer
    }

    async fn call(&self, id: u64, name: &str, arguments: Value) -> Value {
        let params = json!({ "name": name, "arguments": arguments });
        self.request(id, "tools/call", params).await
    }
}

fn answer(text: &str, id: u64) -> Option<Value> {
    let messages: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(single) => vec![single],
        Err(_) => text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect(),
    };
    messages.into_iter().find(|m| m["id"] == json!(id))
}

fn tool_names(list: &Value) -> Vec<&str> {
    let tools = list["result"]["tools"].as_array().unwrap();
    tools.iter().map(|t| t["name"].as_str().unwrap()).collect()
}

fn text_of(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"].as_str().unwrap()
}

struct Harness {
    url: String,
    sessions: Arc<ToolSessions>,
    failures: Arc<Recorded>,
    received: Received,
    upstream: String,
}

impl Harness {
    async fn start() -> Harness {
        let (upstream, received) = upstream().await;
        let sessions = Arc::new(ToolSessions::new());
        let failures = Arc::new(Recorded::default());
        let state = ToolsState::new(sessions.clone(), http_client(), failures.clone());
        let url = format!("{}{MCP_PATH}", serve(router(state)).await);
        Harness {
            url,
            sessions,
            failures,
            received,
            upstream,
        }
    }

    fn client(&self, token: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: self.url.clone(),
            token: token.into(),
            mcp_session: None,
        }
    }
}

#[tokio::test]
async fn tokens_are_required() {
    let harness = Harness::start().await;
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {} });
    let bare = reqwest::Client::new()
        .post(&harness.url)
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let body: Value = bare.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = harness.client("0123").post(&init).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let other_path = reqwest::Client::new()
        .get(format!("{}x", harness.url))
        .send()
        .await;
    assert_eq!(other_path.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_session_lists_and_calls_its_own_tools() {
    let harness = Harness::start().await;
    let token = harness.sessions.issue(trader(&harness.upstream)).unwrap();
    let mut client = harness.client(&token);
    let init = client.initialize().await;
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    let list = client.request(1, "tools/list", json!({})).await;
    assert_eq!(tool_names(&list), ["place_order", "broken"]);
    assert_eq!(
        list["result"]["tools"][0]["inputSchema"]["properties"]["limit"]["type"],
        "integer"
    );

    let ok = client
        .call(2, "place_order", json!({ "limit": 5, "note": "a b&c" }))
        .await;
    assert_eq!(ok["result"]["isError"], false, "{ok}");
    assert_eq!(text_of(&ok), "order accepted");
    let received = harness.received.lock().unwrap().clone();
    let expected_body = json!({ "regionCode": "btc-usd", "limit": 5,
                                "note": "note: a b&c", "tags": ["trader"] });
    assert_eq!(
        received,
        [(
            "/markets/btc-usd/orders?limit=5&q=a%20b%26c".to_owned(),
            "Bearer upstream-secret".to_owned(),
            "s-1".to_owned(),
            expected_body,
        )]
    );
    assert!(harness.failures.0.lock().unwrap().is_empty());

    let unknown = client.call(3, "rm_rf", json!({})).await;
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown tool"),
        "{unknown}"
    );
}

#[tokio::test]
async fn failures_reach_the_agent_and_the_sink() {
    let harness = Harness::start().await;
    let token = harness.sessions.issue(trader(&harness.upstream)).unwrap();
    let mut client = harness.client(&token);
    client.initialize().await;

    let upstream_error = client.call(1, "broken", json!({})).await;
    assert_eq!(
        upstream_error["result"]["isError"], true,
        "{upstream_error}"
    );
    let message = text_of(&upstream_error);
    assert!(
        message.contains("HTTP 500") && message.contains("boom from upstream"),
        "{message}"
    );

    let bad_args = client
        .call(2, "place_order", json!({ "limit": "five" }))
        .await;
    assert_eq!(bad_args["result"]["isError"], true);
    assert!(
        text_of(&bad_args).starts_with("invalid arguments: at /limit"),
        "{bad_args}"
    );

    // `note` is optional in the schema but the URL template needs it.
    let undefined = client.call(3, "place_order", json!({ "limit": 1 })).await;
    assert_eq!(undefined["result"]["isError"], true);
    assert!(text_of(&undefined).starts_with("url: "), "{undefined}");

    let failures = harness.failures.0.lock().unwrap().clone();
    let tools: Vec<(&str, &str)> = failures
        .iter()
        .map(|(s, t, _)| (s.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        tools,
        [
            ("s-1", "broken"),
            ("s-1", "place_order"),
            ("s-1", "place_order")
        ]
    );
    assert_eq!(failures[0].2, message);
    assert!(harness.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn tools_follow_the_token_and_die_with_it() {
    let harness = Harness::start().await;
    let trader_token = harness.sessions.issue(trader(&harness.upstream)).unwrap();
    let other = ToolSession {
        session_id: "s-2".into(),
        tools: vec![http_tool(
            "other_tool",
            "GET",
            "http://127.0.0.1:9/fail",
            None,
        )],
        context: json!({}),
    };
    let other_token = harness.sessions.issue(other).unwrap();
    let mut trader_client = harness.client(&trader_token);
    trader_client.initialize().await;
    let mut other_client = harness.client(&other_token);
    other_client.initialize().await;
    assert_eq!(
        tool_names(&other_client.request(1, "tools/list", json!({})).await),
        ["other_tool"]
    );
    let foreign = other_client
        .call(2, "place_order", json!({ "limit": 1, "note": "x" }))
        .await;
    assert!(foreign["error"].is_object(), "{foreign}");

    // Another token on the trader's MCP session still sees only its own tools.
    let borrowed = Client {
        mcp_session: trader_client.mcp_session.clone(),
        ..harness.client(&other_token)
    };
    assert_eq!(
        tool_names(&borrowed.request(3, "tools/list", json!({})).await),
        ["other_tool"]
    );

    assert_eq!(harness.sessions.revoke_session("s-1"), 1);
    let list = json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/list" });
    assert_eq!(
        trader_client.post(&list).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Revocation also closes the MCP session the trader opened.
    let mut status = StatusCode::OK;
    for _ in 0..50 {
        status = borrowed.post(&list).await.status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(harness.sessions.revoke(&other_token));
    assert_eq!(
        other_client.post(&list).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_origin() {
    let harness = Harness::start().await;
    // Another origin that would see the tool's credentials if the redirect were followed.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let thief = {
        let seen = seen.clone();
        let steal = get(move |headers: HeaderMap| async move {
            let auth = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            seen.lock().unwrap().push(auth.unwrap_or_default());
            "stolen"
        });
        serve(Router::new().route("/steal", steal)).await
    };
    let to = |target: &str| super::url::encode_component(target).unwrap();
    let redirect_to = |name: &str, target: &str| {
        let url = format!("{}/redirect?to={}", harness.upstream, to(target));
        http_tool(name, "GET", &url, None)
    };
    let session = ToolSession {
        session_id: "s-3".into(),
        tools: vec![
            redirect_to("home", "/home"),
            redirect_to("away", &format!("{thief}/steal")),
        ],
        context: json!({ "SESSION_ID": "s-3", "API_TOKEN": "upstream-secret" }),
    };
    let token = harness.sessions.issue(session).unwrap();
    let mut client = harness.client(&token);
    client.initialize().await;
    let home = client.call(1, "home", json!({})).await;
    assert_eq!(text_of(&home), "home", "{home}");
    let away = client.call(2, "away", json!({})).await;
    assert_eq!(away["result"]["isError"], true, "{away}");
    assert!(
        text_of(&away).contains("redirect to another origin"),
        "{away}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn arguments_cannot_move_a_call_elsewhere() {
    let harness = Harness::start().await;
    let url = format!("{}/markets/{{{{ args.note }}}}/orders", harness.upstream);
    let session = ToolSession {
        session_id: "s-4".into(),
        tools: vec![http_tool("post", "POST", &url, Some(json!({})))],
        context: json!({ "SESSION_ID": "s-4", "API_TOKEN": "upstream-secret" }),
    };
    let token = harness.sessions.issue(session).unwrap();
    let mut client = harness.client(&token);
    client.initialize().await;
    let encoded = client
        .call(1, "post", json!({ "note": "x/../../fail?y=1#z" }))
        .await;
    assert_eq!(text_of(&encoded), "order accepted", "{encoded}");
    let received = harness.received.lock().unwrap().clone();
    // One path segment, decoded by the upstream: nothing moved.
    assert_eq!(received[0].0, "/markets/x/../../fail?y=1#z/orders?");
    let step = client.call(2, "post", json!({ "note": ".." })).await;
    assert_eq!(step["result"]["isError"], true, "{step}");
    assert_eq!(harness.received.lock().unwrap().len(), 1);
}

#[test]
fn allowed_hosts_include_the_public_url() {
    let hosts = allowed_hosts_for(Some("https://agents.example.com:8443/base")).unwrap();
    assert_eq!(
        hosts,
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "agents.example.com:8443",
            "agents.example.com"
        ]
    );
    assert_eq!(allowed_hosts_for(None).unwrap().len(), 3);
    assert_eq!(
        allowed_hosts_for(Some("http://[::1]:4000")).unwrap().len(),
        4
    );
    assert!(allowed_hosts_for(Some("not a url")).is_err());
}
