use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{AdapterResult, BlobKey, BlobMeta, BlobStore};

/// A [`BlobStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    // A std Mutex: no critical section awaits.
    objects: Mutex<BTreeMap<BlobKey, (Bytes, DateTime<Utc>)>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> AdapterResult<()> {
        let mut objects = self.objects.lock().unwrap();
        objects.insert(key.clone(), (bytes, Utc::now()));
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> AdapterResult<Option<Bytes>> {
        let objects = self.objects.lock().unwrap();
        Ok(objects.get(key).map(|(bytes, _)| bytes.clone()))
    }

    async fn list(&self, prefix: &BlobKey) -> AdapterResult<Vec<BlobMeta>> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.as_str().starts_with(prefix.as_str()))
            .map(|(key, (bytes, at))| BlobMeta {
                key: key.clone(),
                size: bytes.len() as u64,
                modified_at: *at,
            })
            .collect())
    }

    async fn delete(&self, key: &BlobKey) -> AdapterResult<()> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &BlobKey) -> AdapterResult<()> {
        let mut objects = self.objects.lock().unwrap();
        objects.retain(|key, _| !key.as_str().starts_with(prefix.as_str()));
        Ok(())
    }

    async fn ping(&self) -> AdapterResult<()> {
        Ok(())
    }
}
