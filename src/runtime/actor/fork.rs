//! A fork of the live session: its workspace files and its agent's transcript copied,
//! straight from the sandbox, to the fork's place in the blob store. The session's own
//! log, record and stored files are left as they are.

use std::time::Instant;

use super::*;
use crate::runtime::workspace::Synced;

/// How long a fork waits for the agent to write its last message to its transcript.
/// Claude Code writes the file lazily, within about a second of a turn's `result`.
const TRANSCRIPT_PATIENCE: Duration = Duration::from_secs(10);
/// How often the transcript is read again meanwhile.
const TRANSCRIPT_POLL: Duration = Duration::from_millis(50);

/// Where a fork of a live session starts.
pub(crate) struct ForkPoint {
    /// The source's record; its `last_seq` is the seq of its last persisted event.
    pub(crate) record: SessionRecord,
    /// The conversation whose transcript was copied, if the agent has one.
    pub(crate) conversation: Option<String>,
}

impl Actor {
    /// Copies the workspace and the transcript under `into`. Refused with `session_busy`
    /// while a turn runs or waits for an answer: the fork would start from a conversation
    /// cut in the middle of a turn. Commands wait meanwhile, so no turn starts during
    /// the copy either.
    pub(super) async fn fork_into(&mut self, into: &RelPath) -> Result<ForkPoint, RuntimeError> {
        if self.turn_active || !self.queue.is_empty() {
            return Err(RuntimeError::new(
                ErrorCode::SessionBusy,
                "the session is running a turn or waits for an answer; fork it once it is idle",
            ));
        }
        // The seq the fork names is persisted.
        self.inner.writer.flush().await;
        let inner = self.inner.clone();
        let (blobs, limits) = (inner.adapters.blobs.as_ref(), &inner.settings.limits);
        let mut copied = Synced::default();
        workspace::sync_workspace(self.sandbox.as_ref(), blobs, into, &mut copied, limits)
            .await
            .map_err(|e| RuntimeError::storage("copying the session's files", e))?;
        let conversation = match self.complete_transcript().await? {
            Some((conversation, bytes)) => {
                workspace::put_transcript(blobs, into, &conversation, bytes)
                    .await
                    .map_err(|e| RuntimeError::storage("copying the transcript", e))?;
                Some(conversation)
            }
            None => None,
        };
        Ok(ForkPoint {
            record: self.record().clone(),
            conversation,
        })
    }

    /// The transcript the agent continues, read from the sandbox once it holds the last
    /// message the agent printed in this life: its own conversation's, else (a fork that
    /// has not spoken yet) the source's it was started from.
    async fn complete_transcript(
        &mut self,
    ) -> Result<Option<(String, bytes::Bytes)>, RuntimeError> {
        let record = self.record();
        let own = record.agent_session_id.as_deref();
        let base = (record.forked_from.as_ref()).and_then(|from| from.agent_session_id.as_deref());
        let (agent, sandbox) = (self.inner.agent.as_ref(), self.sandbox.as_ref());
        let limits = &self.inner.settings.limits;
        let unreadable = |e: AdapterError| match e.kind() {
            // Waiting would not make it smaller: storage could not keep it either.
            ErrorKind::TooLarge => RuntimeError::new(
                ErrorCode::FileTooLarge,
                format!(
                    "the agent's transcript is over the limit of {} bytes per workspace; the session cannot be forked",
                    limits.workspace_bytes
                ),
            ),
            _ => RuntimeError::new(
                ErrorCode::SandboxFailed,
                format!("reading the agent's transcript failed: {e}"),
            ),
        };
        let (Some(last), Some(own)) = (&self.last_assistant, own) else {
            for conversation in own.into_iter().chain(base) {
                let read = workspace::read_transcript(agent, sandbox, conversation, limits).await;
                if let Some(bytes) = read.map_err(unreadable)? {
                    return Ok(Some((conversation.to_owned(), bytes)));
                }
            }
            return Ok(None);
        };
        let deadline = Instant::now() + TRANSCRIPT_PATIENCE;
        loop {
            let read = workspace::read_transcript(agent, sandbox, own, limits).await;
            if let Some(bytes) = read.map_err(unreadable)?
                && holds_line(&bytes, last)
            {
                return Ok(Some((own.to_owned(), bytes)));
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::new(
                    ErrorCode::AgentFailed,
                    format!(
                        "the agent's transcript did not get its last message within {TRANSCRIPT_PATIENCE:?}; try again"
                    ),
                ));
            }
            tokio::time::sleep(TRANSCRIPT_POLL).await;
        }
    }
}

/// Whether `transcript` holds the whole line of the message with this `uuid`.
fn holds_line(transcript: &[u8], uuid: &str) -> bool {
    let needle = format!("\"uuid\":\"{uuid}\"");
    let needle = needle.as_bytes();
    let Some(at) = transcript.windows(needle.len()).position(|w| w == needle) else {
        return false;
    };
    transcript[at..].contains(&b'\n')
}

#[cfg(test)]
mod tests {
    use super::holds_line;

    #[test]
    fn a_transcript_holds_a_message_once_its_line_is_written_whole() {
        let line = br#"{"type":"assistant","uuid":"u-1","message":{}}"#;
        assert!(!holds_line(line, "u-1"), "no line break yet");
        assert!(holds_line(&[&line[..], b"\n"].concat(), "u-1"));
        let child = b"{\"parentUuid\":\"u-1\",\"uuid\":\"u-2\"}\n";
        assert!(!holds_line(child, "u-1"), "a reply to it is not it");
    }
}
