//! `agent-runtime init [DIR]`: writes a commented `agent-runtime.toml` (SQLite and files
//! under DIR, local sandboxes, a loopback bind, a profiles folder) and a first profile,
//! then says what to run next. Nothing existing is overwritten without `--force`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::profiles;

/// The config `init` writes; `__LISTEN__` is replaced.
const CONFIG: &str = include_str!("templates/agent-runtime.toml");

/// The config file's name in DIR: the one `agent-runtime` reads by default.
pub const CONFIG_FILE: &str = "agent-runtime.toml";

/// What `init` writes.
#[derive(Debug)]
pub struct Written {
    /// The config file.
    pub config: PathBuf,
    /// The first profile's files.
    pub profile: Vec<PathBuf>,
}

/// Writes the config and the profile `profile` into `dir` (made if missing). Refuses,
/// writing nothing, if any of the files exists, unless `force`.
pub fn write(
    dir: &Path,
    profile: &str,
    listen: SocketAddr,
    force: bool,
) -> Result<Written, String> {
    profiles::validate_name(profile)?;
    let config = dir.join(CONFIG_FILE);
    let profile_files = ["profile.toml", "system-prompt.md", "CLAUDE.md"]
        .map(|file| dir.join("profiles").join(profile).join(file));
    let mut all = vec![config.clone()];
    all.extend(profile_files.iter().cloned());
    profiles::refuse_existing(&all, force)?;
    let text = CONFIG.replace("__LISTEN__", &listen.to_string());
    profiles::write_all(&[(config.clone(), text)])?;
    let profile = profiles::scaffold(&dir.join("profiles"), profile, true)?;
    Ok(Written { config, profile })
}

/// Runs `init`: writes the files, then prints them and the next steps.
pub fn run(dir: &Path, profile: &str, listen: SocketAddr, force: bool) -> Result<(), String> {
    let written = write(dir, profile, listen, force)?;
    println!("wrote {}", written.config.display());
    for path in &written.profile {
        println!("wrote {}", path.display());
    }
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let url = format!("http://{host}:{}", listen.port());
    let cd = if dir == Path::new(".") || dir.as_os_str().is_empty() {
        String::new()
    } else {
        format!("  cd {}\n", dir.display())
    };
    let chat_url = if listen.port() == 4000 && host == "127.0.0.1" {
        String::new()
    } else {
        format!(" --url {url}")
    };
    println!(
        "\nNext:\n{cd}  agent-runtime check          # is everything in place? (Claude Code, \
         bubblewrap, the profile)\n  agent-runtime                # serve on {url}/\n\n\
         Then open the console at {url}/ or chat in a terminal:\n  \
         agent-runtime chat{chat_url}\n\n\
         Claude Code reaches the model with ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) set \
         where the runtime starts."
    );
    if let Some(hint) = agent_hint() {
        println!("\n{hint}");
    }
    Ok(())
}

/// A hint when the `claude` program is not on PATH.
fn agent_hint() -> Option<String> {
    match which::which("claude") {
        Ok(_) => None,
        Err(_) => Some(
            "Claude Code is not on PATH yet: npm install -g @anthropic-ai/claude-code \
             (or set [agent] command to its path)"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    #[test]
    fn writes_a_config_that_loads_with_its_paths_under_dir() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("agents");
        let written = write(&target, "assistant", listen(), false).unwrap();
        let config = crate::config::Config::load(&written.config, &Default::default()).unwrap();
        assert_eq!(config.server.listen, listen());
        let crate::config::ProfilesConfig::Directory(profiles) = &config.profiles else {
            panic!("a directory of profiles");
        };
        assert_eq!(profiles.path, target.join("profiles"));
        assert!(config.agent.include_partial_messages);
        assert!(target.join("profiles/assistant/profile.toml").is_file());
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "assistant", listen(), false).unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "# mine\n").unwrap();
        let error = write(dir.path(), "assistant", listen(), false).unwrap_err();
        assert!(
            error.contains(CONFIG_FILE) && error.contains("--force"),
            "{error}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap(),
            "# mine\n"
        );
        write(dir.path(), "assistant", listen(), true).unwrap();
        assert_ne!(
            std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap(),
            "# mine\n"
        );
    }
}
