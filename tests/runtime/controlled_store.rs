//! A session store whose calls a test can slow down, hold, or fail as in an outage.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_runtime_api::memory::MemorySessionStore;
use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, Event, SessionFilter, SessionPage, SessionRecord,
    SessionStatus, SessionStore, async_trait,
};
use tokio::sync::oneshot;

/// The memory store with the timing and the failures of a real one under the test's
/// control: `list`'s answer takes a while to arrive, as over a network; one `get` can be
/// held after it has read its answer, and one `update` to a given status before it is
/// made, to open the window between a check and what follows it; and the whole store can
/// go down, failing every call as an outage does.
#[derive(Default)]
pub struct ControlledStore {
    inner: MemorySessionStore,
    down: AtomicBool,
    pub list_delay: Mutex<Duration>,
    held_get: Mutex<Option<Hold>>,
    held_update: Mutex<Option<(SessionStatus, Hold)>>,
}

/// A held call: it says it is held on the first sender, and waits for the receiver.
type Hold = (oneshot::Sender<()>, oneshot::Receiver<()>);

/// Makes a hold: the hold itself, the receiver that fires when a call is held, and the
/// sender that lets it go.
fn hold() -> (Hold, oneshot::Receiver<()>, oneshot::Sender<()>) {
    let (reached, on_reach) = oneshot::channel();
    let (release, on_release) = oneshot::channel();
    ((reached, on_release), on_reach, release)
}

/// Holds a call until it is let go.
async fn wait((reached, release): Hold) {
    let _ = reached.send(());
    let _ = release.await;
}

impl ControlledStore {
    /// Takes the store down (every call fails as `Unavailable`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn up(&self) -> AdapterResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(AdapterError::unavailable("connection refused"))
        } else {
            Ok(())
        }
    }

    /// Holds the next `get` once it has its answer. The receiver fires when one is held;
    /// sending on the sender lets it go.
    pub fn hold_next_get(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (hold, held, release) = hold();
        *self.held_get.lock().unwrap() = Some(hold);
        (held, release)
    }

    /// Holds the next `update` of a record to `status` before it is made.
    pub fn hold_next_update_to(
        &self,
        status: SessionStatus,
    ) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (hold, held, release) = hold();
        *self.held_update.lock().unwrap() = Some((status, hold));
        (held, release)
    }
}

#[async_trait]
impl SessionStore for ControlledStore {
    async fn create(&self, record: &SessionRecord) -> AdapterResult<()> {
        self.up()?;
        self.inner.create(record).await
    }
    async fn get(&self, id: &str) -> AdapterResult<Option<SessionRecord>> {
        self.up()?;
        let answer = self.inner.get(id).await;
        let held = self.held_get.lock().unwrap().take();
        if let Some(held) = held {
            wait(held).await;
        }
        answer
    }
    async fn update(&self, record: &SessionRecord) -> AdapterResult<u64> {
        self.up()?;
        let held = {
            let mut held = self.held_update.lock().unwrap();
            match held.take() {
                Some((status, hold)) if status == record.status => Some(hold),
                other => {
                    *held = other;
                    None
                }
            }
        };
        if let Some(held) = held {
            wait(held).await;
        }
        self.inner.update(record).await
    }
    async fn list(
        &self,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AdapterResult<SessionPage> {
        self.up()?;
        // The answer is read first and arrives later, as over a network.
        let answer = self.inner.list(filter, limit, cursor).await;
        let delay = *self.list_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        answer
    }
    async fn delete(&self, id: &str) -> AdapterResult<()> {
        self.up()?;
        self.inner.delete(id).await
    }
    async fn append_events(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
        self.up()?;
        self.inner.append_events(id, events).await
    }
    async fn events_after(&self, id: &str, after: u64, limit: usize) -> AdapterResult<Vec<Event>> {
        self.up()?;
        self.inner.events_after(id, after, limit).await
    }
    async fn ping(&self) -> AdapterResult<()> {
        self.up()?;
        self.inner.ping().await
    }
    async fn create_key(&self, key: &ApiKeyRecord) -> AdapterResult<()> {
        self.up()?;
        self.inner.create_key(key).await
    }
    async fn key_by_hash(&self, key_hash: &str) -> AdapterResult<Option<ApiKeyRecord>> {
        self.up()?;
        self.inner.key_by_hash(key_hash).await
    }
    async fn list_keys(&self) -> AdapterResult<Vec<ApiKeyRecord>> {
        self.up()?;
        self.inner.list_keys().await
    }
    async fn revoke_key(&self, name: &str) -> AdapterResult<bool> {
        self.up()?;
        self.inner.revoke_key(name).await
    }
}
