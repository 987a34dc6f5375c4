//! Value-level behaviour: `${VAR}` expansion, sizes, durations, SQLite URLs, secrets.

use std::path::Path;
use std::time::Duration;

use super::{in_jail, load_in};
use crate::config::interpolate::{InterpolationError, expand};
use crate::config::validate::resolve_sqlite_url;
use crate::config::{ByteSize, CliOverrides, Config, Secret, StoreConfig};
use agent_runtime_api::duration::parse_positive as parse_duration;

fn lookup(name: &str) -> Option<String> {
    match name {
        "USER" => Some("ada".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

#[test]
fn expansion_table() {
    let cases: &[(&str, Result<&str, InterpolationError>)] = &[
        ("plain", Ok("plain")),
        ("${USER}", Ok("ada")),
        ("a-${USER}-${USER}-b", Ok("a-ada-ada-b")),
        ("[${EMPTY}]", Ok("[]")),
        ("$${USER}", Ok("${USER}")),
        // Scanning left to right: a lone `$`, then the escape `$${`.
        ("$$${USER}", Ok("$${USER}")),
        ("cost: $5 and $HOME", Ok("cost: $5 and $HOME")),
        ("trailing $", Ok("trailing $")),
        (
            "${NOPE}",
            Err(InterpolationError::Missing("NOPE".to_owned())),
        ),
        ("${USER", Err(InterpolationError::Unterminated)),
        ("${}", Err(InterpolationError::InvalidName(String::new()))),
        (
            "${A-B}",
            Err(InterpolationError::InvalidName("A-B".to_owned())),
        ),
    ];
    for (input, expected) in cases {
        let actual = expand(input, &lookup);
        assert_eq!(
            actual.as_deref().map_err(Clone::clone),
            expected.clone(),
            "input {input:?}"
        );
    }
}

#[test]
fn expansion_reaches_every_string_and_skips_overridden_values() {
    in_jail(|jail| {
        jail.set_env("CFG_TEST_TOKEN", "tok");
        jail.set_env("CFG_TEST_REGION", "eu");
        // The file's listen references a missing variable, but the flag replaces it.
        jail.set_env("AGENT_RUNTIME__VARS__FROM_ENV", "${CFG_TEST_REGION}-1");
        let toml = "[server]\nlisten = \"${CFG_TEST_MISSING}\"\n\
                    [auth]\nmode = \"shared-secret\"\nsecret = \"${CFG_TEST_TOKEN}\"\n\
                    [agent]\nargs = [\"--region\", \"${CFG_TEST_REGION}\"]\n\
                    [agent.env]\nTOKEN = \"Bearer ${CFG_TEST_TOKEN}\"\n\
                    [vars]\nliteral = \"$${CFG_TEST_TOKEN}\"\n";
        let overrides = CliOverrides {
            listen: Some("127.0.0.1:9".parse().expect("address")),
        };
        let config = load_in(jail, toml, &overrides).expect("config loads");
        let crate::config::AuthConfig::SharedSecret(shared) = &config.auth else {
            panic!("expected shared-secret");
        };
        assert_eq!(shared.secret.expose(), "tok");
        assert_eq!(config.agent.args, ["--region", "eu"]);
        assert_eq!(config.agent.env["TOKEN"].expose(), "Bearer tok");
        assert_eq!(config.vars["literal"], "${CFG_TEST_TOKEN}");
        assert_eq!(config.vars["from_env"], "eu-1");
    });
}

#[test]
fn every_missing_variable_is_reported() {
    let toml = "[vars]\na = \"${CFG_TEST_NONE_A}\"\nb = \"${CFG_TEST_NONE_B}\"\n";
    let error = Config::from_toml_str(toml, Path::new("/")).expect_err("both missing");
    let keys: Vec<_> = error.problems().iter().map(|p| p.key.clone()).collect();
    assert_eq!(keys, [Some("vars.a".to_owned()), Some("vars.b".to_owned())]);
    assert_eq!(error.problems()[0].location, "config text");
}

#[test]
fn sizes() {
    let cases: &[(&str, Option<u64>)] = &[
        ("1MiB", Some(1 << 20)),
        ("512KiB", Some(512 << 10)),
        ("512 kib", Some(512 << 10)),
        ("2GB", Some(2_000_000_000)),
        ("100", Some(100)),
        ("100B", Some(100)),
        ("1.5MiB", None),
        ("MiB", None),
        ("-1", None),
        ("99999999999999GiB", None),
    ];
    for (input, expected) in cases {
        assert_eq!(
            ByteSize::parse(input).ok().map(ByteSize::bytes),
            *expected,
            "input {input:?}"
        );
    }
    assert_eq!(ByteSize(1 << 20).to_string(), "1MiB");
    assert_eq!(ByteSize(64 * 1024).to_string(), "64KiB");
    assert_eq!(ByteSize(1536).to_string(), "1536B");
}

#[test]
fn sizes_may_be_integers_in_the_file() {
    let config =
        Config::from_toml_str("[server]\nmax_payload = 70000\n", Path::new("/")).expect("loads");
    assert_eq!(config.server.max_payload.bytes(), 70_000);
}

#[test]
fn the_console_switch_is_unset_by_default() {
    let config = Config::from_toml_str("", Path::new("/")).expect("loads");
    assert_eq!(config.server.console, None);
    let config =
        Config::from_toml_str("[server]\nconsole = false\n", Path::new("/")).expect("loads");
    assert_eq!(config.server.console, Some(false));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("30").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn sqlite_urls() {
    let base = Path::new("/etc/rt");
    let cases = [
        ("sqlite://data/a.db", "sqlite:///etc/rt/data/a.db"),
        ("sqlite:a.db?mode=rwc", "sqlite:///etc/rt/a.db?mode=rwc"),
        ("sqlite://./a.db", "sqlite:///etc/rt/a.db"),
        ("sqlite:///abs/a.db", "sqlite:///abs/a.db"),
        ("sqlite::memory:", "sqlite::memory:"),
        (
            "sqlite://file:a.db?mode=memory",
            "sqlite://file:a.db?mode=memory",
        ),
        ("postgres://h/db", "postgres://h/db"),
    ];
    for (input, expected) in cases {
        assert_eq!(resolve_sqlite_url(input, base), expected, "input {input:?}");
    }
}

#[test]
fn store_url_must_match_its_kind() {
    let toml = "[store]\nurl = \"postgres://u:hunter2@h/db\"\n";
    let error = Config::from_toml_str(toml, Path::new("/")).expect_err("wrong scheme");
    assert_eq!(
        error.to_string(),
        "config text: store.url: expected a sqlite:// URL, found \"postgres://u:hunter2@h/db\""
    );
    let toml = "[store]\nkind = \"postgres\"\nurl = \"mysql://u:hunter2@h/db\"\n";
    let error = Config::from_toml_str(toml, Path::new("/")).expect_err("wrong scheme");
    // A postgres URL may hold a password, so it is not repeated.
    assert_eq!(
        error.to_string(),
        "config text: store.url: expected a postgres:// or postgresql:// URL"
    );
}

#[test]
fn secrets_are_redacted() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(secret.expose(), "hunter2");
    assert!(secret.matches(b"hunter2"));
    assert!(!secret.matches(b"hunter3"));
    assert!(!secret.matches(b"hunter"));
    assert!(!secret.matches(b""));

    let toml = "[auth]\nmode = \"shared-secret\"\nsecret = \"hunter2\"\n\
                [store]\nkind = \"postgres\"\nurl = \"postgres://u:pw-xyz@h/db\"\n\
                [storage]\nkind = \"s3\"\nbucket = \"b\"\naccess_key_id = \"AKIA\"\nsecret_access_key = \"sak-xyz\"\n\
                [agent.env]\nANTHROPIC_API_KEY = \"sk-ant-xyz\"\n";
    let config = Config::from_toml_str(toml, Path::new("/")).expect("loads");
    let debug = format!("{config:?}");
    for leaked in ["hunter2", "pw-xyz", "sak-xyz", "sk-ant-xyz"] {
        assert!(!debug.contains(leaked), "{leaked} leaked in {debug}");
    }
    assert!(debug.contains("ANTHROPIC_API_KEY"), "{debug}");
    assert!(matches!(config.store, StoreConfig::Postgres(_)));
}

#[test]
fn principals_mode_and_quotas_read_with_their_defaults() {
    let defaults = Config::from_toml_str("", Path::new("/")).unwrap();
    assert_eq!(defaults.quotas, crate::config::QuotasConfig::default());
    let config = Config::from_toml_str(
        "[auth]\nmode = \"principals\"\n[auth.jwt]\nissuer = \"i\"\naudience = \"a\"\n\
         jwks_url = \"https://issuer.test/jwks.json\"\n[quotas]\nmax_live_sessions = 3\n",
        Path::new("/"),
    )
    .unwrap();
    let crate::config::AuthConfig::Principals(principals) = &config.auth else {
        panic!("principals mode");
    };
    assert!(principals.api_keys);
    assert_eq!(principals.key_cache, Duration::from_secs(10));
    let jwt = principals.jwt.as_ref().unwrap();
    assert_eq!(jwt.leeway, Duration::from_secs(30));
    assert_eq!(jwt.jwks_refresh, Duration::from_secs(600));
    assert!(jwt.secret.is_none() && jwt.admin_claim.is_none());
    assert_eq!(config.quotas.max_live_sessions, 3);
    assert_eq!(config.quotas.creates_per_minute, 0);
}
