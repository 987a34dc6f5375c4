//! Moving the workspace and the transcript to the blob store while the session lives
//! (periodic, off the streaming path) and as it ends (final, waiting for storage).

use agent_runtime_api::ErrorKind;
use backon::BackoffBuilder;

use super::workspace::Skipped;
use super::*;
use crate::runtime::payload::ErrorData;
use crate::runtime::policy;

/// The most `file_skipped` events one sync gives, so that a workspace of many files past
/// the limits does not flood the log.
const MAX_SKIPPED_REPORTS: usize = 100;

impl Actor {
    pub(super) fn start_periodic_sync(&mut self) {
        let sandbox = self.sandbox.clone();
        let agent = self.inner.agent.clone();
        let blobs = self.inner.adapters.blobs.clone();
        let key = self.key.clone();
        let agent_session_id = self.record().agent_session_id.clone();
        let mut synced = self.synced.clone();
        let limits = self.inner.settings.limits;
        self.periodic_sync = Some(tokio::spawn(async move {
            let mut result = workspace::sync_workspace(
                sandbox.as_ref(),
                blobs.as_ref(),
                &key,
                &mut synced,
                &limits,
            )
            .await;
            if let (Ok(_), Some(agent_id)) = (&result, agent_session_id) {
                let transcript = workspace::sync_transcript(
                    agent.as_ref(),
                    sandbox.as_ref(),
                    blobs.as_ref(),
                    &key,
                    &agent_id,
                    &limits,
                );
                if let Err(error) = transcript.await {
                    result = Err(error);
                }
            }
            (synced, result)
        }));
    }

    /// Reports each file a sync left out, once per path and size, and at most
    /// [`MAX_SKIPPED_REPORTS`] of them per sync: beyond that, one event counts the rest.
    async fn report_skipped(&mut self, skipped: Vec<Skipped>) {
        let limits = self.inner.settings.limits;
        let new: Vec<&Skipped> = skipped
            .iter()
            .filter(|file| !self.skipped.contains(*file))
            .collect();
        let events: Vec<ErrorData> = new
            .iter()
            .take(MAX_SKIPPED_REPORTS)
            .map(|file| file.event(&limits))
            .collect();
        let more = new.len().saturating_sub(MAX_SKIPPED_REPORTS);
        for event in events {
            self.log.report(event).await;
        }
        if more > 0 {
            let message = format!("{more} more files do not fit the limits; they are not stored");
            self.log
                .error(EventErrorCode::FileSkipped, &message, false)
                .await;
        }
        self.skipped = skipped.into_iter().collect();
    }

    pub(super) async fn finish_periodic_sync(
        &mut self,
        done: Result<SyncDone, tokio::task::JoinError>,
    ) {
        self.periodic_sync = None;
        match done {
            Ok((synced, result)) => {
                self.synced = synced;
                let result = match result {
                    Ok(skipped) => {
                        self.report_skipped(skipped).await;
                        Ok(())
                    }
                    Err(error) => Err(error),
                };
                let failed_before = std::mem::replace(&mut self.sync_failing, result.is_err());
                // One event per outage, not one per attempt.
                if let Err(error) = result
                    && !failed_before
                {
                    let message = format!("syncing files failed: {error}; will retry");
                    self.log
                        .error(EventErrorCode::SyncFailed, &message, false)
                        .await;
                }
            }
            Err(error) => tracing::error!(session_id = %self.id, %error, "sync task failed"),
        }
    }

    /// Stores the workspace and the transcript before the sandbox goes. Storage that is
    /// down is waited for, with [`policy::FINAL_SYNC`]'s delays, up to
    /// [`FINAL_SYNC_PATIENCE`]; the first failure and a final give-up are reported as
    /// `error` events.
    pub(super) async fn final_sync(&mut self) {
        let deadline = tokio::time::Instant::now() + FINAL_SYNC_PATIENCE;
        let mut delays = policy::FINAL_SYNC.build();
        let mut reported = false;
        loop {
            let Err(error) = self.sync_once().await else {
                return;
            };
            tracing::warn!(session_id = %self.id, %error, "final sync failed");
            // Waiting helps an outage, not a workspace over its limits.
            let hopeless = error.kind() == ErrorKind::TooLarge;
            let delay = delays
                .next()
                .filter(|delay| !hopeless && tokio::time::Instant::now() + *delay <= deadline);
            let Some(delay) = delay else {
                let message = if hopeless {
                    format!(
                        "storing the session's files failed; changes since the last sync are lost: {error}"
                    )
                } else {
                    format!(
                        "storing the session's files failed for {FINAL_SYNC_PATIENCE:?}; changes since the last sync are lost: {error}"
                    )
                };
                self.log
                    .error(EventErrorCode::SyncFailed, &message, false)
                    .await;
                return;
            };
            if !reported {
                let message = format!("storing the session's files failed; retrying: {error}");
                self.log
                    .error(EventErrorCode::SyncFailed, &message, false)
                    .await;
                reported = true;
            }
            tokio::time::sleep(delay).await;
        }
    }

    pub(super) async fn sync_once(&mut self) -> Result<(), AdapterError> {
        let inner = self.inner.clone();
        let (blobs, limits) = (inner.adapters.blobs.as_ref(), &inner.settings.limits);
        let skipped = workspace::sync_workspace(
            self.sandbox.as_ref(),
            blobs,
            &self.key,
            &mut self.synced,
            limits,
        )
        .await?;
        self.report_skipped(skipped).await;
        if let Some(agent_id) = &self.log.record().agent_session_id {
            let (agent, sandbox) = (inner.agent.as_ref(), self.sandbox.as_ref());
            workspace::sync_transcript(agent, sandbox, blobs, &self.key, agent_id, limits).await?;
        }
        Ok(())
    }
}

/// What a periodic sync gives back: the store's state, and the files it left out.
pub(super) type SyncDone = (Synced, Result<Vec<Skipped>, AdapterError>);

pub(super) async fn wait_sync(
    task: &mut Option<JoinHandle<SyncDone>>,
) -> Result<SyncDone, tokio::task::JoinError> {
    match task {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}
