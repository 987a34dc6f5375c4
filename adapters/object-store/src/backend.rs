//! Choosing and building the backend named by a [`BlobStoreConfig`]: the one `match`.

use std::path::Path as FsPath;
use std::sync::Arc;

use agent_runtime_api::{AdapterError, AdapterResult};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use crate::config::{BlobStoreConfig, S3Config};
use crate::store::ObjectBlobStore;

impl ObjectBlobStore {
    /// Builds the store `config` describes; every check happens here, so a store that was
    /// built is ready to use.
    ///
    /// # Errors
    /// an [`ErrorKind::InvalidInput`](agent_runtime_api::ErrorKind::InvalidInput) for a configuration that cannot work (an S3 store in
    /// a build without the `s3` feature, half a key pair, a bad prefix);
    /// an [`ErrorKind::Other`](agent_runtime_api::ErrorKind::Other) when the filesystem root cannot be created.
    pub fn from_config(config: &BlobStoreConfig) -> AdapterResult<Self> {
        match config {
            BlobStoreConfig::Filesystem { root } => Ok(ObjectBlobStore::new(filesystem(root)?)),
            BlobStoreConfig::S3(s3_config) => {
                let store = ObjectBlobStore::new(s3(s3_config)?);
                match &s3_config.prefix {
                    Some(prefix) => store.with_prefix(prefix),
                    None => Ok(store),
                }
            }
            BlobStoreConfig::Memory => Ok(ObjectBlobStore::new(Arc::new(InMemory::new()))),
        }
    }
}

/// A filesystem store rooted at `root`, which is created if missing.
fn filesystem(root: &FsPath) -> AdapterResult<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(root).map_err(|e| {
        AdapterError::other(format!("cannot create the storage root {}", root.display()))
            .with_source(e)
    })?;
    let store = LocalFileSystem::new_with_prefix(root).map_err(|e| {
        AdapterError::other(format!("storage root {}", root.display())).with_source(e)
    })?;
    // Remove directories emptied by deletes, so deleted sessions leave no trace.
    Ok(Arc::new(store.with_automatic_cleanup(true)))
}

/// An S3 store; explicit settings win over the `AWS_*` environment.
#[cfg(feature = "s3")]
fn s3(config: &S3Config) -> AdapterResult<Arc<dyn ObjectStore>> {
    use object_store::aws::AmazonS3Builder;

    let invalid = |message: String| AdapterError::invalid_input(format!("s3 storage: {message}"));
    if config.bucket.trim().is_empty() {
        return Err(invalid("bucket is empty".into()));
    }
    if config.access_key_id.is_some() != config.secret_access_key.is_some() {
        return Err(invalid(
            "access_key_id and secret_access_key must be set together".into(),
        ));
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&config.bucket)
        .with_allow_http(config.allow_http)
        .with_virtual_hosted_style_request(!config.path_style);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &config.region {
        builder = builder.with_region(region);
    }
    if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret.expose());
    }
    let store = builder.build().map_err(|e| invalid(e.to_string()))?;
    Ok(Arc::new(store))
}

/// Without the `s3` feature the kind still parses, so the error can say what is missing.
#[cfg(not(feature = "s3"))]
fn s3(_config: &S3Config) -> AdapterResult<Arc<dyn ObjectStore>> {
    Err(AdapterError::invalid_input(
        "storage kind \"s3\" is not available: agent-runtime-object-store was built without \
         its `s3` feature; available kinds: filesystem, memory"
            .into(),
    ))
}
