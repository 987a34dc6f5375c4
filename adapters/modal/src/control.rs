//! The control-plane client: Modal's headers, the auth token, retries and deadlines.

use std::sync::OnceLock;
use std::time::Duration;

use agent_runtime_api::AdapterResult;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

use crate::auth::Token;
use crate::config::{Secret, Settings};
use crate::grpc::{self, Attempt, CONTROL_RETRY, RetryRules, set_header, with_retry};
use crate::proto::{self, rpc};

/// `ClientType::CLIENT`, the type the Python client reports.
const CLIENT_TYPE: &str = "1";
/// The client version whose protocol the messages in `proto` follow.
const CLIENT_VERSION: &str = "1.6.4";
/// The deadline of ordinary router calls.
pub(crate) const UNARY_DEADLINE: Duration = Duration::from_secs(30);
/// How long a token whose refresh failed is still used before the refresh is tried again.
const REFRESH_RETRY: Duration = Duration::from_secs(5);

/// Options of one control-plane call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    /// The deadline of each attempt; `None` for the configured `attempt_timeout`.
    pub deadline: Option<Duration>,
    /// `x-modal-sandbox-token`, for calls about a sandbox made by `SandboxCreateV2`.
    pub sandbox_token: Option<&'a str>,
}

impl Call<'static> {
    /// An ordinary call with the configured deadline.
    pub const PLAIN: Call<'static> = Call {
        deadline: None,
        sandbox_token: None,
    };
}

/// The configured patience of the clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The deadline of each attempt of a control-plane call.
    pub attempt_timeout: Duration,
    /// How long a new sandbox may take to get a task and a reachable router.
    pub start_timeout: Duration,
    /// The most one call waits in total on the server's retry delays.
    pub max_throttle_wait: Duration,
}

/// A connection to Modal's control plane, shared by the provider and its sandboxes.
pub(crate) struct ControlPlane {
    /// The configured patience, shared with the router clients.
    pub limits: Limits,
    endpoint: Endpoint,
    /// Made on first use, because a channel needs the Tokio runtime and `build` does not.
    channel: OnceLock<Channel>,
    token_id: String,
    token_secret: Secret,
    /// The current auth token. The lock is held while a new one is fetched, so concurrent
    /// callers wait for one fetch instead of each making their own.
    auth: Mutex<Option<Token>>,
}

impl ControlPlane {
    /// Prepares the client; connects on the first call.
    pub fn new(settings: &Settings) -> AdapterResult<Self> {
        let config = &settings.config;
        Ok(ControlPlane {
            limits: Limits {
                attempt_timeout: config.attempt_timeout,
                start_timeout: config.start_timeout,
                max_throttle_wait: config.max_throttle_wait,
            },
            endpoint: grpc::endpoint(&settings.config.server_url)?,
            channel: OnceLock::new(),
            token_id: settings.token_id.clone(),
            token_secret: settings.token_secret.clone(),
            auth: Mutex::new(None),
        })
    }

    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone()
    }

    /// The retry rules of control-plane calls.
    fn rules(&self) -> RetryRules {
        RetryRules {
            backoff: CONTROL_RETRY,
            patience: None,
            max_throttle_wait: self.limits.max_throttle_wait,
        }
    }

    /// A unary call, retried on transient failures and after the delays a throttling
    /// server asks for, re-authenticated once when Modal says the auth token is no longer
    /// valid. All attempts carry one `x-idempotency-key`, so the server can answer a
    /// retried create with the sandbox the first attempt made.
    pub async fn unary<Q, R>(
        &self,
        path: &'static str,
        message: Q,
        call: Call<'_>,
    ) -> Result<R, Status>
    where
        Q: prost::Message + Clone + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        let key = uuid::Uuid::new_v4().to_string();
        let (message, key) = (&message, key.as_str());
        self.reauthenticating(|| async {
            with_retry(self.rules(), path, |attempt| async move {
                let request = self.request(message.clone(), call, key, attempt).await?;
                grpc::unary(&self.channel(), path, request).await
            })
            .await
        })
        .await
    }

    /// Opens a server stream, with the same retries as [`ControlPlane::unary`].
    pub async fn stream<Q, R>(
        &self,
        path: &'static str,
        message: Q,
        call: Call<'_>,
    ) -> Result<Streaming<R>, Status>
    where
        Q: prost::Message + Clone + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        let key = uuid::Uuid::new_v4().to_string();
        let (message, key) = (&message, key.as_str());
        self.reauthenticating(|| async {
            with_retry(self.rules(), path, |attempt| async move {
                let request = self.request(message.clone(), call, key, attempt).await?;
                grpc::server_streaming(&self.channel(), path, request).await
            })
            .await
        })
        .await
    }

    async fn reauthenticating<T, F, Fut>(&self, mut attempt: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        match attempt().await {
            Err(status) if status.code() == Code::Unauthenticated => {
                tracing::debug!(
                    grpc_message = status.message(),
                    "auth token refused; fetching a new one"
                );
                *self.auth.lock().await = None;
                attempt().await
            }
            other => other,
        }
    }

    async fn request<Q>(
        &self,
        message: Q,
        call: Call<'_>,
        key: &str,
        attempt: Attempt,
    ) -> Result<tonic::Request<Q>, Status> {
        let token = self.auth_token().await?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(call.deadline.unwrap_or(self.limits.attempt_timeout));
        self.identify(&mut request)?;
        mark_attempt(&mut request, key, attempt)?;
        set_header(&mut request, "x-modal-auth-token", &token)?;
        if let Some(sandbox_token) = call.sandbox_token.filter(|t| !t.is_empty()) {
            set_header(&mut request, "x-modal-sandbox-token", sandbox_token)?;
        }
        Ok(request)
    }

    /// The headers every control-plane call carries.
    fn identify<Q>(&self, request: &mut tonic::Request<Q>) -> Result<(), Status> {
        set_header(request, "x-modal-client-type", CLIENT_TYPE)?;
        set_header(request, "x-modal-client-version", CLIENT_VERSION)?;
        set_header(request, "x-modal-token-id", &self.token_id)?;
        set_header(request, "x-modal-token-secret", self.token_secret.expose())
    }

    /// The current auth token, fetched when there is none or its refresh is due.
    async fn auth_token(&self) -> Result<String, Status> {
        let mut current = self.auth.lock().await;
        if let Some(token) = current.as_ref().filter(|token| token.is_fresh()) {
            return Ok(token.value.clone());
        }
        match self.fetch_token().await {
            Ok(token) => {
                let value = token.value.clone();
                *current = Some(token);
                Ok(value)
            }
            // A failed refresh is not fatal while the old token is still valid.
            Err(status) => match current.as_mut() {
                Some(old) if !old.expires_within(REFRESH_RETRY * 2) => {
                    tracing::warn!(code = ?status.code(), grpc_message = status.message(),
                        "refreshing the Modal auth token failed; using the current one");
                    old.refresh_at = Instant::now() + REFRESH_RETRY;
                    Ok(old.value.clone())
                }
                _ => Err(status),
            },
        }
    }

    async fn fetch_token(&self) -> Result<Token, Status> {
        let key = uuid::Uuid::new_v4().to_string();
        let key = key.as_str();
        let token: proto::AuthTokenGetResponse =
            with_retry(self.rules(), rpc::AUTH_TOKEN_GET, |attempt| async move {
                let mut request = tonic::Request::new(proto::Empty {});
                request.set_timeout(self.limits.attempt_timeout);
                self.identify(&mut request)?;
                mark_attempt(&mut request, key, attempt)?;
                grpc::unary(&self.channel(), rpc::AUTH_TOKEN_GET, request).await
            })
            .await?;
        if token.token.is_empty() {
            return Err(Status::unauthenticated(
                "Modal returned an empty auth token",
            ));
        }
        tracing::debug!("fetched a Modal auth token");
        Ok(Token::new(token.token))
    }
}

/// The headers Modal's clients put on each attempt of a call: one idempotency key for all
/// attempts, the attempt's number and, on a retry, the seconds since the first attempt.
fn mark_attempt<Q>(
    request: &mut tonic::Request<Q>,
    key: &str,
    attempt: Attempt,
) -> Result<(), Status> {
    set_header(request, "x-idempotency-key", key)?;
    set_header(request, "x-retry-attempt", &attempt.retry.to_string())?;
    if attempt.retry > 0 {
        let delay = attempt.first_at.elapsed().as_secs_f64();
        set_header(request, "x-retry-delay", &format!("{delay:.3}"))?;
    }
    Ok(())
}
