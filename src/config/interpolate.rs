//! `${VAR}` substitution in config strings.
//!
//! Runs on the merged config tree, so only values that survive the layering are expanded:
//! a `${VAR}` in the file that an environment override replaces is never looked up.

use figment::value::Value;

/// Why a string could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${NAME}` names a variable that is not set (or not valid Unicode).
    Missing(String),
    /// A `${` without its `}`.
    Unterminated,
    /// `${...}` whose content is not a variable name.
    InvalidName(String),
}

impl std::fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpolationError::Missing(name) => {
                write!(
                    f,
                    "environment variable {name} is not set (referenced as ${{{name}}})"
                )
            }
            InterpolationError::Unterminated => {
                f.write_str("`${` without a closing `}`; write `$${` for a literal `${`")
            }
            InterpolationError::InvalidName(name) => write!(
                f,
                "`${{{name}}}` is not a variable reference; names are letters, digits and `_`, \
                 and `$${{` writes a literal `${{`"
            ),
        }
    }
}

/// Expands every `${NAME}` in `text` with `lookup(NAME)`; `$${` stands for a literal `${`.
/// A `$` that starts neither is kept as it is.
pub fn expand(
    text: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(InterpolationError::Unterminated)?;
            let name = &tail[..end];
            if !is_variable_name(name) {
                return Err(InterpolationError::InvalidName(name.to_owned()));
            }
            let value = lookup(name).ok_or_else(|| InterpolationError::Missing(name.to_owned()))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a variable from the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether `name` is a portable environment variable name.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A failed expansion inside the config tree.
#[derive(Clone, Debug)]
pub struct TreeError {
    /// Dotted key path, as keys (array items by index).
    pub path: Vec<String>,
    /// What went wrong.
    pub error: InterpolationError,
}

/// Expands every string in `value` in place, keeping tags. Returns all failures, not just
/// the first, so `check` can list them together.
pub fn expand_tree(value: &mut Value, lookup: &impl Fn(&str) -> Option<String>) -> Vec<TreeError> {
    let mut errors = Vec::new();
    walk(value, &mut Vec::new(), lookup, &mut errors);
    errors
}

fn walk(
    value: &mut Value,
    path: &mut Vec<String>,
    lookup: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<TreeError>,
) {
    match value {
        Value::String(_, text) => match expand(text, lookup) {
            Ok(expanded) => *text = expanded,
            Err(error) => errors.push(TreeError {
                path: path.clone(),
                error,
            }),
        },
        Value::Dict(_, dict) => {
            for (key, child) in dict.iter_mut() {
                path.push(key.clone());
                walk(child, path, lookup, errors);
                path.pop();
            }
        }
        Value::Array(_, items) => {
            for (index, child) in items.iter_mut().enumerate() {
                path.push(index.to_string());
                walk(child, path, lookup, errors);
                path.pop();
            }
        }
        _ => {}
    }
}
