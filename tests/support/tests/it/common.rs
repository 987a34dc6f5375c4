//! A small blocking driver for stream-json agents (scripted or real).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a test waits for one line before failing.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// A running agent process with piped stdio.
pub struct AgentProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Collects stderr; joined once the process has exited, so `stderr` then holds all.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl AgentProcess {
    /// Spawns `program args` in `cwd` with `env` added to the inherited environment.
    pub fn spawn(program: &Path, args: &[&str], cwd: &Path, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut sink = sink.lock().unwrap();
                sink.push_str(&line);
                sink.push('\n');
            }
        });
        AgentProcess {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Writes one raw line to stdin.
    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        writeln!(stdin, "{line}").expect("write to agent stdin");
        stdin.flush().expect("flush agent stdin");
    }

    /// Writes one JSON line to stdin.
    pub fn send(&mut self, value: &Value) {
        self.send_raw(&value.to_string());
    }

    /// Sends a user message in the SDK's form (content as text blocks).
    pub fn user(&mut self, text: &str) {
        self.send(
            &json!({"type": "user", "session_id": "", "parent_tool_use_id": null,
            "message": {"role": "user", "content": [{"type": "text", "text": text}]}}),
        );
    }

    /// Sends a control request.
    pub fn control(&mut self, request_id: &str, subtype: &str) {
        self.send(&json!({"type": "control_request", "request_id": request_id,
            "request": {"subtype": subtype}}));
    }

    /// The next stdout line, or None at EOF.
    pub fn next_raw(&self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "no stdout line within {timeout:?}; stderr: {}",
                    self.stderr()
                )
            }
        }
    }

    /// The next stdout line as JSON.
    pub fn next_json(&self) -> Value {
        let line = self
            .next_raw(LINE_TIMEOUT)
            .unwrap_or_else(|| panic!("stdout closed; stderr: {}", self.stderr()));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// JSON lines up to and including the next `result`.
    pub fn until_result(&self) -> Vec<Value> {
        let mut lines = Vec::new();
        loop {
            let line = self.next_json();
            let done = line["type"] == "result";
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Closes stdin (EOF for the agent).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for exit, failing after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The pipe is closed now; what the process wrote last is read to the end.
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent still running after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stderr so far (all of it after `wait`).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The texts of the assistant text blocks among `lines`.
pub fn assistant_texts(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["type"] == "assistant")
        .flat_map(|l| {
            l["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|b| b["text"].as_str().map(str::to_owned))
        .collect()
}
