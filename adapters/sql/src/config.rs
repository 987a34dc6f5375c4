use std::fmt;
use std::time::Duration;

use agent_runtime_api::AdapterError;
use serde::Deserialize;

/// Where the store lives and how its connection pool is sized.
///
/// Fields left `None` keep the pool's defaults (10 connections at most, none kept open,
/// 30 s to wait for a free connection). `Debug` hides the URL's password.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStoreConfig {
    /// `sqlite://path/to/file.db`, `sqlite::memory:`, `postgres://user:pass@host/db` or
    /// `postgresql://...`. The scheme picks the dialect.
    pub url: String,
    /// Most connections the pool opens.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Connections the pool keeps open even when idle.
    #[serde(default)]
    pub min_connections: Option<u32>,
    /// How long a call waits for a free connection before failing as unavailable, as text
    /// such as `"5s"`.
    #[serde(
        default,
        deserialize_with = "agent_runtime_api::duration::optional_positive"
    )]
    pub acquire_timeout: Option<Duration>,
}

impl SqlStoreConfig {
    /// A config for `url` with the pool's defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The URL with its password replaced by `***`, fit for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact_secrets(&self.url)
    }
}

impl fmt::Debug for SqlStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStoreConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// The SQL dialects this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDialect {
    /// SQLite, through a bundled library.
    Sqlite,
    /// PostgreSQL, over the network.
    Postgres,
}

impl SqlDialect {
    /// Picks the dialect from the URL's scheme; an unknown scheme is `InvalidInput`.
    pub fn from_url(url: &str) -> Result<Self, AdapterError> {
        let scheme = url
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => Ok(SqlDialect::Sqlite),
            Some("postgres" | "postgresql") => Ok(SqlDialect::Postgres),
            _ => Err(AdapterError::invalid_input(format!(
                "store URL {} has no supported scheme; expected sqlite:, postgres: or postgresql:",
                redact_secrets(url)
            ))),
        }
    }

    /// The dialect's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            SqlDialect::Sqlite => "sqlite",
            SqlDialect::Postgres => "postgres",
        }
    }
}

/// Replaces passwords in `text` with `***`: the `user:password@` part of any URL and the
/// value of any `password=` parameter. Errors from the database driver may quote the URL,
/// so every message this crate produces goes through here.
pub(crate) fn redact_secrets(text: &str) -> String {
    redact_password_params(&redact_userinfo(text))
}

/// `scheme://user:secret@host` → `scheme://user:***@host`, for every URL in `text`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // A password may hold characters that should have been escaped, so the URL is
        // taken to run to the next blank or quote, and its last '@' ends the user info.
        // Cutting too much only hides more.
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .unwrap_or(tail.len());
        let url = &tail[..end];
        match url.rfind('@') {
            Some(at) => match url[..at].find(':') {
                Some(colon) => {
                    out.push_str(&url[..colon]);
                    out.push_str(":***");
                    out.push_str(&url[at..]);
                }
                None => out.push_str(url),
            },
            None => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `password=secret` → `password=***`, up to the next `&` or blank.
fn redact_password_params(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(KEY) {
        let (head, tail) = rest.split_at(pos + KEY.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | '`'))
            .unwrap_or(tail.len());
        out.push_str("***");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_follows_the_scheme() {
        let cases = [
            ("sqlite://data/x.db", Some(SqlDialect::Sqlite)),
            ("sqlite::memory:", Some(SqlDialect::Sqlite)),
            ("SQLite:x.db", Some(SqlDialect::Sqlite)),
            ("postgres://u@h/db", Some(SqlDialect::Postgres)),
            ("postgresql://u@h/db", Some(SqlDialect::Postgres)),
            ("mysql://u@h/db", None),
            ("data/x.db", None),
            ("", None),
        ];
        for (url, expected) in cases {
            assert_eq!(SqlDialect::from_url(url).ok(), expected, "{url}");
        }
    }

    #[test]
    fn unknown_scheme_names_the_choices_without_the_password() {
        let err = SqlDialect::from_url("mysql://root:hunter2@db/x").unwrap_err();
        let text = err.to_string();
        assert!(
            err.kind() == agent_runtime_api::ErrorKind::InvalidInput,
            "{err:?}"
        );
        assert!(
            text.contains("postgres:") && text.contains("sqlite:"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn passwords_are_redacted() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/x",
                "postgres://app:***@db:5432/x",
            ),
            ("postgres://app@db/x", "postgres://app@db/x"),
            ("postgres://app:p/a?s@db/x", "postgres://app:***@db/x"),
            (
                "postgres://db/x?password=s3cret&x=1",
                "postgres://db/x?password=***&x=1",
            ),
            (
                "failed: postgres://a:b@h/x and postgresql://c:d@h/y!",
                "failed: postgres://a:***@h/x and postgresql://c:***@h/y!",
            ),
            ("sqlite://data/x.db?mode=rwc", "sqlite://data/x.db?mode=rwc"),
            ("no url here", "no url here"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_secrets(input), expected, "{input}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let config = SqlStoreConfig::new("postgres://app:s3cret@db/x");
        let text = format!("{config:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("app:***@db"), "{text}");
    }

    #[test]
    fn config_deserializes_and_refuses_unknown_fields() {
        let config: SqlStoreConfig =
            serde_json::from_str(r#"{ "url": "sqlite::memory:", "max_connections": 3 }"#).unwrap();
        assert_eq!(config.max_connections, Some(3));
        assert_eq!(config.min_connections, None);
        let err = serde_json::from_str::<SqlStoreConfig>(r#"{ "url": "x", "pool": 3 }"#);
        assert!(err.is_err(), "unknown fields are refused");
    }
}
