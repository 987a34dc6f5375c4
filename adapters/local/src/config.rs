//! The configuration of the local sandbox provider.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{AdapterError, SandboxProvider};
use serde::{Deserialize, Serialize};

use crate::LocalSandboxProvider;

/// How long processes get between SIGTERM and SIGKILL when nothing else is configured.
const DEFAULT_TERMINATE_GRACE: Duration = Duration::from_secs(3);

/// Where local sandboxes live and how they are isolated.
///
/// Read from the `[sandbox]` table of the runtime configuration, e.g.
///
/// ```toml
/// root = "data/sandboxes"
/// isolation = "auto"          # or "bubblewrap", or "dangerously-none"
/// network = "auto"            # or "private", or "host"
/// read_only_paths = ["/opt/toolchain"]
/// host_services = ["127.0.0.1:11434"]
/// terminate_grace = "3s"
/// ```
///
/// Unknown fields are refused when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSandboxConfig {
    /// The directory that holds one subdirectory per sandbox; created if missing.
    pub root: PathBuf,
    /// How processes are separated from the host.
    #[serde(default)]
    pub isolation: Isolation,
    /// Which network an isolated sandbox gets.
    #[serde(default)]
    pub network: Network,
    /// Host directories or files an isolated sandbox may read, bound read-only at the same
    /// path (a toolchain outside `/usr`, an MCP server's `node_modules`). The system
    /// directories and the agent program's own directory are bound without being listed.
    #[serde(default)]
    pub read_only_paths: Vec<PathBuf>,
    /// TCP services on the host's loopback that a sandbox with a private network may reach,
    /// at the same address as on the host (a local model gateway, say). Nothing else on the
    /// host's loopback is reachable from such a sandbox.
    #[serde(default)]
    pub host_services: Vec<SocketAddr>,
    /// How long `terminate` waits after SIGTERM before it sends SIGKILL, as text such as
    /// `"3s"` or `"500ms"`.
    #[serde(
        default = "default_terminate_grace",
        with = "agent_runtime_api::duration"
    )]
    pub terminate_grace: Duration,
    /// How a sandbox reaches the runtime that made it; set by the runtime, never read from
    /// the configuration file.
    #[serde(skip)]
    pub runtime_link: Option<RuntimeLink>,
    /// The program that runs first inside a sandbox with a private network and relays
    /// its loopback connections out; set by the runtime, never read from the configuration
    /// file. Needed only when there is something to relay.
    #[serde(skip)]
    pub init_program: Option<InitProgram>,
}

impl LocalSandboxConfig {
    /// Sandboxes below `root`, with the default isolation and grace period.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSandboxConfig {
            root: root.into(),
            isolation: Isolation::default(),
            network: Network::default(),
            read_only_paths: Vec::new(),
            host_services: Vec::new(),
            terminate_grace: DEFAULT_TERMINATE_GRACE,
            runtime_link: None,
            init_program: None,
        }
    }
}

/// How a sandbox's processes are separated from the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// The strongest isolation this host supports: bubblewrap where it works. Without a
    /// working bubblewrap the provider refuses to start rather than run agents unisolated.
    #[default]
    Auto,
    /// Processes inside bubblewrap (`bwrap`): their own user, mount, pid, ipc, uts and
    /// (with a private network) network namespaces, no capabilities, and a filesystem of
    /// only the system directories (read-only), the sandbox's own two directories and what
    /// `read_only_paths` adds. Other sandboxes, the runtime's files, its environment and
    /// the host user's home are not there.
    Bubblewrap,
    /// Plain processes of the runtime's user in their own process group. They can read
    /// everything the runtime can, its secrets included, and reach every service on the
    /// host. Only for agents you would run in your own shell.
    #[serde(rename = "dangerously-none")]
    DangerouslyNone,
}

/// Which network an isolated sandbox gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// `private` where `slirp4netns` is installed, otherwise `host`, with a warning.
    #[default]
    Auto,
    /// The sandbox's own network namespace with internet access through `slirp4netns`, but
    /// no way to the host's loopback: the runtime's API, databases and other local services
    /// are unreachable, but for `host_services` and the runtime's `/mcp`, which are relayed.
    Private,
    /// The host's network, loopback included.
    Host,
}

/// How a sandbox reaches the runtime's `/mcp` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLink {
    /// The address the sandbox connects to, on its own loopback: the address the runtime
    /// listens on, so URLs made for the runtime work unchanged inside.
    pub address: SocketAddr,
    /// The unix socket on the host where the runtime serves the sandbox-facing endpoints.
    pub socket: PathBuf,
}

/// A program, with leading arguments, that runs [`crate::sandbox_init`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProgram {
    /// The executable; bound read-only into each sandbox.
    pub program: PathBuf,
    /// Arguments placed before the init's own (a subcommand name, say).
    pub args: Vec<String>,
}

/// Checks `config` and makes the provider: creates the root directory and, with
/// bubblewrap, checks that `bwrap` is installed and works on this host.
pub fn build(config: LocalSandboxConfig) -> Result<Arc<dyn SandboxProvider>, AdapterError> {
    let provider = LocalSandboxProvider::new(config)?;
    Ok(Arc::new(provider))
}

fn default_terminate_grace() -> Duration {
    DEFAULT_TERMINATE_GRACE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field_and_defaults() {
        let full: LocalSandboxConfig = serde_json::from_str(
            r#"{"root": "/srv/sb", "isolation": "bubblewrap", "network": "private",
                "read_only_paths": ["/opt/tools"], "host_services": ["127.0.0.1:8080"],
                "terminate_grace": "500ms"}"#,
        )
        .unwrap();
        assert_eq!(full.root, PathBuf::from("/srv/sb"));
        assert_eq!(full.isolation, Isolation::Bubblewrap);
        assert_eq!(full.network, Network::Private);
        assert_eq!(full.read_only_paths, [PathBuf::from("/opt/tools")]);
        assert_eq!(full.host_services, ["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(full.terminate_grace, Duration::from_millis(500));

        let minimal: LocalSandboxConfig = serde_json::from_str(r#"{"root": "sb"}"#).unwrap();
        assert_eq!(minimal, LocalSandboxConfig::new("sb"));
        assert_eq!(minimal.isolation, Isolation::Auto);
        assert_eq!(minimal.network, Network::Auto);
        assert_eq!(minimal.terminate_grace, Duration::from_secs(3));

        let unisolated: LocalSandboxConfig =
            serde_json::from_str(r#"{"root": "sb", "isolation": "dangerously-none"}"#).unwrap();
        assert_eq!(unisolated.isolation, Isolation::DangerouslyNone);
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        for (bad, expected) in [
            (
                r#"{"root": "sb", "colour": "red"}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"root": "sb", "isolation": "docker"}"#,
                "unknown variant `docker`",
            ),
            // The words must make the risk plain.
            (
                r#"{"root": "sb", "isolation": "none"}"#,
                "unknown variant `none`",
            ),
            (
                r#"{"root": "sb", "terminate_grace": "soon"}"#,
                "invalid duration \"soon\"",
            ),
            (r#"{"isolation": "auto"}"#, "missing field `root`"),
        ] {
            let error = serde_json::from_str::<LocalSandboxConfig>(bad).unwrap_err();
            assert!(error.to_string().contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn round_trips_durations_as_text() {
        let text = serde_json::to_string(&LocalSandboxConfig::new("sb")).unwrap();
        assert_eq!(
            text,
            r#"{"root":"sb","isolation":"auto","network":"auto","read_only_paths":[],"host_services":[],"terminate_grace":"3s"}"#
        );
    }
}
