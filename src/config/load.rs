//! The load pipeline: layers → merge → `${VAR}` expansion → variant selection →
//! typed config → relative paths → checks.

use std::path::PathBuf;

use figment::Figment;
use figment::value::Value;
use serde::Deserialize;

use crate::config::error::{ConfigError, Origins, Problem};
use crate::config::interpolate::{expand_tree, process_env};
use crate::config::layers::{self, Layer};
use crate::config::{Config, validate};

/// What to load: the user's layers, lowest precedence first, and the directory that
/// relative paths are resolved against.
pub struct Input {
    /// File, environment and command-line layers, in that order (each optional).
    pub layers: Vec<Layer>,
    /// Absolute directory of the config file.
    pub base_dir: PathBuf,
}

/// Runs the pipeline.
pub fn run(input: Input) -> Result<Config, ConfigError> {
    let figment = merge(&input.layers);
    let mut tree = merged_tree(&figment)?;
    let failures = expand_tree(&mut tree, &process_env);
    let origins = Origins {
        figment: &figment,
        tree: &tree,
    };
    if !failures.is_empty() {
        let problems = failures
            .iter()
            .map(|failure| origins.problem(&failure.path, failure.error.to_string()))
            .collect();
        return Err(ConfigError::new(problems));
    }
    let mut variants = tree.clone();
    layers::select_variants(&mut variants).map_err(|errors| {
        let problems = errors
            .iter()
            .map(|e| origins.problem(&e.path, e.message.clone()));
        ConfigError::new(problems.collect())
    })?;
    let mut config = Config::deserialize(&variants).map_err(|e| origins.deserialize_error(e))?;
    validate::resolve_paths(&mut config, &input.base_dir);
    let findings = validate::check(&config);
    if !findings.is_empty() {
        let problems = findings
            .iter()
            .map(|(path, message)| origins.problem(path, message.clone()));
        return Err(ConfigError::new(problems.collect()));
    }
    Ok(config)
}

/// Defaults, then each user layer on top. The defaults of a tagged section are left out
/// when the user picks another variant of it.
fn merge(user_layers: &[Layer]) -> Figment {
    let user = user_layers.iter().fold(Figment::new(), |figment, layer| {
        figment.merge(layer.clone())
    });
    let user_tree = user
        .find_value("")
        .unwrap_or_else(|_| Value::from(figment::value::Dict::new()));
    let defaults = Layer::defaults().without_replaced_variants(&user_tree);
    user_layers
        .iter()
        .fold(Figment::from(defaults), |figment, layer| {
            figment.merge(layer.clone())
        })
}

/// The merged values as one tree whose values carry their layer's tag.
fn merged_tree(figment: &Figment) -> Result<Value, ConfigError> {
    figment.find_value("").map_err(|error| {
        ConfigError::new(vec![Problem {
            location: "config".to_owned(),
            key: None,
            message: error.to_string(),
        }])
    })
}
