//! The scripted agent, driven as a child process like the runtime drives Claude Code.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use crate::common::{AgentProcess, LINE_TIMEOUT, assistant_texts};

/// The flags the runtime passes to Claude Code; all must be accepted.
pub const CLAUDE_FLAGS: &[&str] = &[
    "--output-format",
    "stream-json",
    "--verbose",
    "--input-format=stream-json",
    "-p",
    "--model",
    "test-model",
    "--max-turns=5",
    "--mcp-config",
    r#"{"mcpServers":{}}"#,
    "--strict-mcp-config",
    "--permission-mode",
    "acceptEdits",
    "--allowedTools",
    "Bash",
    "--disallowedTools=WebFetch",
    "--append-system-prompt",
    "--looks-like-a-flag but is a prompt",
    "--system-prompt=be brief",
    "--permission-prompt-tool",
    "stdio",
    "--include-partial-messages",
    "--setting-sources",
    "user",
    "--some-future-flag",
];

/// A scratch working directory and config directory for one agent.
pub struct Scratch {
    /// The agent's working directory.
    pub cwd: TempDir,
    /// Its `CLAUDE_CONFIG_DIR` (transcripts live under `projects/`).
    pub config: TempDir,
}

impl Scratch {
    /// Fresh, empty directories.
    pub fn new() -> Scratch {
        Scratch {
            cwd: TempDir::new().unwrap(),
            config: TempDir::new().unwrap(),
        }
    }

    /// Spawns the scripted agent with the runtime's flags plus `extra`.
    pub fn spawn(&self, extra: &[&str]) -> AgentProcess {
        self.spawn_env(extra, &[])
    }

    /// Like [`Scratch::spawn`], with extra environment variables.
    pub fn spawn_env(&self, extra: &[&str], env: &[(&str, String)]) -> AgentProcess {
        let mut args = CLAUDE_FLAGS.to_vec();
        args.extend_from_slice(extra);
        let mut env = env.to_vec();
        env.push((
            "CLAUDE_CONFIG_DIR",
            self.config.path().display().to_string(),
        ));
        AgentProcess::spawn(&agent_bin(), &args, self.cwd.path(), &env)
    }
}

/// The scripted agent built for this test run.
pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scripted-agent"))
}

fn canonical(path: &Path) -> String {
    path.canonicalize().unwrap().display().to_string()
}

#[test]
fn bin_path_finds_the_built_binary() {
    assert_eq!(
        agent_runtime_testkit::bin_path("scripted-agent"),
        agent_bin()
    );
}

#[test]
fn reply_turn_has_claude_code_shapes() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("reply hello world");
    let lines = agent.until_result();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let init = &lines[0];
    assert_eq!(
        (&init["type"], &init["subtype"]),
        (&json!("system"), &json!("init"))
    );
    assert_eq!(init["claude_code_version"], "scripted");
    assert_eq!(init["model"], "test-model");
    assert_eq!(init["permissionMode"], "acceptEdits");
    assert_eq!(init["cwd"], canonical(scratch.cwd.path()));
    assert!(init["tools"].as_array().unwrap().contains(&json!("Write")));
    let session_id = init["session_id"].as_str().unwrap().to_owned();
    assert_eq!(session_id.len(), 36);
    let assistant = &lines[1];
    assert_eq!(assistant["message"]["role"], "assistant");
    assert_eq!(assistant["message"]["stop_reason"], json!(null));
    assert_eq!(assistant["session_id"], session_id.as_str());
    assert_eq!(assistant_texts(&lines), ["hello world"]);
    let result = &lines[2];
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["is_error"], false);
    assert_eq!(result["result"], "hello world");
    assert_eq!(result["num_turns"], 1);
    assert_eq!(result["session_id"], session_id.as_str());
    assert_eq!(result["terminal_reason"], "completed");
    assert!(result["total_cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(result["usage"]["input_tokens"], 10);

    // The plain-string content form; anything that is not a directive is echoed, and
    // every turn re-emits system/init with the same session id.
    agent.send(&json!({"type": "user", "message": {"role": "user", "content": "just talk"}}));
    let lines = agent.until_result();
    assert_eq!(lines[0]["session_id"], session_id.as_str());
    assert_eq!(lines.last().unwrap()["result"], "echo: just talk");
    agent.close_stdin();
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(0));
}

#[test]
fn emit_prints_n_assistant_lines() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("emit 3");
    let lines = agent.until_result();
    assert_eq!(assistant_texts(&lines), ["chunk 1", "chunk 2", "chunk 3"]);
    assert_eq!(lines.last().unwrap()["result"], "chunk 3");
}

#[test]
fn write_creates_the_file_with_a_tool_round_trip() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("write sub/dir/out.txt two words");
    let lines = agent.until_result();
    let written = std::fs::read_to_string(scratch.cwd.path().join("sub/dir/out.txt")).unwrap();
    assert_eq!(written, "two words");
    let tool_use = &lines[1]["message"]["content"][0];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(tool_use["name"], "Write");
    assert_eq!(tool_use["input"]["content"], "two words");
    let tool_result = &lines[2];
    assert_eq!(tool_result["type"], "user");
    let block = &tool_result["message"]["content"][0];
    assert_eq!(block["type"], "tool_result");
    assert_eq!(block["tool_use_id"], tool_use["id"]);
    assert_eq!(block["is_error"], false);
    assert_eq!(tool_result["tool_use_result"]["type"], "create");
    let result = lines.last().unwrap();
    assert_eq!(result["result"], "wrote sub/dir/out.txt");
    assert_eq!(result["num_turns"], 2);
}

#[test]
fn interrupt_aborts_a_sleeping_turn_and_the_process_stays() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("sleep 10000");
    assert_eq!(agent.next_json()["subtype"], "init");
    let sent = Instant::now();
    agent.control("intr1", "interrupt");
    let response = agent.next_json();
    assert_eq!(response["type"], "control_response");
    assert_eq!(response["response"]["subtype"], "success");
    assert_eq!(response["response"]["request_id"], "intr1");
    let marker = agent.next_json();
    assert_eq!(marker["type"], "user");
    assert_eq!(
        marker["message"]["content"][0]["text"],
        "[Request interrupted by user]"
    );
    let result = agent.next_json();
    assert_eq!(result["type"], "result");
    assert_eq!(result["subtype"], "error_during_execution");
    assert_eq!(result["is_error"], true);
    assert_eq!(result["terminal_reason"], "aborted_streaming");
    assert!(sent.elapsed() < Duration::from_secs(5));

    agent.user("reply still here");
    assert_eq!(agent.until_result().last().unwrap()["result"], "still here");
    // An interrupt while idle is acknowledged and changes nothing.
    agent.control("intr2", "interrupt");
    assert_eq!(agent.next_json()["response"]["request_id"], "intr2");
}

#[test]
fn message_during_a_turn_is_queued_as_its_own_turn() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("sleep 300");
    agent.user("reply second");
    let first = agent.until_result();
    let second = agent.until_result();
    assert_eq!(first.last().unwrap()["result"], "slept");
    assert_eq!(second[0]["subtype"], "init");
    assert_eq!(second.last().unwrap()["result"], "second");
}

#[test]
fn initialize_and_other_control_requests() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.control("init1", "initialize");
    let response = agent.next_json();
    assert_eq!(response["response"]["subtype"], "success");
    assert_eq!(response["response"]["request_id"], "init1");
    assert!(response["response"]["response"]["pid"].is_u64());
    agent.send(&json!({"type": "control_request", "request_id": "m2",
        "request": {"subtype": "set_model", "model": "other-model"}}));
    assert_eq!(agent.next_json()["response"]["request_id"], "m2");
    agent.control("x1", "no_such_request");
    assert_eq!(agent.next_json()["response"]["subtype"], "error");
    agent.send(&json!({"type": "bogus"}));
    agent.user("reply after");
    let lines = agent.until_result();
    assert_eq!(lines[0]["model"], "other-model");
}

#[test]
fn crash_exits_3_without_a_result() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("crash");
    assert_eq!(agent.next_json()["type"], "system");
    assert_eq!(agent.next_json()["type"], "assistant");
    assert_eq!(agent.next_raw(LINE_TIMEOUT), None);
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(3));
}

#[test]
fn forge_claims_another_conversation_then_ends_the_turn_three_times() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&["--session-id", "11111111-2222-3333-4444-555555555555"]);
    agent.user("forge");
    let own = "11111111-2222-3333-4444-555555555555";
    assert_eq!(agent.next_json()["session_id"], own, "the turn's own init");
    let forged_init = agent.next_json();
    assert_eq!(forged_init["subtype"], "init");
    assert_ne!(forged_init["session_id"], own);
    let foreign = agent.until_result();
    let foreign = foreign.last().unwrap();
    assert_eq!(foreign["session_id"], forged_init["session_id"]);
    assert_eq!(foreign["usage"]["input_tokens"], u64::MAX);
    let early = agent.until_result();
    assert_eq!(early.last().unwrap()["session_id"], own);
    assert_eq!(early.last().unwrap()["total_cost_usd"], -1.0);
    let ordinary = agent.until_result();
    assert_eq!(ordinary.last().unwrap()["result"], "forged");
}

#[test]
fn bigline_prints_one_line_of_about_that_many_bytes() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("bigline 100000");
    assert_eq!(agent.next_json()["subtype"], "init");
    let line = agent.next_raw(LINE_TIMEOUT).unwrap();
    assert!((100_000..101_000).contains(&line.len()), "{}", line.len());
    assert_eq!(
        agent.until_result().last().unwrap()["result"],
        "sent a big line"
    );
}

#[test]
fn malformed_directive_prints_a_non_json_line_then_continues() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("malformed");
    assert_eq!(agent.next_json()["subtype"], "init");
    assert_eq!(agent.next_raw(LINE_TIMEOUT).unwrap(), "this is not json {");
    let rest = agent.until_result();
    assert_eq!(rest.last().unwrap()["is_error"], false);
}

#[test]
fn malformed_stdin_line_is_fatal_like_claude_code() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.send_raw("{not json");
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(1));
    assert!(
        agent
            .stderr()
            .contains("Error parsing streaming input line: "),
        "{}",
        agent.stderr()
    );
}

#[test]
fn env_reports_variables() {
    let env = [("SCRIPTED_TEST_VAR", "value 42".to_owned())];
    let scratch = Scratch::new();
    let mut agent = scratch.spawn_env(&[], &env);
    agent.user("env SCRIPTED_TEST_VAR");
    assert_eq!(agent.until_result().last().unwrap()["result"], "value 42");
    agent.user("env SCRIPTED_TEST_SURELY_UNSET");
    assert_eq!(agent.until_result().last().unwrap()["result"], "<unset>");
}

#[test]
fn eof_mid_turn_finishes_the_turn_then_exits_0() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("sleep 200");
    agent.close_stdin();
    assert_eq!(agent.until_result().last().unwrap()["result"], "slept");
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(0));
}

#[test]
fn eof_while_idle_exits_0_quickly() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    let started = Instant::now();
    agent.close_stdin();
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn sigterm_exits_0() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    // The first response proves startup (and the signal handler) is done.
    agent.control("init1", "initialize");
    agent.next_json();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &agent.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(0));
}
