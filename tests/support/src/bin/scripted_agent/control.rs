//! Stdin handling and the state shared between the stdin reader and the turn runner.
//!
//! The reader thread answers control requests at once, even mid-turn (an interrupt must
//! not wait for the turn it interrupts), and hands user messages to the turn runner
//! through a channel, which is what queues messages sent during a turn.

use std::io::BufRead;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::shapes::{control_error, control_success, emit, initialize_response};

/// What the reader hands to the turn runner.
pub enum Input {
    /// The `message.content` of a `user` line (a string or an array of blocks).
    User(Value),
}

/// Settings that control requests can change, and whether a turn is being interrupted.
pub struct Control {
    state: Mutex<State>,
    /// Signalled on interrupt so a sleeping turn wakes at once.
    wake: Condvar,
}

struct State {
    /// User messages read from stdin whose turns have not ended: an interrupt has an
    /// effect only while there is one. Counted when read, not when the turn begins, so
    /// an interrupt that overtakes a turn's start still stops it (the reader thread may
    /// read both before the turn runner wakes).
    unfinished: usize,
    /// The host's answers to this agent's own control requests, by request id, until the
    /// turn that asked takes them.
    responses: std::collections::HashMap<String, Value>,
    /// Tools the host allowed for the rest of the process (`updatedPermissions`).
    always_allowed: Vec<String>,
    /// The running turn must stop.
    interrupted: bool,
    model: String,
    permission_mode: String,
}

impl Control {
    /// Starts idle with the model and permission mode from argv.
    pub fn new(model: String, permission_mode: String) -> Control {
        let state = State {
            unfinished: 0,
            responses: std::collections::HashMap::new(),
            always_allowed: Vec::new(),
            interrupted: false,
            model,
            permission_mode,
        };
        Control {
            state: Mutex::new(state),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the protocol down; the state stays usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A user message was read: its turn is unfinished until [`Control::end_turn`].
    fn accept_message(&self) {
        self.lock().unfinished += 1;
    }

    /// The current (model, permission mode) for a turn that begins.
    pub fn begin_turn(&self) -> (String, String) {
        let state = self.lock();
        (state.model.clone(), state.permission_mode.clone())
    }

    /// Marks the turn as finished; an interrupt of it does not reach the next.
    pub fn end_turn(&self) {
        let mut state = self.lock();
        state.unfinished = state.unfinished.saturating_sub(1);
        state.interrupted = false;
    }

    /// Whether the running turn was interrupted.
    pub fn is_interrupted(&self) -> bool {
        self.lock().interrupted
    }

    /// Sleeps for `duration` unless interrupted first; returns true if interrupted.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut state = self.lock();
        while !state.interrupted {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Waits for the host's answer to the control request `request_id`: its `response`
    /// object, or `None` once the turn is interrupted.
    pub fn wait_response(&self, request_id: &str) -> Option<Value> {
        let mut state = self.lock();
        loop {
            if let Some(response) = state.responses.remove(request_id) {
                return Some(response);
            }
            if state.interrupted {
                return None;
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether the host allowed `tool` for the rest of the process.
    pub fn always_allowed(&self, tool: &str) -> bool {
        self.lock().always_allowed.iter().any(|t| t == tool)
    }

    fn respond(&self, response: &Value) {
        let Some(request_id) = response["request_id"].as_str() else {
            return;
        };
        let mut state = self.lock();
        // `addRules` for the session, as Claude Code applies them.
        if let Some(updates) = response["response"]["updatedPermissions"].as_array() {
            for update in updates {
                if update["type"] == "addRules" && update["behavior"] == "allow" {
                    for rule in update["rules"].as_array().into_iter().flatten() {
                        if let Some(tool) = rule["toolName"].as_str() {
                            state.always_allowed.push(tool.to_owned());
                        }
                    }
                }
            }
        }
        state
            .responses
            .insert(request_id.to_owned(), response.clone());
        self.wake.notify_all();
    }

    fn interrupt(&self) {
        let mut state = self.lock();
        if state.unfinished > 0 {
            state.interrupted = true;
            self.wake.notify_all();
        }
    }

    fn model(&self) -> String {
        self.lock().model.clone()
    }
}

/// Reads stdin on its own thread until EOF; then the channel closes, which tells the
/// turn runner to finish queued turns and exit.
pub fn spawn_reader(control: Arc<Control>, turns: Sender<Input>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let line = match line {
                Ok(line) => line,
                Err(err) => {
                    eprintln!("Error reading stdin: {err}");
                    break;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = match serde_json::from_str(&line) {
                Ok(value) => value,
                Err(err) => {
                    // Claude Code treats one malformed line as fatal; so must a stand-in.
                    eprintln!("Error parsing streaming input line: {line}: {err}");
                    std::process::exit(1);
                }
            };
            match value["type"].as_str() {
                Some("user") => {
                    let content = value["message"]["content"].clone();
                    control.accept_message();
                    if turns.send(Input::User(content)).is_err() {
                        break;
                    }
                }
                Some("control_request") => {
                    handle_control(&control, &value["request_id"], &value["request"])
                }
                Some("control_response") => control.respond(&value["response"]),
                // Unknown types are ignored, like the CLI.
                _ => {}
            }
        }
    });
}

fn handle_control(control: &Control, request_id: &Value, request: &Value) {
    let subtype = request["subtype"].as_str().unwrap_or_default();
    match subtype {
        "initialize" => emit(&control_success(
            request_id,
            Some(initialize_response(&control.model())),
        )),
        "interrupt" => {
            // The response goes out before the turn reacts, as in the captures.
            emit(&control_success(request_id, None));
            control.interrupt();
        }
        "set_permission_mode" => {
            let mode = request["mode"].as_str().unwrap_or("default").to_owned();
            control.lock().permission_mode = mode.clone();
            emit(&control_success(request_id, Some(json!({"mode": mode}))));
        }
        "set_model" => {
            if let Some(model) = request["model"].as_str() {
                control.lock().model = model.to_owned();
            }
            emit(&control_success(request_id, None));
        }
        other => emit(&control_error(
            request_id,
            &format!("Unsupported control request subtype: {other}"),
        )),
    }
}
