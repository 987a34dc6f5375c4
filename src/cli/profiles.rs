//! `agent-runtime profiles new NAME`: writes a profile folder (`profile.toml`,
//! `system-prompt.md`, `CLAUDE.md`) that loads, renders and can be edited from there.
//! `agent-runtime init` writes its first profile with the same files.

use std::path::{Path, PathBuf};

use crate::cli::ProfileNewArgs;
use crate::config::{CliOverrides, Config, ProfilesConfig};
use crate::profiles::is_safe_name;

/// The files of a new profile: path in its folder, template. `__NAME__` and
/// `__DESCRIPTION__` are replaced; the rest is written as it is (minijinja syntax
/// included, rendered per session).
const FILES: [(&str, &str); 3] = [
    ("profile.toml", include_str!("templates/profile.toml")),
    (
        "system-prompt.md",
        include_str!("templates/system-prompt.md"),
    ),
    ("CLAUDE.md", include_str!("templates/CLAUDE.md")),
];

/// Checks `name` the way profile sources do: one path component of `[A-Za-z0-9._-]`
/// that does not start with `.`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if is_safe_name(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid profile name {name:?}: use letters, digits, '.', '_' and '-', \
             not starting with '.'"
        ))
    }
}

/// The files [`scaffold`] would write for profile `name` under `dir`, with their contents.
fn planned(dir: &Path, name: &str) -> Vec<(PathBuf, String)> {
    let folder = dir.join(name);
    let description = format!("The {name} agent: reads, writes and edits files in its workspace");
    FILES
        .iter()
        .map(|(file, template)| {
            let text = template
                .replace("__NAME__", name)
                .replace("__DESCRIPTION__", &description);
            (folder.join(file), text)
        })
        .collect()
}

/// Writes profile `name` into `dir` (made if missing). Refuses, writing nothing, if any
/// of its files exists, unless `force`. Returns the files written.
pub fn scaffold(dir: &Path, name: &str, force: bool) -> Result<Vec<PathBuf>, String> {
    validate_name(name)?;
    let files = planned(dir, name);
    let paths: Vec<PathBuf> = files.iter().map(|(path, _)| path.clone()).collect();
    refuse_existing(&paths, force)?;
    write_all(&files)?;
    Ok(paths)
}

/// An error naming every path of `paths` that exists, unless `force`.
pub(crate) fn refuse_existing(paths: &[PathBuf], force: bool) -> Result<(), String> {
    if force {
        return Ok(());
    }
    let existing: Vec<String> = paths
        .iter()
        .filter(|path| path.symlink_metadata().is_ok())
        .map(|path| path.display().to_string())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "not overwriting what exists: {}; pass --force to replace them",
        existing.join(", ")
    ))
}

/// Writes each file, making its parent directories.
pub(crate) fn write_all(files: &[(PathBuf, String)]) -> Result<(), String> {
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs `profiles new` with its options: the folder is `--dir`, else the config's
/// `[profiles] path` when the config file exists, else `./profiles`.
pub fn run_new_command(args: &ProfileNewArgs) -> Result<(), String> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None if args.config.is_file() => {
            let config =
                Config::load(&args.config, &CliOverrides::default()).map_err(|e| e.to_string())?;
            match config.profiles {
                ProfilesConfig::Directory(directory) => directory.path,
                _ => {
                    return Err(format!(
                        "{}: [profiles] are not a directory; pass --dir PROFILES_DIR",
                        args.config.display()
                    ));
                }
            }
        }
        None => PathBuf::from("profiles"),
    };
    run_new(&dir, &args.name, args.force)
}

/// Runs `profiles new`: writes the profile and says what to do next.
pub fn run_new(dir: &Path, name: &str, force: bool) -> Result<(), String> {
    let written = scaffold(dir, name, force)?;
    println!("created profile {name:?}:");
    for path in &written {
        println!("  {}", path.display());
    }
    println!(
        "edit {} (tools, model, budget), then check it with `agent-runtime check`;\n\
         a running runtime lists new profiles at once: agent-runtime chat {name}",
        dir.join(name).join("profile.toml").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_profile_sources_do() {
        for good in ["reviewer", "a", "code-review_2", "v1.2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "with space", "é"] {
            let error = validate_name(bad).unwrap_err();
            assert!(error.contains("invalid profile name"), "{error}");
        }
    }

    #[tokio::test]
    async fn scaffolded_profiles_load_parse_and_render() {
        use agent_runtime_api::ProfileSource;

        use crate::profiles::{DirectoryProfileSource, Profile, RenderContext};

        let dir = tempfile::tempdir().unwrap();
        scaffold(dir.path(), "reviewer", false).unwrap();
        let toml = std::fs::read_to_string(dir.path().join("reviewer/profile.toml")).unwrap();
        assert!(toml.contains("agentType = \"reviewer\""), "{toml}");
        assert!(
            !toml.contains("__"),
            "every placeholder is replaced: {toml}"
        );
        let source = DirectoryProfileSource::new(dir.path());
        assert_eq!(source.list().await.unwrap(), vec!["reviewer".to_owned()]);
        let profile = Profile::parse(source.load("reviewer").await.unwrap()).unwrap();
        let metadata = profile.sample_metadata();
        let vars = Default::default();
        let rendered = profile.render(&RenderContext {
            session_id: "s-1",
            metadata: &metadata,
            vars: &vars,
        });
        assert!(rendered.is_ok(), "{:?}", rendered.err());

        let error = scaffold(dir.path(), "reviewer", false).unwrap_err();
        assert!(
            error.contains("profile.toml") && error.contains("--force"),
            "{error}"
        );
        scaffold(dir.path(), "reviewer", true).unwrap();
    }
}
