//! Checks that need more than one key or more than a type, and the resolution of relative
//! paths against the config file's directory.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::config::backends::{ProfilesConfig, StorageConfig, StoreConfig};
use crate::config::interpolate::is_variable_name;
use crate::config::sections::AuthConfig;
use crate::config::units::ByteSize;
use crate::transport::origin::{validate_host_entry, validate_origin_entry};

/// The smallest accepted `server.max_payload`: below it ordinary events do not fit.
pub const MIN_MAX_PAYLOAD: ByteSize = ByteSize(64 * ByteSize::KIB);

/// The smallest accepted `[limits]` size: below it ordinary agent lines and files fail.
pub const MIN_LIMIT: ByteSize = ByteSize(64 * ByteSize::KIB);

/// A failed check: the key as written in the config and what is wrong.
pub type Finding = (Vec<String>, String);

/// Makes every relative path in `config` relative to `base` (the config file's directory).
pub fn resolve_paths(config: &mut Config, base: &Path) {
    if let StoreConfig::Sqlite(sqlite) = &mut config.store {
        sqlite.url = resolve_sqlite_url(&sqlite.url, base);
    }
    if let StorageConfig::Filesystem(filesystem) = &mut config.storage {
        filesystem.root = resolve(base, &filesystem.root);
    }
    if let ProfilesConfig::Directory(directory) = &mut config.profiles {
        directory.path = resolve(base, &directory.path);
    }
    if let crate::config::SandboxConfig::Local(local) = &mut config.sandbox {
        local.root = resolve(base, &local.root);
        for path in &mut local.read_only_paths {
            *path = resolve(base, path);
        }
    }
    // A bare program name is looked up on PATH; only something with a separator is a path.
    if config.agent.command.components().count() > 1 {
        config.agent.command = resolve(base, &config.agent.command);
    }
}

/// `base/path` unless `path` is absolute, without `.` components.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    base.join(path).components().collect()
}

/// Resolves the file path of a `sqlite://PATH?options` (or `sqlite:PATH`) URL; in-memory
/// databases and `file:` URIs are left alone.
pub fn resolve_sqlite_url(url: &str, base: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_owned();
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, format!("?{query}")),
        None => (rest, String::new()),
    };
    let untouched = path.is_empty()
        || path.starts_with(":memory:")
        || path.starts_with("file:")
        || Path::new(path).is_absolute();
    if untouched {
        return url.to_owned();
    }
    format!(
        "sqlite://{}{query}",
        resolve(base, Path::new(path)).display()
    )
}

/// The pools together hold at most `max_sessions` sandboxes: more could never all be
/// taken. A per-profile pool is named by a profile name.
fn check_warm_pool(config: &Config, findings: &mut Vec<Finding>) {
    let pool = &config.warm_pool;
    let max_sessions = config.sessions.max_sessions;
    if pool.total() > max_sessions {
        let (which, what) = match pool.profiles.is_empty() {
            true => ("warm_pool.size", "must be"),
            false => (
                "warm_pool",
                "size and the sizes of [warm_pool.profiles] together must be",
            ),
        };
        findings.push((
            key(which),
            format!(
                "{what} at most sessions.max_sessions ({max_sessions}): more warm sandboxes than sessions could never all be taken"
            ),
        ));
    }
    for name in pool.profiles.keys() {
        if !crate::profiles::is_safe_name(name) {
            findings.push((
                // Quoted, as TOML writes a key that is no bare key.
                vec![
                    "warm_pool".to_owned(),
                    "profiles".to_owned(),
                    format!("{name:?}"),
                ],
                "is not a profile name (letters, digits, `.`, `_`, `-`, not starting with `.`)"
                    .to_owned(),
            ));
        }
    }
    if pool.max_age < std::time::Duration::from_secs(1) {
        findings.push((key("warm_pool.max_age"), "must be at least 1s".to_owned()));
    }
}

/// Every check over a deserialized config; an empty list means the config is usable.
pub fn check(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    check_server(config, &mut findings);
    check_store(&config.store, &mut findings);
    check_storage(&config.storage, &mut findings);
    check_agent(config, &mut findings);
    check_convex(config, &mut findings);
    check_limits(config, &mut findings);
    check_warm_pool(config, &mut findings);
    if config.sessions.max_sessions == 0 {
        findings.push((
            key("sessions.max_sessions"),
            "must be at least 1".to_owned(),
        ));
    }
    if config.log.level.trim().is_empty() {
        findings.push((
            key("log.level"),
            "must not be empty; e.g. \"info\"".to_owned(),
        ));
    }
    findings
}

fn check_limits(config: &Config, findings: &mut Vec<Finding>) {
    let limits = &config.limits;
    let sizes = [
        ("limits.file_bytes", limits.file_bytes),
        ("limits.workspace_bytes", limits.workspace_bytes),
        ("limits.agent_line_bytes", limits.agent_line_bytes),
        ("limits.replay_page_bytes", limits.replay_page_bytes),
    ];
    for (name, size) in sizes {
        if size < MIN_LIMIT {
            findings.push((
                key(name),
                format!("must be at least {MIN_LIMIT}, found {size}"),
            ));
        }
    }
    // A profile's own files must fit, with room for the agent's.
    if limits.workspace_files < MIN_WORKSPACE_FILES {
        findings.push((
            key("limits.workspace_files"),
            format!(
                "must be at least {MIN_WORKSPACE_FILES}, found {}",
                limits.workspace_files
            ),
        ));
    }
}

/// The smallest accepted `limits.workspace_files`.
const MIN_WORKSPACE_FILES: usize = 100;

fn key(dotted: &str) -> Vec<String> {
    dotted.split('.').map(str::to_owned).collect()
}

fn check_server(config: &Config, findings: &mut Vec<Finding>) {
    let server = &config.server;
    if let Some(url) = &server.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        let message = format!("expected an http:// or https:// URL, found {url:?}");
        findings.push((key("server.public_url"), message));
    }
    if server.max_payload < MIN_MAX_PAYLOAD {
        let message = format!(
            "must be at least {MIN_MAX_PAYLOAD}, found {}",
            server.max_payload
        );
        findings.push((key("server.max_payload"), message));
    }
    let entries = [
        (
            "server.allowed_origins",
            &server.allowed_origins,
            validate_origin_entry as fn(&str) -> Result<(), String>,
        ),
        (
            "server.allowed_hosts",
            &server.allowed_hosts,
            validate_host_entry,
        ),
    ];
    for (name, list, validate) in entries {
        for entry in list.iter().flatten() {
            if let Err(message) = validate(entry) {
                findings.push((key(name), message));
            }
        }
    }
    match &config.auth {
        AuthConfig::None {} => {
            let loopback = server.listen.ip().to_canonical().is_loopback();
            if !loopback && !server.allow_unauthenticated_remote {
                let message = format!(
                    "{} is not a loopback address and auth.mode is \"none\": anyone who can \
                     reach it could run agents. Set auth.mode = \"shared-secret\", or \
                     server.allow_unauthenticated_remote = true to accept that",
                    server.listen
                );
                findings.push((key("server.listen"), message));
            }
        }
        AuthConfig::SharedSecret(shared) => {
            if shared.secret.is_empty() {
                findings.push((key("auth.secret"), "must not be empty".to_owned()));
            }
        }
        AuthConfig::Principals(principals) => check_principals(principals, findings),
    }
}

fn check_principals(principals: &crate::config::PrincipalsConfig, findings: &mut Vec<Finding>) {
    let Some(jwt) = &principals.jwt else {
        if !principals.api_keys {
            let message = "accepts no client: set api_keys = true or add [auth.jwt]".to_owned();
            findings.push((key("auth.api_keys"), message));
        }
        return;
    };
    for (name, value) in [("issuer", &jwt.issuer), ("audience", &jwt.audience)] {
        if value.is_empty() {
            findings.push((
                key(&format!("auth.jwt.{name}")),
                "must not be empty".to_owned(),
            ));
        }
    }
    match (&jwt.secret, &jwt.jwks_url) {
        (Some(secret), None) => {
            if secret.expose().len() < 32 {
                let message = "must have at least 32 characters".to_owned();
                findings.push((key("auth.jwt.secret"), message));
            }
        }
        (None, Some(url)) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                let message = format!("expected an http:// or https:// URL, found {url:?}");
                findings.push((key("auth.jwt.jwks_url"), message));
            }
        }
        _ => {
            let message = "set exactly one of `secret` (HS256) and `jwks_url`".to_owned();
            findings.push((key("auth.jwt"), message));
        }
    }
}

fn check_store(store: &StoreConfig, findings: &mut Vec<Finding>) {
    let sql = match store {
        StoreConfig::Sqlite(sqlite) => {
            if !sqlite.url.starts_with("sqlite:") {
                let message = format!("expected a sqlite:// URL, found {:?}", sqlite.url);
                findings.push((key("store.url"), message));
            }
            sqlite
        }
        StoreConfig::Postgres(postgres) => {
            let url = &postgres.url;
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                // The URL may carry a password, so it is not echoed.
                let message = "expected a postgres:// or postgresql:// URL".to_owned();
                findings.push((key("store.url"), message));
            }
            postgres
        }
        StoreConfig::Convex {} | StoreConfig::Memory {} => return,
    };
    if sql.max_connections == Some(0) {
        findings.push((
            key("store.max_connections"),
            "must be at least 1".to_owned(),
        ));
    }
    if let (Some(min), Some(max)) = (sql.min_connections, sql.max_connections)
        && min > max
    {
        let message = format!("{min} is more than store.max_connections ({max})");
        findings.push((key("store.min_connections"), message));
    }
}

fn check_storage(storage: &StorageConfig, findings: &mut Vec<Finding>) {
    let StorageConfig::S3(s3) = storage else {
        return;
    };
    if s3.bucket.trim().is_empty() {
        findings.push((key("storage.bucket"), "must not be empty".to_owned()));
    }
    match (&s3.access_key_id, &s3.secret_access_key) {
        (Some(_), None) => findings.push((
            key("storage.secret_access_key"),
            "missing; required when storage.access_key_id is set".to_owned(),
        )),
        (None, Some(_)) => findings.push((
            key("storage.access_key_id"),
            "missing; required when storage.secret_access_key is set".to_owned(),
        )),
        _ => {}
    }
    if let Some(endpoint) = &s3.endpoint {
        if endpoint.starts_with("http://") && !s3.allow_http {
            let message = "is plain http://; set storage.allow_http = true to allow it".to_owned();
            findings.push((key("storage.endpoint"), message));
        } else if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            let message = format!("expected an http:// or https:// URL, found {endpoint:?}");
            findings.push((key("storage.endpoint"), message));
        }
    }
}

/// A `kind = "convex"` section needs the deployment of `[convex]`.
fn check_convex(config: &Config, findings: &mut Vec<Finding>) {
    if config.convex.is_some() {
        return;
    }
    let uses = [
        ("store.kind", matches!(config.store, StoreConfig::Convex {})),
        (
            "storage.kind",
            matches!(config.storage, StorageConfig::Convex {}),
        ),
        (
            "profiles.kind",
            matches!(config.profiles, ProfilesConfig::Convex {}),
        ),
    ];
    for (dotted, convex) in uses {
        if convex {
            let message = "is \"convex\", but there is no [convex] section with the deployment's url and deploy_key".to_owned();
            findings.push((key(dotted), message));
        }
    }
}

fn check_agent(config: &Config, findings: &mut Vec<Finding>) {
    let agent = &config.agent;
    if agent.command.as_os_str().is_empty() {
        findings.push((key("agent.command"), "must not be empty".to_owned()));
    }
    for name in agent.env.keys() {
        if !is_variable_name(name) {
            let message = "is not an environment variable name (letters, digits, `_`)";
            findings.push((
                vec!["agent".into(), "env".into(), name.clone()],
                message.to_owned(),
            ));
        }
    }
    for (index, name) in agent.env_passthrough.iter().enumerate() {
        if !is_variable_name(name) {
            let message = format!("{name:?} is not an environment variable name");
            let path = vec!["agent".into(), "env_passthrough".into(), index.to_string()];
            findings.push((path, message));
        }
    }
}
