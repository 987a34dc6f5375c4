//! The plain sections of the config: `[server]`, `[auth]`, `[agent]`, `[sessions]`,
//! `[limits]`, `[log]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::secret::Secret;
use crate::config::units::ByteSize;

/// `[server]`: where the runtime listens and how it is reached.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address to bind, `IP:port`. Port 0 picks a free port (tests).
    #[serde(deserialize_with = "crate::config::units::socket_addr")]
    pub listen: SocketAddr,
    /// The base URL sandboxes use to reach this runtime (its `/mcp` endpoint); `None`
    /// means `http://` + `listen`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The largest message accepted from a client (Socket.IO payload, request body).
    pub max_payload: ByteSize,
    /// Allows `auth.mode = "none"` on an address other than loopback. Off by default so
    /// that a runtime without authentication is not exposed by accident.
    pub allow_unauthenticated_remote: bool,
    /// Origins of web pages allowed to call the runtime (`scheme://host[:port]`, port
    /// `*` for any, or `"*"` for every page). `None`: the runtime's own origin, plus
    /// loopback pages on a loopback bind.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// `Host` names served besides loopback names and `public_url`'s host (`name` or
    /// `name:port`, or `"*"` for no check). `None`: checked on a loopback bind only.
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Serves the web console at `/`. `None`: on for a loopback bind, off otherwise.
    #[serde(default)]
    pub console: Option<bool>,
}

/// `[auth]`: how clients prove who they are. Chosen with `mode = "..."`.
///
/// The config loader reads the `mode` key and picks the variant, so in a config file
/// the section is flat: `mode = "shared-secret"` beside `secret = "..."`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthConfig {
    /// No authentication. Only allowed on loopback unless
    /// `server.allow_unauthenticated_remote` is set.
    None {},
    /// Every client presents the same secret (bearer token / Socket.IO auth token).
    SharedSecret(SharedSecretConfig),
    /// Every client is its own principal: an API key, a JWT, or either.
    Principals(PrincipalsConfig),
}

impl AuthConfig {
    /// The `mode` value of this variant, as written in the config.
    pub fn mode(&self) -> &'static str {
        match self {
            AuthConfig::None {} => "none",
            AuthConfig::SharedSecret(_) => "shared-secret",
            AuthConfig::Principals(_) => "principals",
        }
    }
}

/// `[auth] mode = "shared-secret"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedSecretConfig {
    /// The secret clients present; usually `"${SOME_ENV_VAR}"`.
    pub secret: Secret,
}

/// `[auth] mode = "principals"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalsConfig {
    /// Accept API keys made with `agent-runtime keys create`.
    #[serde(default = "yes")]
    pub api_keys: bool,
    /// How long a looked-up API key is trusted before it is looked up again: the longest
    /// a key revoked from another process keeps working.
    #[serde(
        default = "default_key_cache",
        deserialize_with = "agent_runtime_api::duration::positive"
    )]
    pub key_cache: Duration,
    /// `[auth.jwt]`: accept JWTs; absent means no JWT is accepted.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
}

fn yes() -> bool {
    true
}

fn default_key_cache() -> Duration {
    Duration::from_secs(10)
}

/// `[auth.jwt]`: JWTs from an application's backend. Exactly one of `secret` (HS256) and
/// `jwks_url` (RS256, ES256, EdDSA) is set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The required `iss` claim.
    pub issuer: String,
    /// The required `aud` claim (one of the token's audiences).
    pub audience: String,
    /// The HS256 secret.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// The URL of the issuer's key set (JWKS).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// A claim that, when `true`, makes the token's principal an admin.
    #[serde(default)]
    pub admin_claim: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(
        default = "default_leeway",
        deserialize_with = "agent_runtime_api::duration::positive"
    )]
    pub leeway: Duration,
    /// How long a fetched key set is used before it is fetched again.
    #[serde(
        default = "default_jwks_refresh",
        deserialize_with = "agent_runtime_api::duration::positive"
    )]
    pub jwks_refresh: Duration,
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

fn default_jwks_refresh() -> Duration {
    Duration::from_secs(600)
}

/// `[quotas]`: limits per principal; 0 means unlimited. An API key may replace each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    /// The most live sessions of one principal.
    pub max_live_sessions: u32,
    /// The most stored sessions (live or not) of one principal.
    pub max_stored_sessions: u32,
    /// Session creates per minute per principal.
    pub creates_per_minute: u32,
    /// Messages per minute per principal.
    pub messages_per_minute: u32,
}

/// `[agent]`: the agent program started in every sandbox.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The program: a bare name is looked up on `PATH`; anything with a path separator is
    /// a path, relative ones resolved against the config file's directory.
    pub command: PathBuf,
    /// Extra arguments placed before the runtime's own.
    pub args: Vec<String>,
    /// Extra environment for the agent process (API keys, base URLs). Values are secrets:
    /// they never appear in `Debug` output.
    pub env: BTreeMap<String, Secret>,
    /// Names of the runtime's own environment variables copied into every sandbox
    /// (e.g. `PATH`, `LANG`). Not for secrets: put those in `env`.
    pub env_passthrough: Vec<String>,
    /// Asks the agent for partial (token-by-token) messages.
    pub include_partial_messages: bool,
}

/// `[sessions]`: limits and timers of live sessions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// A session with no client and no running turn is stopped after this long.
    #[serde(deserialize_with = "agent_runtime_api::duration::positive")]
    pub idle_timeout: Duration,
    /// How often a live sandbox's workspace is synced to storage.
    #[serde(deserialize_with = "agent_runtime_api::duration::positive")]
    pub sync_interval: Duration,
    /// The most live sessions at once; one more is refused with `capacity_exceeded`.
    pub max_sessions: usize,
}

/// `[limits]`: caps on what an agent can make the runtime read, hold or store. Everything
/// a sandbox produces is untrusted; these bound the cost of the worst of it.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest workspace file synced to storage or downloaded; larger files are
    /// skipped and reported.
    pub file_bytes: ByteSize,
    /// The most bytes of one session's workspace kept in storage; a sync that would pass
    /// it stores what fits and reports the rest.
    pub workspace_bytes: ByteSize,
    /// The most files and directories of one workspace the runtime lists; with more,
    /// nothing of it is listed or synced until there are fewer.
    pub workspace_files: usize,
    /// The longest line of agent output; a longer one is dropped and reported as an
    /// `error` event.
    pub agent_line_bytes: ByteSize,
    /// The most event bytes in one page of replayed events; a page always holds at least
    /// one event.
    pub replay_page_bytes: ByteSize,
}

/// `[log]`: log level and format.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `agent_runtime=debug,info`; `RUST_LOG`, when
    /// set, takes precedence.
    pub level: String,
    /// The line format.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[warm_pool]`: sandboxes made ahead of sessions (see `crate::warm_pool`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WarmPoolConfig {
    /// How many sandboxes the shared pool keeps ready, for a session of any profile;
    /// 0 turns it off.
    pub size: usize,
    /// A ready sandbox older than this is terminated and replaced.
    #[serde(deserialize_with = "agent_runtime_api::duration::positive")]
    pub max_age: Duration,
    /// `[warm_pool.profiles]`: per profile name, how many sandboxes are kept ready for
    /// that profile's sessions alone, with the profile's fixed files already laid in.
    #[serde(default)]
    pub profiles: BTreeMap<String, usize>,
}

impl WarmPoolConfig {
    /// Every sandbox the pools keep ready: the shared pool's and each profile's.
    pub fn total(&self) -> usize {
        self.profiles
            .values()
            .fold(self.size, |sum, n| sum.saturating_add(*n))
    }
}

impl Default for WarmPoolConfig {
    fn default() -> Self {
        WarmPoolConfig {
            size: 0,
            max_age: Duration::from_secs(600),
            profiles: BTreeMap::new(),
        }
    }
}
