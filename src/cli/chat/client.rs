//! The REST calls `chat` makes, as any client of the documented protocol would: JSON in,
//! JSON out, errors as `{ error: { code, message } }`.

use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::{Value, json};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed call.
#[derive(Debug)]
pub enum ApiError {
    /// No answer: the runtime is not running there, or the network failed.
    Unreachable(String),
    /// The runtime answered with an error.
    Api {
        /// The HTTP status.
        status: u16,
        /// The protocol's error code.
        code: String,
        /// What went wrong, in words.
        message: String,
    },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unreachable(message) => f.write_str(message),
            ApiError::Api { code, message, .. } => write!(f, "{code}: {message}"),
        }
    }
}

impl ApiError {
    /// The error code, if the runtime answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Api { code, .. } => Some(code),
            ApiError::Unreachable(_) => None,
        }
    }
}

/// A client of one runtime, with one token.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    /// A client of the runtime at `url` (`http://host:port`, optionally with a path prefix).
    pub fn new(url: &str, token: Option<String>) -> Result<Client, String> {
        let base = Url::parse(url).map_err(|e| format!("--url {url:?}: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(format!(
                "--url {url:?}: expected http://HOST:PORT or https://…"
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(Client {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// The URL of `segments` below the base; each segment is percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A request with the token.
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request and reads its JSON answer.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let mut request = self.request(method, self.url(segments));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        read(response).await
    }

    /// Turns a transport failure into words that say what to do.
    pub fn unreachable(&self, error: &reqwest::Error) -> ApiError {
        let cause = std::error::Error::source(error)
            .map(|s| s.to_string())
            .unwrap_or_else(|| error.to_string());
        ApiError::Unreachable(format!(
            "cannot reach the runtime at {} ({cause}); is it running? Start it with \
             `agent-runtime` next to its agent-runtime.toml, or pass --url",
            self.base
        ))
    }

    /// `GET /v1/profiles`: the profiles' names.
    pub async fn profiles(&self) -> Result<Vec<String>, ApiError> {
        let body = self.call(Method::GET, &["v1", "profiles"], None).await?;
        Ok(body["profiles"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// `POST /v1/sessions`: the new session.
    pub async fn create(
        &self,
        agent_type: &str,
        metadata: Option<Value>,
    ) -> Result<Value, ApiError> {
        let mut body = json!({ "agentType": agent_type });
        if let Some(metadata) = metadata {
            body["metadata"] = metadata;
        }
        let answer = self
            .call(Method::POST, &["v1", "sessions"], Some(body))
            .await?;
        Ok(answer["session"].clone())
    }

    /// `GET /v1/sessions/{id}`.
    pub async fn session(&self, id: &str) -> Result<Value, ApiError> {
        let answer = self
            .call(Method::GET, &["v1", "sessions", id], None)
            .await?;
        Ok(answer["session"].clone())
    }

    /// `POST /v1/sessions/{id}/resume`: the session, live again.
    pub async fn resume(&self, id: &str) -> Result<Value, ApiError> {
        let answer = self
            .call(
                Method::POST,
                &["v1", "sessions", id, "resume"],
                Some(json!({})),
            )
            .await?;
        Ok(answer["session"].clone())
    }

    /// `POST /v1/sessions/{id}/messages`: the seq of the message's `input` event.
    pub async fn send(&self, id: &str, content: &str) -> Result<u64, ApiError> {
        let answer = self
            .call(
                Method::POST,
                &["v1", "sessions", id, "messages"],
                Some(json!({ "content": content })),
            )
            .await?;
        Ok(answer["seq"].as_u64().unwrap_or_default())
    }

    /// `POST /v1/sessions/{id}/answers`.
    pub async fn answer(&self, id: &str, answer: Value) -> Result<(), ApiError> {
        self.call(
            Method::POST,
            &["v1", "sessions", id, "answers"],
            Some(answer),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/sessions/{id}/interrupt`.
    pub async fn interrupt(&self, id: &str) -> Result<(), ApiError> {
        self.call(
            Method::POST,
            &["v1", "sessions", id, "interrupt"],
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    /// `GET /v1/sessions/{id}/events?after=N`: a page of envelopes, and whether more follow.
    pub async fn events(&self, id: &str, after: u64) -> Result<(Vec<Value>, bool), ApiError> {
        let mut url = self.url(&["v1", "sessions", id, "events"]);
        url.query_pairs_mut()
            .append_pair("after", &after.to_string());
        let response = self
            .request(Method::GET, url)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let page = read(response).await?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        Ok((events, page["hasMore"] == true))
    }
}

/// A response's JSON body, or its error.
pub async fn read(response: reqwest::Response) -> Result<Value, ApiError> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| ApiError::Unreachable(format!("the answer broke off: {e}")))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let error = &body["error"];
    Err(ApiError::Api {
        status: status.as_u16(),
        code: error["code"].as_str().unwrap_or("http_error").to_owned(),
        message: error["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}: {text}"), str::to_owned),
    })
}
