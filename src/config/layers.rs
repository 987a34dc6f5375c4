//! The layers of a config — built-in defaults, the file, `AGENT_RUNTIME__*` environment
//! variables, command-line flags — as figment providers, and the handling of the tagged
//! sections (`kind = "..."`, `mode = "..."`).

use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Tag, Value};
use figment::{Error, Metadata, Profile, Provider, Source};

use crate::config::CliOverrides;
use crate::config::interpolate::{expand, process_env};

/// Metadata name of the built-in defaults layer.
pub const DEFAULTS_LAYER: &str = "built-in defaults";
/// Metadata name of the environment layer.
pub const ENV_LAYER: &str = "environment";
/// Metadata name of the command-line layer.
pub const CLI_LAYER: &str = "command line";
/// Prefix of environment overrides; `__` separates the keys after it.
pub const ENV_PREFIX: &str = "AGENT_RUNTIME__";

/// The sections that choose a variant, and the key that names it.
pub const TAGGED_SECTIONS: [(&str, &str); 5] = [
    ("auth", "mode"),
    ("store", "kind"),
    ("storage", "kind"),
    ("profiles", "kind"),
    ("sandbox", "kind"),
];

/// One layer: a dictionary of values and where they came from.
#[derive(Clone, Debug)]
pub struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

impl Layer {
    /// Parses TOML text; `path` names the file in messages, `None` for text from code.
    pub fn toml(text: &str, path: Option<&Path>) -> Result<Self, String> {
        let dict = Toml::from_str::<Dict>(text)
            .map_err(|error| format!("invalid TOML: {}", error.to_string().trim_end()))?;
        let metadata = match path {
            Some(path) => Metadata::from("TOML file", Source::File(path.to_path_buf())),
            None => Metadata::named("config text"),
        };
        Ok(Self { metadata, dict })
    }

    /// The built-in defaults: the values set in the embedded example config. The example
    /// is fixed at build time and a test loads it, so it always parses.
    pub fn defaults() -> Self {
        let dict = Toml::from_str::<Dict>(crate::config::EXAMPLE).unwrap_or_default();
        Self {
            metadata: Metadata::named(DEFAULTS_LAYER),
            dict,
        }
    }

    /// `AGENT_RUNTIME__SECTION__KEY=value` variables of the process environment.
    ///
    /// Keys are lowercased, except the names under `agent.env`, which are environment
    /// variable names of the agent and keep their case. Values are read like figment
    /// reads them (`true`, `[a, b]`, `{k = v}`, `"quoted"`), except that a number only
    /// stays a number when it prints back the same, so `0123` remains the string `0123`.
    pub fn env() -> Self {
        let mut dict = Dict::new();
        for (key, raw) in Env::prefixed(ENV_PREFIX)
            .split("__")
            .lowercase(false)
            .iter()
        {
            let path = env_key_path(key.as_str());
            insert_path(&mut dict, &path, parse_env_value(&raw));
        }
        Self {
            metadata: Metadata::named(ENV_LAYER),
            dict,
        }
    }

    /// The command-line overrides.
    pub fn cli(overrides: &CliOverrides) -> Self {
        let mut dict = Dict::new();
        if let Some(listen) = overrides.listen {
            let path = ["server".to_owned(), "listen".to_owned()];
            insert_path(&mut dict, &path, Value::from(listen.to_string()));
        }
        Self {
            metadata: Metadata::named(CLI_LAYER),
            dict,
        }
    }

    /// Drops the defaults of every tagged section whose variant `user` chooses differently,
    /// so that, say, the default SQLite `url` does not leak into `kind = "memory"`.
    pub fn without_replaced_variants(mut self, user: &Value) -> Self {
        for (section, tag_key) in TAGGED_SECTIONS {
            let default_tag = tag_in(&self.dict, section, tag_key);
            let user_tag = user.find_ref(&format!("{section}.{tag_key}"));
            let replaced = match (user_tag, default_tag) {
                (None, _) => false,
                (Some(Value::String(_, chosen)), Some(default)) => {
                    // `kind = "${STORE_KIND}"` is compared by its expanded value; an
                    // expansion error is reported later, by the main pass.
                    let chosen = expand(chosen, &process_env).unwrap_or_else(|_| chosen.clone());
                    chosen != default
                }
                (Some(_), _) => true,
            };
            if replaced {
                self.dict.remove(section);
            }
        }
        self
    }
}

/// The string value of `section.tag_key` in `dict`.
fn tag_in(dict: &Dict, section: &str, tag_key: &str) -> Option<String> {
    match dict.get(section)?.find_ref(tag_key)? {
        Value::String(_, tag) => Some(tag.clone()),
        _ => None,
    }
}

/// `server.listen` → `["server", "listen"]`, lowercased except below `agent.env`.
fn env_key_path(key: &str) -> Vec<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let keeps_case = |index: usize| {
        index >= 2 && parts[0].eq_ignore_ascii_case("agent") && parts[1].eq_ignore_ascii_case("env")
    };
    parts
        .iter()
        .enumerate()
        .map(|(index, part)| match keeps_case(index) {
            true => (*part).to_owned(),
            false => part.to_ascii_lowercase(),
        })
        .collect()
}

/// Reads one environment value (see [`Layer::env`]).
fn parse_env_value(raw: &str) -> Value {
    let parsed: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.to_owned()));
    match parsed {
        Value::Num(..)
            if raw.trim().parse::<i128>().map(|n| n.to_string()) != Ok(raw.to_owned()) =>
        {
            Value::from(raw.to_owned())
        }
        other => other,
    }
}

/// Sets `path` in `dict`, creating tables on the way (a scalar in the way is replaced).
fn insert_path(dict: &mut Dict, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = dict;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::from(Dict::new()));
        if !matches!(entry, Value::Dict(..)) {
            *entry = Value::from(Dict::new());
        }
        let Value::Dict(_, next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

/// A tagged section that could not be turned into a variant.
#[derive(Clone, Debug)]
pub struct VariantError {
    /// The key at fault, as written in the config.
    pub path: Vec<String>,
    /// What was expected.
    pub message: String,
}

/// Turns each tagged section from the file's flat form `{kind = "s3", bucket = "b"}` into
/// serde's enum form `{s3 = {bucket = "b"}}`, keeping tags.
///
/// Serde's own internally tagged enums buffer the section before picking the variant, and
/// figment then loses the path of any error below it; with this rewrite every error keeps
/// its full key path (e.g. `store.max_connections`), with the variant in the path, which
/// [`user_path`] removes again.
pub fn select_variants(root: &mut Value) -> Result<(), Vec<VariantError>> {
    let Value::Dict(_, sections) = root else {
        return Ok(());
    };
    let mut errors = Vec::new();
    for (section, tag_key) in TAGGED_SECTIONS {
        let Some(value) = sections.get_mut(section) else {
            continue;
        };
        if let Err(error) = select_variant(value, section, tag_key) {
            errors.push(error);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn select_variant(value: &mut Value, section: &str, tag_key: &str) -> Result<(), VariantError> {
    let tag: Tag = value.tag();
    let Value::Dict(_, fields) = value else {
        return Err(VariantError {
            path: vec![section.to_owned()],
            message: format!("expected a table with a `{tag_key}` key"),
        });
    };
    let variant = match fields.remove(tag_key) {
        Some(Value::String(_, variant)) => variant,
        Some(other) => {
            return Err(VariantError {
                path: vec![section.to_owned(), tag_key.to_owned()],
                message: format!("expected a string, found {}", describe_value(&other)),
            });
        }
        None => {
            return Err(VariantError {
                path: vec![section.to_owned(), tag_key.to_owned()],
                message: "missing; this key is required".to_owned(),
            });
        }
    };
    let fields = std::mem::take(fields);
    let mut wrapper = Dict::new();
    wrapper.insert(variant, Value::Dict(tag, fields));
    *value = Value::Dict(tag, wrapper);
    Ok(())
}

/// A short description of a value's type for messages.
pub fn describe_value(value: &Value) -> String {
    match value {
        Value::String(_, text) => format!("string {text:?}"),
        Value::Char(_, c) => format!("character {c:?}"),
        Value::Bool(_, b) => format!("boolean {b}"),
        Value::Num(..) => "a number".to_owned(),
        Value::Empty(..) => "nothing".to_owned(),
        Value::Dict(..) => "a table".to_owned(),
        Value::Array(..) => "an array".to_owned(),
    }
}

/// Maps a path in the rewritten tree back to the key as written: drops the variant name
/// that [`select_variants`] put below each tagged section.
pub fn user_path(path: &[String]) -> Vec<String> {
    let tagged = path
        .first()
        .is_some_and(|first| TAGGED_SECTIONS.iter().any(|(section, _)| section == first));
    let mut user: Vec<String> = path.to_vec();
    if tagged && user.len() >= 2 {
        user.remove(1);
    }
    user
}

/// The tag key of a tagged section (`"kind"` for `store`), if `section` is one.
pub fn tag_key_of(section: &str) -> Option<&'static str> {
    TAGGED_SECTIONS
        .iter()
        .find(|(name, _)| *name == section)
        .map(|(_, tag_key)| *tag_key)
}
