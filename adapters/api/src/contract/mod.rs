//! Contract suites: one per trait, each checking the lines of the trait's `# Behavior`
//! section. An adapter's tests call the suite with a fresh instance; a failure panics with
//! the behaviour that was broken.
//!
//! Ids are made unique per run, so a suite can share a database with other runs.

mod blob_store;
mod sandbox;
mod session_store;

pub use blob_store::blob_store;
pub use sandbox::sandbox_provider;
pub use session_store::{sample_event, sample_key, sample_record, session_store};

/// A prefix unique to this process and call, for ids and keys the suites create.
pub fn unique_prefix(label: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{label}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
