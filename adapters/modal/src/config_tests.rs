use super::*;

fn parse(json: &str) -> Result<ModalConfig, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

fn with_credentials() -> ModalConfig {
    ModalConfig {
        token_id: Some("ak-test".into()),
        token_secret: Some(Secret::new("as-test")),
        ..ModalConfig::default()
    }
}

#[test]
fn defaults_fill_every_field() {
    let config = parse("{}").unwrap();
    assert_eq!(config, ModalConfig::default());
    assert_eq!(config.server_url, "https://api.modal.com");
    assert_eq!(config.timeout, Duration::from_secs(86_400));
    assert_eq!(config.idle_timeout, Duration::from_secs(900));
    // As Modal's clients: 30 s per attempt, about five minutes to start.
    assert_eq!(config.attempt_timeout, Duration::from_secs(30));
    assert_eq!(config.start_timeout, Duration::from_secs(300));
    assert_eq!(config.max_throttle_wait, Duration::from_secs(300));
    assert_eq!(
        config.image.dockerfile_commands(),
        [
            "FROM node:22-slim",
            "RUN npm install -g @anthropic-ai/claude-code@2.1.197"
        ]
    );
}

#[test]
fn reads_every_field() {
    let config = parse(
        r#"{"server_url": "http://127.0.0.1:9", "token_id": "ak-1", "token_secret": "as-2",
            "environment": "dev", "app": "a", "timeout": "2h", "idle_timeout": "0s",
            "workdir": "/w", "agent_home": "/h", "tags": {"team": "x"},
            "image": {"tag": "debian:12", "commands": ["RUN true"]},
            "resources": {"cpu": 0.5, "memory_mb": 512}, "attempt_timeout": "5s",
            "start_timeout": "1m", "max_throttle_wait": "0s"}"#,
    )
    .unwrap();
    assert_eq!(config.attempt_timeout, Duration::from_secs(5));
    assert_eq!(config.start_timeout, Duration::from_secs(60));
    assert_eq!(config.max_throttle_wait, Duration::ZERO);
    assert_eq!(config.token_secret, Some(Secret::new("as-2")));
    assert_eq!(config.timeout, Duration::from_secs(7200));
    assert_eq!(config.resources.memory_mb, 512);
    assert_eq!(
        config.image.dockerfile_commands(),
        ["FROM debian:12", "RUN true"]
    );
    assert!(
        check_offline(&config).is_empty(),
        "{:?}",
        check_offline(&config)
    );
}

#[test]
fn refuses_unknown_fields_and_bad_durations() {
    for (bad, expected) in [
        (r#"{"colour": 1}"#, "unknown field `colour`"),
        (r#"{"image": {"from": "x"}}"#, "unknown field `from`"),
        (r#"{"timeout": "soon"}"#, "invalid duration \"soon\""),
    ] {
        let error = parse(bad).unwrap_err();
        assert!(error.contains(expected), "{bad}: {error}");
    }
}

#[test]
fn secrets_never_print() {
    let config = with_credentials();
    let printed = format!("{config:?}");
    assert!(!printed.contains("as-test"), "{printed}");
    assert!(printed.contains("redacted"));
}

#[test]
fn names_missing_credentials() {
    if std::env::var_os("MODAL_TOKEN_ID").is_some()
        || std::env::var_os("MODAL_TOKEN_SECRET").is_some()
    {
        eprintln!("SKIPPED: MODAL_TOKEN_ID or MODAL_TOKEN_SECRET is set in this environment");
        return;
    }
    let problems = check_offline(&ModalConfig::default());
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("token_id") && problems[0].contains("MODAL_TOKEN_ID"));
    assert!(problems[1].contains("token_secret") && problems[1].contains("MODAL_TOKEN_SECRET"));
    let error = build(ModalConfig::default()).err().expect("refused");
    assert_eq!(error.kind(), agent_runtime_api::ErrorKind::InvalidInput);
    assert!(error.message().contains("token_secret"), "{error}");
    assert!(check_offline(&with_credentials()).is_empty());
}

#[test]
fn lists_malformed_values() {
    let config = ModalConfig {
        server_url: "ftp://x".into(),
        workdir: "relative".into(),
        agent_home: "/a/../b".into(),
        resources: ResourcesConfig {
            cpu: 0.0,
            memory_mb: 0,
        },
        timeout: Duration::ZERO,
        attempt_timeout: Duration::ZERO,
        start_timeout: Duration::from_secs(7200),
        tags: BTreeMap::from([(OWNER_TAG.to_owned(), "x".to_owned())]),
        ..with_credentials()
    };
    let problems = check_offline(&config).join("\n");
    for expected in [
        "server_url",
        "workdir",
        "agent_home",
        "cpu",
        "memory_mb",
        "timeout",
        "attempt_timeout",
        "start_timeout",
        OWNER_TAG,
    ] {
        assert!(problems.contains(expected), "{expected} in {problems}");
    }
    let nested = ModalConfig {
        workdir: "/srv".into(),
        agent_home: "/srv/home".into(),
        ..with_credentials()
    };
    assert!(
        check_offline(&nested)
            .join("")
            .contains("separate directories")
    );
    let templated = ModalConfig {
        workdir: "/tmp/{session_id}/ws".into(),
        agent_home: "/tmp/{session_id}/home".into(),
        ..with_credentials()
    };
    assert!(check_offline(&templated).is_empty());
    let odd = ModalConfig {
        workdir: "/tmp/{id}".into(),
        ..with_credentials()
    };
    assert!(check_offline(&odd).join("").contains("placeholder"));
}
