//! The contract suites against the in-memory adapters.
#![cfg(feature = "contract-tests")]

use agent_runtime_api::{contract, memory};

#[tokio::test]
async fn memory_session_store_meets_the_contract() {
    contract::session_store(&memory::MemorySessionStore::new()).await;
}

#[tokio::test]
async fn memory_blob_store_meets_the_contract() {
    contract::blob_store(&memory::MemoryBlobStore::new()).await;
}
