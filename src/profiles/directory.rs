//! Profiles from a folder: one subfolder per profile, each with a `profile.toml`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use agent_runtime_api::{
    AdapterError, AdapterResult, FileEntry, FileTree, ProfileBundle, ProfileSource, RelPath,
    async_trait,
};

/// The largest profile accepted, all files together, in bytes (10 MiB).
pub const MAX_PROFILE_BYTES: u64 = 10 * 1024 * 1024;

/// How deep folders may nest inside a profile; also stops symlink loops.
const MAX_DEPTH: usize = 16;

const MANIFEST: &str = "profile.toml";

/// A [`ProfileSource`] over a folder whose subfolders are profiles.
///
/// # Behavior
/// - `list` returns the subfolders that hold a `profile.toml` and have a safe name
///   (`[A-Za-z0-9._-]`, not starting with `.`), sorted.
/// - `load` returns `profile.toml` as the manifest and every other file, with its
///   executable bit; a name that is not a safe name is `NotFound`.
/// - A symlink is followed only if it resolves inside the profile's folder; one that
///   leads outside, dangles, or a special file is `InvalidInput` naming it.
/// - A profile over [`MAX_PROFILE_BYTES`] is `InvalidInput`.
#[derive(Debug, Clone)]
pub struct DirectoryProfileSource {
    root: PathBuf,
}

impl DirectoryProfileSource {
    /// A source over the profiles in `path`. The folder is read on each call, so edits
    /// show up without a restart.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DirectoryProfileSource { root: path.into() }
    }
}

#[async_trait]
impl ProfileSource for DirectoryProfileSource {
    async fn list(&self) -> AdapterResult<Vec<String>> {
        let root = self.root.clone();
        blocking(move || list(&root)).await
    }

    async fn load(&self, name: &str) -> AdapterResult<ProfileBundle> {
        if !is_safe_name(name) {
            return Err(AdapterError::not_found(format!("profile {name:?}")));
        }
        let folder = self.root.join(name);
        let name = name.to_owned();
        blocking(move || load(&folder, name)).await
    }
}

/// Runs blocking file system work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> AdapterResult<T> + Send + 'static,
) -> AdapterResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| AdapterError::other("reading profiles").with_source(error))?
}

/// A profile name: one path component of `[A-Za-z0-9._-]` that does not start with `.`.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn list(root: &Path) -> AdapterResult<Vec<String>> {
    let entries = fs::read_dir(root).map_err(|e| {
        AdapterError::other(format!("cannot read profiles folder {}", root.display()))
            .with_source(e)
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            AdapterError::other(format!("cannot read profiles folder {}", root.display()))
                .with_source(e)
        })?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if is_safe_name(&name) && entry.path().join(MANIFEST).is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// What a walk of one profile folder has collected so far.
struct Walk {
    name: String,
    /// The profile folder, with symlinks resolved: nothing outside it is read.
    root: PathBuf,
    manifest: Option<String>,
    files: Vec<FileEntry>,
    total_bytes: u64,
}

fn load(folder: &Path, name: String) -> AdapterResult<ProfileBundle> {
    let not_found = |name: &str| AdapterError::not_found(format!("profile {name:?}"));
    if !folder.join(MANIFEST).is_file() {
        return Err(not_found(&name));
    }
    let root = fs::canonicalize(folder).map_err(|e| io_error(&name, "", e))?;
    let mut walk = Walk {
        name,
        root: root.clone(),
        manifest: None,
        files: Vec::new(),
        total_bytes: 0,
    };
    walk.dir(&root, "", 0)?;
    let Some(manifest) = walk.manifest else {
        return Err(not_found(&walk.name));
    };
    walk.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ProfileBundle {
        name: walk.name,
        manifest,
        files: FileTree { files: walk.files },
    })
}

impl Walk {
    fn dir(&mut self, dir: &Path, prefix: &str, depth: usize) -> AdapterResult<()> {
        if depth > MAX_DEPTH {
            return Err(self.refuse(prefix, "folders nest too deep"));
        }
        let entries = fs::read_dir(dir).map_err(|e| io_error(&self.name, prefix, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.name, prefix, e))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                let shown = file_name.to_string_lossy().into_owned();
                return Err(self.refuse(&shown, "the file name is not UTF-8"));
            };
            let rel = match prefix {
                "" => file_name.to_owned(),
                _ => format!("{prefix}/{file_name}"),
            };
            self.entry(&entry.path(), &rel, depth)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &str, depth: usize) -> AdapterResult<()> {
        let link = fs::symlink_metadata(path).map_err(|e| io_error(&self.name, rel, e))?;
        let path = if link.file_type().is_symlink() {
            let target = fs::canonicalize(path)
                .map_err(|_| self.refuse(rel, "the symlink leads nowhere"))?;
            if !target.starts_with(&self.root) {
                return Err(self.refuse(rel, "the symlink leads outside the profile folder"));
            }
            target
        } else {
            path.to_owned()
        };
        let meta = fs::metadata(&path).map_err(|e| io_error(&self.name, rel, e))?;
        if meta.is_dir() {
            self.dir(&path, rel, depth + 1)
        } else if meta.is_file() {
            self.file(&path, rel, &meta)
        } else {
            Err(self.refuse(rel, "not a regular file or folder"))
        }
    }

    fn file(&mut self, path: &Path, rel: &str, meta: &fs::Metadata) -> AdapterResult<()> {
        self.total_bytes += meta.len();
        if self.total_bytes > MAX_PROFILE_BYTES {
            return Err(AdapterError::invalid_input(format!(
                "profile {:?} is larger than the limit of {} MiB",
                self.name,
                MAX_PROFILE_BYTES / (1024 * 1024)
            )));
        }
        let contents = fs::read(path).map_err(|e| io_error(&self.name, rel, e))?;
        if rel == MANIFEST {
            let text = String::from_utf8(contents)
                .map_err(|_| self.refuse(rel, "profile.toml is not UTF-8"))?;
            self.manifest = Some(text);
            return Ok(());
        }
        let path = RelPath::new(rel).map_err(|e| self.refuse(rel, &e.to_string()))?;
        self.files.push(FileEntry {
            path,
            contents: contents.into(),
            executable: is_executable(meta),
        });
        Ok(())
    }

    fn refuse(&self, rel: &str, reason: &str) -> AdapterError {
        AdapterError::invalid_input(format!("profile {:?}: {rel}: {reason}", self.name))
    }
}

fn io_error(profile: &str, rel: &str, error: io::Error) -> AdapterError {
    AdapterError::other(format!("profile {profile:?}: cannot read {rel:?}")).with_source(error)
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use agent_runtime_api::ErrorKind;
    use serde_json::json;

    use super::*;
    use crate::profiles::tests::{file_text, render};
    use crate::profiles::{Profile, PromptMode};

    fn write(root: &Path, rel: &str, contents: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn source_with_profiles() -> (tempfile::TempDir, DirectoryProfileSource) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "beta/profile.toml", b"description = \"b\"\n");
        write(root, "alpha/profile.toml", b"description = \"a\"\n");
        write(root, "alpha/CLAUDE.md", b"# {{ SESSION_ID }}\n");
        write(root, "alpha/.claude/settings.json", b"{}");
        write(
            root,
            "alpha/sub/profile.toml",
            b"nested, so an ordinary file",
        );
        write(root, "alpha/logo.bin", &[0, 159, 146, 150]);
        write(root, "alpha/run.sh", b"#!/bin/sh\n");
        write(root, ".hidden/profile.toml", b"description = \"h\"\n");
        write(root, "no-manifest/README.md", b"not a profile");
        write(root, "stray.toml", b"");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let script = root.join("alpha/run.sh");
            fs::set_permissions(script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let source = DirectoryProfileSource::new(root);
        (dir, source)
    }

    /// Runs `behaviour` against a folder holding the contract's sample profiles, one
    /// subfolder each, with their executable bits.
    async fn on_sample_profiles(
        behaviour: agent_runtime_api::contract::Behaviour<dyn ProfileSource>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        for bundle in agent_runtime_api::contract::sample_bundles() {
            write(
                dir.path(),
                &format!("{}/{MANIFEST}", bundle.name),
                bundle.manifest.as_bytes(),
            );
            for file in &bundle.files.files {
                let rel = format!("{}/{}", bundle.name, file.path);
                write(dir.path(), &rel, &file.contents);
                #[cfg(unix)]
                if file.executable {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = fs::Permissions::from_mode(0o755);
                    fs::set_permissions(dir.path().join(&rel), mode).unwrap();
                }
            }
        }
        behaviour
            .check(&DirectoryProfileSource::new(dir.path()))
            .await;
    }

    agent_runtime_api::profile_source_contract!(contract, with on_sample_profiles);

    #[tokio::test]
    async fn lists_sorted_profile_folders_only() {
        let (_dir, source) = source_with_profiles();
        assert_eq!(source.list().await.unwrap(), ["alpha", "beta"]);
    }

    #[tokio::test]
    async fn loads_the_manifest_and_every_other_file() {
        let (_dir, source) = source_with_profiles();
        let bundle = source.load("alpha").await.unwrap();
        assert_eq!(bundle.name, "alpha");
        assert_eq!(bundle.manifest, "description = \"a\"\n");
        let paths: Vec<&str> = bundle.files.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                ".claude/settings.json",
                "CLAUDE.md",
                "logo.bin",
                "run.sh",
                "sub/profile.toml"
            ]
        );
        assert_eq!(
            bundle.files.get("logo.bin").unwrap().contents.as_ref(),
            [0, 159, 146, 150]
        );
        assert_eq!(bundle.files.get("run.sh").unwrap().executable, cfg!(unix));
        assert!(!bundle.files.get("CLAUDE.md").unwrap().executable);
    }

    #[tokio::test]
    async fn unsafe_and_unknown_names_are_not_found() {
        let (_dir, source) = source_with_profiles();
        for name in [
            "..",
            "a/b",
            "",
            ".hidden",
            "../alpha",
            "alpha/",
            "no-manifest",
            "gone",
        ] {
            match source.load(name).await {
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                other => panic!("{name:?} gave {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_missing_root_is_a_clear_error() {
        let source = DirectoryProfileSource::new("/nonexistent/profiles-root");
        let error = source.list().await.unwrap_err();
        assert!(error.to_string().contains("profiles-root"), "{error}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinks_are_followed_only_inside_the_profile() {
        let (dir, source) = source_with_profiles();
        let root = dir.path();
        std::os::unix::fs::symlink("CLAUDE.md", root.join("alpha/AGENTS.md")).unwrap();
        let bundle = source.load("alpha").await.unwrap();
        assert_eq!(
            bundle.files.get("AGENTS.md").unwrap().contents.as_ref(),
            b"# {{ SESSION_ID }}\n"
        );

        std::os::unix::fs::symlink("../beta/profile.toml", root.join("alpha/leak")).unwrap();
        let error = source.load("alpha").await.unwrap_err();
        assert!(error.kind() == ErrorKind::InvalidInput, "{error:?}");
        assert!(error.to_string().contains("leak"), "{error}");
        assert!(
            error.to_string().contains("outside the profile folder"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_profile_over_the_size_limit_is_refused() {
        let (dir, source) = source_with_profiles();
        let big = fs::File::create(dir.path().join("beta/big.bin")).unwrap();
        // Sparse: the size is checked before anything is read.
        big.set_len(MAX_PROFILE_BYTES + 1).unwrap();
        let error = source.load("beta").await.unwrap_err();
        assert!(error.kind() == ErrorKind::InvalidInput, "{error:?}");
        assert!(error.to_string().contains("10 MiB"), "{error}");
    }

    /// The profiles shipped with the project, in the package's `profiles/` folder.
    fn shipped(name: &str) -> Profile {
        use agent_runtime_api::ProfileSource;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let source = crate::profiles::DirectoryProfileSource::new(root);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bundle = runtime.block_on(source.load(name)).unwrap();
        Profile::parse(bundle).unwrap()
    }

    #[test]
    fn the_assistant_profile_renders_with_and_without_a_topic() {
        let profile = shipped("assistant");
        assert_eq!(profile.sample_metadata(), json!({}));

        let rendered = render(&profile, json!(null)).unwrap();
        assert_eq!(rendered.permission_mode.unwrap().as_str(), "acceptEdits");
        assert!(rendered.allowed_tools.iter().any(|t| t == "Write"));
        let prompt = rendered.system_prompt.clone().unwrap();
        assert_eq!(prompt.mode, PromptMode::Append);
        assert!(
            prompt.text.contains("Your session id is s-1."),
            "{}",
            prompt.text
        );
        assert!(
            !prompt.text.contains("opened this session about"),
            "{}",
            prompt.text
        );
        let paths: Vec<&str> = rendered
            .workspace
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, ["CLAUDE.md"]);
        assert_eq!(
            file_text(&rendered, "CLAUDE.md"),
            "# Workspace of session s-1\n\nAgent type: `assistant`.\n\n\
             - Everything saved here is synced and visible to the user.\n\
             - Keep deliverables at the top level or in clearly named folders; remove scratch files.\n"
        );

        let rendered = render(&profile, json!({ "topic": "tide tables" })).unwrap();
        assert!(file_text(&rendered, "CLAUDE.md").contains("Topic: tide tables\n"));
        let prompt = rendered.system_prompt.clone().unwrap().text;
        assert!(prompt.contains("about: tide tables."), "{prompt}");

        let error = render(&profile, json!({ "topic": 3 })).unwrap_err();
        assert_eq!(error.code().as_str(), "metadata_invalid");
    }
}
