//! The command line: `--help`, `check`, and a clear refusal to serve without the agent.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent-runtime"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_config(dir: &Path, agent: &str, profiles: &Path) -> std::path::PathBuf {
    let path = dir.join("runtime.toml");
    std::fs::write(
        &path,
        format!(
            "[profiles]\nkind = \"directory\"\npath = \"{}\"\n[agent]\ncommand = \"{agent}\"\n",
            profiles.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn help_shows_examples() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["--help"], dir.path());
    assert!(output.status.success());
    let help = text(&output);
    assert!(help.contains("EXAMPLES"), "{help}");
    assert!(help.contains("agent-runtime check --config"), "{help}");
}

#[test]
fn check_passes_a_good_config_and_reports_every_problem_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good_profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let agent = agent_runtime_testkit::bin_path("scripted-agent");
    let config = write_config(dir.path(), &agent.display().to_string(), &good_profiles);
    let output = run(&["check", "--config", config.to_str().unwrap()], dir.path());
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("profile assistant: renders"),
        "{}",
        text(&output)
    );

    let bad_profiles = dir.path().join("bad-profiles");
    std::fs::create_dir_all(bad_profiles.join("broken")).unwrap();
    std::fs::write(
        bad_profiles.join("broken/profile.toml"),
        "description = \"x\"\nmodel = 3\n",
    )
    .unwrap();
    std::fs::create_dir_all(bad_profiles.join("undefined")).unwrap();
    std::fs::write(
        bad_profiles.join("undefined/profile.toml"),
        "description = \"x\"\n",
    )
    .unwrap();
    std::fs::write(
        bad_profiles.join("undefined/CLAUDE.md"),
        "{{ NOT_A_VARIABLE }}\n",
    )
    .unwrap();
    let config = write_config(dir.path(), "no-such-agent-program", &bad_profiles);
    let output = run(&["check", "--config", config.to_str().unwrap()], dir.path());
    let report = text(&output);
    assert!(!output.status.success(), "{report}");
    assert!(
        report.contains("no-such-agent-program"),
        "names the missing agent: {report}"
    );
    assert!(
        report.contains("profile broken:") && report.contains("model"),
        "{report}"
    );
    assert!(
        report.contains("profile undefined:") && report.contains("NOT_A_VARIABLE"),
        "{report}"
    );
    assert!(report.contains("3 problem(s)"), "{report}");
}

/// Runs `check` on a config of the scripted agent plus `extra_toml`; returns whether it
/// passed, its report, and its first `WARN` line (empty without one).
fn check_with(extra_toml: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let agent = agent_runtime_testkit::bin_path("scripted-agent");
    let config = write_config(dir.path(), &agent.display().to_string(), &profiles);
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(extra_toml);
    std::fs::write(&config, toml).unwrap();
    let output = run(&["check", "--config", config.to_str().unwrap()], dir.path());
    let report = text(&output);
    let warning = report
        .lines()
        .find(|l| l.starts_with("WARN "))
        .unwrap_or_default()
        .to_owned();
    (output.status.success(), report, warning)
}

#[test]
fn check_finds_a_warm_pool_of_a_profile_that_does_not_exist() {
    let (passed, report, _) =
        check_with("[warm_pool]\nsize = 0\n[warm_pool.profiles]\nassistant = 1\nnope = 1\n");
    assert!(!passed, "{report}");
    assert!(
        report.contains(
            "[warm_pool.profiles] nope: no profile of that name; its pool could never be filled"
        ) && !report.contains("[warm_pool.profiles] assistant"),
        "{report}"
    );
}

#[test]
fn check_warns_when_every_web_page_is_allowed() {
    let (passed, report, warning) = check_with("[server]\nallowed_origins = [\"*\"]\n");
    assert!(passed, "a warning is not a problem: {report}");
    assert!(warning.contains("allowed_origins"), "{report}");
}

#[test]
fn check_says_which_isolation_is_in_force_and_warns_without_one() {
    if crate::support::isolation_available() {
        let (passed, report, warning) = check_with("");
        assert!(passed, "{report}");
        assert!(
            report.contains("isolation: bubblewrap, private network"),
            "{report}"
        );
        assert!(warning.is_empty(), "{report}");
    }
    let (passed, report, warning) = check_with("[sandbox]\nisolation = \"dangerously-none\"\n");
    assert!(passed, "a warning is not a problem: {report}");
    assert!(
        warning.contains("dangerously-none") && warning.contains("secrets"),
        "{report}"
    );
}

#[test]
fn a_config_error_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime.toml");
    std::fs::write(&config, "[server]\nlisen = \"127.0.0.1:1\"\n").unwrap();
    let output = run(&["check", "--config", config.to_str().unwrap()], dir.path());
    assert!(!output.status.success());
    let report = text(&output);
    assert!(
        report.contains("runtime.toml") && report.contains("server.lisen"),
        "{report}"
    );
}

#[test]
fn serving_without_the_agent_program_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let config = write_config(dir.path(), "no-such-agent-program", &profiles);
    let output = run(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(message.contains("no-such-agent-program"), "{message}");
    assert!(
        message.contains("npm install -g @anthropic-ai/claude-code"),
        "{message}"
    );
}

/// Runs the binary with extra environment.
fn run_with(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-runtime"));
    command.args(args).current_dir(dir).env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the binary runs")
}

#[test]
fn init_writes_a_config_and_a_profile_that_check_passes_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["init", "agents"], dir.path());
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    for next in [
        "cd agents",
        "agent-runtime check",
        "http://127.0.0.1:4000/",
        "agent-runtime chat",
    ] {
        assert!(
            said.contains(next),
            "says what to run next ({next}): {said}"
        );
    }
    let agents = dir.path().join("agents");
    let config = std::fs::read_to_string(agents.join("agent-runtime.toml")).unwrap();
    assert!(config.contains("listen = \"127.0.0.1:4000\""), "{config}");
    assert!(agents.join("profiles/assistant/profile.toml").is_file());

    // The agent program is found through the documented override; everything else is as
    // written.
    let agent = agent_runtime_testkit::bin_path("scripted-agent");
    let agent = agent.to_str().unwrap();
    let env = [("AGENT_RUNTIME__AGENT__COMMAND", agent)];
    let output = run_with(&["check"], &agents, &env);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("profile assistant: renders"), "{report}");
    assert!(report.contains("agent-runtime.toml is ready"), "{report}");

    // A second init keeps what is there.
    std::fs::write(agents.join("agent-runtime.toml"), "# edited\n").unwrap();
    let output = run(&["init", "agents"], dir.path());
    assert!(!output.status.success());
    let refusal = text(&output);
    assert!(
        refusal.contains("agent-runtime.toml") && refusal.contains("--force"),
        "{refusal}"
    );
    assert_eq!(
        std::fs::read_to_string(agents.join("agent-runtime.toml")).unwrap(),
        "# edited\n"
    );
    let output = run(&["init", "agents", "--force"], dir.path());
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        std::fs::read_to_string(agents.join("agent-runtime.toml")).unwrap(),
        config
    );
}

#[test]
fn profiles_new_scaffolds_a_profile_into_the_configs_folder() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(&["init", "--profile", "first"], dir.path())
            .status
            .success()
    );
    let output = run(&["profiles", "new", "reviewer"], dir.path());
    assert!(output.status.success(), "{}", text(&output));
    let manifest = dir.path().join("profiles/reviewer/profile.toml");
    let written = std::fs::read_to_string(&manifest).unwrap();
    assert!(written.contains("agentType = \"reviewer\""), "{written}");

    let agent = agent_runtime_testkit::bin_path("scripted-agent");
    let env = [("AGENT_RUNTIME__AGENT__COMMAND", agent.to_str().unwrap())];
    let output = run_with(&["check"], dir.path(), &env);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("profile first: renders") && report.contains("profile reviewer: renders"),
        "{report}"
    );

    let output = run(&["profiles", "new", "reviewer"], dir.path());
    assert!(!output.status.success());
    assert!(text(&output).contains("--force"), "{}", text(&output));
    for bad in [".hidden", "a/b", "two words"] {
        let output = run(&["profiles", "new", bad], dir.path());
        assert!(!output.status.success(), "{bad}");
        assert!(
            text(&output).contains("invalid profile name"),
            "{bad}: {}",
            text(&output)
        );
    }
    let elsewhere = dir.path().join("more");
    let output = run(
        &["profiles", "new", "x", "--dir", elsewhere.to_str().unwrap()],
        dir.path(),
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(elsewhere.join("x/profile.toml").is_file());
}
