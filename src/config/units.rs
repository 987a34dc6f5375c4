//! Human-friendly value types of the config file: byte sizes, socket addresses and
//! free-form string maps. Durations are `agent_runtime_api::duration`, the one format
//! every adapter's config uses too.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// What a size must look like; shown in every size error.
const SIZE_EXPECTED: &str = r#"a size like "1MiB", "512KiB" or a number of bytes"#;

/// A number of bytes, written in the config as `"1MiB"`, `"512KiB"`, `"2GB"` or a plain
/// integer. Binary units (KiB, MiB, GiB) are powers of 1024, decimal ones (KB, MB, GB)
/// powers of 1000; units are case-insensitive and `B` means bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// One kibibyte, 1024 bytes.
    pub const KIB: u64 = 1024;
    /// One mebibyte, 1024 KiB.
    pub const MIB: u64 = 1024 * 1024;

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The size in bytes as `usize`, saturating on targets where it does not fit.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    /// Parses `"1MiB"`, `"512 KiB"`, `"100"`; the error says what went wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(digits_end);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?} does not start with a whole number"))?;
        let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" => Self::KIB,
            "mib" => Self::MIB,
            "gib" => 1024 * Self::MIB,
            "kb" => 1000,
            "mb" => 1000 * 1000,
            "gb" => 1000 * 1000 * 1000,
            other => return Err(format!("unknown unit {other:?} in {text:?}")),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    /// Prints the largest binary unit that divides the size exactly, e.g. `1MiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [
            (1024 * Self::MIB, "GiB"),
            (Self::MIB, "MiB"),
            (Self::KIB, "KiB"),
        ];
        for (size, unit) in units {
            if self.0 != 0 && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

/// Accepts a size string or a non-negative integer.
struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SIZE_EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<ByteSize, E> {
        u64::try_from(value)
            .map(ByteSize)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ByteSize, E> {
        ByteSize::parse(value).map_err(|problem| {
            E::custom(format!("invalid size: {problem}; expected {SIZE_EXPECTED}"))
        })
    }
}

/// `deserialize_with` helper for a listen address such as `127.0.0.1:4000` or `[::1]:4000`.
pub fn socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    deserializer.deserialize_any(SocketAddrVisitor)
}

/// Accepts an `IP:port` string; host names are refused because binding needs an address.
struct SocketAddrVisitor;

impl Visitor<'_> for SocketAddrVisitor {
    type Value = SocketAddr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an IP address and port like "127.0.0.1:4000" or "[::1]:4000""#)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<SocketAddr, E> {
        value
            .trim()
            .parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(value), &self))
    }
}

/// `deserialize_with` helper for a free-form map of strings. Integers, floats and booleans
/// are turned into their text, since `year = 2025` in a `[vars]` table means the string.
pub fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = BTreeMap::<String, ScalarText>::deserialize(deserializer)?;
    Ok(map.into_iter().map(|(key, value)| (key, value.0)).collect())
}

/// A scalar read as text.
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarTextVisitor)
    }
}

/// Turns any scalar into its text form.
struct ScalarTextVisitor;

impl Visitor<'_> for ScalarTextVisitor {
    type Value = ScalarText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }
}
