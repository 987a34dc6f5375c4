use async_trait::async_trait;

use crate::{AdapterResult, ApiKeyRecord, Event, SessionRecord, SessionStatus};

/// Which sessions [`SessionStore::list`] returns. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only sessions of this owner.
    pub owner: Option<String>,
    /// Only sessions of this agent type.
    pub agent_type: Option<String>,
    /// Only sessions in one of these statuses (empty: any status).
    pub statuses: Vec<SessionStatus>,
}

impl SessionFilter {
    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &SessionRecord) -> bool {
        self.owner.as_ref().is_none_or(|o| *o == record.owner)
            && self
                .agent_type
                .as_ref()
                .is_none_or(|t| *t == record.agent_type)
            && (self.statuses.is_empty() || self.statuses.contains(&record.status))
    }
}

/// One page of [`SessionStore::list`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPage {
    /// The sessions of this page, ordered by id, ascending.
    pub sessions: Vec<SessionRecord>,
    /// Pass this as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One session's events in a [`SessionStore::append_batch`].
#[derive(Debug, Clone, Copy)]
pub struct SessionEvents<'a> {
    /// The session whose log the events go to.
    pub session_id: &'a str,
    /// The events, seqs strictly increasing, as [`SessionStore::append_events`] takes them.
    pub events: &'a [Event],
}

/// Session records, each session's event log, and API keys.
///
/// # Behavior
/// Each line is checked by one function of `contract::session_store` (feature
/// `contract-tests`), in this order.
/// - `create` stores a record with `version` 1; creating an id that exists fails with
///   `Conflict` and changes nothing.
/// - `get` of a missing id returns `Ok(None)`.
/// - Every [`SessionStatus`] and every [`crate::EventKind`] is stored and read back as
///   it was written.
/// - `update` succeeds only when the stored version equals `record.version`; it stores the
///   record with `version + 1` and returns the new version. A stale version fails with
///   `Conflict`, a missing record with `NotFound`; neither changes anything.
/// - A fork's `forked_from` (source session, seq, source conversation) is stored and read
///   back through `create`, `update`, `get` and `list`; a record that is not a fork has
///   none.
/// - `list` returns records matching the filter ordered by id ascending, at most `limit`
///   per page (`limit` 0 is treated as 1); `next_cursor` is `Some` exactly when more
///   records follow; passing it back continues after the last record returned.
/// - `delete` removes the record and its whole event log; deleting a missing session
///   succeeds.
/// - `append_events` stores events whose seq is strictly increasing within the call;
///   re-appending an event whose seq is already stored is ignored (idempotent), so a retry
///   after a lost answer is safe. Appending to a session without a record fails with
///   `NotFound`.
/// - `append_batch` appends the events of many sessions at once and returns one outcome
///   per entry, in the order of the entries: each entry succeeds or fails exactly as
///   `append_events` of that entry alone would. One entry's failure (its session is gone:
///   `NotFound`; its seqs do not strictly increase: `InvalidInput`) leaves the other
///   entries' events stored. When the backend fails the batch as a whole (an outage, or
///   any error that is not one entry's), every entry carries that error; since appends
///   are idempotent, the caller may retry any failed entry. A session appears in at most
///   one entry of a batch.
/// - A batch of many sessions, at different points of their logs, leaves each session's
///   log whole, in order, and only its own.
/// - `events_after(id, seq, limit)` returns the events with seq greater than `seq`,
///   oldest first, at most `limit`; a missing session gives an empty list.
/// - `ping` succeeds when the backend answers.
/// - `create_key` stores a key; a name or hash that exists fails with `Conflict` and
///   changes nothing.
/// - `key_by_hash` returns the key stored with exactly this hash, or `Ok(None)`.
/// - `list_keys` returns every key, ordered by name ascending.
/// - `revoke_key` removes the key with this name and returns `true`; a missing name
///   returns `false`. A revoked key is no longer found by `key_by_hash`.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new record.
    async fn create(&self, record: &SessionRecord) -> AdapterResult<()>;
    /// Returns the record with this id.
    async fn get(&self, id: &str) -> AdapterResult<Option<SessionRecord>>;
    /// Replaces the record if its version is current; returns the new version.
    async fn update(&self, record: &SessionRecord) -> AdapterResult<u64>;
    /// Returns one page of records matching `filter`, after `cursor`.
    async fn list(
        &self,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AdapterResult<SessionPage>;
    /// Removes the record and its event log.
    async fn delete(&self, id: &str) -> AdapterResult<()>;
    /// Appends events to the session's log.
    async fn append_events(&self, id: &str, events: &[Event]) -> AdapterResult<()>;
    /// Appends the events of several sessions; returns one outcome per entry, in order.
    ///
    /// The default makes one [`SessionStore::append_events`] per entry, up to 16 at a
    /// time; stores that can write many sessions in one transaction or round trip
    /// override it.
    async fn append_batch(&self, batch: &[SessionEvents<'_>]) -> Vec<AdapterResult<()>> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(16) {
            let mut appends = Vec::with_capacity(chunk.len());
            for entry in chunk {
                appends.push(self.append_events(entry.session_id, entry.events));
            }
            outcomes.extend(futures::future::join_all(appends).await);
        }
        outcomes
    }
    /// Returns events with seq greater than `after`, oldest first.
    async fn events_after(&self, id: &str, after: u64, limit: usize) -> AdapterResult<Vec<Event>>;
    /// Checks that the backend answers.
    async fn ping(&self) -> AdapterResult<()>;
    /// Stores a new API key.
    async fn create_key(&self, key: &ApiKeyRecord) -> AdapterResult<()>;
    /// Returns the API key whose hash is `key_hash`.
    async fn key_by_hash(&self, key_hash: &str) -> AdapterResult<Option<ApiKeyRecord>>;
    /// Returns every API key, ordered by name.
    async fn list_keys(&self) -> AdapterResult<Vec<ApiKeyRecord>>;
    /// Removes the API key with this name; returns whether it existed.
    async fn revoke_key(&self, name: &str) -> AdapterResult<bool>;
}
