//! Config errors that name the source (file, environment variable or flag), the key and
//! what was expected.

use std::fmt;

use figment::error::Kind;
use figment::value::Value;
use figment::{Figment, Source};

use crate::config::layers::{self, CLI_LAYER, ENV_LAYER, ENV_PREFIX};

/// Why a config could not be loaded: one or more [`Problem`]s. `Display` prints one
/// problem per line, ready for an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    /// An error with the given problems (at least one is expected).
    pub fn new(problems: Vec<Problem>) -> Self {
        Self { problems }
    }

    /// The individual problems, in the order they were found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// One thing wrong with a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where the offending value came from: a file path, `environment variable NAME`,
    /// `command-line flag --NAME` or `built-in defaults`.
    pub location: String,
    /// The dotted key path (`server.listen`), when the problem is about one key.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.location, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

/// Finds where keys came from: the merged figment (layer metadata) and the merged tree
/// as written (before tagged sections were rewritten), whose values carry layer tags.
pub struct Origins<'a> {
    /// The figment whose metadata the tags refer to.
    pub figment: &'a Figment,
    /// The merged, interpolated tree in the shape of the config file.
    pub tree: &'a Value,
}

impl Origins<'_> {
    /// A problem about `path` (keys as written in the config).
    pub fn problem(&self, path: &[String], message: impl Into<String>) -> Problem {
        Problem {
            location: self.locate(path),
            key: (!path.is_empty()).then(|| path.join(".")),
            message: message.into(),
        }
    }

    /// Converts a deserialization error (paths in the rewritten tree) into problems.
    pub fn deserialize_error(&self, error: figment::Error) -> ConfigError {
        ConfigError::new(error.into_iter().map(|e| self.figment_problem(e)).collect())
    }

    fn figment_problem(&self, error: figment::Error) -> Problem {
        let mut path = layers::user_path(&error.path);
        let message = match &error.kind {
            Kind::UnknownField(_, []) => match self.choice(&path) {
                Some(choice) => format!("unknown key; {choice} takes no other keys"),
                None => "unknown key; no keys are accepted here".to_owned(),
            },
            Kind::UnknownField(_, expected) => {
                format!("unknown key; expected {}", one_of(expected))
            }
            Kind::MissingField(field) => {
                path.push(field.to_string());
                "missing; this key is required".to_owned()
            }
            Kind::UnknownVariant(found, expected) => {
                if let [section] = path.as_slice()
                    && let Some(tag_key) = layers::tag_key_of(section)
                {
                    path.push(tag_key.to_owned());
                }
                format!("unknown value {found:?}; expected {}", one_of(expected))
            }
            Kind::InvalidType(actual, expected) => {
                format!("expected {}, found {actual}", plain_expected(expected))
            }
            Kind::InvalidValue(actual, expected) => {
                format!(
                    "invalid value {actual}; expected {}",
                    plain_expected(expected)
                )
            }
            Kind::Message(message) => message.clone(),
            other => other.to_string(),
        };
        self.problem(&path, message)
    }

    /// `kind = "memory"` for a path inside a tagged section, as chosen in the tree.
    fn choice(&self, path: &[String]) -> Option<String> {
        let section = path.first()?;
        let tag_key = layers::tag_key_of(section)?;
        match self.tree.find_ref(&format!("{section}.{tag_key}"))? {
            Value::String(_, chosen) => Some(format!("{tag_key} = {chosen:?}")),
            _ => None,
        }
    }

    /// Names the layer that set `path`, or the closest table above it that exists.
    pub fn locate(&self, path: &[String]) -> String {
        let mut node = self.tree;
        let mut depth = 0;
        for key in path {
            let child = match node {
                Value::Dict(_, dict) => dict.get(key),
                Value::Array(_, items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            let Some(child) = child else { break };
            node = child;
            depth += 1;
        }
        let Some(metadata) = self.figment.get_metadata(node.tag()) else {
            return "config".to_owned();
        };
        let found = &path[..depth];
        match (metadata.name.as_ref(), &metadata.source) {
            (ENV_LAYER, _) => env_variable(found, matches!(node, Value::Dict(..))),
            (CLI_LAYER, _) => match found.last() {
                Some(flag) => format!("command-line flag --{flag}"),
                None => CLI_LAYER.to_owned(),
            },
            (_, Some(Source::File(file))) => file.display().to_string(),
            (name, _) => name.to_owned(),
        }
    }
}

/// `environment variable AGENT_RUNTIME__SERVER__LISTEN`, or `..._STORE__*` for a table.
fn env_variable(path: &[String], is_table: bool) -> String {
    let name = path.join("__").to_ascii_uppercase();
    let wildcard = if is_table { "__*" } else { "" };
    format!("environment variable {ENV_PREFIX}{name}{wildcard}")
}

/// Serde names primitive types the Rust way (`u32`); operators read "a whole number".
fn plain_expected(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a sequence" => "an array",
        "a map" => "a table",
        other if other.starts_with("struct ") => "a table",
        other => other,
    }
}

/// "one of `a`, `b`" or "`a`".
fn one_of(expected: &[&str]) -> String {
    let quoted: Vec<String> = expected.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [only] => only.clone(),
        _ => format!("one of {}", quoted.join(", ")),
    }
}
