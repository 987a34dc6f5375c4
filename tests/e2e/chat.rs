//! `agent-runtime chat` against the real binary: streamed text from the pinned Claude Code,
//! an approval answered inline, `--session` resuming a stopped session, a lost connection
//! followed without a lost or repeated event, and Ctrl-C.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use agent_runtime_testkit::proxy::Proxy;
use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup, signal};

/// A guard against hangs, not a performance bound: turns run sandboxes.
const PATIENCE: Duration = Duration::from_secs(120);

/// A running `agent-runtime chat`, its stdout collected as it comes.
pub struct Chat {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<(Mutex<String>, Condvar)>,
}

impl Chat {
    /// Starts `agent-runtime chat ARGS` in `dir` with `env`.
    pub fn start(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Chat {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agent-runtime"));
        command
            .arg("chat")
            .args(args)
            .current_dir(dir)
            .env_remove("AGENT_RUNTIME_URL")
            .env_remove("AGENT_RUNTIME_TOKEN");
        for (name, value) in env {
            command.env(name, value);
        }
        Chat::spawn(command)
    }

    /// Starts `command` (a chat) with its stdin, stdout and stderr piped.
    pub fn spawn(mut command: Command) -> Chat {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("chat starts");
        let stdin = child.stdin.take();
        let output = Arc::new((Mutex::new(String::new()), Condvar::new()));
        for mut stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let (text, changed) = &*output;
                    text.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                    changed.notify_all();
                }
            });
        }
        Chat {
            child,
            stdin,
            output,
        }
    }

    /// Writes a line to its stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes its stdin.
    pub fn close(&mut self) {
        self.stdin = None;
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output.0.lock().unwrap().clone()
    }

    /// Waits until its output holds `text` `times` times.
    pub fn wait_for_times(&self, text: &str, times: usize) {
        let (output, changed) = &*self.output;
        let deadline = Instant::now() + PATIENCE;
        let mut seen = output.lock().unwrap();
        while seen.matches(text).count() < times {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "chat never printed {text:?}:\n{seen}");
            seen = changed.wait_timeout(seen, left).unwrap().0;
        }
    }

    /// Waits until its output holds `text`.
    pub fn wait_for(&self, text: &str) {
        self.wait_for_times(text, 1);
    }

    /// Closes its stdin and waits for it to exit; its exit code and output.
    pub fn finish(mut self) -> (Option<i32>, String) {
        self.close();
        self.exited()
    }

    /// Waits for it to exit with its stdin still open; its exit code and output.
    pub fn exited(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The readers finish with the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.output());
            }
            assert!(
                Instant::now() < deadline,
                "chat did not exit:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends it SIGINT, as Ctrl-C does.
    pub fn ctrl_c(&self) {
        signal(&self.child, "INT");
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The session id in chat's parting line.
pub fn session_id(output: &str) -> String {
    let marker = "agent-runtime chat --session ";
    let start = output
        .rfind(marker)
        .unwrap_or_else(|| panic!("no session id in:\n{output}"));
    output[start + marker.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Lines of `output` equal to `line`.
fn lines_equal(output: &str, line: &str) -> usize {
    output.lines().filter(|l| l.trim_end() == line).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streams_claude_code_asks_inline_and_resumes_with_session() {
    let fake = FakeAnthropic::start().await;
    let Some(mut setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    setup.extra_toml = setup
        .extra_toml
        .replace("[agent]\n", "[agent]\ninclude_partial_messages = true\n");
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let dir = setup.dir.path();

    let mut chat = Chat::start(&["claude-ask", "--url", &runtime.url], dir, &[]);
    chat.send("hello from the chat");
    chat.send(r#"TOOL:Bash {"command":"printf approved > approved.txt"}"#);
    chat.send("y");
    let (code, output) = chat.finish();
    assert_eq!(
        code,
        Some(0),
        "{output}\n--- runtime ---\n{}",
        runtime.log()
    );
    // Streamed delta by delta, and not repeated when the whole message follows.
    assert_eq!(
        lines_equal(&output, "echo: hello from the chat"),
        1,
        "{output}"
    );
    assert!(
        output.contains("? Bash printf approved > approved.txt — allow? [y]es / [n]o / [a]lways:"),
        "{output}"
    );
    assert!(output.contains("· answered: allow (by local)"), "{output}");
    assert!(
        output.contains("⚙ Bash printf approved > approved.txt"),
        "{output}"
    );
    assert!(output.contains("· created approved.txt"), "{output}");
    assert!(output.contains("· turn done: "), "{output}");
    let id = session_id(&output);
    let (status, file) = http
        .get(&format!("/v1/sessions/{id}/files/approved.txt"))
        .await;
    assert_eq!((status, file), (200, Value::String("approved".into())));
    let (_, page) = http
        .get(&format!("/v1/sessions/{id}/events?after=0&limit=1000"))
        .await;
    let deltas = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["type"] == "stream_event")
        .count();
    assert!(deltas > 0, "the profile sent partial messages: {page}");

    // Stopped, then resumed by `--session`: the model sees the earlier conversation.
    let (status, _) = http
        .post(&format!("/v1/sessions/{id}/stop"), json!({}))
        .await;
    assert_eq!(status, 200);
    let mut chat = Chat::start(&["--session", &id, "--url", &runtime.url], dir, &[]);
    chat.send("HISTORY");
    let (code, output) = chat.finish();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(&format!("· resuming session {id}")),
        "{output}"
    );
    assert!(output.contains("· starting (resume)"), "{output}");
    let history = output
        .lines()
        .find(|l| l.contains("hello from the chat |"))
        .unwrap_or_else(|| panic!("no history in:\n{output}"));
    assert!(history.contains("HISTORY"), "{history}");
    assert_eq!(session_id(&output), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_follows_a_lost_connection_without_losing_or_repeating_an_event() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let upstream = runtime.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let url = format!("http://{}", proxy.addr());

    let mut chat = Chat::start(&["asker", "--url", &url], setup.dir.path(), &[]);
    chat.send(r#"ask Write {"file_path":"kept.txt","content":"kept"}"#);
    chat.wait_for("— allow? [y]es / [n]o / [a]lways: ");
    let id = {
        let (_, list) = http.get("/v1/sessions").await;
        list["sessions"][0]["id"].as_str().unwrap().to_owned()
    };

    // While the chat cannot reach the runtime, another client's message is queued.
    proxy.cut();
    chat.wait_for("· connection lost");
    let (status, sent) = http
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({ "content": "reply said while the chat was away" }),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    proxy.restore();
    chat.wait_for("· reconnected");
    chat.send("y");
    chat.wait_for("said while the chat was away\n");
    let (code, output) = chat.finish();
    assert_eq!(code, Some(0), "{output}");
    for line in [
        "» reply said while the chat was away",
        "said while the chat was away",
        "TOOL RESULT SEEN: File created successfully at: kept.txt",
        "· created kept.txt (4 B)",
        "· waiting",
    ] {
        assert_eq!(lines_equal(&output, line), 1, "{line:?} once in:\n{output}");
    }
    // Every event after the chat's first one was shown once: as many turn ends as turns.
    assert_eq!(output.matches("· turn done: ").count(), 2, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_left_pending_is_asked_by_the_next_chat_of_the_session() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let dir = setup.dir.path();
    let mut chat = Chat::start(&["asker", "--url", &runtime.url], dir, &[]);
    chat.send(r#"ask Write {"file_path":"later.txt","content":"later"}"#);
    chat.wait_for("— allow? [y]es / [n]o / [a]lways: ");
    let (code, output) = chat.finish();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("the request stays pending for another client"),
        "{output}"
    );
    let id = session_id(&output);

    let mut chat = Chat::start(&["--session", &id, "--url", &runtime.url], dir, &[]);
    chat.send("y");
    let (code, output) = chat.finish();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("? Write later.txt — allow? [y]es / [n]o / [a]lways: "),
        "{output}"
    );
    assert!(output.contains("· answered: allow (by local)"), "{output}");
    // The turn that waited is over before the chat ends.
    assert!(
        output.contains("TOOL RESULT SEEN: File created successfully at: later.txt"),
        "{output}"
    );
    assert!(output.contains("· created later.txt (5 B)"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_are_answered_inline_by_number_or_in_words() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let questions = json!({ "questions": [
        { "question": "Which color?", "header": "Color", "multiSelect": false,
          "options": [{ "label": "Red", "description": "warm" }, { "label": "Blue", "description": "cool" }] },
        { "question": "Which sizes?", "header": "Sizes", "multiSelect": true,
          "options": [{ "label": "S", "description": "" }, { "label": "M", "description": "" }, { "label": "L", "description": "" }] },
        { "question": "Anything else?", "header": "Notes", "multiSelect": false,
          "options": [{ "label": "No", "description": "" }] } ] });
    let mut chat = Chat::start(&["asker", "--url", &runtime.url], setup.dir.path(), &[]);
    chat.send(&format!("ask AskUserQuestion {questions}"));
    chat.send("3");
    chat.send("2");
    chat.send("1, 3");
    chat.send("gift wrap, please");
    let (code, output) = chat.finish();
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("  1. Red — warm"), "{output}");
    assert!(
        output.contains("answer (numbers, comma separated, or your own words)"),
        "{output}"
    );
    let result = output
        .lines()
        .find(|l| l.starts_with("TOOL RESULT SEEN:"))
        .unwrap_or_else(|| panic!("no tool result in:\n{output}"));
    for answer in [
        r#""Which color?"="Blue""#,
        r#""Which sizes?"="S, L""#,
        r#""Anything else?"="gift wrap, please""#,
    ] {
        assert!(result.contains(answer), "{answer} in {result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_interrupts_the_turn_and_then_quits() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let mut chat = Chat::start(&["tester", "--url", &runtime.url], setup.dir.path(), &[]);
    chat.send("sleep 600000");
    chat.wait_for("· running");
    chat.ctrl_c();
    chat.wait_for("· interrupting the turn");
    chat.wait_for("! turn interrupted");
    chat.wait_for("· idle");
    chat.ctrl_c();
    // Stdin stays open: an end of input would make it quit too, with 0.
    let (code, output) = chat.exited();
    assert_eq!(code, Some(130), "{output}");
    assert!(output.contains("agent-runtime chat --session "), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_says_what_is_wrong() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let dir = setup.dir.path();
    let (code, output) = Chat::start(&["--url", &runtime.url], dir, &[]).finish();
    assert_eq!(code, Some(1));
    assert!(
        output.contains("name a profile") && output.contains("tester"),
        "{output}"
    );
    let (code, output) = Chat::start(&["nobody", "--url", &runtime.url], dir, &[]).finish();
    assert_eq!(code, Some(1));
    assert!(output.contains("profile_not_found"), "{output}");
    let (code, output) = Chat::start(
        &["--session", "missing"],
        dir,
        &[("AGENT_RUNTIME_URL", &runtime.url)],
    )
    .finish();
    assert_eq!(code, Some(1));
    assert!(output.contains("not_found"), "{output}");
    drop(runtime);
    let (code, output) = Chat::start(&["tester", "--url", "http://127.0.0.1:9"], dir, &[]).finish();
    assert_eq!(code, Some(1));
    assert!(
        output.contains("cannot reach the runtime at http://127.0.0.1:9"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sends_its_token_from_the_flag_or_the_environment() {
    let mut setup = Setup::scripted();
    setup.extra_toml = "[auth]\nmode = \"shared-secret\"\nsecret = \"chat-secret\"\n".into();
    let runtime = Runtime::start(&setup);
    let dir = setup.dir.path();
    let (code, output) = Chat::start(&["tester", "--url", &runtime.url], dir, &[]).finish();
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("unauthorized"), "{output}");

    let mut chat = Chat::start(
        &["tester", "--url", &runtime.url],
        dir,
        &[("AGENT_RUNTIME_TOKEN", "chat-secret")],
    );
    chat.send("reply with a token from the environment");
    let (code, output) = chat.finish();
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        lines_equal(&output, "with a token from the environment"),
        1,
        "{output}"
    );
    let mut chat = Chat::start(
        &["tester", "--url", &runtime.url, "--token", "chat-secret"],
        dir,
        &[],
    );
    chat.send("reply with a token from the flag");
    let (code, output) = chat.finish();
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        lines_equal(&output, "with a token from the flag"),
        1,
        "{output}"
    );
}
