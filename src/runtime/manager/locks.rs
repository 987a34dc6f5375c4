//! [`KeyedLocks`]: async locks by name, made on first use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One async lock per key. An entry lives only while someone holds or waits for its
/// lock, so the map holds only keys with an operation under way.
#[derive(Default)]
pub(super) struct KeyedLocks {
    // A std Mutex: held for a map operation, never across an await.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// Waits for and takes the lock of `key`.
    pub(super) async fn lock(&self, key: &str) -> KeyedGuard<'_> {
        let lock = self
            .locks
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default()
            .clone();
        KeyedGuard {
            locks: self,
            key: key.to_owned(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

/// A held lock of a [`KeyedLocks`]; its entry goes away with the last holder.
pub(super) struct KeyedGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for KeyedGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Clones are made only under the map's mutex: a count of 1 (the map's own) means
        // nobody holds or waits for this lock.
        let mut locks = self.locks.locks.lock().unwrap();
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.key);
        }
    }
}
