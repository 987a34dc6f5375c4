//! Limits per principal: how many sessions it may have live and stored, and how fast it
//! may create sessions and send messages.
//!
//! Rates are token buckets: a principal with `n` per minute may use `n` at once, then one
//! more every `60/n` seconds. A refused request is told how many whole seconds to wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agent_runtime_api::QuotaOverrides;

use crate::error::{ErrorCode, RuntimeError};

/// Limits of one principal; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// The most live sessions.
    pub max_live_sessions: u32,
    /// The most stored sessions, live or not.
    pub max_stored_sessions: u32,
    /// Session creates per minute.
    pub creates_per_minute: u32,
    /// Messages per minute.
    pub messages_per_minute: u32,
}

impl QuotaLimits {
    /// These limits with a principal's own values in place of the defaults.
    pub fn with(self, overrides: &QuotaOverrides) -> Self {
        Self {
            max_live_sessions: overrides
                .max_live_sessions
                .unwrap_or(self.max_live_sessions),
            max_stored_sessions: overrides
                .max_stored_sessions
                .unwrap_or(self.max_stored_sessions),
            creates_per_minute: overrides
                .creates_per_minute
                .unwrap_or(self.creates_per_minute),
            messages_per_minute: overrides
                .messages_per_minute
                .unwrap_or(self.messages_per_minute),
        }
    }
}

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    Create,
    Message,
}

impl Action {
    fn plural(self) -> &'static str {
        match self {
            Action::Create => "session creates",
            Action::Message => "messages",
        }
    }
}

/// Buckets left untouched past this count are dropped, so that many principals seen once
/// do not grow the map for ever.
const MAX_BUCKETS: usize = 10_000;

/// Token buckets per principal and action.
#[derive(Default)]
pub(crate) struct RateLimiter {
    // A std Mutex: held for one map operation, never across an await.
    buckets: Mutex<HashMap<(Arc<str>, Action), Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes one token from the principal's bucket for `action`, or refuses with
    /// `rate_limited` and the seconds until a token is back. `per_minute` 0 is unlimited.
    pub(crate) fn take(
        &self,
        principal: &Arc<str>,
        action: Action,
        per_minute: u32,
    ) -> Result<(), RuntimeError> {
        if per_minute == 0 {
            return Ok(());
        }
        self.take_at(principal, action, per_minute, Instant::now())
    }

    fn take_at(
        &self,
        principal: &Arc<str>,
        action: Action,
        per_minute: u32,
        now: Instant,
    ) -> Result<(), RuntimeError> {
        let capacity = f64::from(per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() >= MAX_BUCKETS {
            // A bucket that has refilled is the same as no bucket.
            buckets.retain(|_, b| {
                now.duration_since(b.at).as_secs_f64() * per_second + b.tokens < capacity
            });
        }
        let bucket = buckets
            .entry((principal.clone(), action))
            .or_insert(Bucket {
                tokens: capacity,
                at: now,
            });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64;
        Err(RuntimeError::new(
            ErrorCode::RateLimited,
            format!(
                "more than {per_minute} {} per minute; retry in {wait} s",
                action.plural()
            ),
        )
        .with_retry_after(wait))
    }
}

/// The `quota_exceeded` error for a session limit.
pub(crate) fn exceeded(what: &str, limit: u32) -> RuntimeError {
    RuntimeError::new(
        ErrorCode::QuotaExceeded,
        format!("at most {limit} {what} per principal; stop or delete one first"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let defaults = QuotaLimits {
            max_live_sessions: 10,
            max_stored_sessions: 100,
            creates_per_minute: 30,
            messages_per_minute: 60,
        };
        let overrides = QuotaOverrides {
            max_live_sessions: Some(2),
            messages_per_minute: Some(0),
            ..Default::default()
        };
        let limits = defaults.with(&overrides);
        assert_eq!(limits.max_live_sessions, 2);
        assert_eq!(limits.max_stored_sessions, 100);
        assert_eq!(limits.creates_per_minute, 30);
        assert_eq!(limits.messages_per_minute, 0);
    }

    #[test]
    fn a_bucket_allows_a_burst_then_one_per_interval() {
        let limiter = RateLimiter::default();
        let alice: Arc<str> = "alice".into();
        let start = Instant::now();
        for _ in 0..3 {
            limiter.take_at(&alice, Action::Create, 3, start).unwrap();
        }
        let err = limiter
            .take_at(&alice, Action::Create, 3, start)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::RateLimited);
        assert_eq!(err.retry_after, Some(20), "3 per minute: one every 20 s");
        // Another action and another principal have their own buckets.
        limiter.take_at(&alice, Action::Message, 3, start).unwrap();
        limiter
            .take_at(&"bob".into(), Action::Create, 3, start)
            .unwrap();
        let later = start + Duration::from_secs(20);
        limiter.take_at(&alice, Action::Create, 3, later).unwrap();
        assert!(limiter.take_at(&alice, Action::Create, 3, later).is_err());
    }

    #[test]
    fn zero_is_unlimited() {
        let limiter = RateLimiter::default();
        for _ in 0..1000 {
            limiter.take(&"a".into(), Action::Message, 0).unwrap();
        }
    }
}
