//! The configuration of the Convex adapters: where the deployment is, the deploy key, the
//! names of the Convex functions to call, and timeouts.

use std::time::Duration;

use serde::Deserialize;

/// How to reach a Convex deployment.
///
/// Read from a table of the runtime configuration, e.g.
///
/// ```toml
/// url = "https://happy-otter-123.convex.cloud"
/// deploy_key = "${CONVEX_DEPLOY_KEY}"
/// timeout = "30s"
///
/// [functions]
/// sessions_create = "myApp/agentSessions:create"   # only where the deployment differs
/// ```
///
/// Unknown fields are refused when the configuration is read. `Debug` hides the key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvexConfig {
    /// The deployment URL, `https://<deployment>.convex.cloud` (not the `.convex.site`
    /// host of HTTP actions).
    pub url: String,
    /// The deploy key (`prod:<deployment>|<secret>`), sent as `Authorization: Convex <key>`.
    pub deploy_key: Secret,
    /// The Convex functions the adapters call; each defaults to the function of the same
    /// purpose shipped in this crate's `convex/agentRuntime/` folder.
    #[serde(default)]
    pub functions: FunctionNames,
    /// How long one function call may take, e.g. `"30s"` (default 30 s).
    #[serde(
        default = "default_timeout",
        deserialize_with = "agent_runtime_api::duration::deserialize"
    )]
    pub timeout: Duration,
    /// How long one file upload or download may take (default 2 min, Convex's own limit
    /// for an upload).
    #[serde(
        default = "default_transfer_timeout",
        deserialize_with = "agent_runtime_api::duration::deserialize"
    )]
    pub transfer_timeout: Duration,
    /// How often a failed call is retried when the failure is transient (default 3).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// The wait before the first retry, doubled for each further one (default 100 ms).
    #[serde(
        default = "default_retry_backoff",
        deserialize_with = "agent_runtime_api::duration::deserialize"
    )]
    pub retry_backoff: Duration,
    /// Allow a plain `http://` URL on a non-loopback host. Off by default, so the deploy
    /// key is not sent in the clear by mistake; loopback addresses are always allowed.
    #[serde(default)]
    pub allow_http: bool,
}

impl ConvexConfig {
    /// A configuration for `url` and `deploy_key` with every other setting at its default.
    pub fn new(url: impl Into<String>, deploy_key: Secret) -> Self {
        ConvexConfig {
            url: url.into(),
            deploy_key,
            functions: FunctionNames::default(),
            timeout: default_timeout(),
            transfer_timeout: default_transfer_timeout(),
            max_retries: default_max_retries(),
            retry_backoff: default_retry_backoff(),
            allow_http: false,
        }
    }
}

/// The Convex function paths the adapters call (`dir/module:function`).
///
/// Every field defaults to the function shipped in `convex/agentRuntime/`; a deployment
/// that names its functions differently overrides only those.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionNames {
    /// Mutation `{record}` → null; stores a record at version 1, `CONFLICT` if it exists.
    pub sessions_create: String,
    /// Query `{sessionId}` → record or null.
    pub sessions_get: String,
    /// Mutation `{record}` → new version; `NOT_FOUND`, or `CONFLICT` on a stale version.
    pub sessions_update: String,
    /// Query `{owner, agentType, statuses, after, limit}` → `{sessions, nextCursor}`.
    pub sessions_list: String,
    /// Mutation `{sessionId}` → `{done}`; deletes a step of the log, then the record.
    pub sessions_remove: String,
    /// Mutation `{sessionId, events}` → `{inserted}`; one batch, idempotent per seq.
    pub events_append: String,
    /// Query `{sessionId, after, limit}` → `{events, isDone}`.
    pub events_after: String,
    /// Mutation `{}` → an upload URL.
    pub blobs_generate_upload_url: String,
    /// Mutation `{key, storageId, size}` → null; records an uploaded file under `key`.
    pub blobs_commit: String,
    /// Query `{key}` → `{storageId, size, modifiedAt, url}` or null.
    pub blobs_get: String,
    /// Query `{prefix, after, limit}` → `{blobs: [{key, size, modifiedAt}], isDone}`.
    pub blobs_list: String,
    /// Mutation `{key}` → null.
    pub blobs_remove: String,
    /// Mutation `{prefix}` → `{done}`; deletes a step of the blobs under `prefix`.
    pub blobs_remove_prefix: String,
    /// Query `{}` → every profile name, sorted.
    pub profiles_list: String,
    /// Query `{name}` → `{name, manifest, files: [{path, contentBase64, executable}]}` or null.
    pub profiles_get: String,
    /// Mutation `{profile}` → null; stores or replaces a profile.
    pub profiles_put: String,
    /// Mutation `{name}` → null; deletes a profile.
    pub profiles_remove: String,
    /// Query `{}` → null; shows that the deployment answers and accepts the key.
    pub ping: String,
    /// Mutation `{key}` → null; stores an API key, `CONFLICT` if its name or hash exists.
    pub api_keys_create: String,
    /// Query `{keyHash}` → key or null.
    pub api_keys_by_hash: String,
    /// Query `{}` → every key, ordered by name.
    pub api_keys_list: String,
    /// Mutation `{name}` → whether a key was deleted.
    pub api_keys_revoke: String,
}

impl Default for FunctionNames {
    fn default() -> Self {
        let name = |module: &str, function: &str| format!("agentRuntime/{module}:{function}");
        FunctionNames {
            sessions_create: name("sessions", "create"),
            sessions_get: name("sessions", "get"),
            sessions_update: name("sessions", "update"),
            sessions_list: name("sessions", "list"),
            sessions_remove: name("sessions", "remove"),
            events_append: name("events", "append"),
            events_after: name("events", "after"),
            blobs_generate_upload_url: name("blobs", "generateUploadUrl"),
            blobs_commit: name("blobs", "commit"),
            blobs_get: name("blobs", "get"),
            blobs_list: name("blobs", "list"),
            blobs_remove: name("blobs", "remove"),
            blobs_remove_prefix: name("blobs", "removePrefix"),
            profiles_list: name("profiles", "list"),
            profiles_get: name("profiles", "get"),
            profiles_put: name("profiles", "put"),
            profiles_remove: name("profiles", "remove"),
            ping: name("health", "ping"),
            api_keys_create: name("apiKeys", "create"),
            api_keys_by_hash: name("apiKeys", "byHash"),
            api_keys_list: name("apiKeys", "list"),
            api_keys_revoke: name("apiKeys", "revoke"),
        }
    }
}

pub use agent_runtime_api::Secret;

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_transfer_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_max_retries() -> u32 {
    3
}

fn default_retry_backoff() -> Duration {
    Duration::from_millis(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ConvexConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_fill_everything_but_url_and_key() {
        let config = parse(r#"{"url":"https://a.convex.cloud","deploy_key":"prod:a|s"}"#)
            .expect("minimal config");
        assert_eq!(
            config,
            ConvexConfig::new("https://a.convex.cloud", Secret::new("prod:a|s"))
        );
        assert_eq!(
            config.functions.sessions_create,
            "agentRuntime/sessions:create"
        );
        assert_eq!(config.functions.ping, "agentRuntime/health:ping");
        assert_eq!(config.timeout, Duration::from_secs(30));
    }

    #[test]
    fn reads_overrides() {
        let config = parse(
            r#"{"url":"u","deploy_key":"k","timeout":"5s","retry_backoff":"10ms",
                "functions":{"sessions_get":"x/y:z"}}"#,
        )
        .unwrap();
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.retry_backoff, Duration::from_millis(10));
        assert_eq!(config.functions.sessions_get, "x/y:z");
        assert_eq!(
            config.functions.sessions_list, "agentRuntime/sessions:list",
            "the others keep their defaults"
        );
    }

    #[test]
    fn refuses_unknown_fields_and_bad_durations() {
        for bad in [
            r#"{"url":"u","deploy_key":"k","deployKey":"k"}"#,
            r#"{"url":"u","deploy_key":"k","functions":{"sessions_gte":"x"}}"#,
            r#"{"url":"u","deploy_key":"k","timeout":"soon"}"#,
            r#"{"url":"u"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
        let err = parse(r#"{"url":"u","deploy_key":"k","timeout":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains("30s"), "{err}");
    }

    #[test]
    fn debug_hides_the_key() {
        let config = ConvexConfig::new("https://a.convex.cloud", Secret::new("prod:a|hunter2"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
