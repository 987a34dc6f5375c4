//! The configuration of the local sandbox provider.

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
/// isolation = "bubblewrap"   # or "none", the default
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
    /// How long `terminate` waits after SIGTERM before it sends SIGKILL, as text such as
    /// `"3s"` or `"500ms"`.
    #[serde(default = "default_terminate_grace", with = "duration_text")]
    pub terminate_grace: Duration,
}

impl LocalSandboxConfig {
    /// Sandboxes below `root`, without isolation, with the default grace period.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSandboxConfig {
            root: root.into(),
            isolation: Isolation::default(),
            terminate_grace: DEFAULT_TERMINATE_GRACE,
        }
    }
}

/// How a sandbox's processes are separated from the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Plain processes of the runtime's user, in their own process group.
    #[default]
    None,
    /// Processes inside bubblewrap (`bwrap`): a read-only view of the host, private `/tmp`,
    /// new pid/ipc/uts namespaces, the host's network, and only the sandbox's own
    /// directories writable (other sandboxes are hidden).
    Bubblewrap,
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

/// Durations as text (`"3s"`, `"1m 30s"`), as the rest of the configuration writes them.
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|error| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({error}); write it like \"3s\" or \"500ms\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field_and_defaults() {
        let full: LocalSandboxConfig = serde_json::from_str(
            r#"{"root": "/srv/sb", "isolation": "bubblewrap", "terminate_grace": "500ms"}"#,
        )
        .unwrap();
        assert_eq!(full.root, PathBuf::from("/srv/sb"));
        assert_eq!(full.isolation, Isolation::Bubblewrap);
        assert_eq!(full.terminate_grace, Duration::from_millis(500));

        let minimal: LocalSandboxConfig = serde_json::from_str(r#"{"root": "sb"}"#).unwrap();
        assert_eq!(minimal, LocalSandboxConfig::new("sb"));
        assert_eq!(minimal.isolation, Isolation::None);
        assert_eq!(minimal.terminate_grace, Duration::from_secs(3));
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
            (
                r#"{"root": "sb", "terminate_grace": "soon"}"#,
                "invalid duration \"soon\"",
            ),
            (r#"{"isolation": "none"}"#, "missing field `root`"),
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
            r#"{"root":"sb","isolation":"none","terminate_grace":"3s"}"#
        );
    }
}
