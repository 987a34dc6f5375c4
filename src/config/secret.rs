//! A string that must not end up in logs: [`Secret`].

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use subtle::ConstantTimeEq;

/// A secret string (shared secret, access key, agent API key).
///
/// `Debug` and `Display` print `[redacted]`, so a secret can sit in a config struct that
/// is logged with `{:?}` without leaking. Read the value with [`Secret::expose`] only where
/// it is handed to the system that needs it; compare a client's credential with
/// [`Secret::matches`], which takes the same time however many bytes match.
///
/// In a config file a secret is a string; integers are accepted too because a value that
/// comes from an environment variable such as `12345` is read as a number first.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Every call site is a place where the value leaves the wrapper.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` equals the secret, compared in constant time.
    ///
    /// The time depends on the lengths only: a length mismatch returns early, which tells
    /// an attacker the length but nothing about the content.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts strings and integers; never echoes the value in an error.
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

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Secret, E> {
        Ok(Secret(value.to_string()))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Secret, E> {
        Ok(Secret(value.to_string()))
    }
}
