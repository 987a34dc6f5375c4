//! What the manager answers without changing a session: records, logs, files,
//! profiles, readiness.

use super::*;

impl SessionManager {
    /// The session's record.
    pub async fn get(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionRecord, RuntimeError> {
        let get = self.current_record(principal, session_id);
        self.inner.deadline.bound(get).await
    }

    /// The principal's sessions; every session for an admin.
    pub async fn list(
        &self,
        principal: &Principal,
        request: ListSessions,
    ) -> Result<SessionList, RuntimeError> {
        let limit = request.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(RuntimeError::invalid("limit: must be between 1 and 500"));
        }
        // An admin sees every principal's sessions.
        let filter = SessionFilter {
            owner: (!principal.admin).then(|| principal.id.to_string()),
            agent_type: request.agent_type,
            statuses: request.status.into_iter().collect(),
        };
        let listed = async {
            let cursor = request.cursor.as_deref();
            let page = self.inner.adapters.store.list(&filter, limit, cursor).await;
            page.map_err(|e| RuntimeError::storage("listing sessions", e))
        };
        let page = self.inner.deadline.bound(listed).await?;
        Ok(SessionList {
            sessions: page.sessions,
            next_cursor: page.next_cursor,
        })
    }

    /// Events with seq greater than `after`, oldest first, at most `limit` (capped at
    /// [`MAX_EVENT_PAGE`]) and at most `limits.replay_page_bytes` of event data, but always
    /// at least one event when there is one: `has_more` says a next page continues.
    pub async fn events(
        &self,
        principal: &Principal,
        session_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<EventPage, RuntimeError> {
        let limit = limit.clamp(1, MAX_EVENT_PAGE);
        let read = async {
            self.owned_record(principal, session_id).await?;
            let store = &self.inner.adapters.store;
            let events = store.events_after(session_id, after, limit + 1).await;
            events.map_err(|e| RuntimeError::storage("reading the event log", e))
        };
        let mut events = self.inner.deadline.bound(read).await?;
        let fitting = fitting_events(&events, limit, self.inner.settings.limits.replay_page_bytes);
        let has_more = events.len() > fitting;
        events.truncate(fitting);
        Ok(EventPage { events, has_more })
    }

    /// The session's workspace files: live from the sandbox, else as last synced.
    pub async fn files(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<Vec<FileInfo>, RuntimeError> {
        if let Some(handle) = self.owned_handle(principal, session_id)? {
            let (reply, answer) = oneshot::channel();
            let asked = async { Ok(ask(&handle, Command::Files { reply }, answer).await) };
            if let Some(result) = self.inner.deadline.bound(asked).await? {
                return result;
            }
        }
        let owned = self.owned_record(principal, session_id);
        self.inner.deadline.bound(owned).await?;
        let key = launch::session_key(session_id)?;
        let prefix = BlobKey::files_prefix(&key);
        let stored = self
            .inner
            .adapters
            .blobs
            .list(&prefix)
            .await
            .map_err(|e| RuntimeError::storage("listing files", e))?;
        Ok(stored
            .into_iter()
            .filter_map(|meta| {
                let path = meta.key.strip_prefix(&prefix)?.to_owned();
                Some(FileInfo {
                    path,
                    size: meta.size,
                    modified_at: meta.modified_at,
                })
            })
            .collect())
    }

    /// One workspace file, of at most `limits.file_bytes`: streamed from a live sandbox,
    /// else as last synced.
    pub async fn file(
        &self,
        principal: &Principal,
        session_id: &str,
        path: &str,
    ) -> Result<FileDownload, RuntimeError> {
        let path = RelPath::new(path).map_err(|e| RuntimeError::invalid(format!("path: {e}")))?;
        if let Some(handle) = self.owned_handle(principal, session_id)? {
            let (reply, answer) = oneshot::channel();
            let command = Command::ReadFile {
                path: path.clone(),
                reply,
            };
            let asked = async { Ok(ask(&handle, command, answer).await) };
            if let Some(result) = self.inner.deadline.bound(asked).await? {
                return result;
            }
        }
        let owned = self.owned_record(principal, session_id);
        self.inner.deadline.bound(owned).await?;
        let key = launch::session_key(session_id)?;
        let bytes = self
            .inner
            .adapters
            .blobs
            .get(&BlobKey::file(&key, &path))
            .await
            .map_err(|e| RuntimeError::storage("reading the file", e))?
            .ok_or_else(|| RuntimeError::new(ErrorCode::NotFound, format!("no file {path}")))?;
        // Stored before the limit was lowered, say: the same rule as a live file.
        let limit = self.inner.settings.limits.file_bytes;
        if bytes.len() as u64 > limit {
            return Err(RuntimeError::file_too_large(&path, limit));
        }
        Ok(FileDownload {
            size: bytes.len() as u64,
            body: Box::pin(std::io::Cursor::new(bytes)),
        })
    }

    /// Every profile a client can create a session for. A profile that does not load is
    /// left out and logged.
    pub async fn profiles(&self) -> Result<Vec<ProfileInfo>, RuntimeError> {
        let names = self
            .inner
            .adapters
            .profiles
            .list()
            .await
            .map_err(|e| RuntimeError::storage("listing profiles", e))?;
        let mut profiles = Vec::with_capacity(names.len());
        for name in names {
            match launch::load_profile(&self.inner, &name).await {
                Ok(profile) => {
                    let summary = profile.summary();
                    profiles.push(ProfileInfo {
                        name: summary.name,
                        description: summary.description,
                        metadata_schema: summary.metadata_schema,
                    });
                }
                Err(error) => {
                    tracing::warn!(profile = name, %error, "profile left out of the list")
                }
            }
        }
        Ok(profiles)
    }

    /// Checks every adapter; returns the names and errors of those that failed.
    pub async fn readiness(&self) -> Result<(), Vec<(String, String)>> {
        let adapters = &self.inner.adapters;
        let (store, blobs, profiles) = tokio::join!(
            adapters.store.ping(),
            adapters.blobs.ping(),
            adapters.profiles.list()
        );
        let failed: Vec<(String, String)> = [
            ("store", store.err()),
            ("storage", blobs.err()),
            ("profiles", profiles.err()),
        ]
        .into_iter()
        .filter_map(|(name, error)| error.map(|e| (name.to_owned(), e.to_string())))
        .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed)
        }
    }
}

/// How many of `events`, from the first, make a page: at most `limit`, and no more than
/// `max_bytes` of data unless the first event alone is larger.
fn fitting_events(events: &[agent_runtime_api::Event], limit: usize, max_bytes: usize) -> usize {
    let mut total = 0usize;
    for (index, event) in events.iter().take(limit).enumerate() {
        total = total.saturating_add(event.data.get().len());
        if index > 0 && total > max_bytes {
            return index;
        }
    }
    events.len().min(limit)
}

#[cfg(test)]
mod tests {
    use agent_runtime_api::{Event, EventKind};
    use serde_json::value::RawValue;

    use super::fitting_events;

    fn event(seq: u64, bytes: usize) -> Event {
        let data = RawValue::from_string(format!("\"{}\"", "x".repeat(bytes - 2))).unwrap();
        Event {
            seq,
            at: chrono::Utc::now(),
            kind: EventKind::Agent,
            data,
        }
    }

    #[test]
    fn a_page_stops_at_its_byte_budget_but_holds_at_least_one_event() {
        let events: Vec<Event> = (1..=4).map(|seq| event(seq, 10)).collect();
        assert_eq!(fitting_events(&events, 10, 25), 2);
        assert_eq!(fitting_events(&events, 10, 40), 4);
        assert_eq!(fitting_events(&events, 3, 1000), 3);
        assert_eq!(fitting_events(&[event(1, 100), event(2, 10)], 10, 50), 1);
        assert_eq!(fitting_events(&[], 10, 50), 0);
    }
}
