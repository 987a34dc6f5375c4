//! Messages, interrupts and answers: the requests that reach a live session's actor,
//! resuming the session first when it is stopped (messages only).

use super::*;

impl SessionManager {
    /// Sends a message; queued while a turn runs. A stopped session is resumed first.
    pub async fn send_message(
        &self,
        principal: &Principal,
        session_id: &str,
        content: MessageContent,
        message_id: Option<String>,
    ) -> Result<MessageAccepted, RuntimeError> {
        let delivered = self.deliver(principal, session_id, content, message_id, false);
        let (accepted, _) = self.inner.deadline.bound(delivered).await?;
        Ok(accepted)
    }

    /// Sends a message like [`SessionManager::send_message`] and also returns a waiter
    /// for the `result` of the turn that this message starts (not an earlier one).
    pub async fn send_message_and_wait(
        &self,
        principal: &Principal,
        session_id: &str,
        content: MessageContent,
        message_id: Option<String>,
    ) -> Result<(MessageAccepted, TurnWaiter), RuntimeError> {
        let delivered = self.deliver(principal, session_id, content, message_id, true);
        let (accepted, waiter) = self.inner.deadline.bound(delivered).await?;
        let waiter = TurnWaiter {
            result: waiter.expect("asked for a waiter"),
            deadline: self.inner.deadline.clone(),
        };
        Ok((accepted, waiter))
    }

    async fn deliver(
        &self,
        principal: &Principal,
        session_id: &str,
        content: MessageContent,
        message_id: Option<String>,
        wait: bool,
    ) -> Result<
        (
            MessageAccepted,
            Option<oneshot::Receiver<Box<serde_json::value::RawValue>>>,
        ),
        RuntimeError,
    > {
        let message_id = match message_id {
            Some(id) => validate_id(&id, "messageId")?,
            None => uuid::Uuid::now_v7().to_string(),
        };
        let limits = self.inner.settings.quotas.with(&principal.quotas);
        self.inner
            .rates
            .take(&principal.id, Action::Message, limits.messages_per_minute)?;
        for _ in 0..3 {
            let handle = match self.owned_handle(principal, session_id)? {
                Some(handle) => handle,
                None => {
                    // A session over its budget would refuse the message once resumed:
                    // it is refused before a sandbox is started for nothing.
                    let record = self.owned_record(principal, session_id).await?;
                    if let Some(refused) = budget::refusal(&record) {
                        return Err(refused);
                    }
                    self.resume(principal, session_id).await?;
                    continue;
                }
            };
            let (reply, answer) = oneshot::channel();
            // A waiter per attempt: one given to an actor that ended is gone with it.
            let (done, waiter) = if wait {
                let (done, waiter) = oneshot::channel();
                (Some(done), Some(waiter))
            } else {
                (None, None)
            };
            let command = Command::Message {
                message_id: message_id.clone(),
                content: content.clone(),
                reply,
                done,
            };
            match ask(&handle, command, answer).await {
                Some(result) => return result.map(|accepted| (accepted, waiter)),
                // The session is ending (a stop's final sync, a crash): once its actor
                // is gone, the message resumes it.
                None => handle.ended().await,
            }
        }
        Err(RuntimeError::new(
            ErrorCode::AgentFailed,
            "the session kept ending while the message was sent",
        ))
    }

    /// Interrupts the running turn; the agent stays alive.
    pub async fn interrupt(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        let interrupt = async {
            if let Some(handle) = self.owned_handle(principal, session_id)? {
                let (reply, answer) = oneshot::channel();
                if let Some(result) = ask(&handle, Command::Interrupt { reply }, answer).await {
                    return result;
                }
            }
            self.get(principal, session_id).await
        };
        self.inner.deadline.bound(interrupt).await
    }

    /// Answers a pending request of the session's agent (a `permission` or `question`
    /// event) as `principal`; returns the seq of the `answer` event. The first valid
    /// answer wins: a later one is `request_closed`, an id no request has is
    /// `request_not_found`. A session that is not live has no agent waiting.
    pub async fn answer(
        &self,
        principal: &Principal,
        session_id: &str,
        request_id: &str,
        answer: Answer,
    ) -> Result<u64, RuntimeError> {
        let request_id = validate_id(request_id, "requestId")?;
        let answered = async {
            if let Some(handle) = self.owned_handle(principal, session_id)? {
                let (reply, answered) = oneshot::channel();
                let command = Command::Answer {
                    request_id: request_id.clone(),
                    by: principal.id.clone(),
                    answer,
                    reply,
                };
                if let Some(result) = ask(&handle, command, answered).await {
                    return result;
                }
            }
            self.owned_record(principal, session_id).await?;
            Err(RuntimeError::new(
                ErrorCode::RequestNotFound,
                format!(
                    "session {session_id} is not live: its agent waits for no answer (request {request_id})"
                ),
            ))
        };
        self.inner.deadline.bound(answered).await
    }

    /// The request events of a live session that wait for an answer, oldest first; none
    /// for a session that is not live. For a session the caller already read through an
    /// ownership check (a record it got from this manager).
    pub fn pending(&self, session_id: &str) -> Vec<agent_runtime_api::Event> {
        match self.inner.handle(session_id) {
            Some(handle) => handle.pending.borrow().to_vec(),
            None => Vec::new(),
        }
    }
}
