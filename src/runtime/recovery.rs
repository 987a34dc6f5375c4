//! Startup recovery: sessions that a dead runtime left live are made resumable again.
//! Their orphaned sandboxes are synced (where still reachable) and reaped; the requests
//! they left waiting for a person expire (`runtime_restarted`); their records become
//! `stopped`.

use std::collections::HashMap;
use std::sync::Arc;

use agent_runtime_api::{SessionFilter, SessionRecord, SessionStatus};

use super::Inner;
use super::expiry;
use super::launch::session_key;
use super::log::SessionLog;
use super::payload::ExpiryReason;
use super::workspace::{self, Synced};

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Records moved from a live status to `stopped`.
    pub sessions: usize,
    /// Orphaned sandboxes reaped.
    pub sandboxes: usize,
}

pub(crate) async fn recover(
    inner: &Arc<Inner>,
) -> Result<Recovered, agent_runtime_api::AdapterError> {
    let stale = stale_records(inner).await?;
    let by_id: HashMap<&str, &SessionRecord> = stale.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut recovered = Recovered::default();
    for info in inner
        .adapters
        .sandboxes
        .list_owned(&inner.settings.instance_tag)
        .await?
    {
        let sandbox = match inner.adapters.sandboxes.open(&info.id).await {
            Ok(sandbox) => sandbox,
            Err(error) => {
                tracing::warn!(sandbox = info.id, %error, "an orphaned sandbox cannot be opened");
                continue;
            }
        };
        if let (Some(record), Ok(key)) = (
            by_id.get(info.session_id.as_str()),
            session_key(&info.session_id),
        ) {
            // Files first: they are the session's work. Everything is uploaded, because
            // what the store already holds is unknown after a crash.
            let blobs = inner.adapters.blobs.as_ref();
            let mut synced = Synced::new();
            let limits = &inner.settings.limits;
            match workspace::sync_workspace(sandbox.as_ref(), blobs, &key, &mut synced, limits)
                .await
            {
                Ok(skipped) => {
                    for file in skipped {
                        tracing::warn!(session_id = info.session_id, path = %file.path, size = file.size, reason = ?file.reason, "an orphan's file is not stored");
                    }
                }
                Err(error) => {
                    tracing::warn!(session_id = info.session_id, %error, "syncing an orphan's files failed")
                }
            }
            if let Some(agent_id) = &record.agent_session_id
                && let Err(error) = workspace::sync_transcript(
                    inner.agent.as_ref(),
                    sandbox.as_ref(),
                    blobs,
                    &key,
                    agent_id,
                    limits,
                )
                .await
            {
                tracing::warn!(session_id = info.session_id, %error, "syncing an orphan's transcript failed");
            }
        }
        match sandbox.terminate().await {
            Ok(()) => recovered.sandboxes += 1,
            Err(error) => {
                tracing::warn!(sandbox = info.id, %error, "reaping an orphaned sandbox failed")
            }
        }
    }
    for record in stale {
        let mut log = SessionLog::reopen(inner.clone(), record).await?;
        // Requests the dead runtime left waiting are closed before the session stops, so
        // clients see why no answer is taken, and the next life's agent hears of them.
        expiry::expire_left(
            inner.adapters.store.as_ref(),
            &mut log,
            ExpiryReason::RuntimeRestarted,
        )
        .await?;
        if log
            .transition(SessionStatus::Stopped, Some("recovered"))
            .await
        {
            recovered.sessions += 1;
        }
    }
    Ok(recovered)
}

/// Records whose status says a sandbox is live, though no actor of this process has them.
async fn stale_records(
    inner: &Inner,
) -> Result<Vec<SessionRecord>, agent_runtime_api::AdapterError> {
    let filter = SessionFilter {
        statuses: SessionStatus::ALL
            .into_iter()
            .filter(|s| s.is_live())
            .collect(),
        ..Default::default()
    };
    let mut records = Vec::new();
    let mut cursor = None;
    loop {
        let page = inner
            .adapters
            .store
            .list(&filter, 500, cursor.as_deref())
            .await?;
        records.extend(page.sessions);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(records),
        }
    }
}
