//! What the agent prints: each line becomes an event; the ones the runtime acts on (the
//! conversation id, the end of a turn, MCP failures) also move the session along.

use super::*;

impl Actor {
    pub(super) async fn on_output(&mut self, line: std::io::Result<Option<Line>>) {
        match line {
            Ok(Some(Line::Text(text))) => self.on_line(text).await,
            Ok(Some(Line::TooLong(len))) => {
                let limit = self.inner.settings.limits.line_bytes;
                let message = format!(
                    "the agent printed a line of {len} bytes, over the limit of {limit}; it was dropped"
                );
                self.log
                    .error(EventErrorCode::LineTooLong, &message, false)
                    .await;
            }
            Ok(Some(Line::NotUtf8)) => {
                self.log
                    .error(
                        EventErrorCode::AgentFailed,
                        "the agent printed a line that is not UTF-8; it was dropped",
                        false,
                    )
                    .await;
            }
            Ok(None) => self.stdout_open = false,
            Err(error) => {
                tracing::warn!(session_id = %self.id, %error, "reading the agent's output failed");
                self.stdout_open = false;
            }
        }
    }

    pub(super) async fn on_line(&mut self, text: String) {
        self.touch();
        let (json, kind) = match self.io.protocol.parse_line(text) {
            Ok(line) => (line.json, line.meaning),
            Err(NotAnObject(text)) => {
                let shown: String = text.chars().take(200).collect();
                let message =
                    format!("the agent printed a line that is not a JSON object: {shown}");
                self.log
                    .error(EventErrorCode::AgentFailed, &message, false)
                    .await;
                return;
            }
        };
        let turn_end = match kind {
            AgentLine::ControlResponse { request_id, error } => {
                if let Some(error) = error {
                    tracing::warn!(session_id = %self.id, request_id, error, "control request failed");
                }
                return;
            }
            // Requests become events of their own, not `agent` events.
            AgentLine::ToolRequest(request) => {
                self.on_permission_request(request).await;
                return;
            }
            AgentLine::CancelRequest { request_id } => {
                self.on_cancel_request(&request_id).await;
                return;
            }
            AgentLine::OtherRequest { request_id } => {
                tracing::warn!(session_id = %self.id, request_id, "refused a control request of the agent's the runtime does not serve");
                let refusal = self
                    .io
                    .protocol
                    .refuse(&request_id, "not supported by this host");
                self.write_stdin(&refusal).await;
                return;
            }
            // The runtime chose the conversation id; a line cannot change it.
            AgentLine::Init { session_id } => {
                if self.record().agent_session_id.as_deref() != Some(session_id.as_str()) {
                    tracing::warn!(session_id = %self.id, "the agent claims another conversation id; ignored");
                }
                AgentLine::Other
            }
            // A turn ends once, with a result of its own conversation; any other result
            // line is passed on as an event and counts for nothing.
            AgentLine::Result(result)
                if !self.turn_active
                    || result.session_id.is_none()
                    || result.session_id != self.record().agent_session_id =>
            {
                tracing::warn!(session_id = %self.id, "a result line outside a turn or of another conversation; ignored");
                AgentLine::Other
            }
            other => other,
        };
        let mcp_failures = self.io.protocol.tool_failures(json.get());
        let waiter = match turn_end {
            AgentLine::Result(_) => self.turn_waiter.take(),
            _ => None,
        };
        let result = waiter.as_ref().map(|_| json.clone());
        if let AgentLine::Other = turn_end
            && let Some(uuid) = self.io.protocol.message_id(json.get())
        {
            self.last_assistant = Some(uuid);
        }
        self.log.agent(json).await;
        if let (Some(waiter), Some(result)) = (waiter, result) {
            // Whoever waited may read the log next: the turn's events are in it.
            self.inner.writer.flush().await;
            let _ = waiter.send(result);
        }
        for failure in mcp_failures {
            let message = format!("the tool {} failed: {}", failure.tool, failure.message);
            self.log
                .error(EventErrorCode::ToolFailed, &message, false)
                .await;
        }
        if let AgentLine::Result(result) = turn_end {
            self.on_turn_end(result).await;
        }
    }

    pub(super) async fn on_turn_end(&mut self, result: TurnResult) {
        let within_budget = budget::refusal(self.record()).is_none();
        add_usage(self.log.usage_mut(), &result);
        let exceeded = self.record().budget.reached(&self.record().usage);
        self.turn_active = false;
        // The agent waits for nothing once its turn is over.
        self.withdraw_all("the turn ended before an answer").await;
        if self.stopping {
            return;
        }
        // `subtype` can say success while `is_error` says the turn failed (an API error);
        // clients get an `error` event for it. An interrupt's failure is expected.
        if result.is_error && !self.interrupted {
            let detail = result.text.as_deref().unwrap_or(&result.subtype);
            let shown: String = detail.chars().take(500).collect();
            let message = format!("the turn failed: {shown}");
            self.log
                .error(EventErrorCode::TurnFailed, &message, false)
                .await;
        }
        self.emit_file_changes().await;
        if let Some(limit) = exceeded {
            // Said once, by the turn that used the budget up; the queued messages would
            // start turns over it, so they are dropped and their clients hear which.
            if within_budget {
                self.log
                    .error(
                        EventErrorCode::BudgetExceeded,
                        &budget::exceeded_message(limit),
                        false,
                    )
                    .await;
            }
            self.drop_queue("the session used up its budget (budget_exceeded)")
                .await;
        }
        if self.queue.is_empty() {
            self.busy.store(false, Ordering::Relaxed);
            self.log.transition(SessionStatus::Idle, None).await;
        } else {
            self.dispatch_next().await;
        }
    }

    /// Diffs the workspace against the last turn and emits one `file` event per change.
    pub(super) async fn emit_file_changes(&mut self) {
        let limit = self.inner.settings.limits.workspace_files;
        match workspace::snapshot(self.sandbox.as_ref(), limit).await {
            Ok(current) => {
                for change in workspace::diff(&self.snapshot, &current) {
                    self.log.file(change).await;
                }
                self.snapshot = current;
                self.too_many_files = false;
            }
            // Said once, not after every turn while it lasts.
            Err(error) if error.kind() == ErrorKind::TooLarge && !self.too_many_files => {
                self.too_many_files = true;
                let message = format!(
                    "{}: more than limits.workspace_files ({limit}); no file is listed or \
                     synced until there are fewer",
                    error.message()
                );
                self.log
                    .error(EventErrorCode::FileSkipped, &message, false)
                    .await;
            }
            Err(error) => {
                tracing::warn!(session_id = %self.id, %error, "listing workspace files failed")
            }
        }
    }
}

/// The most a usage counter holds: what every session store can keep (a signed 64-bit
/// column).
const MAX_COUNT: u64 = i64::MAX as u64;

/// Adds one turn's reported usage to the session's. The numbers are the agent's word, so
/// they are bounded: counts saturate at [`MAX_COUNT`], and a cost that is negative, not
/// finite, or would make the total not finite is not added.
fn add_usage(usage: &mut agent_runtime_api::Usage, result: &TurnResult) {
    let add = |total: u64, more: u64| total.saturating_add(more).min(MAX_COUNT);
    usage.input_tokens = add(usage.input_tokens, result.input_tokens);
    usage.output_tokens = add(usage.output_tokens, result.output_tokens);
    usage.turns = add(usage.turns, 1);
    let cost = usage.cost_usd + result.cost_usd;
    if result.cost_usd >= 0.0 && cost.is_finite() {
        usage.cost_usd = cost;
    }
}

/// Collects the tail of the agent's stderr for error messages, and logs it at debug.
pub(crate) fn collect_stderr(
    session_id: Arc<str>,
    stderr: Pin<Box<dyn tokio::io::AsyncRead + Send>>,
) -> Arc<std::sync::Mutex<String>> {
    let tail = Arc::new(std::sync::Mutex::new(String::new()));
    let writer = tail.clone();
    tokio::spawn(async move {
        let mut lines = LineReader::new(stderr, 64 * 1024);
        while let Ok(Some(Line::Text(line))) = lines.next_line().await {
            tracing::debug!(%session_id, line, "agent stderr");
            let Ok(mut tail) = writer.lock() else { return };
            tail.push_str(&line);
            tail.push('\n');
            if tail.len() > STDERR_TAIL_BYTES {
                let cut = tail.len() - STDERR_TAIL_BYTES;
                let cut = (cut..tail.len())
                    .find(|&i| tail.is_char_boundary(i))
                    .unwrap_or(0);
                tail.drain(..cut);
            }
        }
    });
    tail
}
