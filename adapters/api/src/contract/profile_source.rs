//! The behaviours of [`crate::ProfileSource`], one function each.
use bytes::Bytes;

use super::Behaviour;
use crate::{ErrorKind, FileEntry, FileTree, ProfileBundle, ProfileSource, RelPath};

/// The profiles a source under test holds, and nothing else: the factory of
/// [`profile_source_contract!`](crate::profile_source_contract) builds its source from
/// them. Names sort differently from the order given; one profile has no files, the
/// other binary bytes, an executable file and nested folders.
pub fn sample_bundles() -> Vec<ProfileBundle> {
    let mut files = FileTree::default();
    files.insert(rel("CLAUDE.md"), "# {{ SESSION_ID }}\n");
    files.insert(rel(".claude/settings.json"), "{}");
    files.insert(
        rel("data/deep/logo.bin"),
        Bytes::from_static(&[0, 159, 146, 150, 255]),
    );
    files.insert(rel("tools/run.sh"), "#!/bin/sh\necho hi\n");
    for file in &mut files.files {
        file.executable = file.path.as_str() == "tools/run.sh";
    }
    vec![
        ProfileBundle {
            name: "researcher".to_owned(),
            manifest: "description = \"researches\"\n".to_owned(),
            files,
        },
        ProfileBundle {
            name: "assistant-2.b_c".to_owned(),
            manifest: "description = \"assists\"\n\n[agent]\nmodel = \"x\"\n".to_owned(),
            files: FileTree::default(),
        },
    ]
}

fn rel(path: &str) -> RelPath {
    RelPath::new(path).unwrap()
}

/// Runs every behaviour of [`ProfileSource`] against `source`, which holds exactly
/// [`sample_bundles`]; the first broken one panics. Tests should rather use
/// [`profile_source_contract!`](crate::profile_source_contract), a test per behaviour.
pub async fn profile_source(source: &dyn ProfileSource) {
    for behaviour in BEHAVIOURS {
        behaviour.check(source).await;
    }
}

/// Every behaviour of [`ProfileSource`], in the order of its `# Behavior` section.
pub const BEHAVIOURS: &[Behaviour<dyn ProfileSource>] = crate::profile_source_contract!(@list);

/// One test per behaviour of [`ProfileSource`] (see [`crate::contract`]): a module name
/// (optional, attributes before it), then a factory (`async { source }`) or
/// `with runner` (an `async fn(Behaviour<dyn ProfileSource>)`). The source must hold
/// exactly [`sample_bundles`].
#[macro_export]
macro_rules! profile_source_contract {
    ($($input:tt)*) => {
        $crate::__contract! {
            [$crate::contract::profile_source] [dyn $crate::ProfileSource]
            [
                list_returns_every_name_sorted_once,
                load_returns_the_bundle_of_a_listed_name,
                load_of_an_unknown_name_is_not_found,
                unsafe_names_are_refused,
            ]
            $($input)*
        }
    };
}

/// `list` returns the names of all profiles, sorted, each once.
pub async fn list_returns_every_name_sorted_once(source: &dyn ProfileSource) {
    let mut expected: Vec<String> = sample_bundles().into_iter().map(|b| b.name).collect();
    expected.sort();
    assert_eq!(
        source.list().await.expect("list"),
        expected,
        "list gives every profile's name, sorted, once"
    );
}

/// `load(name)` of a listed name returns its bundle: the manifest, every file with its
/// bytes and executable bit, ordered by path.
pub async fn load_returns_the_bundle_of_a_listed_name(source: &dyn ProfileSource) {
    for expected in sample_bundles() {
        let loaded = source.load(&expected.name).await.expect("load");
        assert_eq!(loaded.name, expected.name, "the bundle has its name");
        assert_eq!(loaded.manifest, expected.manifest, "the manifest is whole");
        let paths = |tree: &FileTree| -> Vec<(String, Bytes, bool)> {
            tree.files
                .iter()
                .map(
                    |FileEntry {
                         path,
                         contents,
                         executable,
                     }| {
                        (path.as_str().to_owned(), contents.clone(), *executable)
                    },
                )
                .collect()
        };
        assert_eq!(
            paths(&loaded.files),
            paths(&expected.files),
            "every file of {}, ordered by path, with its bytes and executable bit",
            expected.name
        );
    }
}

/// `load` of an unknown name is `NotFound`.
pub async fn load_of_an_unknown_name_is_not_found(source: &dyn ProfileSource) {
    for name in ["nobody", "researcher2", "Researcher"] {
        match source.load(name).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            other => panic!("load of the unknown name {name:?} is NotFound, got {other:?}"),
        }
    }
}

/// A name that is not a single safe path component (`..`, `a/b`, empty) is `NotFound` or
/// `InvalidInput`, never a read outside the source.
pub async fn unsafe_names_are_refused(source: &dyn ProfileSource) {
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "/etc",
        "../researcher",
        "researcher/",
        "researcher/..",
    ] {
        match source.load(name).await {
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput) => {}
            other => panic!("{name:?} is NotFound or InvalidInput, got {other:?}"),
        }
    }
}
