//! A Convex client over the HTTP API: function calls, file upload and download.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Response;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::{Value, json};

use crate::codec;

mod support;
mod transfer;

use crate::{ConvexConfig, ConvexError, Secret};
use support::{check_url, error_chain, log_deprecation, truncate};

/// Convex's request body limit is 16 MiB + 2000 bytes; refuse bigger bodies before sending.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The longest wait between two attempts, whatever the backoff or `Retry-After` say.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// HTTP 560: Convex's "function failed" status, parsed like a 200.
const STATUS_UDF_FAILED: u16 = 560;

/// Which endpoint a function is called through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// `POST /api/query`; read-only, so always safe to retry.
    Query,
    /// `POST /api/mutation`; retried only when it certainly did not run.
    Mutation,
    /// `POST /api/action`; retried only when it certainly did not run.
    Action,
}

impl FunctionKind {
    /// The lowercase name, which is also the endpoint's last path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
            FunctionKind::Action => "action",
        }
    }
}

/// Calls a Convex deployment's functions with its deploy key.
///
/// Arguments and results are plain JSON, converted with the rules of [`crate::codec`].
/// Transient failures (connection errors, HTTP 429 and 5xx other than 560, timeouts) are
/// retried with exponential backoff: queries, uploads and downloads always, mutations and
/// actions only when the request certainly did not run (connection refused, 429, 503),
/// because running one twice could apply it twice. A function error (`status: "error"`) is
/// never retried. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct ConvexClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The deployment URL without a trailing `/`.
    base: String,
    /// `Convex <deploy key>`, marked sensitive so HTTP logging never prints it.
    authorization: HeaderValue,
    /// Kept only to scrub it from messages that come back from the network.
    key: Secret,
    timeout: Duration,
    transfer_timeout: Duration,
    max_retries: u32,
    retry_backoff: Duration,
}

/// The outcome of one attempt.
enum Attempt<T> {
    Done(T),
    Fatal(ConvexError),
    /// A failure that a later attempt may not have; `maybe_ran` when the server may have
    /// acted on the request anyway.
    Transient {
        reason: String,
        maybe_ran: bool,
        retry_after: Option<Duration>,
    },
}

impl ConvexClient {
    /// A client for the deployment `config` names.
    ///
    /// # Errors
    /// [`ConvexError::Config`] for a URL that is not `https://` (or `http://` on a loopback
    /// host, or with `allow_http`), or a deploy key that is empty or not a header value.
    pub fn new(config: &ConvexConfig) -> Result<Self, ConvexError> {
        let base = check_url(&config.url, config.allow_http)?;
        let key = config.deploy_key.expose();
        if key.trim().is_empty() {
            return Err(ConvexError::Config("`deploy_key` is empty".into()));
        }
        let mut authorization = HeaderValue::from_str(&format!("Convex {key}")).map_err(|_| {
            ConvexError::Config("`deploy_key` holds characters a header cannot carry".into())
        })?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(
            "Convex-Client",
            HeaderValue::from_static(concat!("agent-runtime-", env!("CARGO_PKG_VERSION"))),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|err| ConvexError::Config(format!("cannot build the HTTP client: {err}")))?;
        Ok(ConvexClient {
            inner: Arc::new(Inner {
                http,
                base,
                authorization,
                key: config.deploy_key.clone(),
                timeout: config.timeout,
                transfer_timeout: config.transfer_timeout,
                max_retries: config.max_retries,
                retry_backoff: config.retry_backoff,
            }),
        })
    }

    /// The deployment URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// Runs a query; `args` is the object of named arguments.
    pub async fn query(&self, path: &str, args: Value) -> Result<Value, ConvexError> {
        self.call(FunctionKind::Query, path, args).await
    }

    /// Runs a mutation; `args` is the object of named arguments.
    pub async fn mutation(&self, path: &str, args: Value) -> Result<Value, ConvexError> {
        self.call(FunctionKind::Mutation, path, args).await
    }

    /// Runs an action; `args` is the object of named arguments.
    pub async fn action(&self, path: &str, args: Value) -> Result<Value, ConvexError> {
        self.call(FunctionKind::Action, path, args).await
    }

    /// Runs the function at `path` (`dir/module:function`) and returns its decoded value.
    ///
    /// # Errors
    /// [`ConvexError::InvalidArgs`] before sending when `args` is not an object or cannot
    /// be encoded; otherwise see [`ConvexError`].
    pub async fn call(
        &self,
        kind: FunctionKind,
        path: &str,
        args: Value,
    ) -> Result<Value, ConvexError> {
        if !args.is_object() {
            return Err(ConvexError::InvalidArgs(format!(
                "the arguments of {path} must be a JSON object"
            )));
        }
        let body =
            json!({"path": path, "args": codec::encode(args)?, "format": "convex_encoded_json"});
        let body = Bytes::from(body.to_string());
        if body.len() > MAX_BODY_BYTES {
            return Err(ConvexError::InvalidArgs(format!(
                "the arguments of {path} are {} bytes; Convex accepts at most 16 MiB",
                body.len()
            )));
        }
        let url = format!("{}/api/{}", self.inner.base, kind.as_str());
        let what = format!("{} {path}", kind.as_str());
        let idempotent = kind == FunctionKind::Query;
        self.retrying(&what, idempotent, || {
            self.call_once(&url, path, body.clone())
        })
        .await
    }

    async fn call_once(&self, url: &str, path: &str, body: Bytes) -> Attempt<Value> {
        let request = self
            .inner
            .http
            .post(url)
            .header(AUTHORIZATION, self.inner.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.inner.timeout)
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return self.send_failure(&err),
        };
        log_deprecation(path, response.headers());
        let status = response.status().as_u16();
        if status != 200 && status != STATUS_UDF_FAILED {
            return self.status_failure(response).await;
        }
        match response.json::<Value>().await {
            Ok(body) => self.function_outcome(path, body),
            Err(err) => self.send_failure(&err),
        }
    }

    /// Reads a `{"status": "success" | "error", ...}` body.
    fn function_outcome(&self, path: &str, body: Value) -> Attempt<Value> {
        if let Some(lines) = body.get("logLines").and_then(Value::as_array) {
            for line in lines {
                tracing::debug!(function = path, "convex log: {line}");
            }
        }
        match body.get("status").and_then(Value::as_str) {
            Some("success") => {
                match codec::decode(body.get("value").cloned().unwrap_or(Value::Null)) {
                    Ok(value) => Attempt::Done(value),
                    Err(err) => Attempt::Fatal(err),
                }
            }
            Some("error") => {
                let data = body
                    .get("errorData")
                    .cloned()
                    .and_then(|d| codec::decode(d).ok());
                let message = data
                    .as_ref()
                    .and_then(|d| d.get("message"))
                    .and_then(Value::as_str)
                    .or_else(|| body.get("errorMessage").and_then(Value::as_str))
                    .unwrap_or("no error message");
                Attempt::Fatal(ConvexError::Function {
                    path: path.to_owned(),
                    message: self.scrub(message),
                    data,
                })
            }
            _ => Attempt::Fatal(ConvexError::InvalidResponse(format!(
                "{path} answered without a status: {}",
                self.scrub(&truncate(&body.to_string()))
            ))),
        }
    }

    /// Classifies a failure to send a request or read its answer.
    fn send_failure<T>(&self, err: &reqwest::Error) -> Attempt<T> {
        Attempt::Transient {
            reason: self.scrub(&error_chain(err)),
            // A refused connection never reached the server; anything later may have.
            maybe_ran: !err.is_connect(),
            retry_after: None,
        }
    }

    /// Classifies an answer with an unexpected HTTP status.
    async fn status_failure<T>(&self, response: Response) -> Attempt<T> {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let message = match body.get("message").and_then(Value::as_str) {
            Some(message) => self.scrub(message),
            None => self.scrub(&truncate(&text)),
        };
        match status {
            401 | 403 => Attempt::Fatal(ConvexError::Auth {
                status,
                code,
                message,
            }),
            429 | 503 => Attempt::Transient {
                reason: format!("HTTP {status} {code} {message}"),
                maybe_ran: false,
                retry_after,
            },
            500..=599 => Attempt::Transient {
                reason: format!("HTTP {status} {code} {message}"),
                maybe_ran: true,
                retry_after,
            },
            _ => Attempt::Fatal(ConvexError::Request {
                status,
                code,
                message,
            }),
        }
    }

    async fn retrying<T, F, Fut>(
        &self,
        what: &str,
        idempotent: bool,
        mut attempt: F,
    ) -> Result<T, ConvexError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (reason, maybe_ran, retry_after) = match attempt().await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fatal(err) => return Err(err),
                Attempt::Transient {
                    reason,
                    maybe_ran,
                    retry_after,
                } => (reason, maybe_ran, retry_after),
            };
            if maybe_ran && !idempotent {
                let reason = format!("{reason} (not retried: it may have run)");
                return Err(ConvexError::Unavailable {
                    what: what.to_owned(),
                    attempts,
                    reason,
                });
            }
            if attempts > self.inner.max_retries {
                return Err(ConvexError::Unavailable {
                    what: what.to_owned(),
                    attempts,
                    reason,
                });
            }
            let wait = retry_after
                .unwrap_or_else(|| self.backoff(attempts))
                .min(MAX_WAIT);
            tracing::warn!(
                what,
                attempts,
                ?wait,
                "convex call failed, retrying: {reason}"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// `retry_backoff * 2^(attempt-1)` plus up to a quarter more, so clients that failed
    /// together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .inner
            .retry_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    /// `text` with the deploy key (and its secret part) replaced by `[REDACTED]`.
    fn scrub(&self, text: &str) -> String {
        let key = self.inner.key.expose();
        let secret = key.rsplit_once('|').map_or(key, |(_, secret)| secret);
        let mut out = text.replace(key, "[REDACTED]");
        if secret.len() >= 8 {
            out = out.replace(secret, "[REDACTED]");
        }
        out
    }
}

impl fmt::Debug for ConvexClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConvexClient")
            .field("url", &self.inner.base)
            .field("deploy_key", &self.inner.key)
            .field("timeout", &self.inner.timeout)
            .field("max_retries", &self.inner.max_retries)
            .finish()
    }
}
