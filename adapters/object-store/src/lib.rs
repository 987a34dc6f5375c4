//! [`BlobStore`] for agent-runtime over the `object_store` crate: a local directory, an
//! S3-compatible bucket, or memory.
//!
//! # Layout
//! - [`BlobStoreConfig`]: the closed, serde-tagged configuration (`kind = "filesystem" |
//!   "s3" | "memory"`), with [`S3Config`] and the redacting [`Secret`].
//! - [`build`] / [`ObjectBlobStore::from_config`]: the one place a config becomes a backend.
//! - [`ObjectBlobStore`]: the [`BlobStore`] contract over any `Arc<dyn ObjectStore>`.
//!
//! # Usage
//! ```
//! # async fn demo() -> Result<(), agent_runtime_api::AdapterError> {
//! use agent_runtime_api::{BlobKey, RelPath};
//! use agent_runtime_object_store::{BlobStoreConfig, build};
//!
//! let store = build(&BlobStoreConfig::Memory)?;
//! let session = RelPath::new("s1").expect("valid id");
//! let key = BlobKey::file(&session, &RelPath::new("notes.md").expect("valid path"));
//! store.put(&key, bytes::Bytes::from_static(b"hello")).await?;
//! assert_eq!(store.list(&BlobKey::session(&session)).await?.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! The S3 backend needs the crate feature `s3` (on by default). Without it an S3
//! configuration still parses, and [`build`] refuses it with an error naming the feature.
#![deny(missing_docs)]

mod backend;
mod config;
mod error;
mod store;

use std::sync::Arc;

use agent_runtime_api::{AdapterError, BlobStore};

pub use config::{BlobStoreConfig, S3Config, Secret};
pub use store::ObjectBlobStore;

/// Builds the [`BlobStore`] that `config` describes.
///
/// # Errors
/// See [`ObjectBlobStore::from_config`].
pub fn build(config: &BlobStoreConfig) -> Result<Arc<dyn BlobStore>, AdapterError> {
    Ok(Arc::new(ObjectBlobStore::from_config(config)?))
}
