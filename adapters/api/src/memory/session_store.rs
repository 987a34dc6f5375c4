use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::{
    AdapterError, AdapterResult, ApiKeyRecord, Event, SessionFilter, SessionPage, SessionRecord,
    SessionStore,
};

/// A [`SessionStore`] in memory.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    // A std Mutex: no critical section awaits, and each is a few map operations.
    sessions: Mutex<BTreeMap<String, StoredSession>>,
    /// API keys by name.
    keys: Mutex<BTreeMap<String, ApiKeyRecord>>,
}

#[derive(Debug)]
struct StoredSession {
    record: SessionRecord,
    events: Vec<Event>,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, record: &SessionRecord) -> AdapterResult<()> {
        let mut sessions = self.sessions.lock().unwrap();
        if sessions.contains_key(&record.id) {
            return Err(AdapterError::conflict(format!(
                "session {} already exists",
                record.id
            )));
        }
        let mut record = record.clone();
        record.version = 1;
        sessions.insert(
            record.id.clone(),
            StoredSession {
                record,
                events: Vec::new(),
            },
        );
        Ok(())
    }

    async fn get(&self, id: &str) -> AdapterResult<Option<SessionRecord>> {
        let sessions = self.sessions.lock().unwrap();
        Ok(sessions.get(id).map(|s| s.record.clone()))
    }

    async fn update(&self, record: &SessionRecord) -> AdapterResult<u64> {
        let mut sessions = self.sessions.lock().unwrap();
        let stored = sessions
            .get_mut(&record.id)
            .ok_or_else(|| AdapterError::not_found(format!("session {}", record.id)))?;
        if stored.record.version != record.version {
            return Err(AdapterError::conflict(format!(
                "session {} is at version {}, not {}",
                record.id, stored.record.version, record.version
            )));
        }
        stored.record = record.clone();
        stored.record.version = record.version + 1;
        Ok(stored.record.version)
    }

    async fn list(
        &self,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AdapterResult<SessionPage> {
        let limit = limit.max(1);
        let sessions = self.sessions.lock().unwrap();
        let after = match cursor {
            Some(c) => std::ops::Bound::Excluded(c.to_owned()),
            None => std::ops::Bound::Unbounded,
        };
        let mut matching = sessions
            .range((after, std::ops::Bound::Unbounded))
            .map(|(_, s)| &s.record)
            .filter(|r| filter.matches(r));
        let page: Vec<SessionRecord> = matching.by_ref().take(limit).cloned().collect();
        let next_cursor = match matching.next() {
            Some(_) => page.last().map(|r| r.id.clone()),
            None => None,
        };
        Ok(SessionPage {
            sessions: page,
            next_cursor,
        })
    }

    async fn delete(&self, id: &str) -> AdapterResult<()> {
        self.sessions.lock().unwrap().remove(id);
        Ok(())
    }

    async fn append_events(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
        crate::event::check_seqs_increase(events)?;
        let mut sessions = self.sessions.lock().unwrap();
        let stored = sessions
            .get_mut(id)
            .ok_or_else(|| AdapterError::not_found(format!("session {id}")))?;
        for event in events {
            let last = stored.events.last().map_or(0, |e| e.seq);
            if event.seq > last {
                stored.events.push(event.clone());
            } else if stored
                .events
                .binary_search_by_key(&event.seq, |e| e.seq)
                .is_err()
            {
                // An older seq that was never stored: keep the log ordered.
                let at = stored.events.partition_point(|e| e.seq < event.seq);
                stored.events.insert(at, event.clone());
            }
        }
        Ok(())
    }

    async fn events_after(&self, id: &str, after: u64, limit: usize) -> AdapterResult<Vec<Event>> {
        let sessions = self.sessions.lock().unwrap();
        let Some(stored) = sessions.get(id) else {
            return Ok(Vec::new());
        };
        let start = stored.events.partition_point(|e| e.seq <= after);
        Ok(stored.events[start..].iter().take(limit).cloned().collect())
    }

    async fn ping(&self) -> AdapterResult<()> {
        Ok(())
    }

    async fn create_key(&self, key: &ApiKeyRecord) -> AdapterResult<()> {
        let mut keys = self.keys.lock().unwrap();
        if keys.contains_key(&key.name) || keys.values().any(|k| k.key_hash == key.key_hash) {
            return Err(AdapterError::conflict(format!(
                "an API key named {} or with the same hash exists",
                key.name
            )));
        }
        keys.insert(key.name.clone(), key.clone());
        Ok(())
    }

    async fn key_by_hash(&self, key_hash: &str) -> AdapterResult<Option<ApiKeyRecord>> {
        let keys = self.keys.lock().unwrap();
        Ok(keys.values().find(|k| k.key_hash == key_hash).cloned())
    }

    async fn list_keys(&self) -> AdapterResult<Vec<ApiKeyRecord>> {
        Ok(self.keys.lock().unwrap().values().cloned().collect())
    }

    async fn revoke_key(&self, name: &str) -> AdapterResult<bool> {
        Ok(self.keys.lock().unwrap().remove(name).is_some())
    }
}
