//! Death detection: a background long poll that notices when a sandbox has ended.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;
use tonic::Code;

use crate::control::{Call, ControlPlane};
use crate::proto::{self, rpc, status};

/// How long one `SandboxWaitV2` long poll waits on the server.
const POLL_SECONDS: f32 = 10.0;
/// The longest pause between polls after failures.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// How a sandbox ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SandboxEnd {
    /// Modal's `GenericStatus` (3 terminated, 4 timeout, 7 idle timeout, 2/5/6 failures…).
    pub status: i32,
    /// What Modal said about it.
    pub message: String,
}

/// Watches one sandbox for as long as any clone of it lives.
#[derive(Clone)]
pub(crate) struct Life {
    ended: watch::Receiver<Option<SandboxEnd>>,
    _watcher: Arc<AbortOnDropHandle<()>>,
}

impl Life {
    /// Starts watching `sandbox_id`.
    pub fn watch(
        control: Arc<ControlPlane>,
        sandbox_id: String,
        sandbox_token: Option<String>,
    ) -> Life {
        let (sender, ended) = watch::channel(None);
        let task = tokio::spawn(watch_loop(control, sandbox_id, sandbox_token, sender));
        Life {
            ended,
            _watcher: Arc::new(AbortOnDropHandle::new(task)),
        }
    }

    /// Resolves once the sandbox has ended.
    pub async fn ended(&self) -> SandboxEnd {
        let mut ended = self.ended.clone();
        let end = ended
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|end| end.clone());
        match end {
            Some(end) => end,
            // The watcher is gone (it only stops after reporting an end): never resolve.
            None => std::future::pending().await,
        }
    }

    /// The end, if it has been seen already.
    pub fn has_ended(&self) -> Option<SandboxEnd> {
        self.ended.borrow().clone()
    }
}

async fn watch_loop(
    control: Arc<ControlPlane>,
    sandbox_id: String,
    sandbox_token: Option<String>,
    sender: watch::Sender<Option<SandboxEnd>>,
) {
    let call = Call {
        deadline: Some(Duration::from_secs_f32(POLL_SECONDS) * 2),
        sandbox_token: sandbox_token.as_deref(),
    };
    let mut failures = 0u32;
    loop {
        let request = proto::SandboxWaitRequest {
            sandbox_id: sandbox_id.clone(),
            timeout: POLL_SECONDS,
        };
        let response = control
            .unary::<_, proto::SandboxWaitResponse>(rpc::SANDBOX_WAIT_V2, request, call)
            .await;
        let end = match response {
            Ok(response) => {
                failures = 0;
                response
                    .result
                    .filter(|r| r.status != status::UNSPECIFIED)
                    .map(|r| SandboxEnd {
                        message: describe(&r),
                        status: r.status,
                    })
            }
            Err(error) if error.code() == Code::NotFound => Some(SandboxEnd {
                status: status::TERMINATED,
                message: format!("Modal no longer knows the sandbox: {}", error.message()),
            }),
            Err(error) => {
                failures += 1;
                let pause = Duration::from_secs(1 << failures.min(5)).min(MAX_PAUSE);
                tracing::warn!(sandbox = %sandbox_id, code = ?error.code(), message = error.message(),
                    ?pause, "watching the sandbox failed; trying again");
                tokio::time::sleep(pause).await;
                None
            }
        };
        if let Some(end) = end {
            tracing::info!(sandbox = %sandbox_id, status = end.status, message = %end.message, "sandbox ended");
            sender.send_replace(Some(end));
            return;
        }
    }
}

fn describe(result: &proto::GenericResult) -> String {
    let what = match result.status {
        status::SUCCESS => "finished",
        status::FAILURE => "failed",
        status::TERMINATED => "terminated",
        status::TIMEOUT => "reached its timeout",
        status::INIT_FAILURE => "failed to start",
        status::INTERNAL_FAILURE => "failed inside Modal",
        status::IDLE_TIMEOUT => "reached its idle timeout",
        _ => "was evicted or killed for memory",
    };
    match result.exception.as_str() {
        "" => what.to_owned(),
        exception => format!("{what}: {exception}"),
    }
}
