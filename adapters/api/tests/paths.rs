//! Property tests of path handling: whatever text comes in, a [`RelPath`] or a
//! [`BlobKey`] either refuses it or stays below the root it is joined to; nothing panics.

use std::path::{Component, Path};

use agent_runtime_api::{BlobKey, RelPath};
use proptest::prelude::*;

/// Text made of the pieces that paths are attacked with, so that the tricky cases are
/// common rather than one in a million.
fn path_like() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(
        &[
            "a", "b.txt", ".", "..", "...", "", "/", "//", "\\", "\0", "\n", "é", "%2e%2e", " ",
            "~", ":", "C:",
        ][..],
    );
    prop_oneof![
        prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat()),
        any::<String>(),
    ]
}

/// A session id as the runtime accepts one: one segment of `[A-Za-z0-9._-]`, not
/// starting with `.`.
fn session_id() -> impl Strategy<Value = RelPath> {
    "[A-Za-z0-9_-][A-Za-z0-9._-]{0,40}".prop_map(|id| RelPath::new(&id).unwrap())
}

fn rel_path() -> impl Strategy<Value = RelPath> {
    path_like().prop_filter_map("a valid path", |text| RelPath::new(&text).ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// An accepted path is the text as given and joins below any root.
    #[test]
    fn accepted_paths_stay_below_their_root(text in path_like()) {
        let Ok(path) = RelPath::new(&text) else {
            return Ok(());
        };
        prop_assert_eq!(path.as_str(), text.as_str());
        let root = Path::new("/srv/sandbox");
        let joined = root.join(path.as_str());
        prop_assert!(joined.starts_with(root));
        let below: Vec<Component<'_>> = joined.strip_prefix(root).unwrap().components().collect();
        prop_assert!(!below.is_empty());
        prop_assert!(below.iter().all(|c| matches!(c, Component::Normal(_))), "{:?}", below);
        prop_assert_eq!(below.len(), text.split('/').count());
    }

    /// Joining two accepted paths gives an accepted path.
    #[test]
    fn joined_paths_are_still_paths(a in rel_path(), b in rel_path()) {
        let joined = a.join(&b);
        if joined.as_str().len() <= 1024 {
            prop_assert_eq!(RelPath::new(joined.as_str()).ok(), Some(joined));
        }
    }

    /// A session's keys are under its own prefixes and no other session's.
    #[test]
    fn keys_stay_in_their_session(
        session in session_id(),
        other in session_id(),
        path in rel_path(),
    ) {
        let file = BlobKey::file(&session, &path);
        prop_assert_eq!(file.strip_prefix(&BlobKey::files_prefix(&session)), Some(path.as_str()));
        prop_assert!(file.strip_prefix(&BlobKey::session(&session)).is_some());
        let transcript = BlobKey::transcript(&session, &path);
        prop_assert_eq!(
            transcript.strip_prefix(&BlobKey::transcripts_prefix(&session)),
            Some(path.as_str())
        );
        prop_assert!(file.strip_prefix(&BlobKey::transcripts_prefix(&session)).is_none());
        if other != session {
            prop_assert!(file.strip_prefix(&BlobKey::session(&other)).is_none());
            prop_assert!(transcript.strip_prefix(&BlobKey::session(&other)).is_none());
        }
        prop_assert_eq!(BlobKey::parse(file.as_str()), Some(file));
    }

    /// A key read back from a backend parses only when a builder could have made it.
    #[test]
    fn parsed_keys_are_relative_paths(text in path_like()) {
        if let Some(key) = BlobKey::parse(&text) {
            prop_assert_eq!(key.as_str(), text.as_str());
            let body = text.strip_suffix('/').unwrap_or(&text);
            prop_assert!(RelPath::new(body).is_ok());
        }
    }
}
