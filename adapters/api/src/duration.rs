//! Durations as the configuration writes them: text such as `"30s"`, `"15m"` or
//! `"1h30m"` (humantime's syntax), never a bare number, which would leave the unit to
//! guesswork. The one duration format of the runtime's config and of every adapter's.
//!
//! ```
//! # use std::time::Duration;
//! #[derive(serde::Deserialize)]
//! struct Timeouts {
//!     /// May be zero ("0s": none).
//!     #[serde(with = "agent_runtime_api::duration")]
//!     idle: Duration,
//!     /// A timeout or an interval, where zero would mean a busy loop or an instant failure.
//!     #[serde(deserialize_with = "agent_runtime_api::duration::positive")]
//!     call: Duration,
//! }
//! let timeouts: Timeouts = serde_json::from_str(r#"{"idle": "0s", "call": "1m 30s"}"#).unwrap();
//! assert_eq!(timeouts.call, Duration::from_secs(90));
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serializer;
use serde::de::{self, Deserializer, Visitor};

/// What a duration must look like; shown in every duration error.
const EXAMPLES: &str = r#""30s", "15m" or "1h30m""#;

/// Parses a duration, zero included; the error says what was wrong and what is expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("invalid duration {text:?} ({error}); expected a duration like {EXAMPLES}")
    })
}

/// Parses a duration greater than zero.
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|error| {
        format!("invalid duration {text:?} ({error}); expected a duration greater than zero like {EXAMPLES}")
    })?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration {text:?}; expected a duration greater than zero like {EXAMPLES}"
        ));
    }
    Ok(duration)
}

/// Reads a duration, zero included (`#[serde(with = "agent_runtime_api::duration")]`).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor { positive: false })
}

/// Writes a duration as text, e.g. `"1m 30s"`.
pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*value))
}

/// Reads a duration greater than zero (`deserialize_with`).
pub fn positive<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor { positive: true })
}

/// Reads an optional duration greater than zero (`deserialize_with`); pair it with
/// `#[serde(default)]` so that a missing key means `None`.
pub fn optional_positive<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    positive(deserializer).map(Some)
}

/// Accepts duration text only.
struct DurationVisitor {
    positive: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.positive {
            true => write!(f, "a duration greater than zero like {EXAMPLES}"),
            false => write!(f, "a duration like {EXAMPLES}"),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
        match self.positive {
            true => parse_positive(value),
            false => parse(value),
        }
        .map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_refuses_numbers_and_zero_where_asked() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_positive("250ms"), Ok(Duration::from_millis(250)));
        assert!(
            parse_positive("0s")
                .unwrap_err()
                .contains("greater than zero")
        );
        assert!(parse("30").is_err());
        assert!(parse("").is_err());
        let number = serde_json::from_str::<Wrapped>(r#"{"value": 30}"#).unwrap_err();
        assert!(
            number
                .to_string()
                .contains(r#"expected a duration like "30s""#),
            "{number}"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    struct Wrapped {
        #[serde(with = "super")]
        #[allow(dead_code)]
        value: Duration,
    }
}
