//! Stops live sessions that have been idle longer than `idle_timeout`.

use std::sync::Weak;
use std::time::Duration;

use chrono::Utc;

use super::{Inner, SessionManager};

/// Checks for idle sessions until the runtime is dropped.
pub(crate) async fn run(inner: Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(inner) => (inner.settings.idle_timeout / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(30)),
        None => return,
    };
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let manager = SessionManager::from_inner(inner);
        for id in manager.idle_sessions(Utc::now().timestamp_millis()) {
            tracing::info!(session_id = id, "stopping an idle session");
            let manager = manager.clone();
            tokio::spawn(async move {
                if let Err(error) = manager.stop_session(&id, "idle", true).await {
                    tracing::warn!(session_id = id, %error, "stopping an idle session failed");
                }
            });
        }
    }
}
