//! Tests of config loading. Tests that touch the process environment or the working
//! directory run inside `figment::Jail`, which serializes them and restores both.

mod errors;
mod layering;
mod values;

use std::path::Path;

use figment::Jail;

use crate::config::{CliOverrides, Config, ConfigError};

/// The name every jailed test gives its config file.
const FILE: &str = "agent-runtime.toml";

/// Writes `toml` as the config file in the jail and loads it.
fn load_in(jail: &mut Jail, toml: &str, overrides: &CliOverrides) -> Result<Config, ConfigError> {
    jail.create_file(FILE, toml).expect("write config file");
    Config::load(Path::new(FILE), overrides)
}

/// Runs `test` in a fresh `figment::Jail` (own temporary working directory, environment
/// restored afterwards, one jail at a time).
// The closure's error type is figment's, fixed by the Jail API.
#[allow(clippy::result_large_err)]
fn in_jail(test: impl FnOnce(&mut Jail)) {
    Jail::expect_with(|jail| {
        test(jail);
        Ok(())
    });
}

/// Loads `toml` as a file in a fresh jail with `env` set and returns the error text.
fn error_text(toml: &str, env: &[(&str, &str)]) -> String {
    let mut text = String::new();
    in_jail(|jail| {
        for (name, value) in env {
            jail.set_env(name, value);
        }
        text = match load_in(jail, toml, &CliOverrides::default()) {
            Ok(config) => format!("unexpectedly loaded: {config:?}"),
            Err(error) => error.to_string(),
        };
    });
    text
}
