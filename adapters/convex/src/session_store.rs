//! [`SessionStore`] over Convex functions.

use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, Event, SessionFilter, SessionPage, SessionRecord,
    SessionStore, async_trait, check_seqs_increase,
};
use serde_json::{Value, json};

use crate::codec::counter;
use crate::records::{
    event_from_convex, event_to_convex, invalid, key_from_convex, key_to_convex,
    record_from_convex, record_to_convex,
};
use crate::{ConvexClient, FunctionNames};

/// The most records or events one call asks for; the functions cap pages at 1000 too.
const PAGE: usize = 1000;
/// The most events one append mutation carries.
const BATCH_EVENTS: usize = 500;
/// The most bytes of event data one append mutation carries: well below Convex's 16 MiB
/// argument and per-transaction write limits.
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// The largest event data stored: a Convex document holds at most 1 MiB, and the event's
/// other fields need a little room.
const MAX_EVENT_BYTES: usize = 1024 * 1024 - 4096;

/// Session records in the `agentRuntimeSessions` table and event logs in
/// `agentRuntimeEvents`, through the functions named in [`FunctionNames`].
///
/// Every method is one function call, except `append_events` (one mutation per batch of
/// at most 500 events or 8 MiB), `events_after` (one query per 1000 events) and `delete`
/// (one mutation per 1000 events of the log). The optimistic version check of `update`
/// runs inside the mutation, so it is atomic.
#[derive(Debug, Clone)]
pub struct ConvexSessionStore {
    client: ConvexClient,
    functions: FunctionNames,
}

impl ConvexSessionStore {
    /// A store calling `functions` through `client`.
    pub fn new(client: ConvexClient, functions: FunctionNames) -> Self {
        ConvexSessionStore { client, functions }
    }

    async fn append_batch(&self, id: &str, batch: &[Value]) -> AdapterResult<()> {
        let args = json!({"sessionId": id, "events": batch});
        self.client
            .mutation(&self.functions.events_append, args)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for ConvexSessionStore {
    async fn create(&self, record: &SessionRecord) -> AdapterResult<()> {
        let args = json!({"record": record_to_convex(record)?});
        self.client
            .mutation(&self.functions.sessions_create, args)
            .await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> AdapterResult<Option<SessionRecord>> {
        let args = json!({"sessionId": id});
        let found = self
            .client
            .query(&self.functions.sessions_get, args)
            .await?;
        match found {
            Value::Null => Ok(None),
            record => record_from_convex(&record).map(Some),
        }
    }

    async fn update(&self, record: &SessionRecord) -> AdapterResult<u64> {
        let args = json!({"record": record_to_convex(record)?});
        let version = self
            .client
            .mutation(&self.functions.sessions_update, args)
            .await?;
        Ok(crate::codec::read_counter(&version, "version")?)
    }

    async fn list(
        &self,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AdapterResult<SessionPage> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let args = json!({
            "owner": filter.owner,
            "agentType": filter.agent_type,
            "statuses": statuses,
            "after": cursor,
            "limit": limit.clamp(1, PAGE),
        });
        let page = self
            .client
            .query(&self.functions.sessions_list, args)
            .await?;
        let sessions = page
            .get("sessions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("sessions list without `sessions`".into()))?
            .iter()
            .map(record_from_convex)
            .collect::<AdapterResult<Vec<_>>>()?;
        let next_cursor = match page.get("nextCursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(cursor)) => Some(cursor.clone()),
            Some(other) => return Err(invalid(format!("nextCursor is {other}"))),
        };
        Ok(SessionPage {
            sessions,
            next_cursor,
        })
    }

    async fn delete(&self, id: &str) -> AdapterResult<()> {
        // Each call deletes a step of the log, then the record; repeat until done, so no
        // single transaction outgrows Convex's write limits.
        loop {
            let args = json!({"sessionId": id});
            let step = self
                .client
                .mutation(&self.functions.sessions_remove, args)
                .await?;
            match step.get("done").and_then(Value::as_bool) {
                Some(true) => return Ok(()),
                Some(false) => continue,
                None => return Err(invalid(format!("sessions remove answered {step}"))),
            }
        }
    }

    async fn append_events(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
        check_seqs_increase(events)?;
        if events.is_empty() {
            // Still one call: appending to a session without a record must fail.
            return self.append_batch(id, &[]).await;
        }
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for event in events {
            let size = event.data.get().len();
            if size > MAX_EVENT_BYTES {
                return Err(AdapterError::invalid_input(format!(
                    "event seq {} carries {size} bytes of data; a Convex document holds at \
                     most 1 MiB",
                    event.seq
                )));
            }
            if !batch.is_empty()
                && (batch.len() == BATCH_EVENTS || batch_bytes + size > BATCH_BYTES)
            {
                self.append_batch(id, &batch).await?;
                batch.clear();
                batch_bytes = 0;
            }
            batch.push(event_to_convex(event)?);
            batch_bytes += size;
        }
        self.append_batch(id, &batch).await
    }

    async fn events_after(&self, id: &str, after: u64, limit: usize) -> AdapterResult<Vec<Event>> {
        let mut events: Vec<Event> = Vec::new();
        let mut cursor = after;
        while events.len() < limit {
            let want = (limit - events.len()).min(PAGE);
            let args = json!({"sessionId": id, "after": counter(cursor, "seq")?, "limit": want});
            let page = self
                .client
                .query(&self.functions.events_after, args)
                .await?;
            let items = page
                .get("events")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("events page without `events`".into()))?;
            for item in items.iter().take(want) {
                let event = event_from_convex(item)?;
                if event.seq <= cursor {
                    return Err(invalid(format!(
                        "event seq {} is not after {cursor}",
                        event.seq
                    )));
                }
                cursor = event.seq;
                events.push(event);
            }
            let done = page.get("isDone").and_then(Value::as_bool).unwrap_or(true);
            if done || items.is_empty() {
                break;
            }
        }
        Ok(events)
    }

    async fn ping(&self) -> AdapterResult<()> {
        self.client.query(&self.functions.ping, json!({})).await?;
        Ok(())
    }

    async fn create_key(&self, key: &ApiKeyRecord) -> AdapterResult<()> {
        let args = json!({"key": key_to_convex(key)});
        self.client
            .mutation(&self.functions.api_keys_create, args)
            .await?;
        Ok(())
    }

    async fn key_by_hash(&self, key_hash: &str) -> AdapterResult<Option<ApiKeyRecord>> {
        let args = json!({"keyHash": key_hash});
        let found = self
            .client
            .query(&self.functions.api_keys_by_hash, args)
            .await?;
        match found {
            Value::Null => Ok(None),
            key => key_from_convex(&key).map(Some),
        }
    }

    async fn list_keys(&self) -> AdapterResult<Vec<ApiKeyRecord>> {
        let keys = self
            .client
            .query(&self.functions.api_keys_list, json!({}))
            .await?;
        keys.as_array()
            .ok_or_else(|| invalid(format!("API keys list answered {keys}")))?
            .iter()
            .map(key_from_convex)
            .collect()
    }

    async fn revoke_key(&self, name: &str) -> AdapterResult<bool> {
        let args = json!({"name": name});
        let removed = self
            .client
            .mutation(&self.functions.api_keys_revoke, args)
            .await?;
        removed
            .as_bool()
            .ok_or_else(|| invalid(format!("API key revoke answered {removed}")))
    }
}
