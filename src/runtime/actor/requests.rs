//! The agent's requests for a person: a tool request (Claude Code's `can_use_tool`)
//! becomes a `permission` event (or a `question` event for a question tool, Claude Code's
//! `AskUserQuestion`), waits for a client's answer, and is closed by exactly one `answer`
//! event. So a request is pending exactly
//! when its event has no `answer` event after it, which the log alone can tell.
//!
//! A request waits at most the profile's `answer_timeout` (its event says until when,
//! `expiresAt`); then it expires: the agent is denied, and the `answer` says `expired`.
//! A session that ends while requests wait expires them with its reason.
//!
//! The actor owns the pending set; the session's handle gets a read-only copy of the
//! pending request events (a `watch`), for session objects and `session:join`.

use std::collections::{BTreeMap, HashSet, VecDeque};

use agent_runtime_api::Event;
use serde_json::Value;
use tokio::sync::watch;

use super::*;
use crate::agent::{AgentProtocol, Decision, ToolRequest};
use crate::runtime::Answer;
use crate::runtime::payload::{
    AnswerData, ExpiryReason, Outcome, Payload, PermissionData, QuestionData,
};

/// The most requests that wait at once; more are denied at once (the agent asks one per
/// tool call, so only a runaway agent gets there).
const MAX_PENDING: usize = 64;
/// How many closed request ids are remembered, to tell "already answered" from "unknown".
const REMEMBERED_CLOSED: usize = 1024;
/// The longest answer text (a denial message, one answer) a client may give.
const MAX_ANSWER_TEXT: usize = 16 * 1024;

/// The pending view handed to the session's handle.
pub(crate) type PendingView = watch::Receiver<Arc<[Event]>>;

/// One request waiting for an answer.
struct Pending {
    /// The agent's id of the request, to answer it by.
    agent_request_id: String,
    tool: String,
    input: serde_json::Map<String, Value>,
    tool_use_id: Option<String>,
    /// The question texts, for a question request.
    questions: Option<Vec<String>>,
    /// When it is denied unanswered.
    deadline: tokio::time::Instant,
    /// The request's event as persisted.
    event: Event,
}

/// The agent's requests of one live session.
pub(crate) struct Requests {
    /// By the runtime's request id (a UUIDv7, so in the order they came).
    pending: BTreeMap<String, Pending>,
    /// Request ids closed lately, oldest first.
    closed: VecDeque<String>,
    closed_set: HashSet<String>,
    view: watch::Sender<Arc<[Event]>>,
    /// Counts the requests waiting for a person, across sessions.
    metrics: Arc<crate::metrics::Metrics>,
}

impl Drop for Requests {
    /// A session that ends with requests open (it stopped or crashed) no longer waits for
    /// anyone.
    fn drop(&mut self) {
        for _ in self.pending.values() {
            self.metrics.approval_settled();
        }
    }
}

impl Requests {
    pub(crate) fn new(metrics: Arc<crate::metrics::Metrics>) -> (Self, PendingView) {
        let (view, receiver) = watch::channel(Arc::from(Vec::new()));
        let requests = Self {
            pending: BTreeMap::new(),
            closed: VecDeque::new(),
            closed_set: HashSet::new(),
            view,
            metrics,
        };
        (requests, receiver)
    }

    fn publish(&self) {
        let events: Vec<Event> = self.pending.values().map(|p| p.event.clone()).collect();
        self.view.send_replace(events.into());
    }

    /// The earliest deadline of a pending request.
    pub(super) fn next_deadline(&self) -> Option<tokio::time::Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    fn close(&mut self, request_id: &str) -> Option<Pending> {
        let pending = self.pending.remove(request_id)?;
        self.metrics.approval_settled();
        if self.closed.len() >= REMEMBERED_CLOSED
            && let Some(oldest) = self.closed.pop_front()
        {
            self.closed_set.remove(&oldest);
        }
        self.closed.push_back(request_id.to_owned());
        self.closed_set.insert(request_id.to_owned());
        self.publish();
        Some(pending)
    }
}

/// The questions of a question tool's input: their texts, when the input has the
/// protocol's shape (`questions`, an array of objects with a `question` string).
fn question_texts(input: &serde_json::Map<String, Value>) -> Option<Vec<String>> {
    let questions = input.get("questions")?.as_array()?;
    let texts: Option<Vec<String>> = questions
        .iter()
        .map(|q| q.get("question")?.as_str().map(str::to_owned))
        .collect();
    texts.filter(|texts| !texts.is_empty())
}

impl Actor {
    /// The agent asks to use a tool. Relayed to the clients when the profile says so and
    /// a turn runs; otherwise denied at once, as Claude Code would have done itself.
    pub(super) async fn on_permission_request(&mut self, request: ToolRequest) {
        let refusal = if !self.ask {
            Some("This tool is not allowed by the session's profile.")
        } else if !self.turn_active || self.stopping {
            Some("No turn of this session is running.")
        } else if self.requests.pending.len() >= MAX_PENDING {
            Some("Too many requests wait for an answer.")
        } else {
            None
        };
        if let Some(message) = refusal {
            tracing::warn!(session_id = %self.id, tool = request.tool_name, message, "denied a permission request of the agent's");
            let deny = self
                .io
                .protocol
                .decide(&request.request_id, &Decision::Deny { message });
            self.write_stdin(&deny).await;
            return;
        }
        let request_id = uuid::Uuid::now_v7().to_string();
        // The profile bounds `answer_timeout` (at most a week), so neither sum overflows.
        let deadline = tokio::time::Instant::now() + self.answer_timeout;
        let expires_at = chrono::Duration::from_std(self.answer_timeout)
            .ok()
            .and_then(|timeout| Utc::now().checked_add_signed(timeout))
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
        let questions = request
            .is_question
            .then(|| question_texts(&request.input))
            .flatten();
        let payload = match (&questions, request.input.get("questions")) {
            (Some(_), Some(questions)) => Payload::Question(QuestionData {
                expires_at,
                questions,
                request_id: &request_id,
                tool_use_id: request.tool_use_id.as_deref(),
            }),
            _ => Payload::Permission(PermissionData {
                description: request.description.as_deref(),
                expires_at,
                input: &request.input,
                request_id: &request_id,
                suggestions: request.permission_suggestions.as_ref(),
                tool: &request.tool_name,
                tool_use_id: request.tool_use_id.as_deref(),
            }),
        };
        let event = self.log.request(&payload).await;
        self.requests.metrics.approval_pending();
        self.requests.pending.insert(
            request_id,
            Pending {
                agent_request_id: request.request_id,
                tool: request.tool_name,
                input: request.input,
                tool_use_id: request.tool_use_id,
                questions,
                deadline,
                event,
            },
        );
        self.requests.publish();
        if self.record().status == SessionStatus::Running {
            self.log.transition(SessionStatus::Waiting, None).await;
        }
    }

    /// The agent withdrew one of its requests.
    pub(super) async fn on_cancel_request(&mut self, agent_request_id: &str) {
        let found = self
            .requests
            .pending
            .iter()
            .find(|(_, p)| p.agent_request_id == agent_request_id)
            .map(|(id, _)| id.clone());
        if let Some(request_id) = found {
            self.withdraw(&request_id, "the agent stopped waiting for an answer")
                .await;
            self.resume_turn().await;
        }
    }

    /// Closes every pending request: the turn that asked is over. The status follows the
    /// turn's end, not this.
    pub(super) async fn withdraw_all(&mut self, why: &str) {
        let ids: Vec<String> = self.requests.pending.keys().cloned().collect();
        for request_id in ids {
            self.withdraw(&request_id, why).await;
        }
    }

    async fn withdraw(&mut self, request_id: &str, why: &str) {
        if self.requests.close(request_id).is_some() {
            self.log
                .answer(AnswerData {
                    always: false,
                    answers: None,
                    by: None,
                    input: None,
                    message: Some(why),
                    outcome: Outcome::Withdrawn,
                    reason: None,
                    request_id,
                })
                .await;
        }
    }

    /// Denies the requests whose deadline passed: an `expired` answer for the clients, a
    /// denial the model reads for the agent, whose turn goes on.
    pub(super) async fn expire_due(&mut self) {
        let now = tokio::time::Instant::now();
        let due: Vec<String> = self
            .requests
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let waited = humantime::format_duration(self.answer_timeout).to_string();
        let message = format!(
            "No one answered this request within {waited}; it was denied. Go on without it."
        );
        for request_id in due {
            if let Some(pending) = self
                .expire(&request_id, ExpiryReason::Timeout, &message)
                .await
            {
                let deny = self.io.protocol.decide(
                    &pending.agent_request_id,
                    &Decision::Deny { message: &message },
                );
                self.write_stdin(&deny).await;
            }
        }
        self.resume_turn().await;
    }

    /// Closes every pending request as expired: the session ends (`reason`) before anyone
    /// answered. The agent is not answered: it is interrupted or already gone, and its
    /// next life is told with its next message (see [`note_of_expired`]).
    pub(super) async fn expire_all(&mut self, reason: ExpiryReason) {
        let ids: Vec<String> = self.requests.pending.keys().cloned().collect();
        for request_id in ids {
            self.expire(&request_id, reason, reason.message()).await;
        }
    }

    async fn expire(
        &mut self,
        request_id: &str,
        reason: ExpiryReason,
        message: &str,
    ) -> Option<Pending> {
        let pending = self.requests.close(request_id)?;
        self.log
            .answer(AnswerData {
                always: false,
                answers: None,
                by: None,
                input: None,
                message: Some(message),
                outcome: Outcome::Expired,
                reason: Some(reason),
                request_id,
            })
            .await;
        Some(pending)
    }

    /// Once nothing waits for a person any more, the turn runs again.
    async fn resume_turn(&mut self) {
        if self.requests.pending.is_empty() && self.record().status == SessionStatus::Waiting {
            self.log.transition(SessionStatus::Running, None).await;
        }
    }

    /// A client's answer: checked against the request, recorded as an `answer` event
    /// naming `by`, then given to the agent. Returns the answer event's seq.
    pub(super) async fn answer(
        &mut self,
        request_id: &str,
        by: &str,
        answer: Answer,
    ) -> Result<u64, RuntimeError> {
        let Some(pending) = self.requests.pending.get(request_id) else {
            return Err(if self.requests.closed_set.contains(request_id) {
                RuntimeError::new(
                    ErrorCode::RequestClosed,
                    format!("request {request_id} was answered already or is no longer waited for"),
                )
            } else {
                RuntimeError::new(
                    ErrorCode::RequestNotFound,
                    format!("no request {request_id} waits for an answer in this session"),
                )
            });
        };
        let checked = check_answer(self.io.protocol.as_ref(), pending, &answer)?;
        let pending = self
            .requests
            .close(request_id)
            .expect("the request was pending");
        let (outcome, message) = match &answer {
            Answer::Allow { .. } => (Outcome::Allow, None),
            Answer::Deny { message } => {
                (Outcome::Deny, Some(message_or_default(message, &pending)))
            }
        };
        let (edited, always, answers) = match &answer {
            Answer::Allow {
                input,
                always,
                answers,
            } => (input.as_ref(), *always, answers.as_ref()),
            Answer::Deny { .. } => (None, false, None),
        };
        let seq = self
            .log
            .answer(AnswerData {
                always,
                answers,
                by: Some(by),
                input: edited,
                message,
                outcome,
                reason: None,
                request_id,
            })
            .await;
        let decision = match &answer {
            Answer::Allow { .. } => Decision::Allow {
                input: &checked,
                always,
                tool_name: &pending.tool,
                tool_use_id: pending.tool_use_id.as_deref(),
            },
            Answer::Deny { .. } => Decision::Deny {
                message: message.unwrap_or_default(),
            },
        };
        let line = self
            .io
            .protocol
            .decide(&pending.agent_request_id, &decision);
        self.write_stdin(&line).await;
        self.touch();
        self.resume_turn().await;
        Ok(seq)
    }
}

/// Resolves when `deadline` passes; never without one.
pub(super) async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A message's content with `note` as a text block before it: the runtime's own words,
/// apart from the client's.
pub(super) fn with_note(note: &str, content: &Value) -> Value {
    let note = serde_json::json!({ "type": "text", "text": note });
    let blocks = match content {
        Value::Array(blocks) => std::iter::once(note)
            .chain(blocks.iter().cloned())
            .collect(),
        Value::String(text) => vec![note, serde_json::json!({ "type": "text", "text": text })],
        other => vec![note, other.clone()],
    };
    Value::Array(blocks)
}

/// The denial's text for the agent.
fn message_or_default<'a>(message: &'a Option<String>, pending: &Pending) -> &'a str {
    match message {
        Some(message) => message,
        None if pending.questions.is_some() => "The user declined to answer.",
        None => "The user denied this tool call.",
    }
}

/// Checks an answer against its request; for an allow, the input the tool runs with.
fn check_answer(
    protocol: &dyn AgentProtocol,
    pending: &Pending,
    answer: &Answer,
) -> Result<Value, RuntimeError> {
    match answer {
        Answer::Deny { message } => {
            if message.as_ref().is_some_and(|m| m.len() > MAX_ANSWER_TEXT) {
                return Err(RuntimeError::invalid(format!(
                    "message: at most {MAX_ANSWER_TEXT} bytes"
                )));
            }
            Ok(Value::Null)
        }
        Answer::Allow {
            input,
            always,
            answers,
        } => match &pending.questions {
            None => {
                if answers.is_some() {
                    return Err(RuntimeError::invalid(
                        "answers: only a question request takes answers",
                    ));
                }
                Ok(Value::Object(
                    input.clone().unwrap_or_else(|| pending.input.clone()),
                ))
            }
            Some(questions) => {
                if input.is_some() || *always {
                    return Err(RuntimeError::invalid(
                        "a question request takes answers, not input or always",
                    ));
                }
                let Some(answers) = answers else {
                    return Err(RuntimeError::invalid(
                        "answers: a question request is answered with answers",
                    ));
                };
                if let Some(unknown) = answers.keys().find(|q| !questions.contains(q)) {
                    return Err(RuntimeError::invalid(format!(
                        "answers: {unknown:?} is not a question of this request"
                    )));
                }
                if let Some(missing) = questions.iter().find(|q| !answers.contains_key(*q)) {
                    return Err(RuntimeError::invalid(format!(
                        "answers: the question {missing:?} has no answer"
                    )));
                }
                if answers
                    .values()
                    .any(|a| a.is_empty() || a.len() > MAX_ANSWER_TEXT)
                {
                    return Err(RuntimeError::invalid(format!(
                        "answers: each answer is 1 to {MAX_ANSWER_TEXT} bytes"
                    )));
                }
                Ok(protocol.with_answers(&pending.input, answers))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claude() -> Box<dyn AgentProtocol> {
        crate::agent::ClaudeCode::protocol()
    }

    fn pending(input: Value) -> Pending {
        let input = input.as_object().unwrap().clone();
        Pending {
            agent_request_id: "a1".into(),
            tool: "AskUserQuestion".into(),
            questions: question_texts(&input),
            input,
            tool_use_id: None,
            deadline: tokio::time::Instant::now(),
            event: Event {
                seq: 1,
                at: Utc::now(),
                kind: agent_runtime_api::EventKind::Question,
                data: serde_json::value::to_raw_value(&json!({})).unwrap(),
            },
        }
    }

    fn allow_answers(answers: &[(&str, &str)]) -> Answer {
        Answer::Allow {
            input: None,
            always: false,
            answers: Some(
                answers
                    .iter()
                    .map(|(q, a)| (q.to_string(), a.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn a_question_is_answered_with_an_answer_to_each_of_its_questions() {
        let question = pending(json!({"questions": [
            {"question": "Which color?", "header": "Color", "multiSelect": false,
             "options": [{"label": "Red", "description": "warm"}, {"label": "Blue", "description": "cool"}]},
            {"question": "Size?", "header": "Size", "multiSelect": false, "options": []}
        ]}));
        let input = check_answer(
            claude().as_ref(),
            &question,
            &allow_answers(&[("Which color?", "Blue"), ("Size?", "big")]),
        )
        .unwrap();
        assert_eq!(
            input["answers"],
            json!({"Which color?": "Blue", "Size?": "big"})
        );
        assert_eq!(
            input["questions"][0]["header"], "Color",
            "the questions stay"
        );

        for (bad, why) in [
            (allow_answers(&[("Which color?", "Blue")]), "has no answer"),
            (
                allow_answers(&[("Which color?", "Blue"), ("Size?", "big"), ("Who?", "me")]),
                "not a question",
            ),
            (
                allow_answers(&[("Which color?", ""), ("Size?", "big")]),
                "1 to",
            ),
            (
                Answer::Allow {
                    input: None,
                    always: true,
                    answers: None,
                },
                "not input or always",
            ),
            (
                Answer::Allow {
                    input: None,
                    always: false,
                    answers: None,
                },
                "answered with answers",
            ),
        ] {
            let error = check_answer(claude().as_ref(), &question, &bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest);
            assert!(error.message.contains(why), "{why}: {}", error.message);
        }
    }

    #[test]
    fn a_note_comes_before_the_clients_content_as_a_block_of_its_own() {
        assert_eq!(
            with_note("n", &json!("hi")),
            json!([{ "type": "text", "text": "n" }, { "type": "text", "text": "hi" }])
        );
        let image = json!({ "type": "image", "source": { "type": "url", "url": "u" } });
        assert_eq!(
            with_note("n \"quoted\"", &json!([image])),
            json!([{ "type": "text", "text": "n \"quoted\"" }, image])
        );
    }

    #[test]
    fn a_permission_runs_with_its_input_or_the_clients_edit() {
        let mut permission = pending(json!({"file_path": "/w/a", "content": "x"}));
        permission.tool = "Write".into();
        let allow = Answer::Allow {
            input: None,
            always: true,
            answers: None,
        };
        assert_eq!(
            check_answer(claude().as_ref(), &permission, &allow).unwrap(),
            json!({"file_path": "/w/a", "content": "x"})
        );
        let edited = json!({"file_path": "/w/b", "content": "y"})
            .as_object()
            .unwrap()
            .clone();
        let allow = Answer::Allow {
            input: Some(edited.clone()),
            always: false,
            answers: None,
        };
        assert_eq!(
            check_answer(claude().as_ref(), &permission, &allow).unwrap(),
            Value::Object(edited)
        );
        let error = check_answer(
            claude().as_ref(),
            &permission,
            &allow_answers(&[("q", "a")]),
        )
        .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        let long = Answer::Deny {
            message: Some("x".repeat(MAX_ANSWER_TEXT + 1)),
        };
        assert!(check_answer(claude().as_ref(), &permission, &long).is_err());
        assert_eq!(
            message_or_default(&None, &permission),
            "The user denied this tool call."
        );
    }
}
