//! Shared by the test binaries: reaching the S3 test server (moto or any S3-compatible
//! service) named by `AGENT_RUNTIME_TEST_S3_ENDPOINT`.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use agent_runtime_api::contract::unique_prefix;
use agent_runtime_object_store::{S3Config, Secret};

/// The environment variable that names the S3 test endpoint, e.g. `http://127.0.0.1:5005`.
pub const S3_ENDPOINT_VAR: &str = "AGENT_RUNTIME_TEST_S3_ENDPOINT";

/// The S3 test endpoint, or `None` (after a loud message) when it is not configured
/// outside CI. In CI (`CI` set) a missing endpoint fails the test: S3 must be covered there.
pub fn s3_endpoint(test: &str) -> Option<String> {
    match std::env::var(S3_ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.trim().is_empty() => {
            Some(endpoint.trim().trim_end_matches('/').to_owned())
        }
        _ if std::env::var_os("CI").is_some() => {
            panic!("{S3_ENDPOINT_VAR} is not set, and CI is: S3 tests must run in CI")
        }
        _ => {
            // Written straight to stderr: the test harness captures `eprintln!` of passing
            // tests, and a skip must be seen.
            let message = format!(
                "\n**********\n*** SKIPPED {test}: set {S3_ENDPOINT_VAR} (e.g. \
                 http://127.0.0.1:5005 with `moto_server -p 5005`) to run it\n**********\n"
            );
            let _ = std::io::stderr().write_all(message.as_bytes());
            None
        }
    }
}

/// A configuration for a fresh, empty bucket on `endpoint`, which this creates.
pub fn fresh_bucket(endpoint: &str) -> S3Config {
    let bucket = unique_prefix("art").to_lowercase();
    create_bucket(endpoint, &bucket);
    let mut config = S3Config::new(bucket);
    config.endpoint = Some(endpoint.to_owned());
    config.region = Some("us-east-1".into());
    config.access_key_id = Some("test".into());
    config.secret_access_key = Some(Secret::new("test"));
    config.allow_http = true;
    config
}

/// Creates `bucket` with an unsigned `PUT /{bucket}`, which moto accepts. A plain request
/// over a socket keeps an HTTP client out of the dependencies.
fn create_bucket(endpoint: &str, bucket: &str) {
    let authority = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{S3_ENDPOINT_VAR} must be an http:// URL, got {endpoint}"));
    let mut stream = TcpStream::connect(authority)
        .unwrap_or_else(|e| panic!("cannot reach the S3 test server at {endpoint}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 200"),
        "creating bucket {bucket} failed: {status}"
    );
}
