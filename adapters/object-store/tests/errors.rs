//! Error mapping against real, misbehaving HTTP peers: unreachable, failing with 5xx,
//! refusing with 403, and silent.
#![cfg(feature = "s3")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_runtime_api::{BlobKey, BlobStore, ErrorKind};
use agent_runtime_object_store::ObjectBlobStore;
use bytes::Bytes;
use object_store::RetryConfig;
use object_store::aws::AmazonS3Builder;

/// An S3 store at `endpoint` that gives up after one attempt, so tests stay fast.
fn store_at(endpoint: &str) -> ObjectBlobStore {
    let retry = RetryConfig {
        max_retries: 0,
        retry_timeout: Duration::from_secs(2),
        ..RetryConfig::default()
    };
    let s3 = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name("bucket")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_retry(retry)
        .build()
        .unwrap();
    ObjectBlobStore::new(Arc::new(s3))
}

/// A server that answers every request with `status_line` (or never, if `None`); returns
/// its endpoint. The thread ends with the test process.
fn server(status_line: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 65536];
            let _ = stream.read(&mut buffer);
            match status_line {
                Some(status) => {
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(response.as_bytes());
                }
                None => held.push(stream),
            }
        }
    });
    endpoint
}

fn key() -> BlobKey {
    BlobKey::parse("sessions/s/files/f").unwrap()
}

#[tokio::test]
async fn an_unreachable_service_is_unavailable() {
    // Bind and drop, so nothing listens on the port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = store_at(&format!("http://127.0.0.1:{port}"));
    let error = store.put(&key(), Bytes::new()).await.unwrap_err();
    assert!(error.kind() == ErrorKind::Unavailable, "{error:?}");
    let error = store.ping().await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let store = store_at(&server(Some("503 Service Unavailable")));
    let error = store.put(&key(), Bytes::new()).await.unwrap_err();
    assert!(error.kind() == ErrorKind::Unavailable, "{error:?}");
    let error = store.get(&key()).await.unwrap_err();
    assert!(error.kind() == ErrorKind::Unavailable, "{error:?}");
}

#[tokio::test]
async fn refusals_are_not_transient() {
    let store = store_at(&server(Some("403 Forbidden")));
    let error = store.put(&key(), Bytes::new()).await.unwrap_err();
    assert!(error.kind() == ErrorKind::Other, "{error:?}");
}

#[tokio::test]
async fn a_missing_object_is_none_even_over_http() {
    let store = store_at(&server(Some("404 Not Found")));
    assert_eq!(store.get(&key()).await.unwrap(), None);
    store.delete(&key()).await.unwrap();
}

#[tokio::test]
async fn ping_gives_up_after_its_timeout() {
    let store = store_at(&server(None)).with_ping_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = store.ping().await.unwrap_err();
    assert!(error.kind() == ErrorKind::Unavailable, "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
