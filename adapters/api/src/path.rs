use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest relative path accepted, in bytes.
const MAX_PATH_BYTES: usize = 1024;

/// A relative, normalized path that is safe to join onto a directory or a storage prefix.
///
/// Built only through [`RelPath::new`], which rejects anything that could escape its root:
/// absolute paths, `..` and `.` components, empty components, backslashes and NUL bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct PathError {
    /// The path as given (lossy if it held NUL bytes).
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl RelPath {
    /// Validates `path` as a relative path.
    ///
    /// # Behavior
    /// - `a/b.txt` is accepted as it is.
    /// - empty, absolute (`/x`), `..` or `.` components, `a//b`, a trailing `/`,
    ///   backslashes, NUL bytes and other control characters, and paths over 1024 bytes
    ///   are refused.
    pub fn new(path: &str) -> Result<Self, PathError> {
        let refuse = |reason| {
            Err(PathError {
                path: path.replace('\0', "\\0"),
                reason,
            })
        };
        if path.is_empty() {
            return refuse("empty path");
        }
        if path.len() > MAX_PATH_BYTES {
            return refuse("longer than 1024 bytes");
        }
        if path.contains('\0') {
            return refuse("contains a NUL byte");
        }
        if path.chars().any(char::is_control) {
            return refuse("contains a control character");
        }
        if path.contains('\\') {
            return refuse("contains a backslash");
        }
        if path.starts_with('/') {
            return refuse("absolute path");
        }
        for component in path.split('/') {
            match component {
                "" => return refuse("empty component"),
                "." | ".." => return refuse("dot component"),
                _ => {}
            }
        }
        Ok(RelPath(path.to_owned()))
    }

    /// The path as a string, components separated by `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Joins `other` below this path.
    pub fn join(&self, other: &RelPath) -> RelPath {
        RelPath(format!("{}/{}", self.0, other.0))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        RelPath::new(&raw).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<&str> for RelPath {
    type Error = PathError;

    fn try_from(path: &str) -> Result<Self, PathError> {
        RelPath::new(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        for ok in [
            "a",
            "a/b.txt",
            ".claude/settings.json",
            "dir/..hidden",
            "x y/z",
        ] {
            assert_eq!(RelPath::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_paths_that_could_escape() {
        let long = "a".repeat(1025);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            ".",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            "tab\there",
            "new\nline",
            "del\u{7f}",
            long.as_str(),
        ] {
            assert!(RelPath::new(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
