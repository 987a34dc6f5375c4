//! Convex adapters for agent-runtime, over Convex's HTTP API.
//!
//! # Layout
//! - [`ConvexConfig`] with [`FunctionNames`] and the redacting [`Secret`]: where the
//!   deployment is, its deploy key, and the Convex functions to call.
//! - [`ConvexClient`]: generic query / mutation / action calls with retries, plus file
//!   upload and download; also what runtime-hosted Convex tools use.
//! - [`ConvexSessionStore`], [`ConvexBlobStore`], [`ConvexProfileSource`]: the adapters,
//!   built with [`build_session_store`], [`build_blob_store`], [`build_profile_source`].
//! - [`codec`]: Convex's encoded JSON for arguments and results.
//!
//! The Convex side lives in this crate's `convex/` folder: `schema.ts` and the functions
//! under `agentRuntime/` that the default [`FunctionNames`] point at. They are internal
//! functions, callable only with the deploy key.
//!
//! # Encoding
//! - Counters (`seq`, `version`, token counts, sizes) are Convex float64 numbers. They stay
//!   below 2^53, where float64 is exact; a larger value is refused, never rounded.
//! - Session times are RFC 3339 strings with full precision; blob times are milliseconds.
//! - Session metadata and event data travel and are stored as JSON text, so they come back
//!   byte for byte and are free of Convex's rules on field names and nesting.
//!
//! # Usage
//! ```no_run
//! # async fn demo() -> Result<(), agent_runtime_api::AdapterError> {
//! use agent_runtime_convex::{ConvexConfig, Secret, build_session_store};
//!
//! let config = ConvexConfig::new("https://happy-otter-123.convex.cloud", Secret::new("prod:..."));
//! let store = build_session_store(&config)?;
//! store.ping().await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod blob_store;
mod client;
pub mod codec;
mod config;
mod error;
mod profile_source;
mod records;
mod session_store;

use std::sync::Arc;

use agent_runtime_api::{AdapterResult, BlobStore, ProfileSource, SessionStore};

pub use blob_store::ConvexBlobStore;
pub use client::{ConvexClient, FunctionKind};
pub use config::{ConvexConfig, FunctionNames, Secret};
pub use error::ConvexError;
pub use profile_source::ConvexProfileSource;
pub use session_store::ConvexSessionStore;

/// Builds the Convex [`SessionStore`] that `config` describes.
///
/// # Errors
/// `Other` for an unusable configuration (see [`ConvexClient::new`]). Nothing is called
/// yet; [`SessionStore::ping`] checks the deployment and the key.
pub fn build_session_store(config: &ConvexConfig) -> AdapterResult<Arc<dyn SessionStore>> {
    let client = ConvexClient::new(config)?;
    Ok(Arc::new(ConvexSessionStore::new(
        client,
        config.functions.clone(),
    )))
}

/// Builds the Convex [`BlobStore`] that `config` describes.
///
/// # Errors
/// As [`build_session_store`].
pub fn build_blob_store(config: &ConvexConfig) -> AdapterResult<Arc<dyn BlobStore>> {
    let client = ConvexClient::new(config)?;
    Ok(Arc::new(ConvexBlobStore::new(
        client,
        config.functions.clone(),
    )))
}

/// Builds the Convex [`ProfileSource`] that `config` describes.
///
/// # Errors
/// As [`build_session_store`].
pub fn build_profile_source(config: &ConvexConfig) -> AdapterResult<Arc<dyn ProfileSource>> {
    let client = ConvexClient::new(config)?;
    Ok(Arc::new(ConvexProfileSource::new(
        client,
        config.functions.clone(),
    )))
}
