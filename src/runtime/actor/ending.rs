//! How a live session ends: stopped on request, or its agent gone.

use super::*;
use crate::runtime::payload::ExpiryReason;

impl Actor {
    /// Final sync and teardown. The agent gets its stdin closed (and an interrupt if a
    /// turn runs), its remaining output is recorded, then files and transcript are
    /// stored and the sandbox goes.
    pub(super) async fn stop(
        &mut self,
        reason: &'static str,
    ) -> Result<SessionRecord, RuntimeError> {
        self.log
            .transition(SessionStatus::Stopping, Some(reason))
            .await;
        // Clients hear at once that no answer is taken any more, and why; the agent's
        // next life is told with its next message.
        self.expire_all(ExpiryReason::of_stop(reason)).await;
        if self.turn_active {
            let interrupt = self.io.protocol.interrupt("interrupt-stop");
            self.write_stdin(&interrupt).await;
        }
        self.io.stdin = None;
        if tokio::time::timeout(EXIT_GRACE, self.drain_until_exit())
            .await
            .is_err()
        {
            tracing::warn!(session_id = %self.id, "agent did not exit in time; terminating it");
        }
        if let Some(task) = self.periodic_sync.take()
            && let Ok((synced, _)) = task.await
        {
            self.synced = synced;
        }
        self.final_sync().await;
        self.terminate_sandbox().await;
        self.turn_active = false;
        self.drop_queue(&format!("the session ended ({reason})"))
            .await;
        self.busy.store(false, Ordering::Relaxed);
        self.log
            .transition(SessionStatus::Stopped, Some(reason))
            .await;
        self.inner.forget(&self.id);
        Ok(self.record().clone())
    }

    /// Messages accepted but never sent to the agent are dropped when the session ends
    /// or its budget is used up (`why` says which); clients hear which messages.
    pub(super) async fn drop_queue(&mut self, why: &str) {
        if self.queue.is_empty() {
            return;
        }
        let ids: Vec<String> = self
            .queue
            .drain(..)
            .map(|queued| queued.message_id)
            .collect();
        let message = format!(
            "{why} before these queued messages reached the agent: {}",
            ids.join(", ")
        );
        self.log
            .error(EventErrorCode::MessagesDropped, &message, false)
            .await;
    }

    /// Records the agent's remaining output until it exits.
    pub(super) async fn drain_until_exit(&mut self) {
        loop {
            tokio::select! {
                line = self.io.stdout.next_line(), if self.stdout_open => self.on_output(line).await,
                _ = &mut self.io.exit => break,
            }
        }
        self.drain_stdout().await;
    }

    /// Reads what is left of stdout after the process ended.
    pub(super) async fn drain_stdout(&mut self) {
        while self.stdout_open {
            match tokio::time::timeout(Duration::from_secs(2), self.io.stdout.next_line()).await {
                Ok(line) => self.on_output(line).await,
                Err(_) => break,
            }
        }
    }

    pub(super) async fn on_crash(&mut self, status: ExitStatus) {
        self.drain_stdout().await;
        let stderr = self
            .io
            .stderr_tail
            .lock()
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        let message = if stderr.is_empty() {
            format!("the agent exited unexpectedly ({status})")
        } else {
            format!("the agent exited unexpectedly ({status}): {stderr}")
        };
        tracing::warn!(session_id = %self.id, %message, "agent crashed");
        self.log
            .error(EventErrorCode::AgentCrashed, &message, true)
            .await;
        self.expire_all(ExpiryReason::AgentCrashed).await;
        // A periodic sync still under way could store older content after the final one.
        if let Some(task) = self.periodic_sync.take()
            && let Ok((synced, _)) = task.await
        {
            self.synced = synced;
        }
        self.final_sync().await;
        self.drop_queue("the session ended (agent_crashed)").await;
        self.terminate_sandbox().await;
        self.busy.store(false, Ordering::Relaxed);
        self.log.fail(EventErrorCode::AgentCrashed, message).await;
        self.inner.forget(&self.id);
    }

    pub(super) async fn terminate_sandbox(&mut self) {
        if let Err(error) = self.sandbox.terminate().await {
            tracing::error!(session_id = %self.id, %error, "terminating the sandbox failed");
        }
    }
}
