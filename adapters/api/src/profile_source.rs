use async_trait::async_trait;
use bytes::Bytes;

use crate::{AdapterResult, RelPath};

/// One file of a [`FileTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Where the file goes, relative to the tree's root.
    pub path: RelPath,
    /// The file's bytes.
    pub contents: Bytes,
    /// Whether the file is executable.
    pub executable: bool,
}

/// A set of files with relative paths, ordered by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTree {
    /// The files, each path at most once.
    pub files: Vec<FileEntry>,
}

impl FileTree {
    /// Adds or replaces a file.
    pub fn insert(&mut self, path: RelPath, contents: impl Into<Bytes>) {
        let entry = FileEntry {
            path,
            contents: contents.into(),
            executable: false,
        };
        match self.files.binary_search_by(|f| f.path.cmp(&entry.path)) {
            Ok(at) => self.files[at] = entry,
            Err(at) => self.files.insert(at, entry),
        }
    }

    /// The file at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path.as_str() == path)
    }

    /// Total size of all files in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.contents.len() as u64).sum()
    }
}

/// An agent profile as its source holds it: the manifest text and the files around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileBundle {
    /// The profile's name, which is also its agent type.
    pub name: String,
    /// The text of `profile.toml`.
    pub manifest: String,
    /// Every other file of the profile, relative to the profile's folder.
    pub files: FileTree,
}

/// Where agent profiles come from.
///
/// # Behavior
/// Each line is checked by one function of `contract::profile_source` (feature
/// `contract-tests`), in this order.
/// - `list` returns the names of all profiles, sorted, each once.
/// - `load(name)` of a listed name returns its bundle: the manifest, and every other file
///   with its bytes and executable bit, ordered by path.
/// - `load` of an unknown name is `NotFound`.
/// - A name that is not a single safe path component (`..`, `a/b`, empty) is `NotFound`
///   or `InvalidInput`, never a read outside the source.
#[async_trait]
pub trait ProfileSource: Send + Sync + 'static {
    /// Names of every profile.
    async fn list(&self) -> AdapterResult<Vec<String>>;
    /// Loads one profile.
    async fn load(&self, name: &str) -> AdapterResult<ProfileBundle>;
}
