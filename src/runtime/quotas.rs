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

/// The map is swept of full buckets when it grows to this size, or to twice what the last
/// sweep left, whichever is more: a sweep then costs O(1) per insert on average, and the
/// buckets of many principals seen once do not stay for ever.
const SWEEP_AT: usize = 10_000;

/// Token buckets per principal and action.
pub(crate) struct RateLimiter {
    // A std Mutex: held for one map operation (or a sweep), never across an await.
    state: Mutex<Buckets>,
}

struct Buckets {
    by_key: HashMap<(Arc<str>, Action), Bucket>,
    /// The size at which the next sweep runs.
    sweep_at: usize,
}

/// One principal's bucket for one action, with the limit it was last used with: it is
/// judged by its own limit, never by another principal's or action's.
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_second: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: u32, now: Instant) -> Self {
        let capacity = f64::from(per_minute);
        Bucket {
            tokens: capacity,
            capacity,
            per_second: capacity / 60.0,
            at: now,
        }
    }

    /// The tokens at `now`, refilled at the bucket's own rate up to its own capacity.
    fn tokens_at(&self, now: Instant) -> f64 {
        let refilled = now.duration_since(self.at).as_secs_f64() * self.per_second;
        (self.tokens + refilled).min(self.capacity)
    }

    /// A full bucket is the same as no bucket: dropping it changes nothing.
    fn is_full_at(&self, now: Instant) -> bool {
        self.tokens_at(now) >= self.capacity
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            state: Mutex::new(Buckets {
                by_key: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }
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
        let mut state = self.state.lock().unwrap();
        if state.by_key.len() >= state.sweep_at {
            state.by_key.retain(|_, bucket| !bucket.is_full_at(now));
            state.sweep_at = SWEEP_AT.max(state.by_key.len() * 2);
        }
        let bucket = state
            .by_key
            .entry((principal.clone(), action))
            .or_insert_with(|| Bucket::new(per_minute, now));
        bucket.tokens = bucket.tokens_at(now);
        bucket.at = now;
        // The principal's limit may have changed (a key's quotas were edited).
        let limit = Bucket::new(per_minute, now);
        bucket.capacity = limit.capacity;
        bucket.per_second = limit.per_second;
        bucket.tokens = bucket.tokens.min(bucket.capacity);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.tokens) / bucket.per_second).ceil().max(1.0) as u64;
        Err(RuntimeError::new(
            ErrorCode::RateLimited,
            format!(
                "more than {per_minute} {} per minute; retry in {wait} s",
                action.plural()
            ),
        )
        .with_retry_after(wait))
    }

    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.state.lock().unwrap().by_key.len()
    }

    #[cfg(test)]
    fn next_sweep_at(&self) -> usize {
        self.state.lock().unwrap().sweep_at
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
    fn a_sweep_judges_each_bucket_by_its_own_limit() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let alice: Arc<str> = "alice".into();
        // Alice, 10 a minute, has 1 left.
        for _ in 0..9 {
            limiter.take_at(&alice, Action::Message, 10, start).unwrap();
        }
        // Others fill the map to the sweep, the last of them with 1 a minute: Alice's
        // bucket (1 token, far from its 10) must not be judged full by that limit.
        for n in 0..SWEEP_AT {
            let other: Arc<str> = format!("p{n}").into();
            limiter.take_at(&other, Action::Create, 1, start).unwrap();
        }
        assert!(
            limiter.buckets() > SWEEP_AT,
            "no bucket was full: none dropped"
        );
        // A sweep that freed nothing is not repeated on the next calls.
        assert_eq!(limiter.next_sweep_at(), 2 * SWEEP_AT);
        limiter.take_at(&alice, Action::Message, 10, start).unwrap();
        let err = limiter.take_at(&alice, Action::Message, 10, start);
        assert_eq!(err.unwrap_err().code, ErrorCode::RateLimited);
    }

    #[test]
    fn only_full_buckets_are_swept_and_not_on_every_call() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        // Half the sweep size of buckets that refill in a minute, half that stay used.
        for n in 0..SWEEP_AT {
            let principal: Arc<str> = format!("p{n}").into();
            let per_minute = if n % 2 == 0 { 60 } else { 1 };
            limiter
                .take_at(&principal, Action::Message, per_minute, start)
                .unwrap();
        }
        assert_eq!(limiter.buckets(), SWEEP_AT);
        // Two seconds later the 60-a-minute buckets are full again, the others are not.
        let later = start + Duration::from_secs(2);
        limiter
            .take_at(&"new".into(), Action::Message, 60, later)
            .unwrap();
        assert_eq!(limiter.buckets(), SWEEP_AT / 2 + 1);
        // The next sweep waits for the map to reach 10 000 again: the half left, doubled.
        let much_later = start + Duration::from_secs(3600);
        for n in 0..SWEEP_AT / 2 - 2 {
            let principal: Arc<str> = format!("q{n}").into();
            limiter
                .take_at(&principal, Action::Message, 60, much_later)
                .unwrap();
        }
        assert_eq!(limiter.buckets(), SWEEP_AT - 1, "no sweep yet");
        limiter
            .take_at(&"last".into(), Action::Message, 60, much_later)
            .unwrap();
        limiter
            .take_at(&"after".into(), Action::Message, 60, much_later)
            .unwrap();
        // The sweep at 10 000 dropped every bucket full by then: all but the new ones.
        assert_eq!(limiter.buckets(), SWEEP_AT / 2);
    }

    #[test]
    fn zero_is_unlimited() {
        let limiter = RateLimiter::default();
        for _ in 0..1000 {
            limiter.take(&"a".into(), Action::Message, 0).unwrap();
        }
    }
}
