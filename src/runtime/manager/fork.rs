//! Forks: a new session of the source's owner whose workspace is a copy of the source's
//! files and whose agent continues the source's conversation under a new conversation id.
//! The source is only read: its log, record, stored files and transcript stay as they are.

use agent_runtime_api::ForkedFrom;

use super::*;
use crate::runtime::actor::ForkPoint;
use crate::runtime::{log, workspace};

impl SessionManager {
    /// Forks a session of the caller's (any session for an admin); returns the fork, live
    /// and `idle`. A live source is copied from its sandbox and must be idle (no turn
    /// running or waiting: `session_busy`); a stopped or failed one from storage. The fork
    /// counts against the owner's quotas like a create and gets the profile's budget.
    /// `fork_id` is the new session's id (a fresh UUIDv7 when `None`), so that a
    /// transport can join its clients to the fork's events before it starts.
    pub async fn fork(
        &self,
        principal: &Principal,
        source_id: &str,
        fork_id: Option<String>,
    ) -> Result<SessionRecord, RuntimeError> {
        validate_id(source_id, "sessionId")?;
        let id = match fork_id {
            Some(id) => validate_id(&id, "forkId")?,
            None => uuid::Uuid::now_v7().to_string(),
        };
        let (this, principal, source) = (self.clone(), principal.clone(), source_id.to_owned());
        let work = self.detached(async move { this.fork_now(&principal, &source, id).await });
        self.inner.deadline.bound(work).await
    }

    async fn fork_now(
        &self,
        principal: &Principal,
        source_id: &str,
        id: String,
    ) -> Result<SessionRecord, RuntimeError> {
        // The source is neither stopped, resumed nor deleted while it is copied.
        let source_guard = self.inner.lock_session(source_id).await;
        let source = self.current_record(principal, source_id).await?;
        let owner: Arc<str> = source.owner.as_str().into();
        let limits = self.limits_for(principal, &owner);
        self.inner
            .rates
            .take(&principal.id, Action::Create, limits.creates_per_minute)?;
        let _owner_slot = self.reserve_owner_slot(&owner, limits)?;
        let _slot = self.reserve_slot()?;
        let profile = launch::load_profile(&self.inner, &source.agent_type).await?;
        profile.validate_metadata(&source.metadata)?;
        let budget = budget::for_new_session(profile.budget(), None)?;

        let key = launch::session_key(&id)?;
        let _guard = self.inner.lock_session(&id).await;
        let copied = self.copy_source(source_id, &key).await;
        drop(source_guard);
        let point = match copied {
            Ok(point) => point,
            Err(error) => return Err(self.discard_copy(&key, error).await),
        };
        let now = Utc::now();
        let record = SessionRecord {
            id: id.clone(),
            owner: owner.to_string(),
            agent_type: source.agent_type,
            status: SessionStatus::Starting,
            metadata: source.metadata,
            created_at: now,
            updated_at: now,
            last_activity_at: now,
            last_seq: 0,
            // The fork's own conversation, chosen now; it starts from the copied one.
            agent_session_id: (point.conversation.as_ref())
                .map(|_| uuid::Uuid::new_v4().to_string()),
            usage: Default::default(),
            budget,
            forked_from: Some(ForkedFrom {
                session_id: source.id,
                seq: point.record.last_seq,
                agent_session_id: point.conversation,
            }),
            error: None,
            version: 1,
        };
        let stored = match launch::render(&self.inner, &profile, &record) {
            Ok(rendered) => self.store_new(&record, limits).await.map(|()| rendered),
            Err(error) => Err(error),
        };
        let rendered = match stored {
            Ok(rendered) => rendered,
            Err(error) => return Err(self.discard_copy(&key, error).await),
        };
        tracing::info!(
            session_id = id,
            source = source_id,
            seq = point.record.last_seq,
            "session forked"
        );
        let log = SessionLog::begin(self.inner.clone(), record).await;
        // Started like a resume: from the files and the transcript stored under its id.
        self.bring_up(log, rendered, Start::Resume, None).await
    }

    /// Copies the source's workspace and transcript under `into`: a live source's actor
    /// copies them from its sandbox, a stopped one's come from storage.
    async fn copy_source(
        &self,
        source_id: &str,
        into: &RelPath,
    ) -> Result<ForkPoint, RuntimeError> {
        if let Some(handle) = self.inner.handle(source_id) {
            let (reply, answer) = oneshot::channel();
            let command = Command::Fork {
                into: into.clone(),
                reply,
            };
            if let Some(result) = ask(&handle, command, answer).await {
                return result;
            }
            // The actor is ending on its own (a crash): once it let go of the record,
            // storage holds what it left.
            handle.ended().await;
        }
        let store = self.inner.adapters.store.as_ref();
        let mut record = self.stored_record(source_id).await?;
        record.last_seq = log::persisted_last_seq(store, &record)
            .await
            .map_err(|e| RuntimeError::storage("reading the event log", e))?;
        let own = record.agent_session_id.as_deref();
        let base = (record.forked_from.as_ref()).and_then(|from| from.agent_session_id.as_deref());
        let conversations: Vec<&str> = own.into_iter().chain(base).collect();
        let from = launch::session_key(source_id)?;
        let conversation = workspace::copy_stored(
            self.inner.adapters.blobs.as_ref(),
            &from,
            into,
            &conversations,
        )
        .await
        .map_err(|e| RuntimeError::storage("copying the session's files", e))?;
        Ok(ForkPoint {
            record,
            conversation,
        })
    }

    /// Removes what a fork that was not stored copied; returns `error`.
    async fn discard_copy(&self, key: &RelPath, error: RuntimeError) -> RuntimeError {
        let blobs = &self.inner.adapters.blobs;
        if let Err(e) = blobs.delete_prefix(&BlobKey::session(key)).await {
            tracing::warn!(session_id = %key, error = %e, "removing the files of a failed fork failed");
        }
        error
    }
}
