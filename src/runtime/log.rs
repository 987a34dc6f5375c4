//! [`SessionLog`]: the one owner of a session's event log and record. It alone numbers
//! events, moves the session from status to status, and saves the record; whoever drives
//! the session (create and resume before the actor exists, the actor while it lives,
//! recovery after a crash) holds it, so neither the log nor the record needs a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use agent_runtime_api::{
    AdapterError, ErrorKind, Event, EventKind, SessionError, SessionRecord, SessionStatus, Usage,
};
use backon::Retryable;
use chrono::Utc;
use serde_json::value::RawValue;

use super::payload::{
    AnswerData, ErrorData, EventErrorCode, FileChange, InputData, Payload, StatusData,
};
use super::{Inner, MAX_EVENT_PAGE, policy};

/// Whether a session may go from `from` to `to`. Everything else is a bug of the
/// runtime's, refused by [`SessionLog::transition`].
fn legal(from: SessionStatus, to: SessionStatus) -> bool {
    use SessionStatus::*;
    match (from, to) {
        // Launched, failed to launch.
        (Starting, Idle | Failed) => true,
        // A turn starts, ends; the session is stopped; the agent crashes.
        (Idle, Running | Stopping | Failed) => true,
        (Running, Idle | Stopping | Failed) => true,
        // A turn waits for a person's answer, gets the last one, or ends while waiting
        // (interrupted: the agent withdrew its requests).
        (Running, Waiting) => true,
        (Waiting, Running | Idle | Stopping | Failed) => true,
        // Stopped, also a live status with no actor behind it: what a dead runtime left
        // (recovery), or a record no save could fix before its actor ended.
        (Starting | Idle | Running | Waiting | Stopping, Stopped) => true,
        // Resumed.
        (Stopped | Failed, Starting) => true,
        _ => false,
    }
}

/// One session's log and record, held by whoever drives the session.
pub(crate) struct SessionLog {
    inner: Arc<Inner>,
    id: Arc<str>,
    record: SessionRecord,
    /// The usage already added to the metrics' counters: the record's when it was
    /// opened (counted by an earlier holder), then as of the last status change.
    counted_usage: Usage,
}

impl SessionLog {
    /// The log of a session just stored in `starting`: its first event says so.
    pub(crate) async fn begin(inner: Arc<Inner>, record: SessionRecord) -> Self {
        debug_assert_eq!(record.status, SessionStatus::Starting);
        debug_assert_eq!(record.last_seq, 0);
        let mut log = Self::with_record(inner, record);
        log.write_status(None).await;
        log
    }

    /// The log of a stored session that no actor holds, continued after its last
    /// persisted event (which may be later than the record says, if events were persisted
    /// after the record was last saved).
    pub(crate) async fn reopen(
        inner: Arc<Inner>,
        mut record: SessionRecord,
    ) -> Result<Self, AdapterError> {
        record.last_seq = persisted_last_seq(inner.adapters.store.as_ref(), &record).await?;
        Ok(Self::with_record(inner, record))
    }

    /// The log of `record`, counted in the sessions gauge under its status until it is
    /// dropped.
    fn with_record(inner: Arc<Inner>, record: SessionRecord) -> Self {
        (inner.metrics).session_status(&record.agent_type, None, Some(record.status));
        Self {
            inner,
            id: record.id.as_str().into(),
            counted_usage: record.usage.clone(),
            record,
        }
    }

    /// Adds the usage reported since the last call to the metrics' counters.
    fn count_usage(&mut self) {
        let (now, before) = (&self.record.usage, &self.counted_usage);
        let more = Usage {
            input_tokens: now.input_tokens.saturating_sub(before.input_tokens),
            output_tokens: now.output_tokens.saturating_sub(before.output_tokens),
            cost_usd: (now.cost_usd - before.cost_usd).max(0.0),
            turns: now.turns.saturating_sub(before.turns),
        };
        if more != Usage::default() {
            (self.inner.metrics).usage(&self.record.agent_type, &more);
            self.counted_usage = now.clone();
        }
    }

    /// The record: as last saved, with the live seq, activity time and usage.
    pub(crate) fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// The session's id.
    pub(crate) fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The seq of the last event written.
    pub(crate) fn last_seq(&self) -> u64 {
        self.record.last_seq
    }

    /// Adds a turn's usage; saved with the next status change.
    pub(crate) fn usage_mut(&mut self) -> &mut Usage {
        &mut self.record.usage
    }

    /// Sets the session's budget (an admin raised it) and saves the record at once: the
    /// limits hold from now on, whatever status change comes next.
    pub(crate) async fn set_budget(&mut self, budget: agent_runtime_api::Budget) {
        self.record.budget = budget;
        self.save().await;
    }

    /// The conversation the agent was started with; saved with the next status change.
    pub(crate) fn set_agent_session_id(&mut self, agent_session_id: String) {
        self.record.agent_session_id = Some(agent_session_id);
    }

    /// Writes an agent line as an `agent` event.
    pub(crate) async fn agent(&mut self, line: Box<RawValue>) -> u64 {
        self.append(EventKind::Agent, line).await
    }

    /// Writes the `input` event of an accepted message; returns its seq.
    pub(crate) async fn input(&mut self, message_id: &str, content: &serde_json::Value) -> u64 {
        self.write(&Payload::Input(InputData {
            content,
            message_id,
        }))
        .await
    }

    /// Writes a `file` event.
    pub(crate) async fn file(&mut self, change: FileChange) {
        self.write(&Payload::File(change)).await;
    }

    /// Writes an `error` event.
    pub(crate) async fn error(&mut self, code: EventErrorCode, message: &str, fatal: bool) {
        self.report(ErrorData::new(code, message, fatal)).await;
    }

    /// Writes an `error` event with all its fields.
    pub(crate) async fn report(&mut self, error: ErrorData) {
        self.write(&Payload::Error(error)).await;
    }

    /// Writes a request of the agent's (a `permission` or `question` payload); returns
    /// the event as it is persisted, for the session's list of pending requests.
    pub(crate) async fn request(&mut self, payload: &Payload<'_>) -> Event {
        debug_assert!(matches!(
            payload,
            Payload::Permission(_) | Payload::Question(_)
        ));
        let data = serde_json::value::to_raw_value(payload).expect("a payload serializes");
        let event = self.event(payload.kind(), data);
        self.push(event.clone()).await;
        event
    }

    /// Writes the `answer` event that closes a request; returns its seq.
    pub(crate) async fn answer(&mut self, answer: AnswerData<'_>) -> u64 {
        self.write(&Payload::Answer(answer)).await
    }

    /// Moves the session to `to`, writes the `status` event and saves the record. An
    /// illegal move is refused and logged as the bug it is; the session stays as it was.
    pub(crate) async fn transition(&mut self, to: SessionStatus, reason: Option<&str>) -> bool {
        let from = self.record.status;
        if !legal(from, to) {
            tracing::error!(
                session_id = %self.id,
                from = from.as_str(),
                to = to.as_str(),
                reason,
                "refused an illegal status change"
            );
            return false;
        }
        self.record.status = to;
        (self.inner.metrics).session_status(&self.record.agent_type, Some(from), Some(to));
        // A turn's usage is counted at the next status change (or when the log is let go), when
        // the record is saved with it.
        self.count_usage();
        if to == SessionStatus::Starting {
            self.record.error = None;
        }
        if !to.is_live() {
            // An ending session's actor answers no more questions: a client that hears
            // `stopped` or `failed` and asks at once reads the stored record, so it must
            // say so before the event can be published.
            self.save().await;
        }
        self.write_status(reason).await;
        self.save().await;
        true
    }

    /// Ends the session `failed` with `error`: the record keeps it, and the `status`
    /// event's reason is its code.
    pub(crate) async fn fail(&mut self, code: EventErrorCode, message: String) -> bool {
        let previous = self.record.error.replace(SessionError {
            code: code.as_str().into(),
            message,
        });
        let failed = self
            .transition(SessionStatus::Failed, Some(code.as_str()))
            .await;
        if !failed {
            self.record.error = previous;
        }
        failed
    }

    async fn write_status(&mut self, reason: Option<&str>) {
        let status = self.record.status;
        self.write(&Payload::Status(StatusData { reason, status }))
            .await;
    }

    async fn write(&mut self, payload: &Payload<'_>) -> u64 {
        let data = serde_json::value::to_raw_value(payload).expect("a payload serializes");
        self.append(payload.kind(), data).await
    }

    /// Appends an event to the log (persisted, then published, by the writer).
    async fn append(&mut self, kind: EventKind, data: Box<RawValue>) -> u64 {
        let event = self.event(kind, data);
        self.push(event).await
    }

    /// The next event of the log, not yet written.
    fn event(&self, kind: EventKind, data: Box<RawValue>) -> Event {
        Event {
            seq: self.record.last_seq + 1,
            at: Utc::now(),
            kind,
            data,
        }
    }

    async fn push(&mut self, event: Event) -> u64 {
        let made = Instant::now();
        let (seq, at) = (event.seq, event.at);
        // The seq is used only once the writer took the event: if this future is dropped
        // while the writer's queue is full, the next event gets the same seq, no gap.
        self.inner.writer.append(self.id.clone(), event, made).await;
        self.record.last_seq = seq;
        self.record.last_activity_at = at;
        seq
    }

    /// Saves the record once every event it counts is persisted, so that its `last_seq`
    /// never points past the log. An outage is waited out; other failures are retried
    /// [`policy::RECORD_SAVE`]'s times; a deleted session or a refused record ends it.
    pub(crate) async fn save(&mut self) {
        self.inner.writer.flush().await;
        self.record.updated_at = Utc::now();
        let store = &self.inner.adapters.store;
        let record = &self.record;
        let version = &AtomicU64::new(record.version);
        let attempt = move || async move {
            let mut attempt = record.clone();
            attempt.version = version.load(Ordering::Relaxed);
            let saved = store.update(&attempt).await;
            if saved
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::Conflict)
            {
                // Someone else wrote the record (a recovering runtime); ours is newer.
                if let Ok(Some(stored)) = store.get(&record.id).await {
                    version.store(stored.version, Ordering::Relaxed);
                }
            }
            saved
        };
        let saved = attempt
            .retry(policy::RECORD_SAVE)
            .sleep(tokio::time::sleep)
            .when(|error| !matches!(error.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput))
            .adjust(policy::outage_waits)
            .notify(|error, _| {
                tracing::warn!(session_id = %record.id, %error, "saving the session record failed; retrying")
            })
            .await;
        match saved {
            Ok(version) => self.record.version = version,
            Err(e) if e.kind() == ErrorKind::NotFound => {} // deleted meanwhile
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                tracing::error!(session_id = %self.id, error = %e, "the store refused the session record")
            }
            Err(error) => {
                tracing::error!(session_id = %self.id, %error, "the session record could not be saved")
            }
        }
    }
}

/// The seq of the last event persisted in the log of a session no one holds: the
/// record's `last_seq`, or later if events were persisted after it was last saved.
pub(crate) async fn persisted_last_seq(
    store: &dyn agent_runtime_api::SessionStore,
    record: &SessionRecord,
) -> Result<u64, AdapterError> {
    let mut last_seq = record.last_seq;
    loop {
        let page = store
            .events_after(&record.id, last_seq, MAX_EVENT_PAGE)
            .await?;
        match page.last() {
            Some(event) => last_seq = event.seq,
            None => return Ok(last_seq),
        }
    }
}

impl Drop for SessionLog {
    /// The session is no longer held here: it leaves the sessions gauge.
    fn drop(&mut self) {
        self.count_usage();
        (self.inner.metrics).session_status(
            &self.record.agent_type,
            Some(self.record.status),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_table_allows_what_the_runtime_does_and_nothing_else() {
        use SessionStatus::*;
        let allowed: Vec<(SessionStatus, SessionStatus)> = SessionStatus::ALL
            .into_iter()
            .flat_map(|from| SessionStatus::ALL.map(|to| (from, to)))
            .filter(|(from, to)| legal(*from, *to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Starting, Idle),
                (Starting, Stopped),
                (Starting, Failed),
                (Idle, Running),
                (Idle, Stopping),
                (Idle, Stopped),
                (Idle, Failed),
                (Running, Idle),
                (Running, Waiting),
                (Running, Stopping),
                (Running, Stopped),
                (Running, Failed),
                (Waiting, Idle),
                (Waiting, Running),
                (Waiting, Stopping),
                (Waiting, Stopped),
                (Waiting, Failed),
                (Stopping, Stopped),
                (Stopped, Starting),
                (Failed, Starting),
            ]
        );
    }
}
