//! File access below one sandbox directory that never leaves it.
//!
//! Sandboxed processes may create symlinks to anywhere, and the runtime may run as root, so
//! every path is checked after symlinks are resolved: reads and writes that would land
//! outside the directory are refused. Listing does not follow symlinks at all. These are
//! blocking functions; callers run them with `spawn_blocking`.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use agent_runtime_api::{AdapterError, AdapterResult, FileStat, FileTree, RelPath};
use bytes::Bytes;
use chrono::{DateTime, Utc};

/// Lists the regular files below `root`, recursively, ordered by path.
pub(crate) fn list(root: &Path) -> AdapterResult<Vec<FileStat>> {
    let mut found = Vec::new();
    let mut pending: Vec<(PathBuf, Option<RelPath>)> = vec![(root.to_path_buf(), None)];
    while let Some((dir, prefix)) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|error| io_error(&dir, error))?;
        for entry in entries {
            let entry = entry.map_err(|error| io_error(&dir, error))?;
            let Some(path) = child_path(prefix.as_ref(), &entry) else {
                continue;
            };
            // file_type() does not follow symlinks, so a link is never walked or listed.
            let file_type = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
            if file_type.is_dir() {
                pending.push((entry.path(), Some(path)));
            } else if file_type.is_file() {
                let meta = entry.metadata().map_err(|e| io_error(&entry.path(), e))?;
                let modified = meta.modified().map_err(|e| io_error(&entry.path(), e))?;
                found.push(FileStat {
                    path,
                    size: meta.len(),
                    modified_at: DateTime::<Utc>::from(modified),
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn child_path(prefix: Option<&RelPath>, entry: &fs::DirEntry) -> Option<RelPath> {
    let name = entry.file_name();
    let Some(name) = name.to_str() else {
        tracing::warn!(path = %entry.path().display(), "skipping a file name that is not UTF-8");
        return None;
    };
    let joined = match prefix {
        Some(prefix) => format!("{prefix}/{name}"),
        None => name.to_owned(),
    };
    match RelPath::new(&joined) {
        Ok(path) => Some(path),
        Err(error) => {
            tracing::warn!(%error, "skipping a file whose path cannot be carried");
            None
        }
    }
}

/// Reads the file at `path` below `root`.
pub(crate) fn read(root: &Path, path: &RelPath) -> AdapterResult<Bytes> {
    let full = root.join(path.as_str());
    let real = fs::canonicalize(&full).map_err(|error| io_error(&full, error))?;
    if !real.starts_with(root) {
        return Err(AdapterError::InvalidInput(format!(
            "{path} is a symlink to outside the sandbox directory; not following it"
        )));
    }
    // O_NOFOLLOW: the resolved path has no symlinks; refuse one that appeared since.
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check below then
    // refuses it. (Reads of a regular file ignore the flag.)
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&real)
        .map_err(|error| io_error(&full, error))?;
    if !file.metadata().map_err(|e| io_error(&full, e))?.is_file() {
        return Err(AdapterError::InvalidInput(format!(
            "{path} is not a regular file"
        )));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|error| io_error(&full, error))?;
    Ok(Bytes::from(bytes))
}

/// Writes every file of `files` below `root`, creating parent directories and replacing
/// existing files.
pub(crate) fn write_tree(root: &Path, files: &FileTree) -> AdapterResult<()> {
    for entry in &files.files {
        let (parent, name) = ensure_parent(root, &entry.path)?;
        let mode = if entry.executable { 0o755 } else { 0o644 };
        write_replacing(&parent, name, &entry.contents, mode)?;
    }
    Ok(())
}

/// Makes the parent directories of `path` below `root`. Symlinked directories are followed
/// only while they stay below `root`. Returns the real parent and the file name.
fn ensure_parent<'p>(root: &Path, path: &'p RelPath) -> AdapterResult<(PathBuf, &'p str)> {
    let (dirs, name) = match path.as_str().rsplit_once('/') {
        Some((dirs, name)) => (Some(dirs), name),
        None => (None, path.as_str()),
    };
    let mut current = root.to_path_buf();
    for component in dirs.into_iter().flat_map(|dirs| dirs.split('/')) {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                let real = fs::canonicalize(&current).map_err(|e| io_error(&current, e))?;
                if !real.starts_with(root) || !real.is_dir() {
                    return Err(AdapterError::InvalidInput(format!(
                        "cannot write {path}: {component} is a symlink to outside the sandbox \
                         directory or to a file"
                    )));
                }
                current = real;
            }
            Ok(_) => {
                return Err(AdapterError::InvalidInput(format!(
                    "cannot write {path}: {component} is a file, not a directory"
                )));
            }
            Err(error) if error.kind() == ErrorKind::NotFound => match fs::create_dir(&current) {
                Ok(()) => {}
                // Made by someone else meanwhile: checked on the next write's walk.
                Err(error) if error.kind() == ErrorKind::AlreadyExists && current.is_dir() => {}
                Err(error) => return Err(io_error(&current, error)),
            },
            Err(error) => return Err(io_error(&current, error)),
        }
    }
    Ok((current, name))
}

/// Writes a temporary file next to the target and renames it over the target: a rename
/// replaces a symlink rather than writing through it, and readers never see half a file.
fn write_replacing(parent: &Path, name: &str, contents: &[u8], mode: u32) -> AdapterResult<()> {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let temporary = parent.join(format!(".tmp-{}", &suffix[..16]));
    let target = parent.join(name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.write_all(contents)?;
        file.sync_data()?;
        fs::rename(&temporary, &target)
    })();
    written.map_err(|error| {
        let _ = fs::remove_file(&temporary);
        io_error(&target, error)
    })
}

/// Maps an I/O error on `path` to the adapter's terms.
pub(crate) fn io_error(path: &Path, error: std::io::Error) -> AdapterError {
    let message = format!("{}: {error}", path.display());
    match error.kind() {
        ErrorKind::NotFound => AdapterError::NotFound(message),
        ErrorKind::IsADirectory | ErrorKind::NotADirectory | ErrorKind::InvalidFilename => {
            AdapterError::InvalidInput(message)
        }
        _ if error.raw_os_error() == Some(libc::ELOOP) => AdapterError::InvalidInput(message),
        _ => AdapterError::Other(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(path: &str) -> RelPath {
        RelPath::new(path).unwrap()
    }

    #[test]
    fn symlinks_out_of_the_directory_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root_dir.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("s")).unwrap();

        assert!(matches!(
            read(&root, &rel("s")),
            Err(AdapterError::InvalidInput(_))
        ));
        assert!(read(&root, &rel("out/secret")).is_err());
        let mut tree = FileTree::default();
        tree.insert(rel("out/planted"), "x");
        assert!(write_tree(&root, &tree).is_err());
        assert!(
            !outside.path().join("planted").exists(),
            "wrote through a symlink"
        );

        // Replacing a symlinked file replaces the link, not its target.
        let mut tree = FileTree::default();
        tree.insert(rel("s"), "mine");
        write_tree(&root, &tree).unwrap();
        assert_eq!(
            fs::read_to_string(outside.path().join("secret")).unwrap(),
            "s"
        );
        assert_eq!(read(&root, &rel("s")).unwrap(), &b"mine"[..]);
        assert_eq!(
            list(&root)
                .unwrap()
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>(),
            ["s"],
            "links are not listed"
        );
    }

    #[test]
    fn symlinks_inside_the_directory_are_followed() {
        let root_dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root_dir.path()).unwrap();
        fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("alias")).unwrap();
        let mut tree = FileTree::default();
        tree.insert(rel("alias/f.txt"), "f");
        write_tree(&root, &tree).unwrap();
        assert_eq!(read(&root, &rel("real/f.txt")).unwrap(), &b"f"[..]);
        assert_eq!(read(&root, &rel("alias/f.txt")).unwrap(), &b"f"[..]);
    }

    #[test]
    fn a_file_in_the_way_of_a_directory_is_invalid_input() {
        let root_dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root_dir.path()).unwrap();
        let mut tree = FileTree::default();
        tree.insert(rel("f"), "f");
        write_tree(&root, &tree).unwrap();
        let mut tree = FileTree::default();
        tree.insert(rel("f/g"), "g");
        assert!(matches!(
            write_tree(&root, &tree),
            Err(AdapterError::InvalidInput(_))
        ));
        assert!(matches!(
            read(&root, &rel("missing")),
            Err(AdapterError::NotFound(_))
        ));
    }
}
