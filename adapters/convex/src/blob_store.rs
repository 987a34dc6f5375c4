//! [`BlobStore`] over Convex file storage.

use agent_runtime_api::{AdapterResult, BlobKey, BlobMeta, BlobStore, async_trait};
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::records::{invalid, number, text};
use crate::{ConvexClient, FunctionNames};

/// The most blobs one list call asks for.
const PAGE: usize = 1000;

/// Blobs in Convex file storage, indexed by key in the `agentRuntimeBlobs` table.
///
/// - `put`: a mutation returns an upload URL, the bytes are POSTed to it, and a second
///   mutation records `{key, storageId, size}`, replacing (and deleting) the file the key
///   held before.
/// - `get`: a query returns the file's download URL, which is fetched without credentials.
/// - `list`, `delete`, `delete_prefix`: queries and mutations on the table, paged so that
///   no call outgrows Convex's limits.
#[derive(Debug, Clone)]
pub struct ConvexBlobStore {
    client: ConvexClient,
    functions: FunctionNames,
}

impl ConvexBlobStore {
    /// A store calling `functions` through `client`.
    pub fn new(client: ConvexClient, functions: FunctionNames) -> Self {
        ConvexBlobStore { client, functions }
    }
}

#[async_trait]
impl BlobStore for ConvexBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> AdapterResult<()> {
        // Fetched right before the upload: an upload URL is valid for an hour only.
        let url = self
            .client
            .mutation(&self.functions.blobs_generate_upload_url, json!({}))
            .await?;
        let url = url
            .as_str()
            .ok_or_else(|| invalid(format!("upload URL is {url}")))?;
        let size = bytes.len();
        let storage_id = self.client.upload(url, bytes).await?;
        let args = json!({"key": key.as_str(), "storageId": storage_id, "size": size});
        self.client
            .mutation(&self.functions.blobs_commit, args)
            .await?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> AdapterResult<Option<Bytes>> {
        let args = json!({"key": key.as_str()});
        let found = self.client.query(&self.functions.blobs_get, args).await?;
        if found.is_null() {
            return Ok(None);
        }
        match found.get("url") {
            // The record outlived its file (a concurrent delete): nothing to read.
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(url)) => Ok(self.client.download(url).await?),
            Some(other) => Err(invalid(format!("blob url is {other}"))),
        }
    }

    async fn list(&self, prefix: &BlobKey) -> AdapterResult<Vec<BlobMeta>> {
        let mut listed: Vec<BlobMeta> = Vec::new();
        loop {
            let after = listed.last().map(|m| m.key.as_str());
            let args = json!({"prefix": prefix.as_str(), "after": after, "limit": PAGE});
            let page = self.client.query(&self.functions.blobs_list, args).await?;
            let items = page
                .get("blobs")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("blobs list without `blobs`".into()))?;
            for item in items {
                let meta = blob_meta(item)?;
                if meta.key.strip_prefix(prefix).is_none()
                    || listed.last().is_some_and(|last| last.key >= meta.key)
                {
                    return Err(invalid(format!(
                        "blobs list returned {} out of order or outside {prefix}",
                        meta.key
                    )));
                }
                listed.push(meta);
            }
            let done = page.get("isDone").and_then(Value::as_bool).unwrap_or(true);
            if done || items.is_empty() {
                return Ok(listed);
            }
        }
    }

    async fn delete(&self, key: &BlobKey) -> AdapterResult<()> {
        let args = json!({"key": key.as_str()});
        self.client
            .mutation(&self.functions.blobs_remove, args)
            .await?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &BlobKey) -> AdapterResult<()> {
        // Each call deletes a step; repeat until the prefix is empty.
        loop {
            let args = json!({"prefix": prefix.as_str()});
            let step = self
                .client
                .mutation(&self.functions.blobs_remove_prefix, args)
                .await?;
            match step.get("done").and_then(Value::as_bool) {
                Some(true) => return Ok(()),
                Some(false) => continue,
                None => return Err(invalid(format!("blobs removePrefix answered {step}"))),
            }
        }
    }

    async fn ping(&self) -> AdapterResult<()> {
        self.client.query(&self.functions.ping, json!({})).await?;
        Ok(())
    }
}

fn blob_meta(item: &Value) -> AdapterResult<BlobMeta> {
    let raw = text(item, "key")?;
    let key = BlobKey::parse(raw).ok_or_else(|| invalid(format!("invalid blob key {raw:?}")))?;
    Ok(BlobMeta {
        key,
        size: number(item, "size")?,
        modified_at: millis(item.get("modifiedAt").and_then(Value::as_f64))?,
    })
}

/// A time in milliseconds since the epoch, as Convex's `Date.now()` gives it.
fn millis(value: Option<f64>) -> AdapterResult<DateTime<Utc>> {
    let ms = value.ok_or_else(|| invalid("modifiedAt is not a number".into()))?;
    // Convex times are integral milliseconds; any fraction is dropped.
    Utc.timestamp_millis_opt(ms as i64)
        .single()
        .ok_or_else(|| invalid(format!("modifiedAt {ms} is out of range")))
}
