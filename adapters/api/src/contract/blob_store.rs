//! The behaviours of [`crate::BlobStore`], one function each.
use bytes::Bytes;

use super::{Behaviour, unique_prefix};
use crate::{BlobKey, BlobStore, RelPath};

fn rel(path: &str) -> RelPath {
    RelPath::new(path).unwrap()
}

/// A session id unique to this call, for the keys of one behaviour.
fn new_session() -> RelPath {
    rel(&unique_prefix("bs"))
}

/// Removes everything a behaviour stored for `sessions`, so a shared backend stays clean.
async fn clean(store: &dyn BlobStore, sessions: &[&RelPath]) {
    for session in sessions {
        store
            .delete_prefix(&BlobKey::session(session))
            .await
            .expect("delete_prefix of the session");
    }
}

/// Runs every behaviour of [`BlobStore`] against `store`, one after the other; the first
/// broken one panics. Tests should rather use
/// [`blob_store_contract!`](crate::blob_store_contract), a test per behaviour.
pub async fn blob_store(store: &dyn BlobStore) {
    for behaviour in BEHAVIOURS {
        behaviour.check(store).await;
    }
}

/// Every behaviour of [`BlobStore`], in the order of its `# Behavior` section.
pub const BEHAVIOURS: &[Behaviour<dyn BlobStore>] = crate::blob_store_contract!(@list);

/// One test per behaviour of [`BlobStore`] (see [`crate::contract`]): a module name
/// (optional, attributes before it), then a factory (`async { store }`, giving the store,
/// an `Arc` or a `Box` of it) or `with runner` (an `async fn(Behaviour<dyn BlobStore>)`).
/// Every behaviour deletes what it stored.
#[macro_export]
macro_rules! blob_store_contract {
    ($($input:tt)*) => {
        $crate::__contract! {
            [$crate::contract::blob_store] [dyn $crate::BlobStore]
            [
                put_then_get_returns_the_bytes,
                get_of_a_missing_key_is_none,
                list_returns_every_key_under_the_prefix,
                delete_removes_exactly_its_key,
                delete_prefix_removes_everything_under_it_only,
                empty_objects_are_stored,
                ping_succeeds,
            ]
            $($input)*
        }
    };
}

/// `put` then `get` returns the same bytes; `put` on an existing key replaces it.
pub async fn put_then_get_returns_the_bytes(store: &dyn BlobStore) {
    let session = new_session();
    let file = BlobKey::file(&session, &rel("src/main.rs"));
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
    let nested = BlobKey::file(&session, &rel("src/deep/er/x.bin"));
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
    let transcript = BlobKey::transcript(&session, &rel("abc.jsonl"));
    store
        .put(&transcript, Bytes::from_static(b"{}\n"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&transcript).await.unwrap().unwrap(),
        &b"{}\n"[..],
        "transcripts are stored too"
    );
    clean(store, &[&session]).await;
}

/// `get` of a missing key returns `Ok(None)`.
pub async fn get_of_a_missing_key_is_none(store: &dyn BlobStore) {
    let session = new_session();
    let file = BlobKey::file(&session, &rel("src/main.rs"));
    assert_eq!(
        store.get(&file).await.unwrap(),
        None,
        "get of a missing key is None"
    );
    store
        .put(
            &BlobKey::file(&session, &rel("src/main.rs.bak")),
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&file).await.unwrap(),
        None,
        "a key that only begins another key's name is missing"
    );
    clean(store, &[&session]).await;
}

/// `list(prefix)` returns every object whose key starts with `prefix`, at any depth,
/// ordered by key; an empty prefix result is an empty list, not an error.
pub async fn list_returns_every_key_under_the_prefix(store: &dyn BlobStore) {
    let session = new_session();
    let other_session = new_session();
    assert!(
        store
            .list(&BlobKey::session(&session))
            .await
            .unwrap()
            .is_empty(),
        "listing an empty prefix gives an empty list"
    );
    let file = BlobKey::file(&session, &rel("src/main.rs"));
    let nested = BlobKey::file(&session, &rel("src/deep/er/x.bin"));
    let top = BlobKey::file(&session, &rel("a.txt"));
    let transcript = BlobKey::transcript(&session, &rel("abc.jsonl"));
    let neighbour = BlobKey::file(&other_session, &rel("src/main.rs"));
    // Stored out of order: the listing orders by key.
    for (key, bytes) in [
        (&nested, &b"12345"[..]),
        (&file, b"fn main() {}\n"),
        (&transcript, b"{}\n"),
        (&top, b"a"),
        (&neighbour, b"other"),
    ] {
        store.put(key, Bytes::copy_from_slice(bytes)).await.unwrap();
    }
    let listed = store.list(&BlobKey::files_prefix(&session)).await.unwrap();
    let got: Vec<(String, u64)> = listed
        .iter()
        .map(|m| (m.key.as_str().to_owned(), m.size))
        .collect();
    let mut expected = vec![
        (top.to_string(), 1),
        (nested.to_string(), 5),
        (file.to_string(), 13),
    ];
    expected.sort();
    assert_eq!(
        got, expected,
        "list returns every key under the prefix, at any depth, sorted, with sizes"
    );
    let whole = store.list(&BlobKey::session(&session)).await.unwrap();
    assert_eq!(
        whole.len(),
        4,
        "the session prefix covers files and transcripts, and no other session's: {whole:?}"
    );
    clean(store, &[&session, &other_session]).await;
}

/// `delete(key)` removes exactly that object, not others whose keys start with it;
/// deleting a missing key succeeds.
pub async fn delete_removes_exactly_its_key(store: &dyn BlobStore) {
    let session = new_session();
    let file = BlobKey::file(&session, &rel("src/main.rs"));
    let sibling = BlobKey::file(&session, &rel("src/main.rs.bak"));
    store.put(&file, Bytes::from_static(b"main")).await.unwrap();
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
    store.delete(&file).await.unwrap();
    assert!(
        store
            .list(&BlobKey::session(&session))
            .await
            .unwrap()
            .is_empty(),
        "nothing is left"
    );
}

/// `delete_prefix(prefix)` removes every object under `prefix` and nothing else; deleting
/// a prefix with nothing under it succeeds.
pub async fn delete_prefix_removes_everything_under_it_only(store: &dyn BlobStore) {
    let session = new_session();
    let other_session = new_session();
    let file = BlobKey::file(&session, &rel("src/main.rs"));
    let nested = BlobKey::file(&session, &rel("src/deep/er/x.bin"));
    let transcript = BlobKey::transcript(&session, &rel("abc.jsonl"));
    let neighbour = BlobKey::file(&other_session, &rel("src/main.rs"));
    for key in [&file, &nested, &transcript, &neighbour] {
        store.put(key, Bytes::from_static(b"x")).await.unwrap();
    }
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
    clean(store, &[&session, &other_session]).await;
    assert!(
        store
            .list(&BlobKey::session(&session))
            .await
            .unwrap()
            .is_empty(),
        "the session prefix removes the rest"
    );
}

/// Empty objects are stored and listed with size 0.
pub async fn empty_objects_are_stored(store: &dyn BlobStore) {
    let session = new_session();
    let empty = BlobKey::file(&session, &rel("empty.txt"));
    store.put(&empty, Bytes::new()).await.unwrap();
    assert_eq!(
        store.get(&empty).await.unwrap().map(|b| b.len()),
        Some(0),
        "empty objects are stored"
    );
    let listed = store.list(&BlobKey::files_prefix(&session)).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.key.clone(), m.size))
            .collect::<Vec<_>>(),
        [(empty, 0)],
        "and listed with size 0"
    );
    clean(store, &[&session]).await;
}

/// `ping` succeeds when the backend answers.
pub async fn ping_succeeds(store: &dyn BlobStore) {
    store.ping().await.expect("ping succeeds");
}
