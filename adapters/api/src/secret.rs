use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A string that must not end up in logs: a password, a key, a token.
///
/// Readable only through [`Secret::expose`]. `Debug` prints `[redacted]`; there is no
/// `Display` and no `Serialize`, so a secret cannot reach a log line or a dumped
/// configuration by accident. It deserializes from a string (or a number, as environment
/// overrides may arrive).
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for handing to the code that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `candidate` in time that depends only on the lengths, not on where
    /// the first difference is.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut difference = u8::from(expected.len() != candidate.len());
        for (index, byte) in candidate.iter().enumerate() {
            // Compare against the expected byte, or against itself past the end, so the
            // loop always runs over the whole candidate.
            let other = expected.get(index).copied().unwrap_or(!*byte);
            difference |= byte ^ other;
        }
        std::hint::black_box(difference) == 0
    }
}

/// Equality is [`Secret::matches`]: constant-time.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.0.as_bytes())
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret::new(value))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Secret, E> {
        Ok(Secret(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Secret, E> {
        Ok(Secret(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_its_value_and_compares_exactly() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert!(secret.matches(b"hunter2"));
        for wrong in [&b"hunter3"[..], b"hunter", b"hunter22", b"", b"\xff"] {
            assert!(!secret.matches(wrong), "{wrong:?}");
        }
        assert!(Secret::new("").matches(b""));
    }
}
