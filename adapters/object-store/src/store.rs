//! [`ObjectBlobStore`]: the [`BlobStore`] contract over any [`ObjectStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{AdapterError, AdapterResult, BlobKey, BlobMeta, BlobStore, async_trait};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::map_error;

/// How long [`BlobStore::ping`] waits by default. The HTTP client retries a dead endpoint
/// for minutes; a readiness probe must answer well before that.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`BlobStore`] over an [`ObjectStore`] (local filesystem, S3, memory, ...).
///
/// Every key is stored below an optional prefix. Keys map one to one onto object paths
/// (`sessions/a/files/x.txt` is the object `{prefix}/sessions/a/files/x.txt`), so the
/// stored objects stay readable with the backend's own tools.
#[derive(Clone)]
pub struct ObjectBlobStore {
    /// The backend; shared, since `object_store` clients are cheap to share and pool
    /// their connections.
    store: Arc<dyn ObjectStore>,
    /// Prepended to every key; the root path when there is no prefix.
    prefix: Path,
    /// How long `ping` waits for the backend.
    ping_timeout: Duration,
}

impl ObjectBlobStore {
    /// A blob store that keeps every key at the top of `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        ObjectBlobStore {
            store,
            prefix: Path::ROOT,
            ping_timeout: DEFAULT_PING_TIMEOUT,
        }
    }

    /// Stores every key below `prefix` (a relative path such as `team-a/runtime`; a
    /// trailing `/` is ignored). Refuses a prefix that is not a valid relative path.
    pub fn with_prefix(mut self, prefix: &str) -> AdapterResult<Self> {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        agent_runtime_api::RelPath::new(trimmed)
            .map_err(|e| AdapterError::invalid_input("key prefix").with_source(e))?;
        self.prefix = Path::parse(trimmed).map_err(|e| {
            AdapterError::invalid_input(format!("key prefix {trimmed:?}")).with_source(e)
        })?;
        Ok(self)
    }

    /// Sets how long [`BlobStore::ping`] waits before it reports the backend unavailable.
    pub fn with_ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// The object path of `key`.
    fn location(&self, key: &str) -> AdapterResult<Path> {
        let full = if self.prefix.is_root() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full).map_err(|e| {
            AdapterError::invalid_input(format!("key {key:?} cannot be stored")).with_source(e)
        })
    }

    /// The key of an object read back from the backend, re-validated; `None` (and a
    /// warning) for anything a [`BlobKey`] builder could not have made.
    fn key_of(&self, location: &Path) -> Option<BlobKey> {
        let Some(parts) = location.prefix_match(&self.prefix) else {
            tracing::warn!(%location, prefix = %self.prefix, "listed object outside the key prefix; skipped");
            return None;
        };
        let relative = parts
            .map(|part| part.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join("/");
        let key = BlobKey::parse(&relative);
        if key.is_none() {
            tracing::warn!(%location, "listed object has an invalid key; skipped");
        }
        key
    }

    /// Every object whose key starts with `prefix`, as (key, metadata) pairs, unsorted.
    ///
    /// Object stores match list prefixes by whole path segments and drop a trailing `/`,
    /// so this lists the deepest directory that contains `prefix` and then keeps the
    /// keys that start with it as a string: `sessions/x/` never matches `sessions/xy/..`,
    /// and `sessions/x` matches both, as a string prefix should.
    async fn matching(&self, prefix: &BlobKey) -> AdapterResult<Vec<(BlobKey, ObjectMeta)>> {
        let text = prefix.as_str();
        let directory = match text.rfind('/') {
            Some(end) => self.location(&text[..end])?,
            None => self.prefix.clone(),
        };
        let listed: Vec<ObjectMeta> = self
            .store
            .list(Some(&directory))
            .try_collect()
            .await
            .map_err(|e| map_error("list", text, e))?;
        Ok(listed
            .into_iter()
            .filter_map(|meta| Some((self.key_of(&meta.location)?, meta)))
            .filter(|(key, _)| key.as_str().starts_with(text))
            .collect())
    }
}

impl fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The backend's own Display names it (bucket, root) without credentials.
        f.debug_struct("ObjectBlobStore")
            .field("store", &format_args!("{}", self.store))
            .field("prefix", &self.prefix.as_ref())
            .finish()
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> AdapterResult<()> {
        let location = self.location(key.as_str())?;
        self.store
            .put(&location, PutPayload::from(bytes))
            .await
            .map_err(|e| map_error("put", key.as_str(), e))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> AdapterResult<Option<Bytes>> {
        let location = self.location(key.as_str())?;
        let found = match self.store.get(&location).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(map_error("get", key.as_str(), e)),
        };
        match found.bytes().await {
            Ok(bytes) => Ok(Some(bytes)),
            // Deleted between the request and reading its body.
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(map_error("get", key.as_str(), e)),
        }
    }

    async fn list(&self, prefix: &BlobKey) -> AdapterResult<Vec<BlobMeta>> {
        let mut listed: Vec<BlobMeta> = self
            .matching(prefix)
            .await?
            .into_iter()
            .map(|(key, meta)| BlobMeta {
                key,
                size: meta.size,
                modified_at: meta.last_modified,
            })
            .collect();
        // No backend promises an order.
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    async fn delete(&self, key: &BlobKey) -> AdapterResult<()> {
        let location = self.location(key.as_str())?;
        let error = match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(error) => error,
        };
        // On a filesystem, a key that names a directory (of longer keys) fails to delete,
        // yet holds no object: deleting it must succeed like any missing key.
        match self.store.head(&location).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            _ => Err(map_error("delete", key.as_str(), error)),
        }
    }

    async fn delete_prefix(&self, prefix: &BlobKey) -> AdapterResult<()> {
        let doomed = self.matching(prefix).await?;
        let locations =
            futures::stream::iter(doomed.into_iter().map(|(_, meta)| Ok(meta.location)));
        // `delete_stream` batches (S3 bulk delete) or bounds its concurrency (filesystem).
        let mut results = self.store.delete_stream(locations.boxed());
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(map_error("delete", prefix.as_str(), e)),
            }
        }
        Ok(())
    }

    async fn ping(&self) -> AdapterResult<()> {
        // One listing request, one directory level: cheap, and it fails on a missing bucket
        // or bad credentials, unlike a `head` of a key that may not exist.
        let probe = self.store.list_with_delimiter(Some(&self.prefix));
        match tokio::time::timeout(self.ping_timeout, probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(map_error("ping", &self.store.to_string(), e)),
            Err(_) => Err(AdapterError::unavailable(format!(
                "ping {}: no answer within {:?}",
                self.store, self.ping_timeout
            ))),
        }
    }
}
