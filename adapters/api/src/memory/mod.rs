//! In-memory adapters: the reference behaviour of each trait and the fast default for
//! tests. Nothing survives the process.

mod blob_store;
mod profile_source;
mod session_store;

pub use blob_store::MemoryBlobStore;
pub use profile_source::MemoryProfileSource;
pub use session_store::MemorySessionStore;
