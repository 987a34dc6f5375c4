//! The shared `BlobStore` contract against every backend, and the filesystem's confinement
//! to its root.

mod support;

use agent_runtime_api::contract::Behaviour;
use agent_runtime_api::{BlobKey, BlobStore, RelPath};
use agent_runtime_object_store::{BlobStoreConfig, build};
use bytes::Bytes;

agent_runtime_api::blob_store_contract!(memory, async { build(&BlobStoreConfig::Memory).unwrap() });

/// Runs `behaviour` against a filesystem store under a root of its own, which does not
/// exist before the store is built.
async fn on_filesystem(behaviour: Behaviour<dyn BlobStore>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not/yet/there");
    let store = build(&BlobStoreConfig::Filesystem { root: root.clone() }).unwrap();
    assert!(root.is_dir(), "build creates the root");
    behaviour.check(store.as_ref()).await;
}

agent_runtime_api::blob_store_contract!(filesystem, with on_filesystem);

/// Runs `behaviour` against S3 in a fresh bucket, with keys under `prefix` if given;
/// skipped (outside CI) without an S3 test server.
#[cfg(feature = "s3")]
async fn on_s3(behaviour: Behaviour<dyn BlobStore>, prefix: Option<&str>) {
    let Some(endpoint) = support::s3_endpoint(behaviour.name()) else {
        return;
    };
    let mut config = support::fresh_bucket(&endpoint);
    config.prefix = prefix.map(str::to_owned);
    let store = build(&BlobStoreConfig::S3(config)).unwrap();
    behaviour.check(store.as_ref()).await;
}

#[cfg(feature = "s3")]
agent_runtime_api::blob_store_contract!(s3, with | behaviour | on_s3(behaviour, None));

#[cfg(feature = "s3")]
agent_runtime_api::blob_store_contract!(
    s3_with_a_key_prefix,
    with | behaviour | { on_s3(behaviour, Some("deploy-a/")) }
);

fn rel(path: &str) -> RelPath {
    RelPath::new(path).unwrap()
}

#[test]
fn keys_that_could_escape_cannot_be_built() {
    for bad in ["../escape", "a/../../b", "/etc/passwd", "a/./b", "a\\..\\b"] {
        assert!(RelPath::new(bad).is_err(), "RelPath accepted {bad:?}");
    }
    for bad in [
        "sessions/../../etc/passwd",
        "/etc/passwd",
        "../x",
        "sessions//x",
    ] {
        assert!(BlobKey::parse(bad).is_none(), "BlobKey accepted {bad:?}");
    }
}

/// Every path below `dir`, relative to it.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn filesystem_never_writes_outside_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = build(&BlobStoreConfig::Filesystem { root: root.clone() }).unwrap();
    let session = rel("s");
    // Names that look like traversal once decoded or unescaped; each must stay a file name.
    let names = [
        "..hidden",
        "%2E%2E",
        "%2e%2e/x",
        "..%2F..%2Fout",
        "~",
        "a b/c",
    ];
    for name in names {
        let key = BlobKey::file(&session, &rel(name));
        store.put(&key, Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(
            store.get(&key).await.unwrap().unwrap(),
            &b"x"[..],
            "{name} reads back"
        );
    }
    assert_eq!(tree(dir.path()).first().map(String::as_str), Some("root"));
    assert!(
        tree(dir.path()).iter().all(|path| path.starts_with("root")),
        "only the root was written: {:?}",
        tree(dir.path())
    );
    let listed = store.list(&BlobKey::files_prefix(&session)).await.unwrap();
    let mut expected: Vec<_> = names
        .iter()
        .map(|name| BlobKey::file(&session, &rel(name)))
        .collect();
    expected.sort();
    let keys: Vec<_> = listed.into_iter().map(|meta| meta.key).collect();
    assert_eq!(keys, expected, "keys list back unchanged");

    store
        .delete_prefix(&BlobKey::session(&session))
        .await
        .unwrap();
    assert_eq!(
        tree(&root),
        Vec::<String>::new(),
        "deletes leave no directories"
    );
}

#[tokio::test]
async fn names_with_control_characters_never_become_keys() {
    // Object paths cannot hold them, so they are refused before any store sees them.
    for name in ["line\nbreak", "tab\tname", "bell\u{7}"] {
        assert!(RelPath::new(name).is_err(), "{name:?}");
    }
}
