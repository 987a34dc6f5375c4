//! Edges the shared contract does not reach: prefix boundaries, unusual names, key
//! prefixes, invalid keys in the backend, error mapping and configuration errors.

mod support;

use std::sync::Arc;

use agent_runtime_api::{AdapterError, BlobKey, BlobStore, ErrorKind, RelPath};
use agent_runtime_object_store::{BlobStoreConfig, ObjectBlobStore, S3Config, build};
use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

fn key(text: &str) -> BlobKey {
    BlobKey::parse(text).unwrap_or_else(|| panic!("{text:?} is not a key"))
}

fn keys(listed: Vec<agent_runtime_api::BlobMeta>) -> Vec<String> {
    listed.into_iter().map(|m| m.key.to_string()).collect()
}

/// One fresh store of each backend that is available here.
fn stores(dir: &tempfile::TempDir, test: &str) -> Vec<(&'static str, Arc<dyn BlobStore>)> {
    let mut all = vec![
        ("memory", build(&BlobStoreConfig::Memory).unwrap()),
        (
            "filesystem",
            build(&BlobStoreConfig::Filesystem {
                root: dir.path().into(),
            })
            .unwrap(),
        ),
    ];
    #[cfg(feature = "s3")]
    if let Some(endpoint) = support::s3_endpoint(test) {
        let config = BlobStoreConfig::S3(support::fresh_bucket(&endpoint));
        all.push(("s3", build(&config).unwrap()));
    }
    #[cfg(not(feature = "s3"))]
    let _ = (test, &mut all);
    all
}

#[tokio::test]
async fn prefixes_match_as_strings_not_as_directories() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in stores(&dir, "prefixes_match_as_strings_not_as_directories") {
        let all = [
            "sessions/x/files/a",
            "sessions/x/files/a.txt",
            "sessions/x/files/b",
            "sessions/xy/files/b",
            "sessions/x.bak/c",
        ];
        for k in all {
            store.put(&key(k), Bytes::from_static(b"1")).await.unwrap();
        }
        let under_dir = keys(store.list(&key("sessions/x/")).await.unwrap());
        assert_eq!(under_dir, &all[..3], "{backend}");
        let under_text = keys(store.list(&key("sessions/x")).await.unwrap());
        assert_eq!(
            under_text.len(),
            5,
            "{backend}: a string prefix: {under_text:?}"
        );
        let under_key = keys(store.list(&key("sessions/x/files/a")).await.unwrap());
        assert_eq!(under_key, &all[..2], "{backend}");
        let partial = keys(store.list(&key("sessions/x/files/a.")).await.unwrap());
        assert_eq!(partial, ["sessions/x/files/a.txt"], "{backend}");

        store
            .delete_prefix(&key("sessions/x/files/a."))
            .await
            .unwrap();
        let files = keys(store.list(&key("sessions/x/")).await.unwrap());
        assert_eq!(
            files,
            ["sessions/x/files/a", "sessions/x/files/b"],
            "{backend}"
        );
        store.delete_prefix(&key("sessions/x/")).await.unwrap();
        let left = keys(store.list(&key("sessions")).await.unwrap());
        assert_eq!(
            left,
            ["sessions/x.bak/c", "sessions/xy/files/b"],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn unusual_names_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "a b.txt",
        "ünïcödé/ファイル",
        "%41",
        "x#y",
        "q?x=1&y",
        "[b]{c}",
        "~t",
        "..hidden",
        "+p;s",
        "quote\"d",
        "'single'",
    ];
    let session = RelPath::new("s").unwrap();
    for (backend, store) in stores(&dir, "unusual_names_round_trip") {
        let mut expected = Vec::new();
        for name in names {
            let k = BlobKey::file(&session, &RelPath::new(name).unwrap());
            let result = store.put(&k, Bytes::from(name.to_owned())).await;
            result.unwrap_or_else(|e| panic!("{backend}: put {name:?}: {e}"));
            let back = store.get(&k).await.unwrap();
            assert_eq!(
                back.as_deref(),
                Some(name.as_bytes()),
                "{backend}: {name:?}"
            );
            expected.push(k.to_string());
        }
        expected.sort();
        let listed = keys(store.list(&BlobKey::session(&session)).await.unwrap());
        assert_eq!(listed, expected, "{backend}");
    }
}

#[tokio::test]
async fn deleting_one_key_that_is_also_a_directory_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in stores(&dir, "deleting_one_key_that_is_also_a_directory_succeeds") {
        store
            .put(&key("sessions/s/files/d/x"), Bytes::new())
            .await
            .unwrap();
        store
            .delete(&key("sessions/s/files/d"))
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert!(
            store
                .get(&key("sessions/s/files/d/x"))
                .await
                .unwrap()
                .is_some(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn invalid_keys_in_the_backend_are_skipped() {
    let raw = Arc::new(InMemory::new());
    let store = ObjectBlobStore::new(raw.clone());
    // A backslash is valid in an object path but never in a key.
    raw.put(
        &Path::parse("sessions/s/files/back\\slash").unwrap(),
        "x".into(),
    )
    .await
    .unwrap();
    store
        .put(&key("sessions/s/files/ok"), Bytes::new())
        .await
        .unwrap();
    let listed = keys(store.list(&key("sessions/s/")).await.unwrap());
    assert_eq!(listed, ["sessions/s/files/ok"]);
}

#[tokio::test]
async fn a_key_prefix_separates_stores_sharing_a_backend() {
    let raw: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = ObjectBlobStore::new(raw.clone())
        .with_prefix("tenant/a/")
        .unwrap();
    let b = ObjectBlobStore::new(raw.clone())
        .with_prefix("tenant/b")
        .unwrap();
    a.put(&key("sessions/s/files/f"), Bytes::from_static(b"a"))
        .await
        .unwrap();
    assert!(b.get(&key("sessions/s/files/f")).await.unwrap().is_none());
    assert!(b.list(&key("sessions/")).await.unwrap().is_empty());
    let stored = raw
        .head(&Path::parse("tenant/a/sessions/s/files/f").unwrap())
        .await;
    assert!(stored.is_ok(), "stored below the prefix: {stored:?}");
    b.delete_prefix(&key("sessions/")).await.unwrap();
    assert_eq!(
        keys(a.list(&key("sessions/")).await.unwrap()),
        ["sessions/s/files/f"]
    );

    for bad in ["", "/abs", "../up", "a//b", "x/./y"] {
        let refused = ObjectBlobStore::new(raw.clone()).with_prefix(bad);
        assert!(
            matches!(&refused, Err(e) if e.kind() == ErrorKind::InvalidInput),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn an_unwritable_filesystem_root_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let error = ObjectBlobStore::from_config(&BlobStoreConfig::Filesystem {
        root: file.join("root"),
    })
    .unwrap_err();
    assert!(error.to_string().contains("storage root"), "{error}");
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use agent_runtime_object_store::Secret;

    #[test]
    fn bad_configurations_are_refused() {
        let mut half_key = S3Config::new("b");
        half_key.access_key_id = Some("id".into());
        let mut empty_bucket = S3Config::new(" ");
        empty_bucket.secret_access_key = None;
        let mut bad_prefix = S3Config::new("b");
        bad_prefix.prefix = Some("../up".into());
        bad_prefix.access_key_id = Some("id".into());
        bad_prefix.secret_access_key = Some(Secret::new("s"));
        for config in [half_key, empty_bucket, bad_prefix] {
            let error = build(&BlobStoreConfig::S3(config.clone())).err();
            assert!(
                error.as_ref().map(AdapterError::kind) == Some(ErrorKind::InvalidInput),
                "{config:?}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn ping_fails_for_a_missing_bucket() {
        let Some(endpoint) = support::s3_endpoint("ping_fails_for_a_missing_bucket") else {
            return;
        };
        let mut config = support::fresh_bucket(&endpoint);
        config.bucket.push_str("-missing");
        let store = build(&BlobStoreConfig::S3(config)).unwrap();
        let error = store.ping().await.unwrap_err();
        assert!(
            !error.is_transient(),
            "a missing bucket is not transient: {error}"
        );
    }
}

#[cfg(not(feature = "s3"))]
#[test]
fn s3_without_the_feature_names_the_feature() {
    let error = ObjectBlobStore::from_config(&BlobStoreConfig::S3(S3Config::new("b"))).unwrap_err();
    assert!(error.kind() == ErrorKind::InvalidInput, "{error:?}");
    assert!(error.to_string().contains("`s3` feature"), "{error}");
}
