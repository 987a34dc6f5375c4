//! The runtime's retry policies, by name: how long to wait between attempts at a write
//! that failed. Which failures are retried at all is decided where the write is made.

use std::time::Duration;

use agent_runtime_api::AdapterError;
use backon::ExponentialBuilder;

/// Attempts at a session store write that failed for another reason than an outage
/// before it is given up on.
pub(crate) const ATTEMPTS_ON_ERROR: usize = 20;

/// The session store is unreachable: waited out however long it lasts, with delays
/// growing from 50 ms to 5 s. Event appends and record saves never give up on an outage
/// (a client must not lose events to a restarting database).
pub(crate) const STORE_OUTAGE: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(50))
    .with_max_delay(Duration::from_secs(5))
    .without_max_times();

/// A record save: the delays of [`STORE_OUTAGE`], but only [`ATTEMPTS_ON_ERROR`]
/// attempts at a failure that is not an outage (see [`outage_waits`]).
pub(crate) const RECORD_SAVE: ExponentialBuilder =
    STORE_OUTAGE.with_max_times(ATTEMPTS_ON_ERROR - 1);

/// The final sync of a stopping session: storage that is down is tried again with delays
/// growing from 200 ms to 5 s, while the session's patience lasts.
pub(crate) const FINAL_SYNC: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_secs(5))
    .without_max_times();

/// The longest delay of [`STORE_OUTAGE`], the wait between attempts once an outage has
/// used up a bounded policy's attempts.
const OUTAGE_MAX_DELAY: Duration = Duration::from_secs(5);

/// For `Retry::adjust`: an outage keeps being retried after a bounded policy ran out, so
/// that a bound applies to other failures only.
pub(crate) fn outage_waits(error: &AdapterError, next: Option<Duration>) -> Option<Duration> {
    match next {
        None if error.is_transient() => Some(OUTAGE_MAX_DELAY),
        next => next,
    }
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder;

    use super::*;

    #[test]
    fn an_outage_is_waited_out_and_other_failures_are_not() {
        let delays: Vec<Duration> = STORE_OUTAGE.build().take(10).collect();
        assert_eq!(delays[0], Duration::from_millis(50));
        assert_eq!(delays[1].as_millis(), 100);
        assert_eq!(delays[9], OUTAGE_MAX_DELAY, "{delays:?}");
        assert_eq!(STORE_OUTAGE.build().nth(1000), Some(OUTAGE_MAX_DELAY));

        assert_eq!(RECORD_SAVE.build().count(), ATTEMPTS_ON_ERROR - 1);
        let down = AdapterError::unavailable("down");
        let broken = AdapterError::other("disk");
        assert_eq!(outage_waits(&down, None), Some(OUTAGE_MAX_DELAY));
        assert_eq!(outage_waits(&broken, None), None);
        let delay = Some(Duration::from_millis(50));
        assert_eq!(outage_waits(&broken, delay), delay);
    }
}
