//! The runtime's configuration: loaded once at start, in layers, into checked types.
//!
//! Precedence, lowest first:
//!
//! 1. built-in defaults — the values set in [`EXAMPLE`], the commented reference config;
//! 2. the TOML file (`--config`, default `agent-runtime.toml`);
//! 3. environment variables `AGENT_RUNTIME__SECTION__KEY` (`__` separates keys, keys are
//!    lowercased), e.g. `AGENT_RUNTIME__SERVER__LISTEN=0.0.0.0:4000`;
//! 4. command-line flags ([`CliOverrides`], e.g. `--listen`).
//!
//! Then every string value has `${VAR}` replaced from the process environment (`$${`
//! writes a literal `${`); a missing variable is an error naming the key and the
//! variable. Unknown keys are errors. Durations are written `"30s"`, `"15m"`, `"1h30m"`;
//! sizes `"1MiB"`, `"512KiB"` or a number of bytes. Relative paths (also a relative
//! SQLite file in `store.url` and an `agent.command` containing a `/`) are resolved against
//! the config file's directory, whichever layer set them.
//!
//! Sections that choose a backend (`[store]`, `[storage]`, `[profiles]`, `[sandbox]` by
//! `kind`, `[auth]` by `mode`) are closed enums. When the file picks a different `kind`
//! than the default, none of the default's keys are kept for that section.
//!
//! Every error is a [`ConfigError`] whose lines name the file (or environment variable or
//! flag), the dotted key and what was expected.

mod backends;
mod error;
mod interpolate;
mod layers;
mod load;
mod secret;
mod sections;
pub(crate) mod units;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

pub use backends::{
    DirectoryProfilesConfig, FilesystemStorageConfig, ProfilesConfig, SandboxConfig, StorageConfig,
    StoreConfig,
};
pub use error::{ConfigError, Problem};
pub use secret::Secret;
pub use sections::{
    AgentConfig, AuthConfig, JwtConfig, LimitsConfig, LogConfig, LogFormat, PrincipalsConfig,
    QuotasConfig, ServerConfig, SessionsConfig, SharedSecretConfig, WarmPoolConfig,
};
pub use units::ByteSize;

/// The commented reference config. Its active values are the built-in defaults.
pub const EXAMPLE: &str = include_str!("../../agent-runtime.toml");

/// The whole runtime configuration. See the module docs for how it is loaded.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[store]`: sessions and event logs.
    pub store: StoreConfig,
    /// `[storage]`: workspace files and transcripts.
    pub storage: StorageConfig,
    /// `[profiles]`.
    pub profiles: ProfilesConfig,
    /// `[sandbox]`.
    pub sandbox: SandboxConfig,
    /// `[agent]`.
    pub agent: AgentConfig,
    /// `[sessions]`.
    pub sessions: SessionsConfig,
    /// `[quotas]`: limits per principal.
    pub quotas: QuotasConfig,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[vars]`: free-form values for profile templates.
    #[serde(deserialize_with = "units::string_map")]
    pub vars: BTreeMap<String, String>,
    /// `[log]`.
    pub log: LogConfig,
    /// `[convex]`: the Convex deployment that `kind = "convex"` sections and `convex`
    /// tools use.
    #[serde(default)]
    pub convex: Option<agent_runtime_convex::ConvexConfig>,
    /// `[warm_pool]`.
    #[serde(default)]
    pub warm_pool: WarmPoolConfig,
}

/// Values given on the command line; they override every other layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliOverrides {
    /// `--listen ADDR` → `server.listen`.
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Loads the config file at `path`, with `AGENT_RUNTIME__*` environment variables and
    /// `overrides` on top. Relative paths are resolved against the file's directory.
    pub fn load(path: &Path, overrides: &CliOverrides) -> Result<Config, ConfigError> {
        let file_problem = |message: String| {
            ConfigError::new(vec![Problem {
                location: path.display().to_string(),
                key: None,
                message,
            }])
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            file_problem(match error.kind() {
                std::io::ErrorKind::NotFound => "config file not found; pass --config FILE or \
                     set AGENT_RUNTIME_CONFIG"
                    .to_owned(),
                _ => format!("cannot read the config file: {error}"),
            })
        })?;
        let base_dir = std::path::absolute(path)
            .map_err(|error| file_problem(format!("cannot resolve the file's directory: {error}")))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let file = layers::Layer::toml(&text, Some(path)).map_err(file_problem)?;
        load::run(load::Input {
            layers: vec![file, layers::Layer::env(), layers::Layer::cli(overrides)],
            base_dir,
        })
    }

    /// Loads a config from TOML text over the built-in defaults, without environment
    /// overrides (`${VAR}` is still expanded). Relative paths are resolved against
    /// `base_dir`. Meant for tests and embedded use.
    pub fn from_toml_str(toml: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let layer = layers::Layer::toml(toml, None).map_err(|message| {
            ConfigError::new(vec![Problem {
                location: "config text".to_owned(),
                key: None,
                message,
            }])
        })?;
        load::run(load::Input {
            layers: vec![layer],
            base_dir: base_dir.to_path_buf(),
        })
    }
}
