//! Transcripts and resume of the scripted agent, laid out like Claude Code's.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use crate::common::LINE_TIMEOUT;
use crate::scripted_agent::Scratch;

const SESSION: &str = "0b3a7c1e-5d2f-4a8b-9c6d-1e2f3a4b5c6d";

fn slug(path: &Path) -> String {
    let path = path.canonicalize().unwrap().display().to_string();
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn transcript_path(scratch: &Scratch, id: &str) -> PathBuf {
    scratch
        .config
        .path()
        .join("projects")
        .join(slug(scratch.cwd.path()))
        .join(format!("{id}.jsonl"))
}

/// Runs two prompts in a fresh conversation and returns the transcript path.
fn first_conversation(scratch: &Scratch) -> PathBuf {
    let mut agent = scratch.spawn(&["--session-id", SESSION]);
    agent.user("reply one");
    let first = agent.until_result();
    assert_eq!(first[0]["session_id"], SESSION);
    agent.user("write f.txt x");
    agent.until_result();
    agent.close_stdin();
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(0));
    transcript_path(scratch, SESSION)
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn transcript_lines_look_like_claude_codes() {
    let scratch = Scratch::new();
    let path = first_conversation(&scratch);
    let lines = read_lines(&path);
    // prompt, reply, prompt, tool_use, tool_result, reply
    assert_eq!(lines.len(), 6, "{lines:#?}");
    for line in &lines {
        assert_eq!(line["sessionId"], SESSION);
        for key in ["uuid", "timestamp", "cwd", "message"] {
            assert!(!line[key].is_null(), "{key} missing in {line}");
        }
    }
    assert_eq!(lines[0]["type"], "user");
    assert_eq!(lines[1]["type"], "assistant");
    assert_eq!(lines[1]["parentUuid"], lines[0]["uuid"]);
    assert_eq!(lines[4]["message"]["content"][0]["type"], "tool_result");
}

#[test]
fn resume_by_id_restores_history_and_keeps_the_session() {
    let scratch = Scratch::new();
    let path = first_conversation(&scratch);
    let before = read_lines(&path).len();
    let mut agent = scratch.spawn(&["--resume", SESSION]);
    agent.user("history");
    let lines = agent.until_result();
    assert_eq!(lines[0]["session_id"], SESSION);
    assert_eq!(lines.last().unwrap()["result"], "reply one | write f.txt x");
    agent.close_stdin();
    agent.wait(LINE_TIMEOUT);
    assert_eq!(
        read_lines(&path).len(),
        before + 2,
        "resume appends in place"
    );
}

#[test]
fn session_id_in_use_fails_like_claude_code() {
    let scratch = Scratch::new();
    first_conversation(&scratch);
    let mut agent = scratch.spawn(&["--session-id", SESSION]);
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(1));
    let expected = format!("Error: Session ID {SESSION} is already in use.");
    assert!(agent.stderr().contains(&expected), "{}", agent.stderr());
}

#[test]
fn resume_by_path_works_from_any_cwd_and_config_dir() {
    let scratch = Scratch::new();
    let original = first_conversation(&scratch);
    let elsewhere = TempDir::new().unwrap();
    let moved = elsewhere.path().join(format!("{SESSION}.jsonl"));
    std::fs::copy(&original, &moved).unwrap();

    let other = Scratch::new();
    let moved_arg = moved.display().to_string();
    let mut agent = other.spawn(&[&format!("--resume={moved_arg}")]);
    agent.user("history");
    let lines = agent.until_result();
    assert_eq!(lines[0]["session_id"], SESSION);
    assert_eq!(lines.last().unwrap()["result"], "reply one | write f.txt x");
    agent.user("history");
    let lines = agent.until_result();
    assert_eq!(
        lines.last().unwrap()["result"],
        "reply one | write f.txt x | history"
    );
    agent.close_stdin();
    agent.wait(LINE_TIMEOUT);
    assert_eq!(read_lines(&moved).len(), read_lines(&original).len() + 4);
    assert!(!transcript_path(&other, SESSION).exists());
}

#[test]
fn resume_of_a_missing_conversation_fails() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&["--resume", "no-such-session"]);
    let result = agent.next_json();
    assert_eq!(result["type"], "result");
    assert_eq!(result["is_error"], true);
    assert_eq!(
        result["errors"][0],
        "No conversation found with session ID: no-such-session"
    );
    assert_eq!(agent.wait(LINE_TIMEOUT).code(), Some(1));
}

#[test]
fn a_fresh_conversation_gets_a_generated_id() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("reply x");
    let lines = agent.until_result();
    let id = lines[0]["session_id"].as_str().unwrap().to_owned();
    agent.close_stdin();
    agent.wait(LINE_TIMEOUT);
    assert!(transcript_path(&scratch, &id).is_file());
}
