//! Requests of the agent's that a session's last life left unanswered, read back from its
//! log: recovery closes the ones a dead runtime left open, and a resume tells the agent
//! which of its requests expired before anyone answered.
//!
//! Only the last lives are read, back to a `starting` status event: every end of a live
//! session closes its requests (the actor's at a stop or crash, recovery's after a
//! `kill -9`), so nothing older can be open.

use agent_runtime_api::{AdapterError, Event, EventKind, SessionStore};
use serde::Deserialize;
use serde_json::Value;

use super::MAX_EVENT_PAGE;
use super::log::SessionLog;
use super::payload::{AnswerData, ExpiryReason, Outcome};

/// The most requests a note names one by one (as many as can wait at once).
const MAX_NOTE_LINES: usize = 64;

/// How far back to read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Back {
    /// To the start of the last life.
    LastLife,
    /// To the start of the last life in which the agent got a message: the requests that
    /// expired since then are news to it.
    LastMessage,
}

#[derive(Deserialize)]
struct StatusOnly<'a> {
    #[serde(borrow)]
    status: &'a str,
}

#[derive(Deserialize)]
struct AnswerOnly {
    #[serde(rename = "requestId")]
    request_id: String,
    outcome: String,
    /// Absent for other outcomes; a reason this runtime does not know reads as none.
    #[serde(default, deserialize_with = "lenient")]
    reason: Option<ExpiryReason>,
}

fn lenient<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ExpiryReason>, D::Error> {
    Ok(Option::<Value>::deserialize(deserializer)?
        .and_then(|reason| serde_json::from_value(reason).ok()))
}

fn is_starting(event: &Event) -> bool {
    event.kind == EventKind::Status
        && serde_json::from_str::<StatusOnly>(event.data.get())
            .is_ok_and(|status| status.status == "starting")
}

fn request_id(event: &Event) -> Option<String> {
    let data: Value = serde_json::from_str(event.data.get()).ok()?;
    data.get("requestId")?.as_str().map(str::to_owned)
}

/// The `permission`, `question` and `answer` events of the session's last lives (see
/// [`Back`]), oldest first, read back from `last_seq` a page at a time.
async fn requests_back(
    store: &dyn SessionStore,
    id: &str,
    last_seq: u64,
    back: Back,
) -> Result<Vec<Event>, AdapterError> {
    let mut found = Vec::new(); // newest first
    let mut seen_input = false;
    let mut high = last_seq;
    'pages: while high > 0 {
        let low = high.saturating_sub(MAX_EVENT_PAGE as u64);
        let mut window = Vec::new();
        let mut after = low;
        while after < high {
            let page = store
                .events_after(id, after, (high - after) as usize)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            window.extend(page.into_iter().filter(|e| e.seq <= high));
        }
        for event in window.into_iter().rev() {
            match event.kind {
                EventKind::Permission | EventKind::Question | EventKind::Answer => {
                    found.push(event)
                }
                EventKind::Input => seen_input = true,
                EventKind::Status
                    if is_starting(&event) && (back == Back::LastLife || seen_input) =>
                {
                    break 'pages;
                }
                _ => {}
            }
        }
        high = low;
    }
    found.reverse();
    Ok(found)
}

/// Closes, with an `expired` answer of `reason`, every request of the session's last life
/// that no answer closed. Returns how many.
pub(crate) async fn expire_left(
    store: &dyn SessionStore,
    log: &mut SessionLog,
    reason: ExpiryReason,
) -> Result<usize, AdapterError> {
    let events = requests_back(store, log.id(), log.last_seq(), Back::LastLife).await?;
    let answered: std::collections::HashSet<String> = events
        .iter()
        .filter(|e| e.kind == EventKind::Answer)
        .filter_map(request_id)
        .collect();
    let open: Vec<String> = events
        .iter()
        .filter(|e| e.kind != EventKind::Answer)
        .filter_map(request_id)
        .filter(|id| !answered.contains(id))
        .collect();
    for request_id in &open {
        log.answer(AnswerData {
            always: false,
            answers: None,
            by: None,
            input: None,
            message: Some(reason.message()),
            outcome: Outcome::Expired,
            reason: Some(reason),
            request_id,
        })
        .await;
    }
    Ok(open.len())
}

/// What the agent is told with its first message after a resume: the requests that
/// expired unanswered since it last got a message because its session ended (one that
/// timed out was denied to the agent at the time, so it knows). `None` when there were
/// none.
pub(crate) async fn resume_note(
    store: &dyn SessionStore,
    id: &str,
    last_seq: u64,
) -> Result<Option<String>, AdapterError> {
    let events = requests_back(store, id, last_seq, Back::LastMessage).await?;
    let mut requests = std::collections::HashMap::new();
    let mut lines = Vec::new();
    for event in &events {
        if event.kind != EventKind::Answer {
            let data: Value = serde_json::from_str(event.data.get()).unwrap_or_default();
            if let Some(id) = data["requestId"].as_str() {
                requests.insert(id.to_owned(), (event.kind, data));
            }
            continue;
        }
        let Ok(answer) = serde_json::from_str::<AnswerOnly>(event.data.get()) else {
            continue;
        };
        let Some(reason) = answer
            .reason
            .filter(|r| answer.outcome == "expired" && *r != ExpiryReason::Timeout)
        else {
            continue;
        };
        if let Some((kind, data)) = requests.get(&answer.request_id) {
            lines.push(format!(
                "- {} ({})",
                describe(*kind, data),
                reason.in_note()
            ));
        }
    }
    if lines.is_empty() {
        return Ok(None);
    }
    if lines.len() > MAX_NOTE_LINES {
        let more = lines.len() - MAX_NOTE_LINES;
        lines.truncate(MAX_NOTE_LINES);
        lines.push(format!("- and {more} more"));
    }
    Ok(Some(format!(
        "Note from the host, not from the user: your session ended while these requests of \
         yours waited for the user, and they expired unanswered. None of them was allowed or \
         carried out; ask again if you still need them.\n{}",
        lines.join("\n")
    )))
}

/// A request as the note names it.
fn describe(kind: EventKind, data: &Value) -> String {
    let tool_use = data["toolUseId"]
        .as_str()
        .map(|id| format!(", tool use {id}"))
        .unwrap_or_default();
    match kind {
        EventKind::Question => {
            let questions: Vec<String> = data["questions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|q| q["question"].as_str())
                .map(|q| format!("{q:?}"))
                .collect();
            format!("your questions {}{tool_use}", cut(&questions.join(", ")))
        }
        _ => format!(
            "the tool call {} with input {}{tool_use}",
            cut(data["tool"].as_str().unwrap_or("?")),
            cut(&data["input"].to_string())
        ),
    }
}

/// The agent's own words, cut short: a note recalls a request, it does not replay it.
fn cut(text: &str) -> String {
    const MAX_CHARS: usize = 300;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_note_names_requests_briefly() {
        let long = "x".repeat(1000);
        let permission = describe(
            EventKind::Permission,
            &json!({ "tool": "Bash", "input": { "command": long }, "toolUseId": "toolu_1" }),
        );
        assert!(permission.starts_with(r#"the tool call Bash with input {"command":"xxx"#));
        assert!(permission.ends_with("…, tool use toolu_1"), "{permission}");
        assert!(permission.chars().count() < 400);
        let question = describe(
            EventKind::Question,
            &json!({ "questions": [{ "question": "Which color?" }, { "question": "Size?" }] }),
        );
        assert_eq!(question, r#"your questions "Which color?", "Size?""#);
        assert_eq!(cut("ééé"), "ééé");
    }
}
