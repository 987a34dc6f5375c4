//! Stop, resume and delete: each runs under the session's lifecycle lock and to its end,
//! even if the caller goes away. Whether the caller owns the session is checked under the
//! lock too: between a check outside it and the work inside, the id could be deleted and
//! taken by another principal's new session.

use super::*;
use crate::runtime::expiry;
use crate::runtime::payload::ExpiryReason;
use agent_runtime_api::ErrorKind;

impl SessionManager {
    /// Final sync, then the sandbox goes away; the session can be resumed.
    pub async fn stop(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        validate_id(session_id, "sessionId")?;
        let (this, principal, id) = (self.clone(), principal.clone(), session_id.to_owned());
        let work = self.detached(async move {
            let _guard = this.inner.lock_session(&id).await;
            this.check_owner(&principal, &id).await?;
            this.stop_locked(&id, "stopped", false).await
        });
        self.inner.deadline.bound(work).await
    }

    /// `not_found` unless the session exists and `principal` may act on it. Call with the
    /// session's lifecycle lock held, so that the answer still holds for what follows.
    async fn check_owner(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<(), RuntimeError> {
        if self.owned_handle(principal, session_id)?.is_none() {
            self.owned_record(principal, session_id).await?;
        }
        Ok(())
    }

    /// Stops a live session for any reason (client, idle, shutdown); returns the record.
    /// With `only_if_idle`, a session that got a message or printed something since the
    /// sweeper looked is left alone.
    pub(crate) async fn stop_session(
        &self,
        session_id: &str,
        reason: &'static str,
        only_if_idle: bool,
    ) -> Result<SessionRecord, RuntimeError> {
        let (this, id) = (self.clone(), session_id.to_owned());
        self.detached(async move {
            let _guard = this.inner.lock_session(&id).await;
            this.stop_locked(&id, reason, only_if_idle).await
        })
        .await
    }

    /// [`SessionManager::stop_session`] with the session's lifecycle lock already held.
    async fn stop_locked(
        &self,
        session_id: &str,
        reason: &'static str,
        only_if_idle: bool,
    ) -> Result<SessionRecord, RuntimeError> {
        if let Some(handle) = self.inner.handle(session_id) {
            let (reply, answer) = oneshot::channel();
            let idle_for = only_if_idle.then_some(self.inner.settings.idle_timeout);
            let command = Command::Stop {
                reason,
                idle_for,
                reply,
            };
            if let Some(result) = ask(&handle, command, answer).await {
                return result;
            }
        }
        self.stored_record(session_id).await
    }

    /// Starts a stopped or failed session again on a new sandbox, with its files and
    /// conversation restored. Resuming a live session returns it as it is.
    pub async fn resume(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        let (this, principal, id) = (self.clone(), principal.clone(), session_id.to_owned());
        let work = self.detached(async move { this.resume_now(&principal, &id).await });
        self.inner.deadline.bound(work).await
    }

    async fn resume_now(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        let _guard = self.inner.lock_session(session_id).await;
        if let Some(handle) = self.owned_handle(principal, session_id)? {
            let record = self.current_record(principal, session_id).await?;
            if record.status.is_live() {
                return Ok(record);
            }
            // Its actor is ending (it saved `stopped` or `failed` and has yet to leave
            // the live set): the new life starts once the old one is gone, so that the
            // old actor's last steps never touch the new one's.
            handle.ended().await;
        }
        let record = self.owned_record(principal, session_id).await?;
        let owner: Arc<str> = record.owner.as_str().into();
        let limits = self.limits_for(principal, &owner);
        let _owner_slot = self.reserve_owner_slot(&owner, limits)?;
        let _slot = self.reserve_slot()?;
        let profile = launch::load_profile(&self.inner, &record.agent_type).await?;
        let rendered = launch::render(&self.inner, &profile, &record)?;
        let mut log = SessionLog::reopen(self.inner.clone(), record)
            .await
            .map_err(|e| RuntimeError::storage("reading the event log", e))?;
        if log.record().status.is_live() {
            // No actor of this runtime has it, yet the record says it is live: its actor
            // ended without a save of its last status taking. It is stopped first, as
            // recovery would.
            expiry::expire_left(
                self.inner.adapters.store.as_ref(),
                &mut log,
                ExpiryReason::RuntimeRestarted,
            )
            .await
            .map_err(|e| RuntimeError::storage("reading the event log", e))?;
            log.transition(SessionStatus::Stopped, Some("recovered"))
                .await;
        }
        // Read before this life's `starting`: what the last lives left for the agent.
        let note =
            expiry::resume_note(self.inner.adapters.store.as_ref(), log.id(), log.last_seq())
                .await
                .map_err(|e| RuntimeError::storage("reading the event log", e))?;
        if !log
            .transition(SessionStatus::Starting, Some("resume"))
            .await
        {
            return Err(RuntimeError::internal(
                "resuming the session",
                "its status does not allow a resume",
            ));
        }
        self.bring_up(log, rendered, Start::Resume, note).await
    }

    /// Sets the session's budget (admins only): the new limits replace the old ones
    /// whole, and may be above the profile's. A session that no longer is over its budget
    /// takes messages again. A non-admin gets `not_found` for another principal's session
    /// and `forbidden` for its own.
    pub async fn set_budget(
        &self,
        principal: &Principal,
        session_id: &str,
        budget: agent_runtime_api::Budget,
    ) -> Result<SessionRecord, RuntimeError> {
        validate_id(session_id, "sessionId")?;
        let (this, principal, id) = (self.clone(), principal.clone(), session_id.to_owned());
        let work = self.detached(async move {
            // Under the lifecycle lock: a stopped session is not resumed meanwhile, so
            // no actor holds its record while it is written here.
            let _guard = this.inner.lock_session(&id).await;
            this.check_owner(&principal, &id).await?;
            if !principal.admin {
                return Err(RuntimeError::new(
                    ErrorCode::Forbidden,
                    "only an admin may change a session's budget",
                ));
            }
            if let Some(handle) = this.inner.handle(&id) {
                let (reply, answer) = oneshot::channel();
                let command = Command::SetBudget { budget, reply };
                if let Some(result) = ask(&handle, command, answer).await {
                    return result;
                }
                // The actor is ending (a crash, a shutdown) and saves the record once
                // more before it is gone, which would undo a write made now.
                handle.ended().await;
            }
            this.store_budget(&id, budget).await
        });
        self.inner.deadline.bound(work).await
    }

    /// Writes a budget into the stored record of a session no actor holds. A conflict
    /// means an ending actor saved the record last just now: read again and retry.
    async fn store_budget(
        &self,
        session_id: &str,
        budget: agent_runtime_api::Budget,
    ) -> Result<SessionRecord, RuntimeError> {
        let store = &self.inner.adapters.store;
        for _ in 0..3 {
            let mut record = self.stored_record(session_id).await?;
            record.budget = budget;
            record.updated_at = Utc::now();
            match store.update(&record).await {
                Ok(version) => {
                    record.version = version;
                    return Ok(record);
                }
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(RuntimeError::session_not_found(session_id));
                }
                Err(error) => return Err(RuntimeError::storage("saving the session", error)),
            }
        }
        Err(RuntimeError::new(
            ErrorCode::StorageUnavailable,
            "the session kept changing while its budget was saved; try again",
        ))
    }

    /// Stops the session if live and removes its record, log, files and transcripts.
    pub async fn delete(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<(), RuntimeError> {
        validate_id(session_id, "sessionId")?;
        let (this, principal, id) = (self.clone(), principal.clone(), session_id.to_owned());
        let work = self.detached(async move { this.delete_now(&principal, &id).await });
        self.inner.deadline.bound(work).await
    }

    /// Stops and deletes under one lifecycle lock, so no message can resume the session
    /// in between.
    async fn delete_now(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<(), RuntimeError> {
        let _guard = self.inner.lock_session(session_id).await;
        self.check_owner(principal, session_id).await?;
        self.stop_locked(session_id, "deleted", false).await?;
        let key = launch::session_key(session_id)?;
        self.inner
            .adapters
            .blobs
            .delete_prefix(&BlobKey::session(&key))
            .await
            .map_err(|e| RuntimeError::storage("deleting the session's files", e))?;
        self.inner
            .adapters
            .store
            .delete(session_id)
            .await
            .map_err(|e| RuntimeError::storage("deleting the session", e))?;
        self.inner
            .bus
            .publish(crate::runtime::DomainEvent::Deleted {
                session_id: session_id.into(),
            });
        Ok(())
    }
}
