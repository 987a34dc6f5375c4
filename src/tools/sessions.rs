//! Per-session bearer tokens for the MCP endpoint, and the tools each one unlocks.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::profiles::ToolSpec;

/// What one agent session may do over MCP: its profile's tools and its template variables.
#[derive(Debug, Clone)]
pub struct ToolSession {
    /// The agent session's id, reported with every tool failure.
    pub session_id: String,
    /// The tools this session sees, still unrendered.
    pub tools: Vec<ToolSpec>,
    /// Template variables as a JSON object: `SESSION_ID`, `AGENT_TYPE`, the metadata keys,
    /// `metadata` and the config's vars. `args` is bound per call and hides a key of that
    /// name.
    pub context: Value,
}

/// Issuing a token failed because the operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("could not read random bytes for a tool token: {0}")]
pub struct IssueError(String);

/// The live tokens, keyed by their SHA-256 so the tokens themselves are never kept.
///
/// Share it as `Arc<ToolSessions>` between the session manager (which issues and revokes)
/// and the `/mcp` router (which looks tokens up).
#[derive(Default)]
pub struct ToolSessions {
    /// Token hash → the session it unlocks and the MCP sessions opened with it. A std
    /// mutex: every critical section is a map operation, never held across an await.
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    /// Set by [`super::router`]: where the MCP sessions of a revoked token are closed.
    mcp_sessions: OnceLock<Arc<LocalSessionManager>>,
}

struct Entry {
    session: Arc<ToolSession>,
    /// `mcp-session-id`s the agent opened with this token, closed when it is revoked so
    /// no session worker outlives the agent session.
    mcp_ids: Vec<String>,
}

impl fmt::Debug for ToolSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hashes are not secret, but there is nothing useful to show either.
        f.debug_struct("ToolSessions")
            .field("tokens", &self.lock().len())
            .finish()
    }
}

impl ToolSessions {
    /// An empty registry.
    pub fn new() -> ToolSessions {
        ToolSessions::default()
    }

    /// Issues a fresh token for `session`: 32 random bytes as 64 hex digits.
    ///
    /// # Behavior
    /// - Only the token's SHA-256 is stored; the token is returned once.
    /// - A session may hold several tokens; each is revoked on its own or all at once by
    ///   [`ToolSessions::revoke_session`].
    pub fn issue(&self, session: ToolSession) -> Result<String, IssueError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| IssueError(e.to_string()))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let entry = Entry {
            session: Arc::new(session),
            mcp_ids: Vec::new(),
        };
        self.lock().insert(hash(&token), entry);
        Ok(token)
    }

    /// The session a token unlocks, if the token is live.
    pub fn lookup(&self, token: &str) -> Option<Arc<ToolSession>> {
        self.lock()
            .get(&hash(token))
            .map(|entry| entry.session.clone())
    }

    /// Revokes one token; `false` if it was not live.
    pub fn revoke(&self, token: &str) -> bool {
        let removed = self.lock().remove(&hash(token));
        let found = removed.is_some();
        self.close_mcp_sessions(removed.into_iter().collect());
        found
    }

    /// Revokes every token of an agent session; returns how many there were.
    pub fn revoke_session(&self, session_id: &str) -> usize {
        let removed: Vec<Entry> = {
            let mut entries = self.lock();
            let hashes: Vec<[u8; 32]> = entries
                .iter()
                .filter(|(_, entry)| entry.session.session_id == session_id)
                .map(|(hash, _)| *hash)
                .collect();
            hashes.iter().filter_map(|h| entries.remove(h)).collect()
        };
        let count = removed.len();
        self.close_mcp_sessions(removed);
        count
    }

    /// How many tokens are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no token is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remembers that an MCP session was opened with `token`, to close it on revocation.
    pub(crate) fn record_mcp_session(&self, token: &str, mcp_id: &str) {
        if let Some(entry) = self.lock().get_mut(&hash(token))
            && !entry.mcp_ids.iter().any(|id| id == mcp_id)
        {
            entry.mcp_ids.push(mcp_id.to_owned());
        }
    }

    /// Connects the registry to the MCP session manager; the first call wins.
    pub(crate) fn attach(&self, manager: Arc<LocalSessionManager>) {
        // A second router over the same registry keeps its sessions until they idle out.
        let _ = self.mcp_sessions.set(manager);
    }

    fn close_mcp_sessions(&self, removed: Vec<Entry>) {
        let ids: Vec<String> = removed.into_iter().flat_map(|e| e.mcp_ids).collect();
        let Some(manager) = self.mcp_sessions.get().cloned() else {
            return;
        };
        // Revocation is synchronous for its callers; closing needs the runtime. Without
        // one (a plain test thread) the sessions close themselves when they idle out.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if ids.is_empty() {
            return;
        }
        runtime.spawn(async move {
            for id in ids {
                // Already gone (the client sent DELETE) is fine.
                let _ = manager.close_session(&id.into()).await;
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding the lock cannot leave the map half-updated: every
        // critical section is a single map operation. So a poisoned lock is still sound.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> ToolSession {
        ToolSession {
            session_id: id.into(),
            tools: Vec::new(),
            context: serde_json::json!({ "SESSION_ID": id }),
        }
    }

    #[test]
    fn issue_lookup_revoke() {
        let sessions = ToolSessions::new();
        let token = sessions.issue(session("s1")).unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(sessions.lookup(&token).unwrap().session_id, "s1");
        assert!(sessions.lookup("not-a-token").is_none());
        assert!(sessions.lookup(&token.to_uppercase()).is_none());
        assert!(sessions.revoke(&token));
        assert!(sessions.lookup(&token).is_none());
        assert!(!sessions.revoke(&token));
    }

    #[test]
    fn tokens_are_distinct_and_revoked_per_session() {
        let sessions = ToolSessions::new();
        let a1 = sessions.issue(session("a")).unwrap();
        let a2 = sessions.issue(session("a")).unwrap();
        let b = sessions.issue(session("b")).unwrap();
        assert_ne!(a1, a2);
        assert_eq!(sessions.len(), 3);
        assert_eq!(sessions.revoke_session("a"), 2);
        assert!(sessions.lookup(&a1).is_none());
        assert!(sessions.lookup(&a2).is_none());
        assert_eq!(sessions.lookup(&b).unwrap().session_id, "b");
        assert_eq!(sessions.revoke_session("a"), 0);
    }

    #[test]
    fn only_the_hash_is_kept() {
        let sessions = ToolSessions::new();
        let token = sessions.issue(session("s")).unwrap();
        assert!(sessions.lock().contains_key(&hash(&token)));
        assert!(!format!("{sessions:?}").contains(&token));
    }
}
