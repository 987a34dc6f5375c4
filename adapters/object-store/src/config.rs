//! The configuration of a blob store: one closed, serde-tagged enum.

use std::path::PathBuf;

use serde::Deserialize;

/// Which backend holds the blobs, and how to reach it.
///
/// Read from the `[storage]` table of the runtime configuration, e.g.
///
/// ```toml
/// kind = "filesystem"
/// root = "data/storage"
/// ```
///
/// Unknown kinds and unknown fields are refused when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum BlobStoreConfig {
    /// Files below a local directory; the directory is created if missing.
    Filesystem {
        /// The directory every key lives under.
        root: PathBuf,
    },
    /// An S3-compatible bucket. Needs the crate feature `s3` (on by default).
    S3(S3Config),
    /// A process-local store that is lost on exit; for tests and demos.
    Memory,
}

/// How to reach an S3-compatible bucket.
///
/// Settings left out are taken from the standard `AWS_*` environment variables (for example
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`), then from the
/// usual AWS credential sources (web identity, container and instance metadata).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket name.
    pub bucket: String,
    /// The service URL, for S3-compatible services (MinIO, moto, R2, ...); AWS when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region; `us-east-1` when neither this nor `AWS_REGION` is set.
    #[serde(default)]
    pub region: Option<String>,
    /// The access key id; must come with `secret_access_key`.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The secret access key; never shown by `Debug`.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// Allow a plain `http://` endpoint. Off by default so credentials are not sent in the
    /// clear by mistake.
    #[serde(default)]
    pub allow_http: bool,
    /// Address the bucket as `endpoint/bucket` (path style, the default) rather than as
    /// `bucket.endpoint` (virtual-hosted style). Most S3-compatible services need path style.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// A key prefix inside the bucket, so several deployments can share one bucket.
    /// Written like a relative path (`team-a/runtime`); a trailing `/` is ignored.
    #[serde(default)]
    pub prefix: Option<String>,
}

impl S3Config {
    /// A configuration for `bucket` with every other setting left to its default.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            path_style: true,
            prefix: None,
        }
    }
}

fn default_true() -> bool {
    true
}

pub use agent_runtime_api::Secret;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BlobStoreConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn reads_each_kind() {
        assert_eq!(
            parse(r#"{"kind":"filesystem","root":"data/storage"}"#).unwrap(),
            BlobStoreConfig::Filesystem {
                root: "data/storage".into()
            }
        );
        assert_eq!(
            parse(r#"{"kind":"memory"}"#).unwrap(),
            BlobStoreConfig::Memory
        );
        let BlobStoreConfig::S3(s3) = parse(
            r#"{"kind":"s3","bucket":"b","endpoint":"http://127.0.0.1:5005",
                "access_key_id":"id","secret_access_key":"hunter2","allow_http":true}"#,
        )
        .unwrap() else {
            panic!("not s3")
        };
        assert_eq!(s3.bucket, "b");
        assert!(s3.allow_http);
        assert!(s3.path_style, "path style is the default");
        assert_eq!(s3.secret_access_key.unwrap().expose(), "hunter2");
    }

    #[test]
    fn s3_defaults_are_safe() {
        let BlobStoreConfig::S3(s3) = parse(r#"{"kind":"s3","bucket":"b"}"#).unwrap() else {
            panic!("not s3")
        };
        assert_eq!(s3, S3Config::new("b"));
        assert!(!s3.allow_http, "plain http is off unless asked for");
    }

    #[test]
    fn refuses_unknown_kinds_and_fields() {
        let unknown_kind = parse(r#"{"kind":"ftp"}"#).unwrap_err().to_string();
        assert!(unknown_kind.contains("filesystem"), "{unknown_kind}");
        for bad in [
            r#"{"kind":"filesystem","root":"x","bucket":"y"}"#,
            r#"{"kind":"s3","bucket":"b","secret":"typo"}"#,
            r#"{"kind":"filesystem"}"#,
            r#"{"root":"x"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let mut s3 = S3Config::new("b");
        s3.access_key_id = Some("AKIDEXAMPLE".into());
        s3.secret_access_key = Some(Secret::new("wJalrXUtnFEMI-very-secret"));
        let shown = format!("{:?}", BlobStoreConfig::S3(s3));
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(
            shown.contains("AKIDEXAMPLE"),
            "the key id is not a secret: {shown}"
        );
    }
}
