use bytes::Bytes;

use super::unique_prefix;
use crate::{BlobKey, BlobStore, RelPath};

fn rel(path: &str) -> RelPath {
    RelPath::new(path).unwrap()
}

/// Runs every behaviour of [`BlobStore`] against `store`.
pub async fn blob_store(store: &dyn BlobStore) {
    let session = rel(&unique_prefix("bs"));
    let other_session = rel(&unique_prefix("bs-other"));
    let file = BlobKey::file(&session, &rel("src/main.rs"));
    let nested = BlobKey::file(&session, &rel("src/deep/er/x.bin"));
    let empty = BlobKey::file(&session, &rel("empty.txt"));
    let transcript = BlobKey::transcript(&session, &rel("abc.jsonl"));
    let neighbour = BlobKey::file(&other_session, &rel("src/main.rs"));

    assert_eq!(
        store.get(&file).await.unwrap(),
        None,
        "get of a missing key is None"
    );
    assert!(
        store
            .list(&BlobKey::session(&session))
            .await
            .unwrap()
            .is_empty(),
        "listing an empty prefix gives an empty list"
    );

    store
        .put(&file, Bytes::from_static(b"fn main() {}\n"))
        .await
        .expect("put");
    assert_eq!(
        store.get(&file).await.unwrap().unwrap(),
        &b"fn main() {}\n"[..],
        "put then get"
    );
    store
        .put(&file, Bytes::from_static(b"v2"))
        .await
        .expect("put replaces");
    assert_eq!(
        store.get(&file).await.unwrap().unwrap(),
        &b"v2"[..],
        "the last put wins"
    );

    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store
        .put(&nested, Bytes::from(binary.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.get(&nested).await.unwrap().unwrap(),
        binary,
        "binary bytes survive"
    );
    store.put(&empty, Bytes::new()).await.unwrap();
    assert_eq!(
        store.get(&empty).await.unwrap().unwrap().len(),
        0,
        "empty objects are stored"
    );
    store
        .put(&transcript, Bytes::from_static(b"{}\n"))
        .await
        .unwrap();
    store
        .put(&neighbour, Bytes::from_static(b"other"))
        .await
        .unwrap();

    let listed = store.list(&BlobKey::files_prefix(&session)).await.unwrap();
    let keys: Vec<_> = listed.iter().map(|m| m.key.as_str().to_owned()).collect();
    let mut expected = vec![empty.to_string(), nested.to_string(), file.to_string()];
    expected.sort();
    assert_eq!(
        keys, expected,
        "list returns every key under the prefix, at any depth, sorted"
    );
    let sizes: Vec<_> = listed.iter().map(|m| m.size).collect();
    assert_eq!(sizes, [0, 70_000, 2], "list reports sizes");

    let sibling = BlobKey::file(&session, &rel("src/main.rs.bak"));
    store
        .put(&sibling, Bytes::from_static(b"bak"))
        .await
        .unwrap();
    store.delete(&sibling).await.expect("delete");
    assert_eq!(
        store.get(&sibling).await.unwrap(),
        None,
        "a deleted key is missing"
    );
    let missing = BlobKey::file(&session, &rel("src/main"));
    store
        .delete(&missing)
        .await
        .expect("deleting a missing key succeeds");
    assert!(
        store.get(&file).await.unwrap().is_some(),
        "delete removes only its own key"
    );

    let whole = store.list(&BlobKey::session(&session)).await.unwrap();
    assert_eq!(
        whole.len(),
        4,
        "the session prefix covers files and transcripts"
    );

    store
        .delete_prefix(&BlobKey::files_prefix(&session))
        .await
        .expect("delete_prefix");
    assert!(
        store
            .list(&BlobKey::files_prefix(&session))
            .await
            .unwrap()
            .is_empty(),
        "files gone"
    );
    assert_eq!(
        store.get(&file).await.unwrap(),
        None,
        "a deleted key is missing"
    );
    assert!(
        store.get(&transcript).await.unwrap().is_some(),
        "other prefixes are untouched"
    );
    assert!(
        store.get(&neighbour).await.unwrap().is_some(),
        "other sessions are untouched"
    );
    store
        .delete_prefix(&BlobKey::files_prefix(&session))
        .await
        .expect("deleting an empty prefix succeeds");

    store
        .delete_prefix(&BlobKey::session(&session))
        .await
        .unwrap();
    store
        .delete_prefix(&BlobKey::session(&other_session))
        .await
        .unwrap();
    assert!(
        store
            .list(&BlobKey::session(&session))
            .await
            .unwrap()
            .is_empty()
    );
    store.ping().await.expect("ping succeeds");
}
