//! The real Claude Code CLI against the fake Messages API, when one is provided via
//! `AGENT_RUNTIME_TEST_CLAUDE`. Proves the fake is faithful enough for the real client.

use std::time::Duration;

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use agent_runtime_testkit::{CLAUDE_ENV, claude_bin, claude_test_env};
use tempfile::TempDir;

use crate::common::{AgentProcess, assistant_texts};

#[test]
fn real_claude_code_runs_a_text_turn_and_a_bash_tool_turn() {
    let Some(claude) = claude_bin() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CLAUDE_ENV} must name the pinned Claude Code CLI in CI"
        );
        eprintln!("SKIPPED real_claude_code test: set {CLAUDE_ENV} to the Claude Code CLI path");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeAnthropic::start());
    let config = TempDir::new().unwrap();
    let cwd = TempDir::new().unwrap();
    let env = claude_test_env(&fake.base_url(), config.path());
    let args = [
        "--output-format",
        "stream-json",
        "--verbose",
        "--input-format",
        "stream-json",
        "--strict-mcp-config",
        "--setting-sources",
        "user",
        "--allowedTools",
        "Bash",
    ];
    let mut agent = AgentProcess::spawn(&claude, &args, cwd.path(), &env);

    agent.user("hello fake");
    let lines = agent.until_result();
    let init = &lines[0];
    assert_eq!(
        (&init["type"], &init["subtype"]),
        (&"system".into(), &"init".into())
    );
    let result = lines.last().unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["result"], "echo: hello fake");
    assert_eq!(assistant_texts(&lines), ["echo: hello fake"]);

    agent.user(r#"TOOL:Bash {"command":"echo hi"}"#);
    let lines = agent.until_result();
    let tool_use = lines
        .iter()
        .find(|l| l["type"] == "assistant" && l["message"]["content"][0]["type"] == "tool_use")
        .expect("an assistant tool_use line");
    assert_eq!(tool_use["message"]["content"][0]["name"], "Bash");
    let tool_result = lines
        .iter()
        .find(|l| l["type"] == "user")
        .expect("a user tool_result line");
    assert_eq!(tool_result["message"]["content"][0]["is_error"], false);
    let result = lines.last().unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    let text = result["result"].as_str().unwrap();
    assert!(text.starts_with("TOOL RESULT SEEN: hi"), "{text}");

    // The resumed request carried the earlier turn: history reached the API.
    let requests = fake.requests();
    let last = requests.last().unwrap();
    let sent = last["messages"].to_string();
    assert!(
        sent.contains("hello fake") && sent.contains("tool_result"),
        "{sent}"
    );

    agent.close_stdin();
    assert_eq!(agent.wait(Duration::from_secs(30)).code(), Some(0));
}
