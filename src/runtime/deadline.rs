//! A deadline for requests during a session store outage. The runtime's own work waits an
//! outage out (events stay queued, record saves are retried); a request does not: once it
//! has waited for a while and the store does not answer, it gets `storage_unavailable`
//! and the work it started goes on without it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::SessionStore;

use crate::error::{ErrorCode, RuntimeError};

/// How long a request waits before the session store is asked whether it is there, by
/// default. A request answers within this, but for the time its own store call takes.
pub const STORE_PATIENCE: Duration = Duration::from_secs(10);

/// Bounds a request's wait by the session store's health.
#[derive(Clone)]
pub(crate) struct StoreDeadline {
    store: Arc<dyn SessionStore>,
    patience: Duration,
}

impl StoreDeadline {
    pub(crate) fn new(store: Arc<dyn SessionStore>, patience: Duration) -> Self {
        Self { store, patience }
    }

    /// Waits for `work`. Every half of the patience the work takes, the store is pinged;
    /// when it fails or does not answer within the other half, the request ends with
    /// `storage_unavailable`. Work that is slow for another reason (a large final sync, a
    /// long turn) is waited for as long as it takes while the store answers.
    ///
    /// `work` is dropped then, so it must be something that may stop at any await: a
    /// wait for a detached task or an actor's answer, a read.
    pub(crate) async fn bound<T>(
        &self,
        work: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        let half = self.patience / 2;
        let watch = async {
            loop {
                tokio::time::sleep(half).await;
                match tokio::time::timeout(half, self.store.ping()).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "a request gives up waiting for the session store")
                    }
                    Err(_) => {
                        tracing::warn!(
                            "a request gives up waiting for the session store: no answer to a ping"
                        )
                    }
                }
                return unavailable();
            }
        };
        tokio::select! {
            biased;
            done = work => done,
            error = watch => Err(error),
        }
    }
}

fn unavailable() -> RuntimeError {
    RuntimeError::new(
        ErrorCode::StorageUnavailable,
        "the session store is unavailable, try again later; what the request started goes on \
         and takes effect once the store is back",
    )
}

#[cfg(test)]
mod tests {
    use agent_runtime_api::memory::MemorySessionStore;

    use super::*;

    #[tokio::test]
    async fn slow_work_is_waited_for_while_the_store_answers() {
        let deadline = StoreDeadline::new(
            Arc::new(MemorySessionStore::new()),
            Duration::from_millis(20),
        );
        let slow = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(7)
        };
        assert_eq!(deadline.bound(slow).await, Ok(7));
    }
}
