//! Layers and their precedence: defaults, file, environment, command line; the embedded
//! example; switching backend kinds; relative paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{FILE, in_jail, load_in};
use crate::config::{
    AuthConfig, CliOverrides, Config, EXAMPLE, LogFormat, ProfilesConfig, SandboxConfig,
    StorageConfig, StoreConfig,
};

fn sqlite_url(config: &Config) -> &str {
    match &config.store {
        StoreConfig::Sqlite(sqlite) => &sqlite.url,
        other => panic!("expected sqlite, got {other:?}"),
    }
}

#[test]
fn example_parses_and_holds_the_defaults() {
    let base = Path::new("/srv/agent-runtime");
    let config = Config::from_toml_str(EXAMPLE, base).expect("the example config loads");
    assert_eq!(
        config.server.listen,
        "127.0.0.1:4000".parse().expect("address")
    );
    assert_eq!(config.server.max_payload.bytes(), 1024 * 1024);
    assert!(matches!(config.auth, AuthConfig::None {}));
    assert_eq!(
        sqlite_url(&config),
        "sqlite:///srv/agent-runtime/data/agent-runtime.db"
    );
    let StorageConfig::Filesystem(storage) = &config.storage else {
        panic!("expected filesystem storage");
    };
    assert_eq!(
        storage.root,
        PathBuf::from("/srv/agent-runtime/data/storage")
    );
    let ProfilesConfig::Directory(profiles) = &config.profiles else {
        panic!("directory profiles")
    };
    assert_eq!(profiles.path, PathBuf::from("/srv/agent-runtime/profiles"));
    let SandboxConfig::Local(sandbox) = &config.sandbox else {
        panic!("local sandbox")
    };
    assert_eq!(
        sandbox.root,
        PathBuf::from("/srv/agent-runtime/data/sandboxes")
    );
    assert_eq!(sandbox.isolation, agent_runtime_local::Isolation::Auto);
    assert_eq!(sandbox.network, agent_runtime_local::Network::Auto);
    assert_eq!(sandbox.terminate_grace, Duration::from_secs(3));
    assert_eq!(config.agent.command, PathBuf::from("claude"));
    assert_eq!(
        config.agent.env_passthrough,
        [
            "PATH",
            "LANG",
            "TZ",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "CLAUDE_CODE_OAUTH_TOKEN"
        ]
    );
    assert_eq!(config.sessions.idle_timeout, Duration::from_secs(15 * 60));
    assert_eq!(config.sessions.sync_interval, Duration::from_secs(30));
    assert_eq!(config.sessions.max_sessions, 1000);
    assert_eq!(config.log.format, LogFormat::Text);
}

#[test]
fn an_empty_file_means_the_defaults() {
    in_jail(|jail| {
        let config = load_in(jail, "", &CliOverrides::default()).expect("config loads");
        let expected = jail.directory().join("data/agent-runtime.db");
        assert_eq!(
            sqlite_url(&config),
            format!("sqlite://{}", expected.display())
        );
        assert_eq!(config.log.level, "info");
    });
}

#[test]
fn environment_overrides_the_file() {
    in_jail(|jail| {
        jail.set_env("AGENT_RUNTIME__SERVER__LISTEN", "127.0.0.1:0");
        jail.set_env("AGENT_RUNTIME__SESSIONS__IDLE_TIMEOUT", "1s");
        jail.set_env("AGENT_RUNTIME__SESSIONS__MAX_SESSIONS", "5");
        jail.set_env("AGENT_RUNTIME__STORE__URL", "sqlite:///var/lib/other.db");
        jail.set_env("AGENT_RUNTIME__AGENT__ENV_PASSTHROUGH", "[PATH, HOME]");
        jail.set_env("AGENT_RUNTIME__AGENT__INCLUDE_PARTIAL_MESSAGES", "true");
        jail.set_env("AGENT_RUNTIME__AGENT__ENV__Anthropic_API_KEY", "0123");
        jail.set_env("AGENT_RUNTIME__VARS__YEAR", "2025");
        let file = "[server]\nlisten = \"127.0.0.1:5000\"\n[sessions]\nidle_timeout = \"1h\"\n";
        let config = load_in(jail, file, &CliOverrides::default()).expect("config loads");
        assert_eq!(
            config.server.listen,
            "127.0.0.1:0".parse().expect("address")
        );
        assert_eq!(config.sessions.idle_timeout, Duration::from_secs(1));
        assert_eq!(config.sessions.max_sessions, 5);
        assert_eq!(sqlite_url(&config), "sqlite:///var/lib/other.db");
        assert_eq!(config.agent.env_passthrough, ["PATH", "HOME"]);
        assert!(config.agent.include_partial_messages);
        // Names under agent.env keep their case; a leading zero keeps the value a string.
        let key = config
            .agent
            .env
            .get("Anthropic_API_KEY")
            .expect("case kept");
        assert_eq!(key.expose(), "0123");
        assert_eq!(config.vars.get("year").map(String::as_str), Some("2025"));
    });
}

#[test]
fn command_line_overrides_the_environment() {
    in_jail(|jail| {
        jail.set_env("AGENT_RUNTIME__SERVER__LISTEN", "127.0.0.1:1");
        let overrides = CliOverrides {
            listen: Some("127.0.0.1:2".parse().expect("address")),
        };
        let config = load_in(jail, "", &overrides).expect("config loads");
        assert_eq!(config.server.listen, overrides.listen.expect("set"));
    });
}

#[test]
fn command_line_errors_name_the_flag() {
    in_jail(|jail| {
        let overrides = CliOverrides {
            listen: Some("0.0.0.0:4000".parse().expect("address")),
        };
        let error = load_in(jail, "", &overrides).expect_err("no auth on 0.0.0.0");
        let text = error.to_string();
        assert!(
            text.starts_with("command-line flag --listen: server.listen: 0.0.0.0:4000 is not"),
            "{text}"
        );
    });
}

#[test]
fn choosing_another_kind_drops_the_default_keys() {
    let toml = "[store]\nkind = \"postgres\"\nurl = \"postgres://u:pw@h/db\"\nacquire_timeout = \"5s\"\n\
                [storage]\nkind = \"memory\"\n\
                [auth]\nmode = \"shared-secret\"\nsecret = \"s3cr3t\"\n";
    let config = Config::from_toml_str(toml, Path::new("/etc")).expect("loads");
    let StoreConfig::Postgres(postgres) = &config.store else {
        panic!("expected postgres");
    };
    assert_eq!(postgres.url, "postgres://u:pw@h/db");
    assert_eq!(postgres.acquire_timeout, Some(Duration::from_secs(5)));
    assert_eq!(postgres.max_connections, None);
    assert!(matches!(config.storage, StorageConfig::Memory {}));
    let AuthConfig::SharedSecret(shared) = &config.auth else {
        panic!("expected shared-secret");
    };
    assert!(shared.secret.matches(b"s3cr3t"));
}

#[test]
fn environment_can_choose_the_kind() {
    in_jail(|jail| {
        jail.set_env("AGENT_RUNTIME__STORAGE__KIND", "s3");
        jail.set_env("AGENT_RUNTIME__STORAGE__BUCKET", "runs");
        jail.set_env("AGENT_RUNTIME__STORAGE__ENDPOINT", "http://127.0.0.1:9000");
        jail.set_env("AGENT_RUNTIME__STORAGE__ALLOW_HTTP", "true");
        let config = load_in(jail, "", &CliOverrides::default()).expect("config loads");
        let StorageConfig::S3(s3) = &config.storage else {
            panic!("expected s3, got {:?}", config.storage);
        };
        assert_eq!(s3.bucket, "runs");
        assert!(s3.allow_http);
        assert!(s3.path_style, "path style is the default");
    });
}

#[test]
fn relative_paths_follow_the_config_file() {
    in_jail(|jail| {
        let toml = "[store]\nurl = \"sqlite:state/db.sqlite?mode=rwc\"\n\
                    [storage]\nroot = \"./files\"\n\
                    [profiles]\npath = \"/opt/profiles\"\n\
                    [agent]\ncommand = \"bin/claude\"\n";
        jail.create_dir("conf").expect("mkdir");
        jail.create_file("conf/agent-runtime.toml", toml)
            .expect("write");
        let config = Config::load(
            Path::new("conf/agent-runtime.toml"),
            &CliOverrides::default(),
        )
        .expect("config loads");
        let dir = jail.directory().join("conf");
        let expected_url = format!("sqlite://{}/state/db.sqlite?mode=rwc", dir.display());
        assert_eq!(sqlite_url(&config), expected_url);
        let StorageConfig::Filesystem(storage) = &config.storage else {
            panic!("expected filesystem");
        };
        assert_eq!(storage.root, dir.join("files"));
        let ProfilesConfig::Directory(profiles) = &config.profiles else {
            panic!("directory profiles")
        };
        assert_eq!(profiles.path, PathBuf::from("/opt/profiles"));
        let SandboxConfig::Local(sandbox) = &config.sandbox else {
            panic!("local sandbox")
        };
        assert_eq!(sandbox.root, dir.join("data/sandboxes"));
        assert_eq!(config.agent.command, dir.join("bin/claude"));
    });
}

#[test]
fn missing_file_is_an_error_naming_it() {
    in_jail(|_jail| {
        let error = Config::load(Path::new("nope.toml"), &CliOverrides::default())
            .expect_err("no such file");
        assert_eq!(
            error.to_string(),
            "nope.toml: config file not found; pass --config FILE or set AGENT_RUNTIME_CONFIG"
        );
    });
}

#[test]
fn remote_listen_is_allowed_with_auth_or_explicit_opt_in() {
    let opted_in = "[server]\nlisten = \"0.0.0.0:4000\"\nallow_unauthenticated_remote = true\n";
    Config::from_toml_str(opted_in, Path::new("/")).expect("opted in");
    let with_auth =
        "[server]\nlisten = \"[::]:4000\"\n[auth]\nmode = \"shared-secret\"\nsecret = \"x\"\n";
    Config::from_toml_str(with_auth, Path::new("/")).expect("authenticated");
    let ipv6_loopback = "[server]\nlisten = \"[::1]:4000\"\n";
    Config::from_toml_str(ipv6_loopback, Path::new("/")).expect("loopback");
    let ipv6_any = "[server]\nlisten = \"[::]:4000\"\n";
    Config::from_toml_str(ipv6_any, Path::new("/")).expect_err("unauthenticated on [::]");
}

#[test]
fn file_name_appears_in_errors_from_subdirectories() {
    in_jail(|jail| {
        jail.create_dir("etc").expect("mkdir");
        jail.create_file("etc/rt.toml", "[log]\nformat = \"xml\"\n")
            .expect("write");
        let error = Config::load(Path::new("etc/rt.toml"), &CliOverrides::default())
            .expect_err("unknown format");
        assert_eq!(
            error.to_string(),
            "etc/rt.toml: log.format: unknown value \"xml\"; expected one of `text`, `json`"
        );
        // The jail's own file name is not involved.
        assert_ne!(FILE, "etc/rt.toml");
    });
}

#[test]
fn kind_may_come_from_a_variable() {
    in_jail(|jail| {
        jail.set_env("CFG_TEST_STORE_KIND", "memory");
        let config = load_in(
            jail,
            "[store]\nkind = \"${CFG_TEST_STORE_KIND}\"\n",
            &CliOverrides::default(),
        )
        .expect("config loads");
        assert!(matches!(config.store, StoreConfig::Memory {}));
    });
}
