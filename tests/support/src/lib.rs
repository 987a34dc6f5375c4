//! Test support for agent-runtime.
//!
//! # Layout
//! - `scripted-agent` (binary): a deterministic stand-in for the Claude Code CLI that
//!   speaks its stream-json protocol, keeps transcripts and resumes from them. Start it
//!   with [`bin_path`]`("scripted-agent")`.
//! - [`fake_anthropic`]: an in-process fake Messages API for running the real CLI
//!   offline; `fake-anthropic` (binary) serves it on a port for manual runs.
//! - [`claude_bin`] / [`claude_test_env`]: the pinned real CLI, when the environment
//!   provides one, and the environment it needs to talk to the fake API.
//!
//! Architecture Invariant: nothing here reaches the network beyond 127.0.0.1.

pub mod fake_anthropic;
pub mod fake_convex;
pub mod fake_modal;
mod http_server;
pub mod proxy;

use std::path::{Path, PathBuf};

/// Environment variable naming the pinned Claude Code CLI used by real-CLI tests.
pub const CLAUDE_ENV: &str = "AGENT_RUNTIME_TEST_CLAUDE";

/// Path of a binary built into this workspace's target directory, e.g.
/// `bin_path("scripted-agent")`.
///
/// The directory is derived from the running test executable: tests run from
/// `target/<profile>/deps/`, binaries live in `target/<profile>/`.
///
/// # Panics
/// If the binary has not been built, with the `cargo build` command that builds it.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => panic!("cannot locate the current executable to find `{name}`: {err}"),
    };
    let path = profile_dir(&exe).join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        panic!(
            "test binary `{name}` not found at {}; build it first with \
             `cargo build -p agent-runtime-testkit --bins`",
            path.display()
        );
    }
    path
}

/// `target/<profile>` for an executable in it or in its `deps/` subdirectory.
fn profile_dir(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("."));
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The pinned Claude Code CLI named by `AGENT_RUNTIME_TEST_CLAUDE`, if set and non-empty.
pub fn claude_bin() -> Option<PathBuf> {
    std::env::var_os(CLAUDE_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The environment that makes Claude Code talk only to a fake API at `base_url`, with
/// all its state in `config_dir` and a single retry so failures end quickly.
pub fn claude_test_env(base_url: &str, config_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", base_url.to_owned()),
        ("ANTHROPIC_API_KEY", "test".to_owned()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
        (
            "CLAUDE_CONFIG_DIR",
            config_dir.to_string_lossy().into_owned(),
        ),
        ("CLAUDE_CODE_MAX_RETRIES", "1".to_owned()),
        ("IS_SANDBOX", "1".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_strips_deps() {
        assert_eq!(
            profile_dir(Path::new("/t/debug/deps/it-123")),
            Path::new("/t/debug")
        );
        assert_eq!(profile_dir(Path::new("/t/debug/x")), Path::new("/t/debug"));
    }
}
