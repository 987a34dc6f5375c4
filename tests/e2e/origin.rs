//! Web pages and `Host` names on the real binary: a foreign `Origin` is refused on REST,
//! SSE, `/mcp`, the probes and both Socket.IO transports; an allowed one gets CORS
//! headers and a preflight answer; a rebinding `Host` is refused.

use reqwest::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN, VARY,
};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup, node};

const FOREIGN: &str = "https://evil.example";
/// A loopback page: allowed by default on a loopback bind.
const LOOPBACK_PAGE: &str = "http://localhost:5173";

async fn assert_refused(response: Response, code: &str) {
    assert_eq!(response.status().as_u16(), 403);
    assert!(
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

fn allow_origin(response: &Response) -> Option<&str> {
    let value = response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN)?;
    value.to_str().ok()
}

#[tokio::test]
async fn foreign_pages_are_refused_and_allowed_ones_get_cors() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", runtime.url);
    let id = Http::new(&runtime).create_session("tester").await;
    let events = format!("/v1/sessions/{id}/events");

    // REST, SSE, the probes, /mcp and the Socket.IO polling handshake, from a foreign page.
    let routes = [
        (Method::GET, "/v1/profiles".to_owned()),
        (Method::POST, "/v1/sessions".to_owned()),
        (Method::GET, events.clone()),
        (Method::GET, "/healthz".to_owned()),
        (Method::GET, "/metrics".to_owned()),
        (Method::POST, "/mcp".to_owned()),
        (
            Method::GET,
            "/socket.io/?EIO=4&transport=polling".to_owned(),
        ),
    ];
    for (method, path) in &routes {
        let response = client
            .request(method.clone(), url(path))
            .header(ORIGIN, FOREIGN)
            .header("accept", "text/event-stream")
            .json(&json!({ "agentType": "tester" }))
            .send()
            .await
            .unwrap();
        assert_refused(response, "origin_forbidden").await;
    }
    let null_origin = client.get(url("/v1/profiles")).header(ORIGIN, "null");
    assert_refused(null_origin.send().await.unwrap(), "origin_forbidden").await;

    // An allowed page: served, with its origin echoed.
    let listed = client
        .get(url("/v1/profiles"))
        .header(ORIGIN, LOOPBACK_PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
    assert_eq!(allow_origin(&listed), Some(LOOPBACK_PAGE));
    let vary = listed.headers().get(VARY).unwrap().to_str().unwrap();
    assert!(vary.to_ascii_lowercase().contains("origin"), "{vary}");
    let stream = client
        .get(url(&format!("{events}?after=0")))
        .header(ORIGIN, LOOPBACK_PAGE)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert_eq!(allow_origin(&stream), Some(LOOPBACK_PAGE));
    drop(stream);
    let handshake = client
        .get(url("/socket.io/?EIO=4&transport=polling"))
        .header(ORIGIN, LOOPBACK_PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(handshake.status().as_u16(), 200);
    assert_eq!(allow_origin(&handshake), Some(LOOPBACK_PAGE));

    // A preflight: answered for an allowed page, refused for a foreign one.
    let preflight = |origin: &str| {
        client
            .request(Method::OPTIONS, url("/v1/sessions"))
            .header(ORIGIN, origin)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
            .send()
    };
    let answered = preflight(LOOPBACK_PAGE).await.unwrap();
    assert!(answered.status().is_success(), "{}", answered.status());
    assert_eq!(allow_origin(&answered), Some(LOOPBACK_PAGE));
    let header = |name| {
        let value = answered.headers().get(name).map(|v| v.to_str().unwrap());
        value.unwrap_or_default().to_ascii_lowercase()
    };
    for method in ["get", "post", "put", "delete"] {
        assert!(
            header(ACCESS_CONTROL_ALLOW_METHODS).contains(method),
            "{method}"
        );
    }
    assert!(header(ACCESS_CONTROL_ALLOW_HEADERS).contains("authorization"));
    assert!(header(ACCESS_CONTROL_ALLOW_HEADERS).contains("content-type"));
    assert_refused(preflight(FOREIGN).await.unwrap(), "origin_forbidden").await;

    // Both Socket.IO transports, with the real client.
    let summary = node(
        "origin.mjs",
        &runtime,
        &json!({ "allowed": LOOPBACK_PAGE, "foreign": FOREIGN }),
    );
    for transport in ["polling", "websocket"] {
        assert!(summary["refused"][transport].is_string(), "{summary}");
        assert_eq!(
            summary["accepted"][transport],
            json!(["asker", "claude", "claude-ask", "console", "tester"]),
            "{summary}"
        );
    }
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn a_rebinding_host_is_refused_on_a_loopback_bind() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let port = runtime.url.rsplit(':').next().unwrap().to_owned();
    let client = reqwest::Client::new();
    for path in [
        "/v1/profiles",
        "/healthz",
        "/socket.io/?EIO=4&transport=polling",
    ] {
        let url = format!("{}{path}", runtime.url);
        let rebound = client
            .get(&url)
            .header(HOST, format!("rebind.evil.example:{port}"))
            .send()
            .await
            .unwrap();
        assert_refused(rebound, "host_forbidden").await;
        let named = client
            .get(&url)
            .header(HOST, format!("localhost:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(named.status().as_u16(), 200, "{path}");
    }
    assert_eq!(runtime.terminate(), Some(0));
}

#[tokio::test]
async fn configured_origins_and_hosts_are_served() {
    let mut setup = Setup::scripted();
    // `[server]` is written by the harness; these keys go in through the environment.
    setup.env = vec![
        (
            "AGENT_RUNTIME__SERVER__ALLOWED_ORIGINS".into(),
            r#"["https://app.example.com"]"#.into(),
        ),
        (
            "AGENT_RUNTIME__SERVER__ALLOWED_HOSTS".into(),
            r#"["runtime.internal"]"#.into(),
        ),
    ];
    let runtime = Runtime::start(&setup);
    let client = reqwest::Client::new();
    let url = format!("{}/v1/profiles", runtime.url);
    let get = |origin: &'static str, host: &'static str| {
        client
            .get(&url)
            .header(ORIGIN, origin)
            .header(HOST, host)
            .send()
    };
    let app = get("https://app.example.com", "runtime.internal")
        .await
        .unwrap();
    assert_eq!(app.status().as_u16(), 200);
    assert_eq!(allow_origin(&app), Some("https://app.example.com"));
    // Set explicitly, the list replaces the loopback pages.
    let page = get(LOOPBACK_PAGE, "runtime.internal").await.unwrap();
    assert_refused(page, "origin_forbidden").await;
    let other = get("https://app.example.com", "other.example")
        .await
        .unwrap();
    assert_refused(other, "host_forbidden").await;
    assert_eq!(runtime.terminate(), Some(0));
}
