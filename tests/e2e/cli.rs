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
