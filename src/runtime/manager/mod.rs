//! [`SessionManager`]: the runtime's API to transports. It finds a session's actor, or
//! brings the session to life, and checks that the caller owns the session.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use agent_runtime_api::{BlobKey, ErrorKind, RelPath, SessionFilter, SessionRecord, SessionStatus};
use chrono::Utc;
use serde_json::json;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use self::locks::{KeyedGuard, KeyedLocks};
use super::actor::{Actor, Command, SessionHandle};
use super::budget;
use super::deadline::StoreDeadline;
use super::launch::{self, Start};
use super::log::SessionLog;
use super::payload::EventErrorCode;
use super::quotas::{self, Action, QuotaLimits, RateLimiter};
use super::writer::EventWriter;
use super::{
    Adapters, Answer, CreateSession, EventBus, EventPage, FileDownload, FileInfo, ListSessions,
    MAX_EVENT_PAGE, MessageAccepted, MessageContent, ProfileInfo, RuntimeSettings, SessionList,
    TurnWaiter,
};
use crate::agent::{AgentDriver, ClaudeCode};
use crate::auth::Principal;
use crate::error::{ErrorCode, RuntimeError};
use crate::metrics::Metrics;

mod fork;
mod lifecycle;
mod locks;
mod messages;
mod queries;

/// The longest id a client may propose.
const MAX_ID_LEN: usize = 128;

/// State shared by the manager and every actor.
pub(crate) struct Inner {
    pub(crate) adapters: Adapters,
    pub(crate) settings: RuntimeSettings,
    /// The agent CLI every session runs.
    pub(crate) agent: Arc<dyn AgentDriver>,
    pub(crate) bus: EventBus,
    pub(crate) writer: EventWriter,
    /// Bounds how long requests wait while the session store is away.
    pub(crate) deadline: StoreDeadline,
    /// What `/metrics` exports; shared with the transports.
    pub(crate) metrics: Arc<Metrics>,
    /// Live sessions by id. A std Mutex: held for a map operation, never across an await.
    live: Mutex<HashMap<String, SessionHandle>>,
    /// One lock per session id, taken by create, resume, stop and delete so that they
    /// never interleave for one session. Messages to a live session do not take it.
    lifecycle: KeyedLocks,
    /// One lock per owner, held by a create from counting the owner's stored sessions to
    /// storing the new one, so that concurrent creates cannot all pass
    /// `max_stored_sessions`. Taken after the session's lifecycle lock, never before.
    storing_for: KeyedLocks,
    /// Sessions being brought up; they count against `max_sessions` like live ones.
    starting: std::sync::atomic::AtomicUsize,
    /// Sessions being brought up per owner; they count against the owner's
    /// `max_live_sessions` like live ones.
    starting_by_owner: Mutex<HashMap<Arc<str>, usize>>,
    /// Creates and messages per principal.
    rates: RateLimiter,
    /// Every lifecycle operation under way (create, resume, stop, delete, budget), so
    /// that shutdown waits for a create still bringing its session up.
    operations: TaskTracker,
}

impl Inner {
    /// Removes a session from the live set; called by its actor as it ends.
    pub(crate) fn forget(&self, id: &str) {
        self.live.lock().unwrap().remove(id);
        self.revoke_tools(id);
    }

    /// The session's sandbox is gone: its MCP token dies with it.
    pub(crate) fn revoke_tools(&self, id: &str) {
        if let Some(tools) = &self.settings.tools {
            tools.sessions.revoke_session(id);
        }
    }

    fn handle(&self, id: &str) -> Option<SessionHandle> {
        self.live.lock().unwrap().get(id).cloned()
    }

    /// Takes the session's lifecycle lock.
    async fn lock_session(&self, id: &str) -> KeyedGuard<'_> {
        self.lifecycle.lock(id).await
    }
}

/// The session manager. Cheap to clone; every clone drives the same sessions.
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

impl SessionManager {
    /// A manager over these adapters, with metrics of its own. Starts the event writer
    /// and the idle sweeper.
    pub fn new(adapters: Adapters, settings: RuntimeSettings) -> Self {
        Self::with_metrics(adapters, settings, Arc::default())
    }

    /// A manager over these adapters that records into `metrics` (the registry the
    /// catalog's measuring adapters and the transports share). Starts the event writer
    /// and the idle sweeper.
    pub fn with_metrics(
        adapters: Adapters,
        settings: RuntimeSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let bus = EventBus::new();
        let writer = EventWriter::start(adapters.store.clone(), bus.clone(), metrics.clone());
        let deadline = StoreDeadline::new(adapters.store.clone(), settings.store_patience);
        let agent = Arc::new(ClaudeCode::new(settings.agent.clone()));
        let inner = Arc::new(Inner {
            adapters,
            settings,
            agent,
            bus,
            writer,
            deadline,
            metrics,
            live: Mutex::default(),
            lifecycle: KeyedLocks::default(),
            storing_for: KeyedLocks::default(),
            starting: Default::default(),
            starting_by_owner: Mutex::default(),
            rates: RateLimiter::default(),
            operations: TaskTracker::new(),
        });
        tokio::spawn(super::sweeper::run(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// The metrics this manager records into, for the transports to add theirs and
    /// export them all.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The bus on which every persisted event is published.
    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// Reports failures of runtime-served tools as `tool_failed` events in the session's
    /// log.
    pub fn tool_failure_sink(&self) -> Arc<dyn crate::tools::ToolFailureSink> {
        Arc::new(ToolFailures(Arc::downgrade(&self.inner)))
    }

    /// The number of live sessions.
    pub fn live_sessions(&self) -> usize {
        self.inner.live.lock().unwrap().len()
    }

    /// Creates a session and starts its agent; returns once the agent is ready (`idle`).
    pub async fn create(
        &self,
        principal: &Principal,
        request: CreateSession,
    ) -> Result<SessionRecord, RuntimeError> {
        let (this, principal) = (self.clone(), principal.clone());
        let work = self.detached(async move { this.create_now(&principal, request).await });
        self.inner.deadline.bound(work).await
    }

    async fn create_now(
        &self,
        principal: &Principal,
        request: CreateSession,
    ) -> Result<SessionRecord, RuntimeError> {
        let id = match request.session_id {
            Some(id) => validate_id(&id, "sessionId")?,
            None => uuid::Uuid::now_v7().to_string(),
        };
        let metadata = match request.metadata {
            serde_json::Value::Null => json!({}),
            object @ serde_json::Value::Object(_) => object,
            _ => return Err(RuntimeError::invalid("metadata: must be an object")),
        };
        if request.agent_type.is_empty() {
            return Err(RuntimeError::invalid("agentType: must not be empty"));
        }
        let owner: Arc<str> = match request.owner {
            None => principal.id.clone(),
            Some(owner) if *owner == *principal.id => principal.id.clone(),
            Some(_) if !principal.admin => {
                return Err(RuntimeError::invalid(
                    "owner: only an admin may create a session for another principal",
                ));
            }
            Some(owner) if crate::auth::valid_principal_id(&owner) => owner.into(),
            Some(_) => {
                return Err(RuntimeError::invalid(format!(
                    "owner: must be 1 to {} bytes without control characters",
                    crate::auth::MAX_PRINCIPAL_LEN
                )));
            }
        };
        let limits = self.limits_for(principal, &owner);
        self.inner
            .rates
            .take(&principal.id, Action::Create, limits.creates_per_minute)?;
        let guard = self.inner.lock_session(&id).await;
        let _owner_slot = self.reserve_owner_slot(&owner, limits)?;
        let _slot = self.reserve_slot()?;
        let profile = launch::load_profile(&self.inner, &request.agent_type).await?;
        profile.validate_metadata(&metadata)?;
        let budget = budget::for_new_session(profile.budget(), request.budget)?;

        let now = Utc::now();
        let record = SessionRecord {
            id: id.clone(),
            owner: owner.to_string(),
            agent_type: request.agent_type.clone(),
            status: SessionStatus::Starting,
            metadata,
            created_at: now,
            updated_at: now,
            last_activity_at: now,
            last_seq: 0,
            agent_session_id: None,
            usage: Default::default(),
            budget,
            forked_from: None,
            error: None,
            version: 1,
        };
        let rendered = launch::render(&self.inner, &profile, &record)?;
        self.store_new(&record, limits).await?;
        let log = SessionLog::begin(self.inner.clone(), record).await;
        let record = self.bring_up(log, rendered, Start::New, None).await?;
        drop(guard);
        if let Some(message) = request.message {
            self.send_message(principal, &id, message, None).await?;
        }
        Ok(record)
    }

    /// Launches the agent for a session in `starting` (its status event already logged),
    /// registers the actor and marks the session `idle`. On failure the session ends
    /// `failed` with the error, which is also returned. `note` goes to the agent with its
    /// first message (what expired while the session was down).
    async fn bring_up(
        &self,
        mut log: SessionLog,
        rendered: crate::profiles::RenderedProfile,
        start: Start,
        note: Option<String>,
    ) -> Result<SessionRecord, RuntimeError> {
        match launch::launch(&self.inner, log.record(), rendered, start).await {
            Ok(launched) => {
                let timings = launched.timings;
                tracing::info!(
                    session_id = %log.id(),
                    prepare_ms = timings.prepare.as_millis() as u64,
                    sandbox_ms = timings.sandbox.as_millis() as u64,
                    agent_ms = timings.agent.as_millis() as u64,
                    "session started"
                );
                self.inner.metrics.session_started(&timings);
                self.inner.bus.publish(super::DomainEvent::Started {
                    session_id: log.id().clone(),
                    timings,
                });
                if let Some(agent_session_id) = launched.new_agent_session_id.clone() {
                    log.set_agent_session_id(agent_session_id);
                }
                let (mut actor, handle, commands) = Actor::new(self.inner.clone(), log, launched);
                actor.tell_next_turn(note);
                // Live before the `idle` event is out: a client that hears it and asks at
                // once finds the session (its command waits in the channel until `run`).
                self.inner
                    .live
                    .lock()
                    .unwrap()
                    .insert(actor.record().id.clone(), handle);
                actor.become_ready().await;
                let record = actor.record().clone();
                tokio::spawn(actor.run(commands));
                Ok(record)
            }
            Err(error) => {
                let code = EventErrorCode::StartFailed(error.code);
                log.error(code, &error.message, true).await;
                log.fail(code, error.message.clone()).await;
                Err(error)
            }
        }
    }

    /// Counts a session being brought up against `max_sessions` until it is live (or
    /// failed), so that concurrent creates cannot pass the limit together.
    fn reserve_slot(&self) -> Result<StartingSlot, RuntimeError> {
        let starting = self.inner.starting.fetch_add(1, Ordering::SeqCst) + 1;
        let slot = StartingSlot(self.inner.clone());
        let taken = self.live_sessions() + starting;
        if taken > self.inner.settings.max_sessions {
            return Err(RuntimeError::new(
                ErrorCode::CapacityExceeded,
                format!(
                    "{} sessions are live or starting, the most this runtime runs; stop one or retry later",
                    taken - 1
                ),
            ));
        }
        Ok(slot)
    }

    /// The limits that apply when `principal` acts for `owner`: its own when it acts for
    /// itself, the defaults when an admin acts for someone else.
    fn limits_for(&self, principal: &Principal, owner: &str) -> QuotaLimits {
        let defaults = self.inner.settings.quotas;
        if *principal.id == *owner {
            defaults.with(&principal.quotas)
        } else {
            defaults
        }
    }

    /// Counts a session being brought up against its owner's `max_live_sessions` until it
    /// is live (or failed), like [`SessionManager::reserve_slot`] does for the runtime.
    fn reserve_owner_slot(
        &self,
        owner: &Arc<str>,
        limits: QuotaLimits,
    ) -> Result<OwnerSlot, RuntimeError> {
        let starting = {
            let mut starting = self.inner.starting_by_owner.lock().unwrap();
            let count = starting.entry(owner.clone()).or_default();
            *count += 1;
            *count
        };
        let slot = OwnerSlot(self.inner.clone(), owner.clone());
        let max = limits.max_live_sessions;
        if max == 0 {
            return Ok(slot);
        }
        let live = self
            .inner
            .live
            .lock()
            .unwrap()
            .values()
            .filter(|handle| handle.owner == *owner)
            .count();
        if live + starting > max as usize {
            return Err(quotas::exceeded("live sessions", max));
        }
        Ok(slot)
    }

    /// Stores a new record, unless its owner already has `max_stored_sessions`. The count
    /// and the store happen under the owner's lock, so that concurrent creates are counted
    /// one after the other.
    async fn store_new(
        &self,
        record: &SessionRecord,
        limits: QuotaLimits,
    ) -> Result<(), RuntimeError> {
        let max = limits.max_stored_sessions;
        let _owner = if max == 0 {
            None
        } else {
            let owner = self.inner.storing_for.lock(&record.owner).await;
            let filter = SessionFilter {
                owner: Some(record.owner.clone()),
                ..Default::default()
            };
            let page = self
                .inner
                .adapters
                .store
                .list(&filter, max as usize, None)
                .await
                .map_err(|e| RuntimeError::storage("counting sessions", e))?;
            if page.sessions.len() >= max as usize {
                return Err(quotas::exceeded("stored sessions", max));
            }
            Some(owner)
        };
        self.inner
            .adapters
            .store
            .create(record)
            .await
            .map_err(|e| match e.kind() {
                // Ids are not secret: this tells any caller that the id exists.
                ErrorKind::Conflict => {
                    RuntimeError::invalid(format!("sessionId: {} is already taken", record.id))
                }
                _ => RuntimeError::storage("creating the session", e),
            })
    }

    /// Makes sessions that a previous, dead runtime left live resumable again: reaps
    /// their sandboxes (after syncing what can be synced) and marks them `stopped`.
    /// Call once at startup, before serving.
    pub async fn recover(&self) -> Result<super::Recovered, RuntimeError> {
        super::recovery::recover(&self.inner)
            .await
            .map_err(|e| RuntimeError::storage("recovering sessions", e))
    }

    /// Waits for every lifecycle operation under way (a create finishes bringing its
    /// session up), stops every live session (final sync included) and waits until the
    /// event log is written. Called on shutdown, once no request comes in any more.
    pub async fn shutdown(&self) {
        self.inner.operations.close();
        self.inner.operations.wait().await;
        let ids: Vec<String> = self.inner.live.lock().unwrap().keys().cloned().collect();
        let stops = ids
            .iter()
            .map(|id| self.stop_session(id, "shutdown", false));
        for (id, result) in ids.iter().zip(futures::future::join_all(stops).await) {
            if let Err(error) = result {
                tracing::error!(session_id = id, %error, "stopping a session at shutdown failed");
            }
        }
        self.inner.writer.flush().await;
    }

    /// Live sessions idle for longer than `idle_timeout`.
    pub(crate) fn idle_sessions(&self, now_millis: i64) -> Vec<String> {
        let timeout = self.inner.settings.idle_timeout.as_millis() as i64;
        self.inner
            .live
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, h)| !h.busy.load(Ordering::Relaxed))
            .filter(|(_, h)| now_millis - h.last_activity.load(Ordering::Relaxed) >= timeout)
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The live session's handle, if it is live; `not_found` if another principal owns it
    /// (an admin may use every session).
    fn owned_handle(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<Option<SessionHandle>, RuntimeError> {
        match self.inner.handle(session_id) {
            Some(handle) if principal.may_access(&handle.owner) => Ok(Some(handle)),
            Some(_) => Err(RuntimeError::session_not_found(session_id)),
            None => Ok(None),
        }
    }

    /// The record of a session `principal` may act on: the actor's while it is live, else
    /// the stored one; `not_found` otherwise.
    async fn current_record(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        if let Some(handle) = self.owned_handle(principal, session_id)? {
            let (reply, answer) = oneshot::channel();
            if let Some(result) = ask(&handle, Command::Record { reply }, answer).await {
                return result;
            }
        }
        self.owned_record(principal, session_id).await
    }

    /// The stored record; `not_found` if missing or owned by another principal (an admin
    /// may read every record).
    async fn owned_record(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        let record = self.stored_record(session_id).await?;
        if !principal.may_access(&record.owner) {
            return Err(RuntimeError::session_not_found(session_id));
        }
        Ok(record)
    }

    async fn stored_record(&self, session_id: &str) -> Result<SessionRecord, RuntimeError> {
        validate_id(session_id, "sessionId")?;
        self.inner
            .adapters
            .store
            .get(session_id)
            .await
            .map_err(|e| RuntimeError::storage("reading the session", e))?
            .ok_or_else(|| RuntimeError::session_not_found(session_id))
    }
}

/// A reserved place among `max_sessions` for a session being brought up.
struct StartingSlot(Arc<Inner>);

/// A session of this owner being brought up; see [`SessionManager::reserve_owner_slot`].
struct OwnerSlot(Arc<Inner>, Arc<str>);

impl Drop for OwnerSlot {
    fn drop(&mut self) {
        let mut starting = self.0.starting_by_owner.lock().unwrap();
        if let Some(count) = starting.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                starting.remove(&self.1);
            }
        }
    }
}

impl Drop for StartingSlot {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SessionManager {
    /// Runs a lifecycle operation to its end even if the caller goes away: a client that
    /// disconnects mid-request must not leave a half-made sandbox or a half-stopped
    /// session. Shutdown waits for it.
    async fn detached<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, RuntimeError>> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        self.inner
            .operations
            .spawn(work)
            .await
            .unwrap_or_else(|error| Err(RuntimeError::internal("a session operation", error)))
    }
}

/// Turns a tool failure into a command to the session's actor.
struct ToolFailures(std::sync::Weak<Inner>);

impl crate::tools::ToolFailureSink for ToolFailures {
    fn tool_failed(&self, session_id: &str, tool: &str, message: &str) {
        let Some(handle) = self.0.upgrade().and_then(|inner| inner.handle(session_id)) else {
            return;
        };
        let command = Command::ToolFailed {
            tool: tool.to_owned(),
            message: message.to_owned(),
        };
        if handle.commands.try_send(command).is_err() {
            tracing::warn!(
                session_id,
                tool,
                message,
                "a tool failure could not be reported to the session"
            );
        }
    }
}

/// Sends a command to an actor and waits for its answer; `None` if the actor ended
/// before answering.
async fn ask<T>(
    handle: &SessionHandle,
    command: Command,
    answer: oneshot::Receiver<Result<T, RuntimeError>>,
) -> Option<Result<T, RuntimeError>> {
    handle.commands.send(command).await.ok()?;
    answer.await.ok()
}

/// Ids become storage keys and room names: 1–128 characters of `[A-Za-z0-9._-]`, not
/// starting with a dot.
fn validate_id(id: &str, field: &str) -> Result<String, RuntimeError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(id.to_owned())
    } else {
        Err(RuntimeError::invalid(format!(
            "{field}: must be 1 to {MAX_ID_LEN} characters of letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}
