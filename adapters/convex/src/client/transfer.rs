//! File upload and download through the URLs Convex file storage hands out.

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::support::check_transfer_url;
use super::{Attempt, ConvexClient};
use crate::ConvexError;

impl ConvexClient {
    /// Uploads `content` to an upload URL from `ctx.storage.generateUploadUrl()` and
    /// returns the new file's storage id. The URL carries its own authorization; the deploy
    /// key is not sent to it.
    pub async fn upload(&self, upload_url: &str, content: Bytes) -> Result<String, ConvexError> {
        let url = check_transfer_url(upload_url)?;
        self.retrying("file upload", true, || async {
            let request = self
                .inner
                .http
                .post(url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .timeout(self.inner.transfer_timeout)
                .body(content.clone());
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => return self.send_failure(&err),
            };
            if response.status() != StatusCode::OK {
                return self.status_failure(response).await;
            }
            match response.json::<Value>().await {
                Ok(body) => match body.get("storageId").and_then(Value::as_str) {
                    Some(id) => Attempt::Done(id.to_owned()),
                    None => Attempt::Fatal(ConvexError::InvalidResponse(format!(
                        "an upload answered without a storageId: {body}"
                    ))),
                },
                Err(err) => self.send_failure(&err),
            }
        })
        .await
    }

    /// Downloads a file from a URL from `ctx.storage.getUrl()`; `None` when it is gone
    /// (HTTP 404). The URL works without credentials; the deploy key is not sent to it.
    pub async fn download(&self, url: &str) -> Result<Option<Bytes>, ConvexError> {
        let url = check_transfer_url(url)?;
        self.retrying("file download", true, || async {
            let request = self
                .inner
                .http
                .get(url.clone())
                .timeout(self.inner.transfer_timeout);
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => return self.send_failure(&err),
            };
            match response.status() {
                StatusCode::OK => match response.bytes().await {
                    Ok(bytes) => Attempt::Done(Some(bytes)),
                    Err(err) => self.send_failure(&err),
                },
                StatusCode::NOT_FOUND => Attempt::Done(None),
                _ => self.status_failure(response).await,
            }
        })
        .await
    }
}
