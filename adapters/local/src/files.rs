//! File access below one sandbox directory that never leaves it.
//!
//! Sandboxed processes may create symlinks to anywhere and swap a file for a symlink at
//! any moment, and the runtime may run as root. So no path is checked and then opened:
//! every open is resolved by the kernel beneath a descriptor of the directory (`openat2`
//! with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, Linux 5.6 or later). Symlinks that stay
//! inside are followed; absolute ones and ones that climb out are refused. Listing follows
//! no symlink at all, and writes go through a descriptor of the parent directory. These are
//! blocking functions; callers run them with `spawn_blocking`.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use agent_runtime_api::{AdapterError, AdapterResult, FileStat, FileTree, RelPath};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// Who may read the files a write makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Everyone may read them (0644, 0755 if executable); the workspace.
    Shared,
    /// Only their owner may (0600, 0700 if executable; the directory 0700): the agent's
    /// home, which holds the token of the runtime's tools.
    OwnerOnly,
}

impl Access {
    /// The agent's home holds the token of the runtime's tools: only its owner reads it.
    pub(crate) fn of(dir: agent_runtime_api::SandboxDir) -> Access {
        match dir {
            agent_runtime_api::SandboxDir::Workspace => Access::Shared,
            agent_runtime_api::SandboxDir::AgentHome => Access::OwnerOnly,
        }
    }
}

/// Lists the regular files below `root`, recursively, ordered by path.
pub(crate) fn list(root: &Path, max_entries: usize) -> AdapterResult<Vec<FileStat>> {
    let root_fd = open_root(root, OFlags::PATH)?;
    let mut found = Vec::new();
    // Files, directories and anything else seen, so that neither many files nor many
    // directories (nor one huge directory) make the walk unbounded.
    let mut seen: usize = 0;
    let mut pending: Vec<Option<RelPath>> = vec![None];
    while let Some(prefix) = pending.pop() {
        let shown = || root.join(prefix.as_ref().map_or("", RelPath::as_str));
        // No symlink anywhere on the way: a directory swapped for a link is not walked.
        let dir = match &prefix {
            Some(prefix) => beneath(
                &root_fd,
                prefix.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY,
                ResolveFlags::NO_SYMLINKS,
            ),
            None => beneath(
                &root_fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY,
                ResolveFlags::empty(),
            ),
        };
        let dir = match dir {
            Ok(dir) => dir,
            // Removed or replaced since its parent was read.
            Err(error) if prefix.is_some() && is_gone_or_link(&error) => continue,
            Err(error) => return Err(io_error(&shown(), error)),
        };
        let entries = rustix::fs::Dir::read_from(&dir).map_err(|e| io_error(&shown(), e.into()))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&shown(), e.into()))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            seen += 1;
            if seen > max_entries {
                return Err(AdapterError::too_large(format!(
                    "{} holds more than {max_entries} files and directories",
                    root.display()
                )));
            }
            let Some(path) = child_path(prefix.as_ref(), name) else {
                continue;
            };
            // Not followed: a link is never walked or listed.
            let stat = match rustix::fs::statat(&dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
            {
                Ok(stat) => stat,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(error) => return Err(io_error(&shown(), error.into())),
            };
            match FileType::from_raw_mode(stat.st_mode as _) {
                FileType::Directory => pending.push(Some(path)),
                FileType::RegularFile => found.push(FileStat {
                    path,
                    size: u64::try_from(stat.st_size).unwrap_or(0),
                    modified_at: DateTime::<Utc>::from_timestamp(
                        stat.st_mtime as i64,
                        u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
                    )
                    .unwrap_or_default(),
                }),
                _ => {}
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn child_path(prefix: Option<&RelPath>, name: &[u8]) -> Option<RelPath> {
    let Ok(name) = std::str::from_utf8(name) else {
        tracing::warn!(name = %String::from_utf8_lossy(name), "skipping a file name that is not UTF-8");
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

/// Opens the regular file at `path` below `root` for reading, if it holds at most
/// `max_bytes`; returns it with its size.
pub(crate) fn open(root: &Path, path: &RelPath, max_bytes: u64) -> AdapterResult<(File, u64)> {
    let full = root.join(path.as_str());
    let root_fd = open_root(root, OFlags::PATH)?;
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check below then
    // refuses it. (Reads of a regular file ignore the flag.)
    let fd = beneath(
        &root_fd,
        path.as_str(),
        OFlags::RDONLY | OFlags::NONBLOCK,
        ResolveFlags::empty(),
    )
    .map_err(|error| io_error(&full, error))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(&full, e.into()))?;
    if FileType::from_raw_mode(stat.st_mode as _) != FileType::RegularFile {
        return Err(AdapterError::invalid_input(format!(
            "{path} is not a regular file"
        )));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > max_bytes {
        return Err(too_large(path, size, max_bytes));
    }
    Ok((File::from(fd), size))
}

/// Reads the file at `path` below `root`, if it holds at most `max_bytes`. Never reads
/// more than `max_bytes + 1` bytes, also of a file that grows meanwhile.
pub(crate) fn read(root: &Path, path: &RelPath, max_bytes: u64) -> AdapterResult<Bytes> {
    let (file, size) = open(root, path, max_bytes)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| io_error(&root.join(path.as_str()), error))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(path, bytes.len() as u64, max_bytes));
    }
    Ok(Bytes::from(bytes))
}

fn too_large(path: &RelPath, size: u64, max_bytes: u64) -> AdapterError {
    AdapterError::too_large(format!(
        "{path} has {size} bytes or more, over the limit of {max_bytes}"
    ))
}

/// Writes every file of `files` below `root`, creating parent directories and replacing
/// existing files.
pub(crate) fn write_tree(root: &Path, files: &FileTree, access: Access) -> AdapterResult<()> {
    let root_fd = open_root(root, OFlags::RDONLY)?;
    if access == Access::OwnerOnly {
        rustix::fs::fchmod(&root_fd, Mode::from_raw_mode(0o700))
            .map_err(|e| io_error(root, e.into()))?;
    }
    for entry in &files.files {
        let (parent, name) = ensure_parent(root, &root_fd, &entry.path)?;
        let mode = match (access, entry.executable) {
            (Access::Shared, false) => 0o644,
            (Access::Shared, true) => 0o755,
            (Access::OwnerOnly, false) => 0o600,
            (Access::OwnerOnly, true) => 0o700,
        };
        write_replacing(root, &parent, &entry.path, name, &entry.contents, mode)?;
    }
    Ok(())
}

/// Makes the parent directories of `path` below `root` and opens the parent. Symlinked
/// directories are followed only while they stay below `root`. Returns the parent and the
/// file name.
fn ensure_parent<'p>(
    root: &Path,
    root_fd: &OwnedFd,
    path: &'p RelPath,
) -> AdapterResult<(OwnedFd, &'p str)> {
    let (dirs, name) = match path.as_str().rsplit_once('/') {
        Some((dirs, name)) => (dirs, name),
        None => (".", path.as_str()),
    };
    let refused = |what: &str| {
        AdapterError::invalid_input(format!(
            "cannot write {path}: {what} is a symlink to outside the sandbox directory, or a file"
        ))
    };
    let open_dir = |dirs: &str| {
        beneath(
            root_fd,
            dirs,
            OFlags::PATH | OFlags::DIRECTORY,
            ResolveFlags::empty(),
        )
    };
    match open_dir(dirs) {
        Ok(parent) => return Ok((parent, name)),
        Err(error) if error.kind() != ErrorKind::NotFound => {
            return Err(match classify(&error) {
                Refusal::Outside | Refusal::NotADirectory => refused(dirs),
                Refusal::Other => io_error(&root.join(dirs), error),
            });
        }
        Err(_) => {}
    }
    // Some directory is missing: make them one by one, each below the previous one.
    let mut made = String::new();
    for component in dirs.split('/') {
        let parent = if made.is_empty() { "." } else { made.as_str() };
        let parent_fd = open_dir(parent).map_err(|e| match classify(&e) {
            Refusal::Other => io_error(&root.join(parent), e),
            _ => refused(parent),
        })?;
        match rustix::fs::mkdirat(&parent_fd, component, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(error) => return Err(io_error(&root.join(parent).join(component), error.into())),
        }
        if !made.is_empty() {
            made.push('/');
        }
        made.push_str(component);
    }
    let parent = open_dir(dirs).map_err(|e| match classify(&e) {
        Refusal::Other => io_error(&root.join(dirs), e),
        _ => refused(dirs),
    })?;
    Ok((parent, name))
}

/// Writes a temporary file next to the target and renames it over the target: a rename
/// replaces a symlink rather than writing through it, and readers never see half a file.
fn write_replacing(
    root: &Path,
    parent: &OwnedFd,
    path: &RelPath,
    name: &str,
    contents: &[u8],
    mode: u32,
) -> AdapterResult<()> {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let temporary = format!(".tmp-{}", &suffix[..16]);
    // A descriptor opened with O_PATH cannot be written through, but serves as the
    // directory of *at calls.
    let written = (|| -> std::io::Result<()> {
        let fd = rustix::fs::openat(
            parent,
            temporary.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        // The umask may have cleared bits of the mode; owner-only stays owner-only.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        let mut file = File::from(fd);
        file.write_all(contents)?;
        file.sync_data()?;
        rustix::fs::renameat(parent, temporary.as_str(), parent, name)?;
        Ok(())
    })();
    written.map_err(|error| {
        let _ = rustix::fs::unlinkat(parent, temporary.as_str(), AtFlags::empty());
        io_error(&root.join(path.as_str()), error)
    })
}

/// A descriptor of the sandbox directory itself; the directory must not be a symlink.
fn open_root(root: &Path, flags: OFlags) -> AdapterResult<OwnedFd> {
    rustix::fs::open(
        root,
        flags | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|error| io_error(root, error.into()))
}

/// Opens `path` relative to `dir`, resolved by the kernel so that nothing on the way,
/// symlinks included, leads out of `dir`.
fn beneath(
    dir: &OwnedFd,
    path: &str,
    flags: OFlags,
    resolve: ResolveFlags,
) -> std::io::Result<OwnedFd> {
    // A device node must not become the runtime's terminal; O_PATH takes no such flag.
    let flags = if flags.contains(OFlags::PATH) {
        flags
    } else {
        flags | OFlags::NOCTTY
    };
    rustix::fs::openat2(
        dir,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        resolve | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(Into::into)
}

/// Why a path resolved beneath a directory could not be opened.
enum Refusal {
    /// It leads outside (`EXDEV`) or through a refused link (`ELOOP`).
    Outside,
    /// Something on the way is not a directory.
    NotADirectory,
    /// Any other failure.
    Other,
}

fn classify(error: &std::io::Error) -> Refusal {
    match error.raw_os_error() {
        Some(libc::EXDEV | libc::ELOOP) => Refusal::Outside,
        Some(libc::ENOTDIR) => Refusal::NotADirectory,
        _ => Refusal::Other,
    }
}

fn is_gone_or_link(error: &std::io::Error) -> bool {
    error.kind() == ErrorKind::NotFound || !matches!(classify(error), Refusal::Other)
}

/// Maps an I/O error on `path` to the adapter's terms.
pub(crate) fn io_error(path: &Path, error: std::io::Error) -> AdapterError {
    let kind = match error.kind() {
        ErrorKind::NotFound => agent_runtime_api::ErrorKind::NotFound,
        ErrorKind::IsADirectory | ErrorKind::NotADirectory | ErrorKind::InvalidFilename => {
            agent_runtime_api::ErrorKind::InvalidInput
        }
        _ => match error.raw_os_error() {
            Some(libc::ELOOP) => agent_runtime_api::ErrorKind::InvalidInput,
            Some(libc::EXDEV) => {
                return AdapterError::invalid_input(format!(
                    "{}: leads outside the sandbox directory; not following it",
                    path.display()
                ));
            }
            _ => agent_runtime_api::ErrorKind::Other,
        },
    };
    AdapterError::new(kind, path.display().to_string()).with_source(error)
}
#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn rel(path: &str) -> RelPath {
        RelPath::new(path).unwrap()
    }

    const MAX: u64 = 1 << 20;

    #[test]
    fn symlinks_out_of_the_directory_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root_dir.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("s")).unwrap();

        assert!(matches!(
            read(&root, &rel("s"), MAX),
            Err(e) if e.kind() == agent_runtime_api::ErrorKind::InvalidInput
        ));
        assert!(read(&root, &rel("out/secret"), MAX).is_err());
        let mut tree = FileTree::default();
        tree.insert(rel("out/planted"), "x");
        assert!(write_tree(&root, &tree, Access::Shared).is_err());
        assert!(
            !outside.path().join("planted").exists(),
            "wrote through a symlink"
        );

        // Replacing a symlinked file replaces the link, not its target.
        let mut tree = FileTree::default();
        tree.insert(rel("s"), "mine");
        write_tree(&root, &tree, Access::Shared).unwrap();
        assert_eq!(
            fs::read_to_string(outside.path().join("secret")).unwrap(),
            "s"
        );
        assert_eq!(read(&root, &rel("s"), MAX).unwrap(), &b"mine"[..]);
        assert_eq!(
            list(&root, 100)
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
        std::os::unix::fs::symlink("real", root.join("alias")).unwrap();
        let mut tree = FileTree::default();
        tree.insert(rel("alias/f.txt"), "f");
        write_tree(&root, &tree, Access::Shared).unwrap();
        assert_eq!(read(&root, &rel("real/f.txt"), MAX).unwrap(), &b"f"[..]);
        assert_eq!(read(&root, &rel("alias/f.txt"), MAX).unwrap(), &b"f"[..]);
        // An absolute link is refused even when it points inside: the sandbox's processes
        // may see the directory at another path.
        std::os::unix::fs::symlink(root.join("real"), root.join("absolute")).unwrap();
        assert!(matches!(
            read(&root, &rel("absolute/f.txt"), MAX),
            Err(e) if e.kind() == agent_runtime_api::ErrorKind::InvalidInput
        ));
    }

    #[test]
    fn a_file_over_the_limit_is_too_large_and_not_read() {
        let root_dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root_dir.path()).unwrap();
        fs::write(root.join("big"), vec![b'x'; 1000]).unwrap();
        assert!(matches!(
            read(&root, &rel("big"), 999),
            Err(e) if e.kind() == agent_runtime_api::ErrorKind::TooLarge
        ));
        assert_eq!(read(&root, &rel("big"), 1000).unwrap().len(), 1000);
        assert_eq!(open(&root, &rel("big"), 1000).unwrap().1, 1000);
    }

    #[test]
    fn the_agent_home_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root_dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root_dir.path()).unwrap();
        let mut tree = FileTree::default();
        tree.insert(rel("dir/token.json"), "secret");
        write_tree(&root, &tree, Access::OwnerOnly).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("dir/token.json")), 0o600);
    }

    #[test]
    fn a_file_in_the_way_of_a_directory_is_invalid_input() {
        let root_dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root_dir.path()).unwrap();
        let mut tree = FileTree::default();
        tree.insert(rel("f"), "f");
        write_tree(&root, &tree, Access::Shared).unwrap();
        let mut tree = FileTree::default();
        tree.insert(rel("f/g"), "g");
        assert!(matches!(
            write_tree(&root, &tree, Access::Shared),
            Err(e) if e.kind() == agent_runtime_api::ErrorKind::InvalidInput
        ));
        assert!(matches!(
            read(&root, &rel("missing"), MAX),
            Err(e) if e.kind() == agent_runtime_api::ErrorKind::NotFound
        ));
    }
}
