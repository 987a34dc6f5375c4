//! API keys: `agent-runtime keys create` makes one, the session store keeps its hash, and
//! [`ApiKeys`] turns a presented key into the principal named after it.
//!
//! A key is [`KEY_PREFIX`] followed by 64 hex digits (256 random bits). Only its SHA-256
//! is stored, so a copy of the store gives no usable key. Lookups are cached for
//! `auth.key_cache` (10 s by default): a key revoked by another process against the same
//! store stops working within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_runtime_api::{ApiKeyRecord, Secret, SessionStore};
use sha2::{Digest, Sha256};

use super::{Principal, unauthorized};
use crate::error::RuntimeError;

/// The prefix of every API key: tells a key from a JWT, and makes a leaked key easy to
/// find with a secret scanner.
pub const KEY_PREFIX: &str = "ark_";

/// The most characters in a key name.
pub const MAX_NAME_LEN: usize = 64;

/// The most lookups kept in the cache; when it is full it starts over, so a flood of
/// distinct keys cannot grow it.
const CACHE_ENTRIES: usize = 4096;

/// A new random key. Fails only if the operating system has no randomness to give.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{KEY_PREFIX}{}", hex(&bytes)))
}

/// The hash stored for `key`: lowercase hex SHA-256.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Checks a key name: 1 to 64 ASCII letters, digits, `.`, `_`, `-` or `@`, starting with a
/// letter or digit. The name becomes a principal id and appears in logs and listings.
pub fn validate_key_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a key name has 1 to {MAX_NAME_LEN} characters, found {}",
            name.len()
        ));
    }
    if !name.chars().all(allowed) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "a key name uses only ASCII letters, digits, `.`, `_`, `-` and `@`, and starts \
             with a letter or digit: {name:?}"
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Authenticates API keys against the session store, with a short cache.
pub struct ApiKeys {
    store: Arc<dyn SessionStore>,
    cache_for: Duration,
    // A std Mutex: held for one map operation, never across an await.
    cache: Mutex<HashMap<String, (ApiKeyRecord, Instant)>>,
}

impl ApiKeys {
    /// Keys from `store`; a found key is trusted for `cache_for` before it is looked up
    /// again. Unknown keys are never cached, so a new key works at once.
    pub fn new(store: Arc<dyn SessionStore>, cache_for: Duration) -> Self {
        Self {
            store,
            cache_for,
            cache: Mutex::default(),
        }
    }

    /// The principal named after the key, with the key's admin flag and limits.
    pub async fn authenticate(&self, key: &str) -> Result<Principal, RuntimeError> {
        let hash = hash_key(key);
        let record = match self.cached(&hash) {
            Some(record) => record,
            None => {
                let found = self
                    .store
                    .key_by_hash(&hash)
                    .await
                    .map_err(|e| RuntimeError::storage("looking up the API key", e))?;
                let Some(record) = found else {
                    return Err(unauthorized(true));
                };
                self.remember(&hash, &record);
                record
            }
        };
        // The store found it by hash; compare again in constant time so that a store
        // that matched loosely (a collation, a prefix index) cannot let a key through.
        if !Secret::new(record.key_hash.as_str()).matches(hash.as_bytes()) {
            return Err(unauthorized(true));
        }
        Ok(Principal {
            id: record.name.as_str().into(),
            admin: record.admin,
            quotas: record.quotas,
        })
    }

    fn cached(&self, hash: &str) -> Option<ApiKeyRecord> {
        let cache = self.cache.lock().unwrap();
        let (record, at) = cache.get(hash)?;
        (at.elapsed() < self.cache_for).then(|| record.clone())
    }

    fn remember(&self, hash: &str, record: &ApiKeyRecord) {
        if self.cache_for.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(hash.to_owned(), (record.clone(), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use agent_runtime_api::QuotaOverrides;
    use agent_runtime_api::memory::MemorySessionStore;

    use super::*;
    use crate::error::ErrorCode;

    fn record(name: &str, key: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            name: name.to_owned(),
            key_hash: hash_key(key),
            admin: false,
            quotas: QuotaOverrides {
                max_live_sessions: Some(3),
                ..Default::default()
            },
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn keys_are_long_random_and_prefixed() {
        let (a, b) = (generate_key().unwrap(), generate_key().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), hash_key(&b));
    }

    #[test]
    fn names_are_validated() {
        for good in ["alice", "svc.billing-2", "a", "team_x@prod"] {
            validate_key_name(good).unwrap();
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "-x",
            "has space",
            "ünïcode",
            "a/b",
            "a\nb",
            long.as_str(),
        ] {
            assert!(validate_key_name(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_stored_key_is_its_principal_and_others_are_refused() {
        let store = Arc::new(MemorySessionStore::new());
        let key = generate_key().unwrap();
        store.create_key(&record("alice", &key)).await.unwrap();
        let keys = ApiKeys::new(store, Duration::from_secs(10));
        let principal = keys.authenticate(&key).await.unwrap();
        assert_eq!(&*principal.id, "alice");
        assert!(!principal.admin);
        assert_eq!(principal.quotas.max_live_sessions, Some(3));
        let other = generate_key().unwrap();
        let err = keys.authenticate(&other).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
        assert!(!err.message.contains(&other));
    }

    #[tokio::test]
    async fn a_revoked_key_stops_working_once_the_cache_expires() {
        let store = Arc::new(MemorySessionStore::new());
        let key = generate_key().unwrap();
        store.create_key(&record("alice", &key)).await.unwrap();
        let keys = ApiKeys::new(store.clone(), Duration::from_millis(200));
        keys.authenticate(&key).await.unwrap();
        store.revoke_key("alice").await.unwrap();
        // Within the cache time the key may still work; after it, never.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let err = keys.authenticate(&key).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
    }

    #[tokio::test]
    async fn without_a_cache_revocation_is_immediate() {
        let store = Arc::new(MemorySessionStore::new());
        let key = generate_key().unwrap();
        store.create_key(&record("alice", &key)).await.unwrap();
        let keys = ApiKeys::new(store.clone(), Duration::ZERO);
        keys.authenticate(&key).await.unwrap();
        store.revoke_key("alice").await.unwrap();
        assert!(keys.authenticate(&key).await.is_err());
    }
}
