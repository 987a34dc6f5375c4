//! The client of one sandbox's command router (the worker service that runs commands).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_runtime_api::AdapterResult;
use backon::ExponentialBuilder;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::auth::Token;
use crate::control::{Call, ControlPlane};
use crate::grpc::{self, ROUTER_RETRY, RetryRules, is_transient, set_header, with_retry};
use crate::proto::{self, router_access_target::Target, rpc};

/// Access is fetched again when its JWT expires sooner than this.
const ACCESS_MARGIN: Duration = Duration::from_secs(30);

/// Until the router first answers: from 1 s doubling to 10 s, within `start_timeout`. A
/// sandbox may take minutes to start on its worker after it was scheduled; Modal's Python
/// client allows about five minutes the same way.
const CONNECT_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_secs(1))
    .with_max_delay(Duration::from_secs(10))
    .with_max_times(1000);

/// Where the router is and the JWT that admits us.
struct Access {
    token: Token,
    url: String,
    channel: Channel,
}

/// Calls to one sandbox's command router.
pub(crate) struct Router {
    control: Arc<ControlPlane>,
    sandbox_id: String,
    sandbox_token: Option<String>,
    /// Held while access is fetched, so concurrent callers share one fetch.
    access: Mutex<Option<Access>>,
    /// Whether the router has answered a call yet; until then failures to reach it are
    /// retried with the patience of a starting sandbox.
    reached: AtomicBool,
}

impl Router {
    /// A router client; `initial` is the access that came with the sandbox, if any.
    pub fn new(
        control: Arc<ControlPlane>,
        sandbox_id: String,
        sandbox_token: Option<String>,
        initial: Option<proto::CommandRouterAccess>,
    ) -> AdapterResult<Self> {
        let access = match initial.filter(|a| !a.url.is_empty() && !a.jwt.is_empty()) {
            Some(access) => Some(Access {
                channel: grpc::channel(&access.url)?,
                token: Token::new(access.jwt),
                url: access.url,
            }),
            None => None,
        };
        Ok(Router {
            control,
            sandbox_id,
            sandbox_token,
            access: Mutex::new(access),
            reached: AtomicBool::new(false),
        })
    }

    /// Drops the current JWT, so the next call fetches access again. For a stream the
    /// router refused in the middle (its JWT expired while it was open).
    pub async fn expire_access(&self) {
        if let Some(access) = self.access.lock().await.as_mut() {
            access.token.expires_at = Instant::now();
        }
    }

    fn rules(&self) -> RetryRules {
        let max_throttle_wait = self.control.limits.max_throttle_wait;
        if self.reached.load(Ordering::Relaxed) {
            return RetryRules {
                backoff: ROUTER_RETRY,
                patience: None,
                max_throttle_wait,
            };
        }
        RetryRules {
            backoff: CONNECT_RETRY,
            patience: Some(self.control.limits.start_timeout),
            max_throttle_wait,
        }
    }

    /// Notes that the router answered, which ends the patient first-connection retries.
    fn observe<T>(&self, result: &Result<T, Status>) {
        let answered = match result {
            Ok(_) => true,
            Err(status) => !is_transient(status.code()),
        };
        if answered {
            self.reached.store(true, Ordering::Relaxed);
        }
    }

    /// A unary call with `deadline` per attempt, retried on transient failures, with access
    /// fetched again once if the router refuses the JWT.
    pub async fn unary<Q, R>(
        &self,
        path: &'static str,
        message: Q,
        deadline: Duration,
    ) -> Result<R, Status>
    where
        Q: prost::Message + Clone + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        self.reauthorizing(|| async {
            with_retry(self.rules(), path, |_| async {
                let (channel, mut request) = self.request(message.clone()).await?;
                request.set_timeout(deadline);
                let result = grpc::unary(&channel, path, request).await;
                self.observe(&result);
                result
            })
            .await
        })
        .await
    }

    /// Opens a server stream without a deadline (it lasts as long as the command's output);
    /// opening is retried like [`Router::unary`].
    pub async fn stream<Q, R>(&self, path: &'static str, message: Q) -> Result<Streaming<R>, Status>
    where
        Q: prost::Message + Clone + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        self.reauthorizing(|| async {
            with_retry(self.rules(), path, |_| async {
                let (channel, request) = self.request(message.clone()).await?;
                let result = grpc::server_streaming(&channel, path, request).await;
                self.observe(&result);
                result
            })
            .await
        })
        .await
    }

    async fn reauthorizing<T, F, Fut>(&self, mut attempt: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        match attempt().await {
            Err(status) if status.code() == Code::Unauthenticated => {
                tracing::debug!(sandbox = %self.sandbox_id, "router refused its JWT; fetching access again");
                self.expire_access().await;
                attempt().await
            }
            other => other,
        }
    }

    async fn request<Q>(&self, message: Q) -> Result<(Channel, tonic::Request<Q>), Status> {
        let (channel, jwt) = self.access().await?;
        let mut request = tonic::Request::new(message);
        set_header(&mut request, "authorization", &format!("Bearer {jwt}"))?;
        Ok((channel, request))
    }

    async fn access(&self) -> Result<(Channel, String), Status> {
        let mut current = self.access.lock().await;
        if let Some(access) = current
            .as_ref()
            .filter(|a| !a.token.expires_within(ACCESS_MARGIN))
        {
            return Ok((access.channel.clone(), access.token.value.clone()));
        }
        let request = proto::SandboxGetCommandRouterAccessRequest {
            target: Some(Target::SandboxId(self.sandbox_id.clone())),
        };
        let call = Call {
            deadline: None,
            sandbox_token: self.sandbox_token.as_deref(),
        };
        let fresh: proto::SandboxGetCommandRouterAccessResponse = self
            .control
            .unary(rpc::SANDBOX_GET_COMMAND_ROUTER_ACCESS, request, call)
            .await?;
        // Keep the connection when only the JWT changed.
        let channel = match current.take() {
            Some(old) if old.url == fresh.url => old.channel,
            _ => {
                grpc::channel(&fresh.url).map_err(|e| Status::failed_precondition(e.to_string()))?
            }
        };
        let access = Access {
            token: Token::new(fresh.jwt),
            url: fresh.url,
            channel,
        };
        let result = (access.channel.clone(), access.token.value.clone());
        *current = Some(access);
        Ok(result)
    }
}
