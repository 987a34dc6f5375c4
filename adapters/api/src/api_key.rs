use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An API key as a [`crate::SessionStore`] keeps it: its name and the hash of the key,
/// never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The key's unique name; the principal its holder acts as.
    pub name: String,
    /// Lowercase hex SHA-256 of the key. Unique: the key is found by it.
    pub key_hash: String,
    /// Whether the holder may list and act on every principal's sessions.
    pub admin: bool,
    /// Limits for this key that replace the configured defaults.
    pub quotas: QuotaOverrides,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
}

/// Per-principal limits. A `None` field keeps the configured default; `Some(0)` means
/// unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaOverrides {
    /// The most live sessions at once.
    pub max_live_sessions: Option<u32>,
    /// The most stored sessions (live or not).
    pub max_stored_sessions: Option<u32>,
    /// Session creates per minute.
    pub creates_per_minute: Option<u32>,
    /// Messages per minute.
    pub messages_per_minute: Option<u32>,
}
