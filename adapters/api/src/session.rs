use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A session as persisted by a [`crate::SessionStore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Opaque, unique id (UUIDv7 when the runtime generates it).
    pub id: String,
    /// The principal that created the session and alone may see it.
    pub owner: String,
    /// The agent profile the session runs.
    pub agent_type: String,
    /// Where the session is in its life.
    pub status: SessionStatus,
    /// Application data given at create; a JSON object.
    pub metadata: serde_json::Value,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// When a client or the agent last did something in the session.
    pub last_activity_at: DateTime<Utc>,
    /// The seq of the last event in the session's log (0 when empty).
    pub last_seq: u64,
    /// The agent's own conversation id, used to resume it.
    pub agent_session_id: Option<String>,
    /// Tokens and cost so far.
    pub usage: Usage,
    /// The most the session may use; once its usage reaches a limit it takes no more
    /// messages until the budget is raised. Records stored before budgets existed have
    /// none, which is unlimited.
    #[serde(default)]
    pub budget: Budget,
    /// The session this one was forked from, and where; `None` for a session that was
    /// created. Records stored before forks existed have none.
    #[serde(default)]
    pub forked_from: Option<ForkedFrom>,
    /// Why the session failed, when it did.
    pub error: Option<SessionError>,
    /// Optimistic-concurrency version: 1 at create, +1 on every update.
    pub version: u64,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// The sandbox and the agent are being set up.
    Starting,
    /// The agent waits for a message.
    Idle,
    /// The agent works on a turn.
    Running,
    /// The agent's turn waits for a person: a permission request or a question of the
    /// agent's is pending, and a client answers it.
    Waiting,
    /// The session is being stopped (final sync under way).
    Stopping,
    /// No sandbox; files and transcript are stored; the session can be resumed.
    Stopped,
    /// Something failed; the record says what. The session may still be resumable.
    Failed,
}

impl SessionStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [SessionStatus; 7] = [
        SessionStatus::Starting,
        SessionStatus::Idle,
        SessionStatus::Running,
        SessionStatus::Waiting,
        SessionStatus::Stopping,
        SessionStatus::Stopped,
        SessionStatus::Failed,
    ];

    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Starting => "starting",
            SessionStatus::Idle => "idle",
            SessionStatus::Running => "running",
            SessionStatus::Waiting => "waiting",
            SessionStatus::Stopping => "stopping",
            SessionStatus::Stopped => "stopped",
            SessionStatus::Failed => "failed",
        }
    }

    /// Parses the name used on the wire and in storage.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a live sandbox belongs to a session in this status.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SessionStatus::Starting
                | SessionStatus::Idle
                | SessionStatus::Running
                | SessionStatus::Waiting
                | SessionStatus::Stopping
        )
    }
}

/// Tokens and cost of a session, summed over its turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Input tokens, including cache reads and writes.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in US dollars as the agent reported it.
    pub cost_usd: f64,
    /// Completed turns.
    pub turns: u64,
}

/// The most a session may use: each limit absent is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// The most cost in US dollars, as the agent reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// The most tokens, input and output together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The most completed turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u64>,
}

impl Budget {
    /// The first limit `usage` has reached, named as its field (`maxCostUsd`,
    /// `maxTokens`, `maxTurns`); `None` while the session may go on.
    pub fn reached(&self, usage: &Usage) -> Option<&'static str> {
        let tokens = usage.input_tokens.saturating_add(usage.output_tokens);
        if self.max_turns.is_some_and(|max| usage.turns >= max) {
            Some("maxTurns")
        } else if self.max_tokens.is_some_and(|max| tokens >= max) {
            Some("maxTokens")
        } else if self.max_cost_usd.is_some_and(|max| usage.cost_usd >= max) {
            Some("maxCostUsd")
        } else {
            None
        }
    }
}

/// Where a forked session came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkedFrom {
    /// The session it was forked from.
    pub session_id: String,
    /// The seq of the source's last persisted event when it was forked.
    pub seq: u64,
    /// The source's agent conversation that the fork continues: its transcript is
    /// stored with the fork's files until the fork has a transcript of its own. `None`
    /// when the source had no conversation to continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_session_id: Option<String>,
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionError {
    /// A stable error code (see the protocol's error codes).
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_reached_at_its_limit_not_before() {
        let usage = Usage {
            input_tokens: 60,
            output_tokens: 40,
            cost_usd: 0.5,
            turns: 2,
        };
        assert_eq!(Budget::default().reached(&usage), None);
        let turns = |max| Budget {
            max_turns: Some(max),
            ..Budget::default()
        };
        assert_eq!(turns(3).reached(&usage), None);
        assert_eq!(turns(2).reached(&usage), Some("maxTurns"));
        let tokens = |max| Budget {
            max_tokens: Some(max),
            ..Budget::default()
        };
        assert_eq!(tokens(101).reached(&usage), None);
        assert_eq!(tokens(100).reached(&usage), Some("maxTokens"));
        let cost = |max| Budget {
            max_cost_usd: Some(max),
            ..Budget::default()
        };
        assert_eq!(cost(0.51).reached(&usage), None);
        assert_eq!(cost(0.5).reached(&usage), Some("maxCostUsd"));
    }

    #[test]
    fn an_unlimited_budget_is_an_empty_object_and_a_missing_one_is_unlimited() {
        assert_eq!(serde_json::to_string(&Budget::default()).unwrap(), "{}");
        let budget = Budget {
            max_turns: Some(1),
            max_cost_usd: Some(0.25),
            max_tokens: None,
        };
        let json = serde_json::to_string(&budget).unwrap();
        assert_eq!(json, r#"{"maxCostUsd":0.25,"maxTurns":1}"#);
        assert_eq!(serde_json::from_str::<Budget>(&json).unwrap(), budget);
    }
}
