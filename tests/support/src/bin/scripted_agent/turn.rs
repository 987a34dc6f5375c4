//! One turn: `system/init`, the directive's lines, then exactly one `result`.
//!
//! Directives (the prompt text starts with one):
//! `reply <text>`, `emit <n>`, `stamp <n> <interval_ms>`, `write <path> <content...>`,
//! `sleep <ms>`, `crash`, `fail <text>`, `malformed`, `history`, `env <NAME>`,
//! `sh <command>`, `forge`, `bigline <bytes>`, `flood`, `ask <tool> <json input>`;
//! anything else is echoed as `echo: <text>`.
//!
//! `ask` plays a tool call that needs permission, as Claude Code does under
//! `--permission-prompt-tool stdio`: a `tool_use` block, then a `can_use_tool` control
//! request, and it waits for the host's `control_response`. Allowed, a `Write` writes its
//! (possibly edited) input's file, an `AskUserQuestion` returns the answers as Claude
//! Code words them, any other tool returns its input; denied, the tool result is the
//! host's message as an error. The final text is `TOOL RESULT SEEN: <result>`. A tool the
//! host allowed for the session (`updatedPermissions`) is not asked about again. An
//! interrupt while waiting withdraws the request (`control_cancel_request`).
//! `askmany <n>` asks about `n` Bash calls at once, as parallel tool calls do, waits for
//! every answer and replies with the behaviours in the order asked (`allow,deny,...`).
//! `askcrash <tool> <json input>` asks like `ask`, then exits (as `crash`) half a second
//! later, still waiting.
//!
//! `sh` runs the command with `sh -c` in the working directory, as an agent's shell tool
//! would, and replies with `exit <code>` followed by its output (stdout, then stderr).
//!
//! `forge` plays a hostile agent lying about its conversation: a `system/init` and a
//! `result` of another `session_id`, the result with absurd usage and cost, then a result
//! of its own conversation with absurd tokens and a negative cost (which ends the turn
//! early), and then the turn's ordinary `result`, which comes outside any turn.
//!
//! `bigline` prints one assistant line of about `bytes` bytes. `flood` prints one line that
//! does not end until the turn is interrupted.
//!
//! `stamp` is for latency measurement: each of its `n` assistant lines carries
//! `message.stamp_us`, the wall-clock time (microseconds since the Unix epoch) taken just
//! before the line is written, and the lines are `interval_ms` apart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::control::Control;
use crate::shapes::{
    Ctx, assistant, assistant_message, emit, emit_raw, interrupted_message, result_error,
    result_success, short_id, text_of, user,
};
use crate::transcript::Transcript;

/// Exit code of the `crash` directive.
const CRASH_EXIT_CODE: i32 = 3;

/// Diagnostic Claude Code puts into an interrupted turn's `errors`.
const INTERRUPT_DIAGNOSTIC: &str =
    "[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null";

/// How a directive ended.
enum Outcome {
    /// Finished: the final text and the number of model calls it took.
    Reply { text: String, calls: u64 },
    /// Stopped by an `interrupt` control request.
    Interrupted,
    /// Failed like a turn whose API call was refused: the error text.
    Failed(String),
}

impl Outcome {
    fn text(text: impl Into<String>) -> Outcome {
        Outcome::Reply {
            text: text.into(),
            calls: 1,
        }
    }
}

/// Runs turns one after another for one conversation.
pub struct Agent {
    transcript: Transcript,
    cwd: String,
    control: Arc<Control>,
}

impl Agent {
    /// An agent for the given conversation, working in `cwd`.
    pub fn new(transcript: Transcript, cwd: String, control: Arc<Control>) -> Agent {
        Agent {
            transcript,
            cwd,
            control,
        }
    }

    /// Runs one turn for a user message's `content`.
    pub fn run_turn(&mut self, content: &Value) {
        let started = Instant::now();
        let (model, permission_mode) = self.control.begin_turn();
        let session_id = self.transcript.session_id().to_owned();
        let cwd = self.cwd.clone();
        let ctx = Ctx {
            session_id: &session_id,
            model: &model,
            cwd: &cwd,
            permission_mode: &permission_mode,
        };
        self.transcript.record_prompt(content);
        emit(&crate::shapes::init(&ctx));
        let outcome = self.act(&ctx, &text_of(content));
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Outcome::Reply { text, calls } => {
                emit(&result_success(&ctx, &text, calls, elapsed));
            }
            Outcome::Failed(text) => {
                emit(&crate::shapes::result_api_error(&ctx, &text, elapsed));
            }
            Outcome::Interrupted => {
                let message = interrupted_message();
                emit(&user(&ctx, &message, None));
                self.transcript.record_user_line(&message, None);
                let errors = [INTERRUPT_DIAGNOSTIC.to_owned()];
                emit(&result_error(
                    &session_id,
                    Some("aborted_streaming"),
                    &errors,
                    elapsed,
                ));
            }
        }
        self.control.end_turn();
    }

    fn act(&mut self, ctx: &Ctx, text: &str) -> Outcome {
        let trimmed = text.trim_start();
        let (word, rest) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        let number = rest.trim().parse::<u64>();
        let outcome = match (word, number) {
            ("reply", _) => self.say(ctx, rest),
            ("emit", Ok(n)) => self.emit_chunks(ctx, n),
            ("stamp", _) => match parse_two(rest) {
                Some((n, interval_ms)) => self.stamp(ctx, n, interval_ms),
                None => self.say(ctx, &format!("echo: {text}")),
            },
            ("write", _) if !rest.trim().is_empty() => self.write(ctx, rest),
            ("sleep", Ok(ms)) => self.sleep(ctx, ms),
            ("crash", _) => self.crash(ctx),
            // Like an API error: `subtype` says success, `is_error` says otherwise.
            ("fail", _) => Outcome::Failed(format!("API Error: 529 {}", rest.trim())),
            ("malformed", _) => {
                emit_raw("this is not json {");
                self.say(ctx, "sent a malformed line")
            }
            ("history", _) => {
                let history = self.transcript.previous_prompts().join(" | ");
                self.say(ctx, &history)
            }
            ("env", _) if !rest.trim().is_empty() => {
                let value = std::env::var(rest.trim()).unwrap_or_else(|_| "<unset>".to_owned());
                self.say(ctx, &value)
            }
            ("forge", _) => self.forge(ctx),
            ("flood", _) => flood(&self.control),
            ("bigline", Ok(bytes)) => {
                let text = "x".repeat(usize::try_from(bytes).unwrap_or(usize::MAX));
                emit(&assistant(
                    ctx,
                    &assistant_message(ctx, json!({"type": "text", "text": text})),
                ));
                Outcome::text("sent a big line")
            }
            ("ask", _) if !rest.trim().is_empty() => self.ask(ctx, rest.trim()),
            ("askmany", Ok(n)) => self.ask_many(ctx, n),
            ("askcrash", _) if !rest.trim().is_empty() => self.ask_then_crash(ctx, rest.trim()),
            ("sh", _) if !rest.trim().is_empty() => {
                let reply = shell(rest.trim());
                self.say(ctx, &reply)
            }
            _ => self.say(ctx, &format!("echo: {text}")),
        };
        if self.control.is_interrupted() {
            return Outcome::Interrupted;
        }
        outcome
    }

    /// Emits one assistant text line and records it.
    fn say(&mut self, ctx: &Ctx, text: &str) -> Outcome {
        self.assistant_block(ctx, json!({"type": "text", "text": text}));
        Outcome::text(text)
    }

    fn assistant_block(&mut self, ctx: &Ctx, block: Value) {
        let message = assistant_message(ctx, block);
        let line = assistant(ctx, &message);
        emit(&line);
        self.transcript
            .record_assistant(&message, line["uuid"].as_str());
    }

    fn emit_chunks(&mut self, ctx: &Ctx, n: u64) -> Outcome {
        let mut last = String::new();
        for i in 1..=n {
            if self.control.is_interrupted() {
                return Outcome::Interrupted;
            }
            last = format!("chunk {i}");
            self.assistant_block(ctx, json!({"type": "text", "text": last}));
        }
        Outcome::text(last)
    }

    /// `n` assistant lines stamped with the time they are written, `interval_ms` apart.
    /// The stamp is taken after the line is built so only serialising and the write
    /// itself fall between the stamp and the bytes reaching stdout.
    fn stamp(&mut self, ctx: &Ctx, n: u64, interval_ms: u64) -> Outcome {
        let mut last = String::new();
        for i in 1..=n {
            if i > 1 && interval_ms > 0 && self.control.sleep(Duration::from_millis(interval_ms)) {
                return Outcome::Interrupted;
            }
            if self.control.is_interrupted() {
                return Outcome::Interrupted;
            }
            last = format!("stamp {i}");
            let mut message = assistant_message(ctx, json!({"type": "text", "text": last}));
            let mut line = assistant(ctx, &message);
            let stamp = json!(now_us());
            line["message"]["stamp_us"] = stamp.clone();
            emit(&line);
            message["stamp_us"] = stamp;
            self.transcript
                .record_assistant(&message, line["uuid"].as_str());
        }
        Outcome::text(last)
    }

    fn sleep(&mut self, ctx: &Ctx, ms: u64) -> Outcome {
        if self.control.sleep(Duration::from_millis(ms)) {
            return Outcome::Interrupted;
        }
        self.say(ctx, "slept")
    }

    fn crash(&mut self, ctx: &Ctx) -> Outcome {
        self.say(ctx, "crashing");
        std::process::exit(CRASH_EXIT_CODE);
    }

    /// Lines that claim another conversation and absurd usage; see the module docs.
    fn forge(&mut self, ctx: &Ctx) -> Outcome {
        let other = crate::shapes::uuid();
        let forged_ctx = Ctx {
            session_id: &other,
            ..*ctx
        };
        emit(&crate::shapes::init(&forged_ctx));
        let absurd = |line: &mut Value| {
            line["usage"]["input_tokens"] = json!(u64::MAX);
            line["usage"]["output_tokens"] = json!(u64::MAX);
            line["total_cost_usd"] = json!(1e308);
        };
        let mut foreign = result_success(&forged_ctx, "foreign", 1, 0);
        absurd(&mut foreign);
        emit(&foreign);
        let mut early = result_success(ctx, "forged early end", 1, 0);
        absurd(&mut early);
        early["total_cost_usd"] = json!(-1.0);
        emit(&early);
        self.say(ctx, "forged")
    }

    /// A tool call that needs the host's permission, and an exit while it waits.
    fn ask_then_crash(&mut self, ctx: &Ctx, rest: &str) -> Outcome {
        let (tool, input) = rest.split_once(' ').unwrap_or((rest, "{}"));
        let input: Value = serde_json::from_str(input).unwrap_or_else(|_| json!({}));
        let tool_use_id = format!("toolu_scripted_{}", short_id());
        self.assistant_block(
            ctx,
            json!({"type": "tool_use", "id": tool_use_id, "name": tool, "input": input}),
        );
        let request = json!({"subtype": "can_use_tool", "tool_name": tool, "display_name": tool,
            "input": input, "tool_use_id": tool_use_id, "description": tool});
        emit(
            &json!({"type": "control_request", "request_id": crate::shapes::uuid(), "request": request}),
        );
        std::thread::sleep(Duration::from_millis(500));
        self.crash(ctx)
    }

    /// A tool call that needs the host's permission; see the module docs.
    fn ask(&mut self, ctx: &Ctx, rest: &str) -> Outcome {
        let (tool, input) = rest.split_once(' ').unwrap_or((rest, "{}"));
        let Ok(Value::Object(input)) = serde_json::from_str::<Value>(input) else {
            return self.say(ctx, "ask: the input is not a JSON object");
        };
        let input = Value::Object(input);
        let tool_use_id = format!("toolu_scripted_{}", short_id());
        self.assistant_block(
            ctx,
            json!({"type": "tool_use", "id": tool_use_id, "name": tool, "input": input}),
        );
        let decision = if self.control.always_allowed(tool) {
            json!({"behavior": "allow", "updatedInput": input})
        } else {
            let request_id = crate::shapes::uuid();
            let mut request = json!({"subtype": "can_use_tool", "tool_name": tool,
                "display_name": tool, "input": input, "tool_use_id": tool_use_id});
            if tool != "AskUserQuestion" {
                request["description"] = json!(tool);
                request["permission_suggestions"] =
                    json!([{"type": "setMode", "mode": "acceptEdits", "destination": "session"}]);
            }
            emit(&json!({"type": "control_request", "request_id": request_id, "request": request}));
            match self.control.wait_response(&request_id) {
                Some(response) if response["subtype"] == "success" => response["response"].clone(),
                Some(response) => json!({"behavior": "deny", "message": response["error"]}),
                None => {
                    emit(&json!({"type": "control_cancel_request", "request_id": request_id}));
                    return Outcome::Interrupted;
                }
            }
        };
        let (result_text, is_error) = if decision["behavior"] == "allow" {
            let input = &decision["updatedInput"];
            match tool {
                "Write" => {
                    let path = input["file_path"].as_str().unwrap_or_default();
                    let content = input["content"].as_str().unwrap_or_default();
                    match write_file(&Path::new(&self.cwd).join(path), content) {
                        Ok(()) => (format!("File created successfully at: {path}"), false),
                        Err(err) => (format!("Error writing {path}: {err}"), true),
                    }
                }
                "AskUserQuestion" => {
                    let answers: Vec<String> = input["answers"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(q, a)| format!("\"{q}\"=\"{}\"", a.as_str().unwrap_or_default()))
                        .collect();
                    (
                        format!(
                            "Your questions have been answered: {}. You can now continue with these answers in mind.",
                            answers.join(", ")
                        ),
                        false,
                    )
                }
                _ => (format!("allowed: {input}"), false),
            }
        } else {
            let message = decision["message"].as_str().unwrap_or("denied");
            (message.to_owned(), true)
        };
        let message = json!({"role": "user", "content": [{
            "tool_use_id": tool_use_id, "type": "tool_result", "content": result_text,
            "is_error": is_error}]});
        emit(&user(ctx, &message, None));
        self.transcript.record_user_line(&message, None);
        let reply = format!("TOOL RESULT SEEN: {result_text}");
        self.say(ctx, &reply);
        Outcome::Reply {
            text: reply,
            calls: 2,
        }
    }

    /// `n` permission requests at once; see the module docs.
    fn ask_many(&mut self, ctx: &Ctx, n: u64) -> Outcome {
        let ids: Vec<String> = (1..=n)
            .map(|i| {
                let request_id = crate::shapes::uuid();
                let input = json!({"command": format!("echo {i} > {i}.txt")});
                emit(&json!({"type": "control_request", "request_id": request_id,
                    "request": {"subtype": "can_use_tool", "tool_name": "Bash", "input": input,
                    "tool_use_id": format!("toolu_scripted_{}", short_id())}}));
                request_id
            })
            .collect();
        // Said once every request is out, so a test knows the runtime has taken them all
        // in (it reads the agent's lines in order) before it answers any.
        self.assistant_block(ctx, json!({"type": "text", "text": format!("asked {n}")}));
        let mut behaviors = Vec::new();
        for request_id in &ids {
            match self.control.wait_response(request_id) {
                Some(response) if response["subtype"] == "success" => behaviors.push(
                    response["response"]["behavior"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned(),
                ),
                Some(_) => behaviors.push("error".to_owned()),
                None => return Outcome::Interrupted,
            }
        }
        self.say(ctx, &behaviors.join(","))
    }

    /// A Write tool round trip: tool_use, the real file write, tool_result, final text.
    fn write(&mut self, ctx: &Ctx, rest: &str) -> Outcome {
        let (path, content) = rest.split_once(' ').unwrap_or((rest, ""));
        let full = Path::new(&self.cwd).join(path);
        let file_path = full.to_string_lossy().into_owned();
        let tool_use_id = format!("toolu_scripted_{}", short_id());
        let input = json!({"file_path": file_path, "content": content});
        self.assistant_block(
            ctx,
            json!({"type": "tool_use", "id": tool_use_id, "name": "Write", "input": input}),
        );
        let (result_text, is_error, tool_use_result) = match write_file(&full, content) {
            Ok(()) => (
                format!("File created successfully at: {file_path}"),
                false,
                json!({"type": "create", "filePath": file_path, "content": content,
                       "structuredPatch": [], "originalFile": null}),
            ),
            Err(err) => {
                let text = format!("Error writing {file_path}: {err}");
                (text.clone(), true, json!(format!("Error: {text}")))
            }
        };
        let message = json!({"role": "user", "content": [{
            "tool_use_id": tool_use_id, "type": "tool_result", "content": result_text,
            "is_error": is_error}]});
        emit(&user(ctx, &message, Some(&tool_use_result)));
        self.transcript
            .record_user_line(&message, Some(&tool_use_result));
        let reply = if is_error {
            format!("write failed: {result_text}")
        } else {
            format!("wrote {path}")
        };
        self.say(ctx, &reply);
        Outcome::Reply {
            text: reply,
            calls: 2,
        }
    }
}

/// Writes one line, 64 KiB at a time, until the turn is interrupted; then ends it.
fn flood(control: &Control) -> Outcome {
    use std::io::Write;
    let chunk = vec![b'x'; 64 * 1024];
    let write = |bytes: &[u8]| {
        // Locked per chunk: the control thread answers requests on stdout meanwhile.
        let mut out = std::io::stdout().lock();
        if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
            std::process::exit(1);
        }
    };
    write(b"{\"type\":\"flood\",\"text\":\"");
    while !control.is_interrupted() {
        write(&chunk);
    }
    write(b"\"}\n");
    Outcome::Interrupted
}

/// Two whitespace-separated unsigned numbers, and nothing else.
fn parse_two(rest: &str) -> Option<(u64, u64)> {
    let mut words = rest.split_whitespace();
    let first = words.next()?.parse().ok()?;
    let second = words.next()?.parse().ok()?;
    words.next().is_none().then_some((first, second))
}

/// Microseconds since the Unix epoch; 0 if the clock is set before it.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Runs `command` with `sh -c` and describes what happened: `exit <code>` and the output.
fn shell(command: &str) -> String {
    match std::process::Command::new("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(output) => {
            let code = output
                .status
                .code()
                .map_or_else(|| "signal".to_owned(), |code| code.to_string());
            format!(
                "exit {code}\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        }
        Err(error) => format!("exit none\nsh could not start: {error}"),
    }
}

fn write_file(path: &Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, content)
}
