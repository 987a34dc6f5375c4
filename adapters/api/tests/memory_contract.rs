//! The contract suites against the in-memory adapters, a test per behaviour.
#![cfg(feature = "contract-tests")]

use agent_runtime_api::contract::sample_bundles;
use agent_runtime_api::memory::{MemoryBlobStore, MemoryProfileSource, MemorySessionStore};

agent_runtime_api::session_store_contract!(session_store, async { MemorySessionStore::new() });

agent_runtime_api::blob_store_contract!(blob_store, async { MemoryBlobStore::new() });

agent_runtime_api::profile_source_contract!(profile_source, async {
    MemoryProfileSource::new(sample_bundles())
});
